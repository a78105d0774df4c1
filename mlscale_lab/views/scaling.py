"""Plots (and one widget) over :mod:`mlscale_lab.scaling`'s measurements and simulations.

Views only draw: every figure takes results computed elsewhere (a measurement, a simulation),
and the widget is handed the function it calls, so nothing here measures or simulates.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.views._axes import draw_interval, figure_and_axes

__all__ = [
    "balancer_explorer", "plot_adapt", "plot_autoscaling", "plot_partition_overhead",
    "plot_partition_sizes", "plot_policies", "plot_target_sweep", "plot_thread_scaling",
]


def plot_thread_scaling(scaling, serial_fraction: float, *, max_threads: int = 16,
                        bound_fraction: float | None = None, ax=None):
    """Measured speedup against threads (with intervals), the fitted Amdahl curve and its ceiling.

    The curve is solid over the thread counts measured and dashed past them: there it is an
    extrapolation, and its label says so.

    Parameters
    ----------
    scaling : ThreadScaling
        From :func:`~mlscale_lab.scaling.measure_thread_scaling`; its per-round samples give
        each point's 95 % interval.
    serial_fraction : float
        The fitted ``s``.
    max_threads : int
        How far to draw the law.
    bound_fraction : float, optional
        The serial part's measured share: Amdahl's bound with a perfectly parallel rest.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from mlscale_lab.scaling import amdahl_speedup

    fig, ax = figure_and_axes(ax, figsize=(6, 3.5))
    p = np.arange(1, max_threads + 1)
    measured_up_to = max(scaling.threads)
    inside, beyond = p[p <= measured_up_to], p[p >= measured_up_to]
    ax.plot(p, p, ":", color="grey", label="perfect (linear)")
    line, = ax.plot(inside, amdahl_speedup(inside, serial_fraction),
                    label=f"Amdahl fit, s = {serial_fraction:.2f}")
    ax.plot(beyond, amdahl_speedup(beyond, serial_fraction), "--", color=line.get_color(),
            label=f"extrapolated past {measured_up_to} measured threads")
    if bound_fraction is not None:
        ax.plot(p, amdahl_speedup(p, bound_fraction), "-.", color="tab:green", lw=1,
                label=f"bound from the serial part alone, s = {bound_fraction:.2f}")
    if serial_fraction > 0:
        ax.axhline(1 / serial_fraction, color="tab:red", ls="--", lw=1, label=f"ceiling 1/s = {1 / serial_fraction:.1f}x")
    ax.plot(scaling.threads, scaling.speedup, "o", color="black", label="measured here")
    if getattr(scaling, "samples", ()):
        for t in scaling.threads[1:]:
            draw_interval(ax, t, scaling.speedup_interval(t), color="black", fmt="none", lw=1)
    ax.axvspan(measured_up_to, max_threads, color="grey", alpha=0.07)
    ax.set_xlabel("threads")
    ax.set_ylabel("speedup")
    ax.set_ylim(0, min(max_threads, 1 / max(serial_fraction, 1 / max_threads)) * 1.15)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_policies(results: dict, *, theory_p99: float | None = None):
    """Latency percentiles per policy (left) and per-replica utilisation (right).

    Parameters
    ----------
    results : dict
        ``{policy name: BalancerResult}``.
    theory_p99 : float, optional
        A reference line (M/M/1's p99).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (ax1, ax2) = figure_and_axes(ncols=2, figsize=(11, 3.6))
    names = list(results)
    x = np.arange(len(names))
    for j, (q, label) in enumerate((("p50", "p50"), ("p95", "p95"), ("p99", "p99"))):
        ax1.bar(x + (j - 1) * 0.27, [getattr(results[n], q) for n in names], 0.27, label=label)
    if theory_p99 is not None:
        ax1.axhline(theory_p99, color="black", ls="--", lw=1, label="M/M/1 p99 (theory)")
    ax1.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax1.set_ylabel("latency (x mean service time)")
    ax1.set_yscale("log")
    ax1.legend(fontsize=8)
    for n in names:
        ax2.plot(results[n].utilisation, "o-", ms=3, label=n)
    ax2.set_xlabel("replica")
    ax2.set_ylabel("utilisation")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_autoscaling(results: list):
    """Request rate, replicas paid for under each strategy, and the share of requests missing
    the SLO, over the trace.

    Parameters
    ----------
    results : list of AutoscaleResult
        From :func:`~mlscale_lab.scaling.simulate_autoscaler`, all on the same trace.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 6.5), sharex=True)
    t = results[0].t / 3600
    axes[0].plot(t, results[0].rate, color="black", lw=0.8)
    axes[0].set_ylabel("requests / s")
    for r in results:
        axes[1].step(t, r.replicas, where="post", label=r.strategy)
        axes[2].plot(t, r.violation, lw=0.8, label=r.strategy)
    axes[1].set_ylabel("replicas")
    axes[1].legend(fontsize=8)
    axes[2].set_ylabel("share missing SLO")
    axes[2].set_yscale("symlog", linthresh=1e-3)
    axes[2].set_xlabel("hour of day")
    fig.tight_layout()
    return fig


