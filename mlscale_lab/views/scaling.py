"""Plots (and one widget) over :mod:`mlscale_lab.scaling`'s measurements and simulations."""

from __future__ import annotations

import numpy as np


def _axes(ax, n=1, figsize=(8, 3.2)):
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    fig, axes = plt.subplots(1, n, figsize=figsize)
    return fig, axes


def plot_thread_scaling(scaling, serial_fraction: float, *, max_threads: int = 16, ax=None):
    """Measured speedup against threads, the fitted Amdahl curve and its ceiling ``1/s``."""
    from mlscale_lab.scaling import amdahl_speedup

    fig, ax = _axes(ax, figsize=(6, 3.5))
    p = np.arange(1, max_threads + 1)
    ax.plot(p, p, ":", color="grey", label="perfect (linear)")
    ax.plot(p, amdahl_speedup(p, serial_fraction), label=f"Amdahl, serial fraction {serial_fraction:.2f}")
    if serial_fraction > 0:
        ax.axhline(1 / serial_fraction, color="tab:red", ls="--", lw=1, label=f"ceiling 1/s = {1 / serial_fraction:.1f}x")
    ax.plot(scaling.threads, scaling.speedup, "o", color="black", label="measured here")
    ax.set_xlabel("threads")
    ax.set_ylabel("speedup")
    ax.set_ylim(0, min(max_threads, 1 / max(serial_fraction, 1 / max_threads)) * 1.15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_policies(results: dict, *, theory_p99: float | None = None):
    """Latency percentiles per policy (left) and per-replica utilisation (right)."""
    fig, (ax1, ax2) = _axes(None, 2, figsize=(11, 3.6))
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


def plot_autoscaling(results: list, *, peak_hours: bool = True):
    """Request rate, replicas paid for under each strategy, and the share of requests missing
    the SLO, over the trace."""
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
    """Workers over time beside the load (unfinished tasks) of an ``adapt`` run."""
    fig, ax = _axes(None, figsize=(8, 3.2))
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


def plot_partition_overhead(seconds_by_count: dict, ax=None):
    """Seconds for the same rows against the number of partitions (log x)."""
    fig, ax = _axes(ax, figsize=(6, 3.2))
    counts = sorted(seconds_by_count)
    ax.plot(counts, [seconds_by_count[c] for c in counts], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("partitions (same total rows)")
    ax.set_ylabel("seconds")
    fig.tight_layout()
    return fig


def plot_partition_sizes(sizes_by_scheme: dict):
    """Rows per partition under each scheme, with the mean: the tallest bar is the hotspot."""
    fig, axes = _axes(None, len(sizes_by_scheme), figsize=(10, 3))
    for ax, (name, sizes) in zip(np.atleast_1d(axes), sizes_by_scheme.items(), strict=True):
        ax.bar(np.arange(len(sizes)), sizes)
        ax.axhline(np.mean(sizes), color="black", ls="--", lw=1, label="mean")
        ax.set_title(f"{name}: max/mean = {np.max(sizes) / np.mean(sizes):.1f}")
        ax.set_xlabel("partition")
        ax.set_ylabel("rows")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def balancer_explorer(servers: int = 10, n_requests: int = 200_000):
    """A widget: pick a policy and a utilisation, see the latency percentiles (an extra; the
    lab's plain cells show the same)."""
    import ipywidgets as widgets

    from mlscale_lab.scaling import POLICIES, simulate_balancer

    policy = widgets.Dropdown(options=POLICIES, value="power_of_two", description="policy")
    util = widgets.FloatSlider(value=0.9, min=0.1, max=0.98, step=0.02, description="utilisation")
    out = widgets.Output()

    def update(*_):
        r = simulate_balancer(policy.value, servers, util.value * servers, 1.0, n_requests, 0)
        out.clear_output()
        with out:
            print(f"p50 {r.p50:.2f}  p95 {r.p95:.2f}  p99 {r.p99:.2f}  (x mean service time)")

    policy.observe(update, "value")
    util.observe(update, "value")
    update()
    return widgets.VBox([policy, util, out])
