"""Tables, plots and the explorer widget for lab 02 (feature selection and PCA).

Thin views over :mod:`mlscale_lab.complexity.selection`: nothing here measures. matplotlib and
ipywidgets are imported inside the functions that draw.
"""

from __future__ import annotations

import html
import numbers
from collections.abc import Mapping, Sequence

from mlscale_lab.views._axes import figure_and_axes

# -- tables ----------------------------------------------------------------------------------------


class Table:
    """Rows of dicts shown as an HTML table in a notebook and as aligned text elsewhere."""

    def __init__(self, rows: Sequence, columns: Sequence[str] | None = None,
                 formats: Mapping[str, str] | None = None, title: str | None = None):
        rows = [r.as_dict() if hasattr(r, "as_dict") else dict(r) for r in rows]
        if not rows:
            raise ValueError("Table(rows=...): no rows to show")
        self.rows = rows
        self.columns = list(columns) if columns is not None else list(rows[0])
        missing = [c for c in self.columns if c not in rows[0]]
        if missing:
            raise ValueError(f"Table(columns=...): {missing} not in the rows' keys {list(rows[0])}")
        self.formats = dict(formats or {})
        self.title = title

    def _cell(self, column: str, value) -> str:
        fmt = self.formats.get(column)
        if fmt is not None:
            return format(value, fmt)
        if isinstance(value, bool) or not isinstance(value, numbers.Number):
            return str(value)
        if isinstance(value, numbers.Integral):
            return f"{value:,}"
        return f"{value:.4g}"

    def cells(self) -> list[list[str]]:
        """The formatted cells, one list per row (headers excluded)."""
        return [[self._cell(c, r[c]) for c in self.columns] for r in self.rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:right'>{html.escape(v)}</td>" for v in row)
            + "</tr>"
            for row in self.cells()
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __str__(self) -> str:
        grid = [self.columns, *self.cells()]
        widths = [max(len(row[i]) for row in grid) for i in range(len(self.columns))]
        lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in grid]
        lines.insert(1, "  ".join("-" * w for w in widths))
        if self.title:
            lines.insert(0, self.title)
        return "\n".join(lines)

    __repr__ = __str__


SWEEP_COLUMNS = ("method", "k", "features_to_collect", "accuracy", "accuracy_se", "model_bytes",
                 "fit_seconds", "latency_ms", "batch_ms")
SWEEP_FORMATS = {"accuracy": ".3f", "accuracy_se": ".3f", "fit_seconds": ".3f",
                 "latency_ms": ".3f", "batch_ms": ".3f", "model_bytes": ",d"}


def sweep_table(points, title: str | None = None, columns=SWEEP_COLUMNS) -> Table:
    """A :class:`Table` of sweep rows (:class:`~mlscale_lab.complexity.selection.SweepPoint`)."""
    return Table(points, columns=columns, formats=SWEEP_FORMATS, title=title)


# -- plots -------------------------------------------------------------------------------------------
def plot_sweeps(sweeps: Mapping[str, Sequence], *, reference=None, title: str | None = None):
    """Accuracy, model bytes and latency against k, one line per sweep. Returns the figure.

    ``sweeps`` maps a label to a list of sweep rows; ``reference`` is an optional row (all
    features) drawn as a dashed line on each panel. Accuracies carry error bars of one
    corrected standard error (:attr:`SweepPoint.accuracy_se`).
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = [("accuracy", "CV accuracy (+-1 SE)"), ("model_bytes", "model bytes"),
              ("batch_ms", "predict time (ms)")]
    for label, points in sweeps.items():
        ks = [p.k for p in points]
        for ax, (field, _) in zip(axes, panels, strict=True):
            values = [getattr(p, field) for p in points]
            if field == "accuracy":
                ax.errorbar(ks, values, yerr=[p.accuracy_se for p in points], marker="o", ms=3,
                            capsize=2, label=label)
            else:
                ax.plot(ks, values, marker="o", ms=3, label=label)
    for ax, (field, name) in zip(axes, panels, strict=True):
        if reference is not None:
            ax.axhline(getattr(reference, field), color="grey", ls="--", lw=1, label="all features")
        ax.set_xlabel("k (features or components kept)")
        ax.set_ylabel(name)
    if sweeps:
        batch = next(iter(sweeps.values()))[0].batch_size
        axes[2].set_ylabel(f"predict time, {batch} rows (ms)")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_variance_curve(cumulative, rows: Sequence[Mapping], *, ax=None, title: str | None = None):
    """The cumulative explained-variance curve, with the components each target needs marked.

    Parameters
    ----------
    cumulative : array-like
        :func:`~mlscale_lab.complexity.selection.explained_variance_curve`.
    rows : sequence of dict
        :func:`~mlscale_lab.complexity.selection.components_table` rows (``target`` and
        ``components``): the marks.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 3.4))
    n = range(1, len(cumulative) + 1)
    ax.plot(n, cumulative, color="tab:blue")
    for i, row in enumerate(rows):
        t, c = row["target"], row["components"]
        ax.axhline(t, color=f"C{i + 1}", ls=":", lw=1)
        ax.axvline(c, color=f"C{i + 1}", ls=":", lw=1)
        ax.annotate(f"{t:.0%}: {c}", (c, t), textcoords="offset points", xytext=(4, -12),
                    fontsize=8, color=f"C{i + 1}")
    ax.set_xlabel("principal components")
    ax.set_ylabel("cumulative explained variance")
    ax.set_ylim(0, 1.02)
    ax.set_title(title or "How many components keep how much variance")
    fig.tight_layout()
    return fig


