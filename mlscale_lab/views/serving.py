"""Plots over lab 07's serving measurements (:mod:`mlscale_lab.scaling.serving`).

Views only draw: each figure takes numbers measured or computed elsewhere.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.views._axes import draw_interval, figure_and_axes

__all__ = ["plot_batching", "plot_cold_starts", "plot_day_plan", "plot_dispatch",
           "plot_load_points", "plot_stall"]


def plot_load_points(rhos, measured, predicted: dict, replayed=None, *, ax=None):
    """Mean response time against utilisation: measured (with intervals) and each model's line.

    Parameters
    ----------
    rhos : sequence of float
        Realised utilisation of each load point.
    measured : sequence of Interval
        Mean response time (seconds) with its interval, per point.
    predicted : dict
        ``{label: [seconds per point]}`` (M/G/1 Allen-Cunneen, M/M/1, ...).
    replayed : sequence of float, optional
        The FCFS replay of each point's own trace (seconds).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.8))
    for k, (x, m) in enumerate(zip(rhos, measured, strict=True)):
        draw_interval(ax, x, m, scale=1000, color="black", label="measured (95 % CI)" if k == 0 else None)
    for (label, values), style in zip(predicted.items(), ("-", "--", ":"), strict=False):
        ax.plot(rhos, np.asarray(values) * 1000, style, marker=".", label=label)
    if replayed is not None:
        ax.plot(rhos, np.asarray(replayed) * 1000, "x", ms=9, label="FCFS replay of the same trace")
    ax.set_xlabel("utilisation of the worker (realised)")
    ax.set_ylabel("mean response time (ms)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_stall(open_result, closed_result, stall, *, ax=None):
    """Each request's latency over the run: open loop, closed loop as reported and as planned.

    ``stall`` is ``(start, end)`` in seconds of the run.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(9, 3.4))
    ax.axvspan(*stall, color="tab:red", alpha=0.15, label="workers paused")
    ok = open_result.ok
    ax.plot(open_result.scheduled[ok], open_result.latency * 1000, ".", ms=3,
            label="open loop (from schedule)")
    okc = closed_result.ok
    ax.plot(closed_result.scheduled[okc], closed_result.latency * 1000, ".", ms=3,
            label="closed loop, from its planned send (corrected)")
    ax.plot(closed_result.sent[okc], closed_result.service_latency * 1000, ".", ms=3,
            label="closed loop, as it reports (from the send)")
    ax.set_yscale("log")
    ax.set_xlabel("time in the run (s)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_dispatch(means: dict, measured=None, *, ax=None):
    """Mean response time of one trace under each dispatch policy (seconds), and the measurement.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 3.2))
    names = list(means)
    ax.bar(names, [means[n] * 1000 for n in names], color="tab:blue")
    if measured is not None:
        ax.axhline(measured * 1000, color="black", ls="--", lw=1, label="measured, two uvicorn workers")
        ax.legend(fontsize=8)
    ax.set_ylabel("mean response time (ms)")
    fig.tight_layout()
    return fig


def plot_batching(rows: list[dict], *, budget_ms: float, ax=None):
    """Measured p99 (with intervals) of each batching setting at each rate, against the budget.

    ``rows``: dicts with ``label``, ``rate``, ``p99_ms``, ``low_ms``, ``high_ms`` and optionally
    ``predicted_ms`` (the simulator's).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    labels = [f"{r['label']}\n{r['rate']:.0f}/s" for r in rows]
    x = np.arange(len(rows))
    p = np.array([r["p99_ms"] for r in rows])
    err = np.array([[r["p99_ms"] - r["low_ms"], r["high_ms"] - r["p99_ms"]] for r in rows]).T
    ax.bar(x, p, yerr=err, capsize=4, color="tab:blue", label="measured p99 (95 % CI)")
    pred = [r.get("predicted_ms") for r in rows]
    if any(v is not None for v in pred):
        ax.plot(x, [np.nan if v is None else v for v in pred], "D", color="tab:orange",
                label="simulated before measuring")
    ax.axhline(budget_ms, color="tab:red", ls="--", lw=1, label=f"budget {budget_ms:.1f} ms")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_cold_starts(cold: dict, memory_mb: dict, violations: dict):
    """Cold start and memory per artifact, and SLO violations against the start-up delay.

    Parameters
    ----------
    cold, memory_mb : dict
        ``{artifact: seconds}`` and ``{artifact: MB per worker}``.
    violations : dict
        ``{start-up delay in s: fraction of requests over the SLO}`` from the auto-scaler simulator.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (a, b, c) = figure_and_axes(figsize=(11, 3.2), ncols=3)
    names = list(cold)
    a.bar(names, [cold[n] for n in names], color="tab:blue")
    a.set_ylabel("process start to first answer (s)")
    b.bar(names, [memory_mb[n] for n in names], color="tab:purple")
    b.set_ylabel("memory per worker (MB, unique)")
    delays = np.array(sorted(violations))
    c.plot(delays, [violations[d] * 100 for d in delays], "o-")
    c.set_xscale("symlog", linthresh=1)
    c.set_xlabel("replica start-up delay (s)")
    c.set_ylabel("requests over the SLO (%)")
    fig.tight_layout()
    return fig


def plot_day_plan(hours, rates, day, *, ax=None):
    """A day's request rate and the replicas each plan runs (a :class:`~mlscale_lab.capacity.DayPlan`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(8, 3.4))
    ax.plot(hours, rates, color="grey", lw=1, label="requests/s")
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("requests per second")
    twin = ax.twinx()
    twin.step(hours, day.scaled_replicas, where="post", color="tab:green", label="following the load")
    twin.axhline(day.peak_plan.replicas, color="tab:red", ls="--", label="sized for the peak")
    twin.axhline(day.mean_replicas, color="tab:orange", ls=":", label="sized for the mean")
    twin.set_ylabel(f"{day.machine.name} machines")
    lines = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(lines, labels, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
