"""The plumbing every view shares: a figure to draw on, and a measured interval drawn as one.

Each plot takes an optional ``ax`` so a lab can place it in a figure of its own; without one
it makes its own figure. :func:`figure_and_axes` is that rule, once. :func:`draw_interval`
draws an :class:`~mlscale_lab.evidence.Interval` as a point with its error bar, so every plot
shows a measured number with its uncertainty the same way.
"""

from __future__ import annotations

__all__ = ["draw_interval", "figure_and_axes"]


def figure_and_axes(ax=None, *, figsize=(8, 3.2), nrows: int = 1, ncols: int = 1, **subplots):
    """``(figure, axes)``: the caller's ``ax`` and its figure, or a new figure of ``figsize``.

    Parameters
    ----------
    ax : matplotlib Axes, optional
        Where to draw; None makes a figure with ``nrows x ncols`` axes.
    figsize : tuple, default (8, 3.2)
    nrows, ncols : int, default 1
    **subplots
        Passed to ``plt.subplots`` (``sharex=True``...).

    Examples
    --------
    >>> fig, ax = figure_and_axes(figsize=(4, 2))
    >>> figure_and_axes(ax)[0] is fig
    True
    """
    import matplotlib.pyplot as plt

    if ax is not None:
        return ax.figure, ax
    return plt.subplots(nrows, ncols, figsize=figsize, **subplots)


def draw_interval(ax, x, interval, *, scale: float = 1.0, label=None, **style):
    """Draw ``interval`` at ``x`` as its estimate with an error bar from ``low`` to ``high``.

    Parameters
    ----------
    ax : matplotlib Axes
    x : float
    interval : mlscale_lab.evidence.Interval
    scale : float, default 1
        Unit change for display (1000 for seconds shown in milliseconds).
    label : str, optional
    **style
        Passed to ``ax.errorbar`` (``color``, ``marker``...).

    Examples
    --------
    >>> from mlscale_lab.evidence import Interval
    >>> fig, ax = figure_and_axes()
    >>> bar = draw_interval(ax, 1, Interval(2.0, 1.5, 2.5, 0.95, "t", 9), scale=1000)
    >>> [round(float(v)) for v in bar.lines[0].get_ydata()]  # the estimate, in milliseconds
    [2000]
    """
    est = interval.estimate * scale
    lo, hi = sorted((interval.low * scale, interval.high * scale))
    style.setdefault("fmt", "o")
    style.setdefault("capsize", 3)
    return ax.errorbar([x], [est], yerr=[[est - lo], [hi - est]], label=label, **style)