# -- the explorer --------------------------------------------------------------------------------------
class SweepExplorer:
    """Sliders over precomputed sweeps: each move shows accuracy, size and latency at once.

    Nothing is fitted when a control moves; :meth:`render` looks the row up and formats it,
    so an update costs well under a millisecond (tests time it against the 100 ms goal).

    Parameters
    ----------
    sweeps : list of SweepPoint, or mapping of label -> list of SweepPoint
        One sweep (e.g. ``sweep(X, y, ks, "chi2")``) or several (``{"chi2": ..., "PCA": ...}``);
        with several, toggle buttons pick the sweep and the slider its ``k``.
    reference : SweepPoint, optional
        The all-features row to compare with.
    """

    def __init__(self, sweeps, reference=None):
        if not isinstance(sweeps, Mapping):
            points = list(sweeps)
            if not points:
                raise ValueError("SweepExplorer(sweeps=...): the sweep is empty; run sweep(...) first")
            sweeps = {points[0].method: points}
        if not sweeps or not all(sweeps.values()):
            raise ValueError("SweepExplorer(sweeps=...): a sweep is empty; run sweep(...) first")
        self.sweeps = {label: sorted(pts, key=lambda p: p.k) for label, pts in sweeps.items()}
        self._rows = {label: {p.k: p for p in pts} for label, pts in self.sweeps.items()}
        self.label = next(iter(self.sweeps))
        self.reference = reference
        every = [p for pts in self.sweeps.values() for p in pts] + ([reference] if reference else [])
        self._max = {f: max(getattr(p, f) for p in every)
                     for f in ("accuracy", "model_bytes", "batch_ms")}
        self._slider = None
        self._toggle = None
        self._out = None

    @property
    def points(self) -> list:
        """The rows of the sweep on show."""
        return self.sweeps[self.label]

    @property
    def ks(self) -> list[int]:
        """The ``k`` values of the sweep on show, in increasing order."""
        return [p.k for p in self.points]

    def _bar(self, field: str, value: float, color: str) -> str:
        top = self._max[field] or 1.0
        width = max(1.0, 100.0 * value / top)
        return (f"<div style='background:#eee;width:240px;height:10px'>"
                f"<div style='background:{color};width:{width:.1f}%;height:10px'></div></div>")

    def render(self, k: int, label: str | None = None) -> str:
        """HTML for row ``k`` of sweep ``label`` (the one on show by default)."""
        label = self.label if label is None else label
        if label not in self._rows:
            raise KeyError(f"sweep {label!r} is not one of {list(self._rows)}")
        if k not in self._rows[label]:
            raise KeyError(f"k={k!r} is not in the {label} sweep; choose one of "
                           f"{sorted(self._rows[label])}")
        p = self._rows[label][k]
        ref = self.reference
        acc = f"{p.accuracy:.3f}" + (f" (all features {ref.accuracy:.3f})" if ref else "")
        size = f"{p.model_bytes:,}"
        if ref:
            ratio = ref.model_bytes / p.model_bytes
            size += f" ({ratio:.1f}x smaller)" if ratio >= 1 else f" ({1 / ratio:.1f}x larger)"
        rows = [
            ("accuracy", acc, self._bar("accuracy", p.accuracy, "#4c78a8")),
            ("model bytes", size, self._bar("model_bytes", p.model_bytes, "#f58518")),
            (f"predict {p.batch_size} rows", f"{p.batch_ms:.2f} ms",
             self._bar("batch_ms", p.batch_ms, "#54a24b")),
            ("predict 1 row", f"{p.latency_ms:.3f} ms", ""),
            ("features to collect", f"{p.features_to_collect:,}", ""),
        ]
        body = "".join(f"<tr><td>{html.escape(a)}</td><td style='text-align:right'>{html.escape(b)}"
                       f"</td><td>{bar}</td></tr>" for a, b, bar in rows)
        return f"<b>{html.escape(label)}, k = {p.k}</b><table>{body}</table>"

    def update(self, k: int, label: str | None = None) -> str:
        """Show row ``k`` (of sweep ``label``) and return its HTML; what a control move runs.

        Called from code, it also moves the controls, so they always match the row on show.
        """
        label = self.label if label is None else label
        text = self.render(k, label)  # raises for an unknown sweep or k before anything moves
        self.label = label
        if self._toggle is not None and self._toggle.value != label:
            self._toggle.value = label  # fires _switch: the slider gets this sweep's ks
        if self._slider is not None and self._slider.value != k:
            self._slider.value = k  # fires update(k) again, which finds everything in place
        if self._out is not None:
            self._out.value = text
        return text

    def _switch(self, label: str) -> None:
        # Keep the slider near the same k when the sweep changes.
        ks = sorted(self._rows[label])
        current = self._slider.value
        nearest = min(ks, key=lambda k: abs(k - current))
        self.label = label  # first, so the updates the slider fires render the new sweep
        self._slider.options = ks
        self._slider.value = nearest
        self.update(nearest)

    def widget(self, k: int | None = None):
        """The ipywidgets box: sweep buttons (if several), a slider over k, the HTML it updates.

        ``k`` is the row shown first (the middle of the sweep by default).
        """
        import ipywidgets as widgets

        start = self.ks[len(self.ks) // 2] if k is None else k
        self.render(start)  # an unknown k raises here, before any widget exists
        self._slider = widgets.SelectionSlider(options=self.ks, value=start,
                                               description="k", continuous_update=True)
        self._out = widgets.HTML(self.render(self._slider.value))
        self._slider.observe(lambda change: self.update(change["new"]), names="value")
        children = [self._slider, self._out]
        if len(self.sweeps) > 1:
            self._toggle = widgets.ToggleButtons(options=list(self.sweeps), value=self.label)
            self._toggle.observe(lambda change: self._switch(change["new"]), names="value")
            children.insert(0, self._toggle)
        return widgets.VBox(children)
