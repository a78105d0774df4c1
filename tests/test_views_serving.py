"""Lab 07's plots draw from numbers alone (no server needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from mlscale_lab.capacity import plan_for_day  # noqa: E402
from mlscale_lab.evidence import Interval  # noqa: E402
from mlscale_lab.prices import machine  # noqa: E402
from mlscale_lab.scaling.serving import LoadResult  # noqa: E402
from mlscale_lab.views import serving as views  # noqa: E402


def _result(kind, n=50, seed=0):
    rng = np.random.default_rng(seed)
    scheduled = np.sort(rng.uniform(0, 1, n))
    sent = scheduled + rng.uniform(0, 0.01, n)
    done = sent + rng.exponential(0.01, n)
    return LoadResult(kind, scheduled, sent, done, np.ones(n, bool), np.zeros(n, int), 50.0)


def test_every_plot_returns_a_figure():
    import matplotlib.pyplot as plt

    day = plan_for_day([100.0, 900.0, 400.0], 3600.0, machine("large"), service=0.004,
                       latency_target_s=0.03, worker_memory_bytes=3e8, spare=1)
    figs = [
        views.plot_load_points([0.3, 0.5], [Interval(0.004, 0.0038, 0.0042, 0.95, "t", 10)] * 2,
                               {"M/G/1": [0.004, 0.005], "M/M/1": [0.0045, 0.006]}, [0.004, 0.005]),
        views.plot_stall(_result("open"), _result("closed", seed=1), (0.3, 0.6)),
        views.plot_dispatch({"central": 0.004, "greedy": 0.005}, measured=0.0052),
        views.plot_batching([{"label": "none", "rate": 100, "p99_ms": 9, "low_ms": 8, "high_ms": 10,
                              "predicted_ms": 9.5}], budget_ms=12),
        views.plot_cold_starts({"fp32": 3.0, "onnx": 0.6}, {"fp32": 190, "onnx": 120},
                               {0.6: 0.001, 3.0: 0.002, 33.0: 0.01}),
        views.plot_day_plan([0, 1, 2], [100.0, 900.0, 400.0], day),
    ]
    assert all(f.axes for f in figs)
    for f in figs:
        plt.close(f)