def plot_adapt(timeline):
    """Workers over time beside the load (unfinished tasks) of an ``adapt`` run.

    Parameters
    ----------
    timeline : AdaptTimeline
        From :func:`~mlscale_lab.scaling.adapt_under_bursts`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(figsize=(8, 3.2))
    ax.fill_between(timeline.t, timeline.pending, step="post", alpha=0.3, color="tab:orange",
                    label="unfinished tasks (load)")
    ax.set_ylabel("unfinished tasks")
    ax.set_xlabel("seconds")
    ax2 = ax.twinx()
    ax2.step(timeline.t, timeline.workers, where="post", color="tab:blue", lw=2, label="workers")
    ax2.set_ylabel("workers", color="tab:blue")
    ax2.set_ylim(0, max(timeline.workers + [1]) + 0.5)
    for t0, _n in timeline.bursts:
        ax.axvline(t0, color="grey", ls=":", lw=1)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_partition_overhead(timings, ax=None):
    """Seconds for the same rows against the number of partitions (log x), with intervals.

    Parameters
    ----------
    timings : Timings or dict
        From :func:`~mlscale_lab.scaling.partition_overhead` (medians of interleaved rounds,
        each with its bootstrap interval), or a plain ``{partitions: seconds}``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 3.2))
    samples = getattr(timings, "samples", None)
    counts = sorted(samples if samples is not None else timings)
    if samples is not None:
        ivs = [timings.interval(c) for c in counts]
        line, = ax.plot(counts, [iv.estimate for iv in ivs], "-")
        for i, (c, iv) in enumerate(zip(counts, ivs, strict=True)):
            draw_interval(ax, c, iv, color=line.get_color(),
                          label="median, 95 % interval" if i == 0 else None)
        ax.legend(fontsize=8)
    else:
        ax.plot(counts, [timings[c] for c in counts], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("partitions (same total rows)")
    ax.set_ylabel("seconds")
    fig.tight_layout()
    return fig


def plot_partition_sizes(sizes_by_scheme: dict):
    """Rows per partition under each scheme, with the mean: the tallest bar is the hotspot.

    Parameters
    ----------
    sizes_by_scheme : dict
        ``{title: rows per partition}``, one panel each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = figure_and_axes(ncols=len(sizes_by_scheme), figsize=(10, 3))
    for ax, (name, sizes) in zip(np.atleast_1d(axes), sizes_by_scheme.items(), strict=True):
        ax.bar(np.arange(len(sizes)), sizes)
        ax.axhline(np.mean(sizes), color="black", ls="--", lw=1, label="mean")
        ax.set_title(f"{name}: max/mean = {np.max(sizes) / np.mean(sizes):.1f}")
        ax.set_xlabel("partition")
        ax.set_ylabel("rows")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_target_sweep(targets, violation, cost, *, slo: float = 0.01, chosen: float | None = None,
                      labels=None):
    """SLO violations and cost against the auto-scaler's target, one line per trace.

    Parameters
    ----------
    targets : array-like
        Target utilisations swept (x axis).
    violation, cost : array-like, shape (n_traces, n_targets)
        Share of requests missing the SLO, and cost (say, as a fraction of static-at-peak),
        for each trace and target.
    slo : float
        The allowed share of violations, drawn as a line.
    chosen : float, optional
        A target to mark.
    labels : sequence of str, optional
        One per trace.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    targets = np.asarray(targets, dtype=float)
    violation = np.atleast_2d(np.asarray(violation, dtype=float))
    cost = np.atleast_2d(np.asarray(cost, dtype=float))
    labels = labels or [f"trace {i}" for i in range(len(violation))]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), sharex=True)
    for v, c, label in zip(violation, cost, labels, strict=True):
        ax1.plot(targets, v, "o-", ms=3, lw=1, label=label)
        ax2.plot(targets, c, "o-", ms=3, lw=1, label=label)
    ax1.axhline(slo, color="black", ls="--", lw=1, label=f"SLO budget {slo:.0%}")
    ax1.set_yscale("log")
    ax1.set_ylabel("share of requests missing the SLO")
    ax2.set_ylabel("cost")
    for ax in (ax1, ax2):
        ax.set_xlabel("target utilisation")
        if chosen is not None:
            ax.axvline(chosen, color="tab:red", lw=1, label=f"chosen {chosen:g}")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def balancer_explorer(simulate, policies, *, start_policy: str | None = None):
    """A widget: pick a policy and a utilisation, see the latency percentiles (an extra; the
    lab's plain cells show the same).

    Parameters
    ----------
    simulate : callable
        ``simulate(policy, utilisation) -> BalancerResult``: the notebook decides what runs
        (servers, requests, seed); the widget only calls it and shows the answer.
    policies : sequence of str
        The menu.
    start_policy : str, optional
        Selected first (default the first in ``policies``).

    Returns
    -------
    ipywidgets.VBox
    """
    import ipywidgets as widgets

    policy = widgets.Dropdown(options=list(policies), value=start_policy or list(policies)[0],
                              description="policy")
    util = widgets.FloatSlider(value=0.9, min=0.1, max=0.98, step=0.02, description="utilisation")
    out = widgets.Output()

    def update(*_):
        r = simulate(policy.value, util.value)
        out.clear_output()
        with out:
            print(f"p50 {r.p50:.2f}  p95 {r.p95:.2f}  p99 {r.p99:.2f}  (x mean service time)")

    policy.observe(update, "value")
    util.observe(update, "value")
    update()
    return widgets.VBox([policy, util, out])
