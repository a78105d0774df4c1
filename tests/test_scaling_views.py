"""The lab's plots draw from real results (Agg backend, no display)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mlscale_lab import scaling as sc  # noqa: E402
from mlscale_lab.views import scaling as views  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_plot_thread_scaling_and_policies():
    scaling = sc.ThreadScaling((1, 2), (1.0, 0.6))
    fig = views.plot_thread_scaling(scaling, 0.2)
    measured = [line for line in fig.axes[0].lines if line.get_label() == "measured here"][0]
    np.testing.assert_allclose(measured.get_ydata(), [1.0, 1 / 0.6])
    results = {p: sc.simulate_balancer(p, 4, 3.2, 1.0, 2_000, 0) for p in ("random", "power_of_two")}
    fig = views.plot_policies(results)
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 2


def test_plot_autoscaling_adapt_and_partitions():
    trace = sc.make_request_trace(hours=2, spike_hour=1)
    fig = views.plot_autoscaling([sc.simulate_autoscaler(trace, s) for s in sc.STRATEGIES])
    assert len(fig.axes) == 3 and len(fig.axes[1].lines) == 3
    tl = sc.AdaptTimeline(t=[0.0, 0.1, 0.2], workers=[1, 2, 2], pending=[0, 5, 3], bursts=[(0.05, 5)])
    assert views.plot_adapt(tl).axes
    keys = sc.skewed_keys(1000, 100, seed=0)
    fig = views.plot_partition_sizes({s: sc.partition_sizes(keys, 4, s) for s in ("range", "hash")})
    assert "max/mean" in fig.axes[0].get_title()
    assert views.plot_partition_overhead({1: 0.5, 4: 0.3, 16: 0.6}).axes


def test_balancer_explorer_builds_headless():
    w = views.balancer_explorer(servers=4, n_requests=2_000)
    assert len(w.children) == 3
