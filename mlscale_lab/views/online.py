"""Plots for lab 04: accuracy over a drifting stream, accuracy against compute, detector traces.

Views only draw: every number comes from :mod:`mlscale_lab.deployment`.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.deployment import page_hinkley_trace
from mlscale_lab.views._axes import figure_and_axes


def _mark_drifts(ax, drift_points, width: int = 0):
    for i, p in enumerate(drift_points):
        label = "drift" if i == 0 else None
        if width:
            ax.axvspan(p - width / 2, p + width / 2, color="grey", alpha=0.15, label=label)
        else:
            ax.axvline(p, color="grey", ls="--", lw=1, label=label)


def plot_prequential(
    results, drift_points=(), *, window: int = 500, width: int = 0, ax=None, title=None
):
    """Rolling prequential accuracy of each strategy over the stream.

    Drift points are marked (a band of ``width`` for gradual drift), detector alarms shown as
    ticks at the bottom.

    Parameters
    ----------
    results : sequence of PrequentialResult
        One curve each, labelled with the result's ``name``.
    drift_points : sequence of int
    window : int
        Samples in the rolling accuracy.
    width : int
        Width of a gradual drift's band (0: a line).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(9, 3.6))
    for i, r in enumerate(results):
        acc = r.rolling_accuracy(window)
        ax.plot(np.arange(acc.size), acc, color=f"C{i}", lw=1.4, label=r.name)
        if r.alarms:
            ax.plot(
                r.alarms,
                np.full(len(r.alarms), 0.02),
                "v",
                color=f"C{i}",
                ms=8,
                transform=ax.get_xaxis_transform(),
            )
    _mark_drifts(ax, drift_points, width)
    ax.set_xlabel("sample")
    ax.set_ylabel(f"accuracy (last {window})")
    ax.set_ylim(0.3, 1.0)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    ax.set_title(title or "prequential accuracy (test, then train)")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_compute(rows, *, accuracy_key: str = "after_drift", ax=None):
    """One point per strategy: CPU seconds against accuracy.

    Parameters
    ----------
    rows : list of dict
        From :func:`mlscale_lab.deployment.results_table`.
    accuracy_key : str
        Which accuracy to plot (``"after_drift"``, ``"accuracy"``...).
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(5.5, 3.6))
    for i, row in enumerate(rows):
        ax.scatter(row["cpu_seconds"], row[accuracy_key], color=f"C{i}", s=60)
        if "cpu_low" in row:  # the interval of repeated, interleaved runs
            ax.errorbar(row["cpu_seconds"], row[accuracy_key], color=f"C{i}", capsize=3,
                        xerr=[[row["cpu_seconds"] - row["cpu_low"]],
                              [row["cpu_high"] - row["cpu_seconds"]]])
        ax.annotate(
            row["strategy"],
            (row["cpu_seconds"], row[accuracy_key]),
            fontsize=8,
            xytext=(5, 4),
            textcoords="offset points",
        )
    ax.set_xlabel("CPU seconds over the stream" + (" (95 % CI)" if rows and "cpu_low" in rows[0] else ""))
    ax.set_ylabel(accuracy_key.replace("_", " ") + " accuracy")
    ax.set_title("what each strategy buys, and costs")
    fig.tight_layout()
    return fig


def plot_detector(values, statistics, threshold, drift_points=(), alarms=(), ax=None):
    """A detector's test statistic against its threshold, and optionally its input.

    Parameters
    ----------
    values : array-like or None
        The detector's input (e.g. a rolling error rate), on a second axis; None for none.
    statistics : array-like
        The statistic after each value (from :func:`mlscale_lab.deployment.page_hinkley_trace`).
    threshold : float
    drift_points, alarms : sequence of int
        Marked as dashed lines and red lines.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(9, 3.2))
    ax.plot(statistics, color="tab:purple", lw=1.2, label="Page-Hinkley statistic")
    ax.axhline(threshold, color="tab:red", lw=1, label="threshold")
    for a in alarms:
        ax.axvline(a, color="tab:red", lw=2, alpha=0.6)
    _mark_drifts(ax, drift_points)
    ax.set_xlabel("sample")
    ax.set_ylabel("statistic")
    if values is not None:
        ax2 = ax.twinx()
        ax2.plot(values, color="tab:grey", lw=0.8, alpha=0.7)
        ax2.set_ylabel("rolling error rate", color="tab:grey")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_serving_timeline(timeline, *, ax=None, now: float | None = None):
    """Which registry version served when, one bar per serving interval.

    Parameters
    ----------
    timeline : list of dict
        From :meth:`mlscale_lab.deployment.ModelRegistry.timeline`.
    ax : matplotlib Axes, optional
    now : float, optional
        Where the current version's bar ends (default: one second after the last event).

    Returns
    -------
    matplotlib.figure.Figure
    """

    if not timeline:
        raise ValueError(
            "plot_serving_timeline(timeline=[]): expected at least one promotion, got none; "
            "promote a version first"
        )
    fig, ax = figure_and_axes(ax, figsize=(8, 2.2))
    t0 = timeline[0]["start"]
    end = now if now is not None else max(e["start"] for e in timeline) + 1.0
    versions = list(dict.fromkeys(e["version"] for e in timeline))
    for e in timeline:
        row = versions.index(e["version"])
        stop = e["end"] if e["end"] is not None else end
        ax.barh(row, stop - e["start"], left=e["start"] - t0, color=f"C{row}")
    ax.set_yticks(range(len(versions)), versions, fontsize=8)
    ax.set_xlabel("seconds since the first promotion")
    ax.set_title("which version served when")
    fig.tight_layout()
    return fig


def detector_explorer(
    errors, drift_points=(), *, offset: int = 0, delta: float = 0.03, threshold: float = 30.0
):
    """Sliders for Page-Hinkley's ``delta`` and ``threshold`` over a fixed error stream.

    Move them and see the alarms move. An extra on top of the plain cells. The plot is rendered
    to PNG bytes in an ``Image`` widget (no ``Output`` capture), so the widget behaves the same
    headless, in JupyterLab, and when sliders move quickly.

    Parameters
    ----------
    errors : array-like
        The monitored 0/1 errors.
    drift_points : sequence of int
    offset : int
        Stream position of ``errors[0]``.
    delta, threshold : float
        The sliders' starting values.

    Returns
    -------
    ipywidgets.VBox
        The displayed widget.
    """
    import io

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display

    d = w.FloatLogSlider(value=delta, base=10, min=-3, max=-0.5, step=0.05, description="delta")
    t = w.FloatLogSlider(
        value=threshold, base=10, min=0, max=2.5, step=0.05, description="threshold"
    )
    info = w.HTML()
    image = w.Image(format="png")

    def redraw(*_):
        stats, alarms = page_hinkley_trace(errors, delta=d.value, threshold=t.value, offset=offset)
        info.value = f"{len(alarms)} alarm(s) at {alarms[:8]}{' ...' if len(alarms) > 8 else ''}"
        fig = plot_detector(None, stats, t.value, drift_points, alarms)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        image.value = buf.getvalue()

    d.observe(redraw, "value")
    t.observe(redraw, "value")
    redraw()
    box = w.VBox([w.HBox([d, t]), info, image])
    display(box)
    return box
