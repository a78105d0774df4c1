"""Plots of a :class:`~mlscale_lab.resources.ResourceMonitor`'s samples."""

from __future__ import annotations

_MB = 1024**2


def plot_monitor(monitor, ax=None, *, title: str | None = None):
    """Memory (MB) and CPU (%) over time, one shaded band per phase. Returns the figure."""
    import matplotlib.pyplot as plt

    ts = monitor.timeseries()
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.2))
    else:
        fig = ax.figure
    ax.plot(ts["t"], [r / _MB for r in ts["rss_bytes"]], color="tab:blue", label="memory (RSS)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("memory (MB)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(ts["t"], ts["cpu_percent"], color="tab:orange", alpha=0.6, label="CPU")
    ax2.set_ylabel("CPU (% of one core)", color="tab:orange")
    marks = monitor.marks
    end = ts["t"][-1] if ts["t"] else 0.0
    for i, (t0, name) in enumerate(marks):
        t1 = marks[i + 1][0] if i + 1 < len(marks) else end
        ax.axvspan(t0, t1, color=f"C{i % 10}", alpha=0.08)
        ax.text(t0, ax.get_ylim()[1], f" {name}", va="top", fontsize=8)
    ax.set_title(title or f"peak {monitor.peak_rss_bytes / _MB:.0f} MB")
    fig.tight_layout()
    return fig
