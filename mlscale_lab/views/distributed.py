"""Plots over lab 08's distributed-training measurements (:mod:`mlscale_lab.scaling.distributed`).

Views only draw: every figure takes numbers measured, fitted or predicted elsewhere, and each
measured number comes as an :class:`~mlscale_lab.evidence.Interval`, drawn with its error bar.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.views._axes import draw_interval, figure_and_axes

__all__ = ["plot_allreduce", "plot_buckets", "plot_elastic", "plot_pipeline", "plot_scaling",
           "plot_step_split"]

_MS = 1000.0


def plot_step_split(step_intervals: dict, split: dict, *, ax=None):
    """Seconds per training step of each arm, and the no-overlap arm's step cut into parts.

    Parameters
    ----------
    step_intervals : dict of str to Interval
        Seconds per step of each arm ("1 process", "2 processes, DDP", ...).
    split : dict of str to float
        Median seconds per step of the parts of the no-overlap step (compute, waiting for the
        slowest rank, all-reduce), drawn stacked under the arms.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(8, 3.2))
    names = list(step_intervals)
    for i, name in enumerate(names):
        iv = step_intervals[name]
        ax.barh(i, iv.estimate * _MS, color="lightgrey", edgecolor="grey")
        ax.errorbar([iv.estimate * _MS], [i], xerr=[[(iv.estimate - iv.low) * _MS],
                                                   [(iv.high - iv.estimate) * _MS]],
                    fmt="none", color="black", capsize=3)
    left = 0.0
    colors = ("tab:blue", "tab:grey", "tab:orange", "tab:green")
    for (part, seconds), color in zip(split.items(), colors, strict=False):
        ax.barh(len(names), seconds * _MS, left=left, color=color, label=part)
        left += seconds * _MS
    ax.set_yticks(range(len(names) + 1), [*names, "no-overlap step, in parts"])
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per optimiser step (median, 95 % CI)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=len(split),
              frameon=False)
    fig.tight_layout()
    return fig


