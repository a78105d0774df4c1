"""Plots over lab 07's serving measurements (:mod:`mlscale_lab.scaling.serving`).

Views only draw: each figure takes numbers measured or computed elsewhere.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_batching", "plot_cold_starts", "plot_open_vs_closed", "plot_queueing_curve"]


def plot_queueing_curve(offered, throughput, measured: dict, predicted: dict, *, saturation: float):
    """Throughput and latency percentiles against offered load, with M/M/c's prediction.

    Parameters
    ----------
    offered, throughput : sequence of float
        Requests per second sent (asked for) and answered.
    measured, predicted : dict
        ``{"p50": [...], "p99": [...]}`` in milliseconds, one value per offered rate.
    saturation : float
        The measured maximum throughput (requests per second).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot(offered, offered, ":", color="grey", label="answered = offered")
    a.plot(offered, throughput, "o-", label="answered (measured)")
    a.axhline(saturation, color="tab:red", ls="--", lw=1, label=f"saturation {saturation:.0f}/s")
    a.set_xlabel("offered load (requests/s)")
    a.set_ylabel("throughput (requests/s)")
    a.legend(fontsize=8)
    for (name, values), color in zip(measured.items(), ("tab:blue", "tab:orange", "tab:green"), strict=False):
        b.plot(offered, values, "o-", color=color, label=f"{name} measured")
        if name in predicted:
            b.plot(offered, predicted[name], "--", color=color, label=f"{name} M/M/c")
    b.axvline(saturation, color="tab:red", ls="--", lw=1)
    b.set_yscale("log")
    b.set_xlabel("offered load (requests/s)")
    b.set_ylabel("latency (ms, log scale)")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_open_vs_closed(open_result, closed_result):
    """Latency of each request over time: open loop, and closed loop as reported and as users saw it.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    ok = open_result.ok
    ax.plot(open_result.scheduled[ok], open_result.latency * 1000, ".", ms=3, label="open loop (from schedule)")
    okc = closed_result.ok
    ax.plot(closed_result.scheduled[okc], closed_result.latency * 1000, ".", ms=3,
            label="closed loop, from its planned send")
    ax.plot(closed_result.sent[okc], closed_result.service_latency * 1000, ".", ms=3,
            label="closed loop, as it reports (from the send)")
    ax.set_yscale("log")
    ax.set_xlabel("time in the run (s)")
    ax.set_ylabel("latency (ms, log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_batching(results: list[dict], *, p99_target_ms: float | None = None):
    """Throughput against p99 for each micro-batching setting.

    ``results``: dicts with ``max_batch``, ``max_wait_ms``, ``throughput``, ``p99_ms``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for r in results:
        ax.plot(r["p99_ms"], r["throughput"], "o", ms=8)
        ax.annotate(f"batch {r['max_batch']}, wait {r['max_wait_ms']:g} ms", (r["p99_ms"], r["throughput"]),
                    textcoords="offset points", xytext=(6, 4), fontsize=8)
    if p99_target_ms is not None:
        ax.axvline(p99_target_ms, color="tab:red", ls="--", lw=1, label=f"p99 target {p99_target_ms:.0f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("p99 latency (ms)")
    ax.set_ylabel("throughput (requests/s)")
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
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(11, 3.2))
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
