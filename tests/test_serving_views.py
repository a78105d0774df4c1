"""Lab 07's plots draw from numbers alone (no server needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

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

    figs = [
        views.plot_queueing_curve([10, 20, 30], [10, 19, 25], {"p50": [5, 6, 9], "p99": [9, 14, 40]},
                                  {"p50": [5, 6, np.nan], "p99": [10, 15, np.nan]}, saturation=25),
        views.plot_open_vs_closed(_result("open"), _result("closed", seed=1)),
        views.plot_batching([{"max_batch": 1, "max_wait_ms": 0, "throughput": 100, "p99_ms": 50},
                             {"max_batch": 8, "max_wait_ms": 2, "throughput": 300, "p99_ms": 30}],
                            p99_target_ms=40),
        views.plot_cold_starts({"fp32": 3.0, "onnx": 0.6}, {"fp32": 190, "onnx": 120},
                               {0.6: 0.001, 3.0: 0.002, 33.0: 0.01}),
    ]
    assert all(f.axes for f in figs)
    for f in figs:
        plt.close(f)