def plot_allreduce(sizes, medians, intervals, fitted, *, held_out=None, workers=None,
                   predictions=None, gradient_bytes=None):
    """All-reduce seconds against message bytes with the alpha-beta fit, and a prediction
    for more processes.

    Parameters
    ----------
    sizes, medians : sequence of float
        Message bytes and the measured median seconds.
    intervals : sequence of Interval
        Each median's interval.
    fitted : callable
        ``fitted(bytes) -> seconds``: the model fitted to the sizes not held out.
    held_out : float, optional
        The size the fit did not see (drawn as an open marker).
    workers : sequence of int, optional
    predictions : sequence of Interval, optional
        Predicted all-reduce seconds of ``gradient_bytes`` on each of ``workers``.
    gradient_bytes : float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    panels = 2 if workers is not None else 1
    fig, axes = figure_and_axes(figsize=(10 if panels == 2 else 6, 3.6), ncols=panels)
    a = axes[0] if panels == 2 else axes
    x = np.geomspace(min(sizes) / 2, max(sizes) * 2, 100)
    a.plot(x, np.asarray(fitted(x)) * _MS, "-", color="tab:blue", label="alpha-beta fit")
    for s, iv in zip(sizes, intervals, strict=True):
        out = held_out is not None and s == held_out
        draw_interval(a, s, iv, scale=_MS, color="tab:red" if out else "black",
                      mfc="white" if out else "black",
                      label=("held out (not fitted)" if out else None))
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("message (bytes)")
    a.set_ylabel("all-reduce (ms)")
    a.legend(fontsize=8)
    if panels == 2:
        b = axes[1]
        for n, iv in zip(workers, predictions, strict=True):
            draw_interval(b, n, iv, scale=_MS, color="tab:blue")
        b.set_xscale("log", base=2)
        b.set_xlabel("processes (ring all-reduce)")
        b.set_ylabel("predicted all-reduce (ms)")
        if gradient_bytes:
            b.set_title(f"the model's gradient, {gradient_bytes / 2**20:.1f} MiB", fontsize=9)
    fig.tight_layout()
    return fig


def plot_buckets(caps_mb, intervals, bucket_counts, *, ax=None):
    """DDP's step time against its bucket size, with how many buckets each size made.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 3.4))
    for cap, iv, count in zip(caps_mb, intervals, bucket_counts, strict=True):
        draw_interval(ax, cap, iv, scale=_MS, color="tab:blue")
        ax.annotate(f"{count} bucket{'s' if count != 1 else ''}", (cap, iv.high * _MS),
                    textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bucket_cap_mb")
    ax.set_ylabel("ms per step (median, 95 % CI)")
    fig.tight_layout()
    return fig


def plot_scaling(workers, strong, weak, *, measured=None, ax=None):
    """Predicted speedup (strong scaling) and efficiency (weak scaling) against processes.

    Parameters
    ----------
    workers : sequence of int
    strong : sequence of float
        Predicted speedup over one process at a fixed global batch.
    weak : sequence of float
        Predicted weak-scaling efficiency (throughput over ``n`` times one process's).
    measured : tuple (int, Interval), optional
        A measured speedup to draw beside the prediction.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(6.5, 3.6))
    ax.plot(workers, workers, ":", color="grey", label="perfect")
    ax.plot(workers, strong, "o-", color="tab:blue", label="strong scaling: speedup (predicted)")
    ax.plot(workers, np.asarray(weak) * np.asarray(workers), "s--", color="tab:green",
            label="weak scaling: rows/s over 1 process (predicted)")
    if measured is not None:
        n, iv = measured
        draw_interval(ax, n, iv, color="black", label=f"measured, {n} processes")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("processes")
    ax.set_ylabel("x one process")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pipeline(step_events, micro_batches, bubbles, theory, *, title="", schedule=None):
    """One measured GPipe step as a timeline (stage by stage), and the bubble against ``m``.

    Parameters
    ----------
    step_events : list of list of tuple
        Per stage, ``(kind, micro_batch, start, end)`` of one step ("F" forward, "B" backward).
    micro_batches : sequence of int
    bubbles : sequence of Interval
        Measured idle share at each micro-batch count.
    theory : sequence of float
        ``(p - 1) / (m + p - 1)`` at each.
    schedule : sequence of float, optional
        The schedule replayed with the measured stage times and message cost at each
        (:func:`~mlscale_lab.scaling.distributed.gpipe_schedule_bubble`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a, b) = figure_and_axes(figsize=(11, 3.4), ncols=2, gridspec_kw={"width_ratios": [2, 1]})
    t0 = min(s for evs in step_events for _, _, s, _ in evs)
    for stage, evs in enumerate(step_events):
        for kind, j, s, e in evs:
            a.barh(stage, (e - s) * _MS, left=(s - t0) * _MS,
                   color="tab:blue" if kind == "F" else "tab:orange", edgecolor="white")
            if (e - s) * _MS > 0.8:
                a.text((s - t0 + (e - s) / 2) * _MS, stage, f"{kind}{j}", ha="center",
                       va="center", fontsize=7, color="white")
    a.set_yticks(range(len(step_events)), [f"process {i} (stage {i})" for i in range(len(step_events))])
    a.invert_yaxis()
    a.set_xlabel("milliseconds into the step (blue forward, orange backward; gaps idle)")
    a.set_title(title, fontsize=9)
    ms = list(micro_batches)
    b.plot(ms, theory, "--", color="grey", label="(p-1)/(m+p-1)")
    if schedule is not None:
        b.plot(ms, schedule, "o-", color="tab:green", mfc="white",
               label="schedule, measured stage times + messages")
    for m, iv in zip(ms, bubbles, strict=True):
        draw_interval(b, m, iv, color="black")
    b.set_xscale("log", base=2)
    b.set_xlabel("micro-batches m")
    b.set_ylabel("bubble (idle share)")
    b.set_ylim(0, 1)
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_elastic(events, *, checkpoint_every: int, ax=None):
    """Steps done against time for each attempt of an elastic job, with the kill and the
    checkpoints marked.

    Parameters
    ----------
    events : list of dict
        The workers' events (:attr:`ElasticRun.events`).
    checkpoint_every : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(8, 3.4))
    t0 = min(e["t"] for e in events)
    for attempt in sorted({e["attempt"] for e in events}):
        done = [e for e in events if e["attempt"] == attempt and e["rank"] == 0 and e["kind"] == "step"]
        if done:
            ax.plot([e["t"] - t0 for e in done], [e["step"] + 1 for e in done], ".-",
                    label=f"attempt {attempt + 1}")
    kill = next((e for e in events if e["kind"] == "kill"), None)
    back = next((e for e in events if e["attempt"] == 1 and e["kind"] == "step"), None)
    if kill is not None and back is not None:
        ax.axvspan(kill["t"] - t0, back["t"] - t0, color="tab:red", alpha=0.08,
                   label="restart: new processes, rendezvous, checkpoint loaded")
    for e in events:
        if e["kind"] == "checkpoint":
            ax.plot(e["t"] - t0, e["step"], "s", color="tab:green", ms=5)
        elif e["kind"] == "kill":
            ax.axvline(e["t"] - t0, color="tab:red", ls="--", lw=1)
            ax.annotate(f"rank {e['rank']} killed in step {e['step']}", (e["t"] - t0, e["step"]),
                        textcoords="offset points", xytext=(5, -15), fontsize=8, color="tab:red")
    ax.plot([], [], "s", color="tab:green", label=f"checkpoint (every {checkpoint_every} steps)")
    ax.set_xlabel("seconds since the job's first event")
    ax.set_ylabel("steps done (rank 0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
