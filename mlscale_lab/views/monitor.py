"""Views of a :class:`~mlscale_lab.constraints.ResourceMonitor`: a plot and a live gauge.

Drawing only: the monitor measures, these functions show its samples. Nothing in
:mod:`mlscale_lab.constraints` imports this module.
"""

from __future__ import annotations

from mlscale_lab.views._axes import figure_and_axes

_MB = 1024**2


def plot_monitor(monitor, ax=None, *, title: str | None = None):
    """Memory (MB) and CPU (%) over time, one shaded band per phase.

    The thin CPU line is each sampling interval's CPU time over its length (coarse: CPU time
    comes in ticks of 10 ms on Linux, a tenth of a 0.1 s interval); the thick segments are each
    phase's CPU time over its wall time, drawn where the ticks resolve it within 25 points.

    Parameters
    ----------
    monitor : ResourceMonitor
        A monitor that has run (its samples and marks are drawn).
    ax : matplotlib Axes, optional
        Where to draw memory; CPU goes on a twin axis. Default: a new figure.
    title : str, optional
        Default: the peak memory.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from mlscale_lab.constraints import ResourceMonitor
    >>> with ResourceMonitor(interval=0.05) as mon:
    ...     mon.mark("work")
    ...     _ = bytearray(10_000_000)
    >>> fig = plot_monitor(mon)
    >>> fig.axes[0].get_ylabel()
    'memory (MB)'
    """

    ts = monitor.timeseries()
    fig, ax = figure_and_axes(ax, figsize=(8, 3.2))
    ax.plot(ts["t"], [r / _MB for r in ts["rss_bytes"]], color="tab:blue", label="memory (RSS)")
    ax.set_xlabel("seconds")
    ax.set_ylabel("memory (MB)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(ts["t"], ts["cpu_percent"], color="tab:orange", alpha=0.35, lw=0.8,
             label="CPU between samples")
    ax2.set_ylabel("CPU (% of one core)", color="tab:orange")
    marks = monitor.marks
    end = ts["t"][-1] if ts["t"] else 0.0
    phases = monitor.summary().phases if ts["t"] else {}
    for i, (t0, name) in enumerate(marks):
        t1 = marks[i + 1][0] if i + 1 < len(marks) else end
        ax.axvspan(t0, t1, color=f"C{i % 10}", alpha=0.08)
        ax.text(t0, ax.get_ylim()[1], f" {name}", va="top", fontsize=8)
        ph = phases.get(name)
        if ph is not None and ph["cpu_percent_resolution"] <= 25:
            # the phase's CPU time over its wall time, drawn only where the ticks resolve it
            ax2.hlines(ph["mean_cpu_percent"], t0, t1, color="tab:orange", lw=2,
                       label="phase: CPU time / wall time" if i == 0 else None)
    ax.set_title(title or f"peak {monitor.peak_rss_bytes / _MB:.0f} MB")
    fig.tight_layout()
    return fig


def _sparkline(values, width: int = 320, height: int = 48, color: str = "#1f77b4") -> str:
    """An inline SVG polyline: cheap to send from a background thread, no matplotlib."""
    if len(values) < 2:
        return f'<svg width="{width}" height="{height}"></svg>'
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = width / (len(values) - 1)
    pts = " ".join(
        f"{i * step:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg width="{width}" height="{height}" style="background:#f7f7f7">'
        f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{pts}"/></svg>'
    )


class LiveMonitorView:
    """A gauge and timeline of a running :class:`~mlscale_lab.constraints.ResourceMonitor`.

    Updated from the monitor's sampling thread (at most ``fps`` times a second) while the cell
    runs. Build it with :func:`live_view`, which returns None where widgets cannot show.

    Parameters
    ----------
    monitor : ResourceMonitor
    memory_limit_bytes : int, optional
        The gauge's full scale (default: this machine's budget).
    window : int, default 300
        Samples kept in the timeline.
    fps : float, default 4
        Most updates a second.
    """

    def __init__(
        self, monitor, *, memory_limit_bytes: int | None = None, window: int = 300, fps: float = 4.0
    ):
        import ipywidgets as w

        if memory_limit_bytes is None:
            from mlscale_lab.constraints import machine_budget

            memory_limit_bytes = machine_budget().memory_limit_bytes
        self.limit = int(memory_limit_bytes)
        self.window = int(window)
        self.min_gap = 1.0 / fps
        self._last = -1.0
        self._last_phase = ""
        self._rss: list[float] = []
        self._cpu: list[float] = []
        self.gauge = w.FloatProgress(
            value=0.0,
            min=0.0,
            max=self.limit / _MB,
            description="memory",
            bar_style="info",
            layout=w.Layout(width="360px"),
        )
        self.label = w.HTML()
        self.timeline = w.HTML()
        self.widget = w.VBox([w.HBox([self.gauge, self.label]), self.timeline])
        monitor.add_listener(self.update)

    def update(self, sample) -> None:
        """Show ``sample`` (called by the monitor's sampling thread; throttled to ``fps``)."""
        self._rss.append(sample.rss_bytes / _MB)
        self._cpu.append(sample.cpu_percent)
        del self._rss[: -self.window], self._cpu[: -self.window]
        # Throttled to `fps`, but a new phase always shows (mark() samples at each boundary).
        if sample.t - self._last < self.min_gap and sample.phase == self._last_phase:
            return
        self._last, self._last_phase = sample.t, sample.phase
        mb = sample.rss_bytes / _MB
        self.gauge.value = min(mb, self.gauge.max)
        share = sample.rss_bytes / self.limit
        self.gauge.bar_style = "danger" if share > 0.85 else "warning" if share > 0.6 else "info"
        phase = f" &middot; phase <b>{sample.phase}</b>" if sample.phase else ""
        self.label.value = (
            f"{mb:,.0f} / {self.limit / _MB:,.0f} MB &middot; CPU {sample.cpu_percent:.0f}%"
            f" &middot; {sample.t:.1f} s{phase}"
        )
        self.timeline.value = (
            f"<div>memory (MB, {min(self._rss):,.0f} to {max(self._rss):,.0f})</div>"
            + _sparkline(self._rss)
            + "<div>CPU (%)</div>"
            + _sparkline(self._cpu, color="#ff7f0e")
        )


def live_view(monitor, *, memory_limit_bytes: int | None = None, display: bool = True):
    """Show a live memory gauge and timeline for ``monitor`` in the notebook; return the view.

    Returns None, and does nothing, in a headless run (``MLSCALE_HEADLESS=1``, set by
    ``mlscale-lab run``) or where ipywidgets is missing: the measurement works the same.

    Examples
    --------
    >>> from mlscale_lab.constraints import ResourceMonitor
    >>> with ResourceMonitor(interval=0.1) as mon:   # doctest: +SKIP
    ...     live_view(mon)
    ...     train()
    """
    from mlscale_lab._core.environment import headless

    if headless():
        return None
    try:
        view = LiveMonitorView(monitor, memory_limit_bytes=memory_limit_bytes)
    except ImportError:
        return None
    if display:
        from IPython.display import display as show

        show(view.widget)
    return view
