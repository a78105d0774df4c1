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


def test_plot_target_sweep_draws_one_line_per_trace():
    targets = [0.5, 0.6, 0.7]
    fig = views.plot_target_sweep(targets, [[0.001, 0.004, 0.02], [0.002, 0.006, 0.05]],
                                  [[0.5, 0.42, 0.36], [0.52, 0.43, 0.37]], chosen=0.6)
    ax1, ax2 = fig.axes
    assert len([ln for ln in ax2.lines if ln.get_label().startswith("trace")]) == 2
    np.testing.assert_allclose(ax1.lines[1].get_ydata(), [0.002, 0.006, 0.05])


def test_balancer_explorer_only_calls_what_it_is_given():
    calls = []

    def simulate(policy, utilisation):
        calls.append((policy, utilisation))
        return sc.simulate_balancer(policy, 4, utilisation * 4, 1.0, 2_000, 0)

    w = views.balancer_explorer(simulate, sc.POLICIES, start_policy="power_of_two")
    assert len(w.children) == 3
    assert calls == [("power_of_two", 0.9)]


def test_views_do_not_simulate():
    """Views draw results computed elsewhere: they call no simulator or measurement (drawing
    Amdahl's law itself is the one formula they evaluate)."""
    import ast
    import inspect

    called = set()
    for node in ast.walk(ast.parse(inspect.getsource(views))):
        if isinstance(node, ast.Call):
            f = node.func
            called.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    computing = (set(sc.__all__) - {"amdahl_speedup"}) & called
    assert not computing, f"views call {sorted(computing)}"


def test_plot_thread_scaling_marks_the_extrapolation_and_the_intervals():
    samples = ((1.0, 1.1, 0.9, 1.0), (0.6, 0.66, 0.55, 0.6))
    scaling = sc.ThreadScaling((1, 2), (1.0, 0.6), samples)
    fig = views.plot_thread_scaling(scaling, 0.2, bound_fraction=0.1, max_threads=8)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "extrapolated past 2 measured threads" in labels
    solid = next(line for line in fig.axes[0].lines if line.get_label().startswith("Amdahl fit"))
    assert max(solid.get_xdata()) == 2, "the fitted curve is solid only where it was measured"
    assert fig.axes[0].collections, "each measured speedup has its interval"


def test_plot_partition_overhead_draws_intervals_from_rounds():
    from mlscale_lab.evidence import Timings

    t = Timings({1: np.array([0.5, 0.52, 0.49]), 8: np.array([0.3, 0.31, 0.29])}, 3, 1)
    ax = views.plot_partition_overhead(t).axes[0]
    assert ax.collections and ax.get_xscale() == "log"
