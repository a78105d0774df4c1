"""Plots and a widget over the pruning measurements of :mod:`mlscale_lab.complexity.pruning` (lab 03)."""

from __future__ import annotations

import numpy as np

from mlscale_lab.views._axes import figure_and_axes

_COLORS = {"global": "tab:blue", "layerwise": "tab:green", "random": "tab:red"}


def plot_sparsity_accuracy(curves, dense_accuracy: float, ax=None):
    """Validation accuracy against weight sparsity: mean and 95 % interval over seeds, per method.

    Parameters
    ----------
    curves : list of CurveSummary
        :func:`~mlscale_lab.complexity.pruning.summarise_curves` of the schedules' histories.
    dense_accuracy : float
        The dense models' mean validation accuracy (percent), drawn as a dashed line.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.8))
    for c in curves:
        sp = 100 * np.asarray(c.sparsity)
        mean = np.asarray(c.accuracy)
        color = _COLORS.get(c.method)
        ax.plot(sp, mean, "o-", color=color, label=f"{c.method} ({c.seeds} seeds, 95 % interval)")
        ax.fill_between(sp, c.accuracy_low, c.accuracy_high, color=color, alpha=0.2)
    ax.axhline(dense_accuracy, color="black", ls="--", lw=1, label="dense")
    ax.axhspan(dense_accuracy - 1, dense_accuracy, color="grey", alpha=0.1, label="within 1 point")
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Accuracy after pruning and fine-tuning, on the rows that choose")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_layer_sparsity(report, ax=None):
    """Bars of each weight tensor's sparsity from :func:`~mlscale_lab.complexity.pruning.sparsity_report`."""

    rows = [r for r in report if len(r.shape) == 2]
    fig, ax = figure_and_axes(ax, figsize=(6, 2.8))
    names = [f"{r.name}\n{'x'.join(map(str, r.shape))}" for r in rows]
    ax.bar(names, [100 * r.sparsity for r in rows], color="tab:blue")
    for i, r in enumerate(rows):
        ax.text(i, 100 * r.sparsity, f"{r.nonzero} left", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, 110)
    ax.set_ylabel("pruned (%)")
    ax.set_title("Where global pruning cut")
    fig.tight_layout()
    return fig


def plot_matmul_timings(timings, crossover=None, ax=None):
    """Dense against CSR matmul latency as sparsity grows, with the measured crossover."""

    fig, ax = figure_and_axes(ax, figsize=(6.5, 3.4))
    sp = [100 * t.sparsity for t in timings]
    ax.plot(sp, [t.dense_ms for t in timings], "o-", label="dense torch.mm (zeros included)")
    ax.plot(sp, [t.sparse_ms for t in timings], "s-", label="sparse CSR")
    if crossover is not None:
        ax.axvline(100 * crossover, color="grey", ls=":", label=f"sparse faster from {100 * crossover:.0f}%")
    ax.set_yscale("log")
    ax.set_xlabel("weights that are zero (%)")
    ax.set_ylabel("median latency (ms, log)")
    ivs = [t.speedup_interval for t in timings]
    if all(iv is not None for iv in ivs):
        ax2 = ax.twinx()
        ax2.errorbar(sp, [iv.estimate for iv in ivs], yerr=[[iv.estimate - iv.low for iv in ivs],
                                                           [iv.high - iv.estimate for iv in ivs]],
                     fmt="^:", color="tab:green", capsize=3, alpha=0.7, label="speedup, 95 % interval")
        ax2.axhline(1, color="tab:green", lw=0.6)
        ax2.set_yscale("log")
        ax2.set_ylabel("dense / sparse time (log)", color="tab:green")
        ax2.legend(fontsize=8, loc="lower right")
    ax.set_title("Zeros are only free when the format skips them")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_tree_path(path, ax=None):
    """Nodes against train, cross-validated and test accuracy along the ``ccp_alpha`` path.

    Marks the tree with the best CV accuracy and the one-standard-error choice
    (:class:`~mlscale_lab.complexity.pruning.TreePruningPath`). Returns the figure.
    """
    fig, ax = figure_and_axes(ax, figsize=(6.5, 3.4))
    ax.plot(path.nodes, path.train_accuracy, "o-", label="train")
    ax.errorbar(path.nodes, path.cv_accuracy, yerr=path.cv_se, fmt="^-", capsize=2,
                label=f"{path.folds}-fold CV, +-1 standard error")
    ax.plot(path.nodes, path.test_accuracy, "s-", label="test (never chooses)")
    best, chosen = path.nodes[path.best_cv_index], path.nodes[path.chosen_index]
    ax.axvline(best, color="grey", ls="--", lw=1, label=f"best CV: {best} nodes")
    ax.axvline(chosen, color="black", ls=":", label=f"one-SE choice: {chosen} nodes")
    ax.invert_xaxis()
    ax.set_xlabel("nodes in the tree (pruning goes right)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Cost-complexity pruning of a decision tree")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sparsity_explorer(points):
    """A slider over one-shot global pruning (no fine-tuning): test accuracy and per-layer sparsity.

    Parameters
    ----------
    points : list of OneShotPoint
        :func:`~mlscale_lab.complexity.pruning.one_shot_sweep`, computed beforehand: a move
        looks the row up, nothing is pruned or evaluated here.

    Returns
    -------
    ipywidgets.VBox
        An extra: the lab's cells do not need it.
    """
    import ipywidgets as widgets

    from mlscale_lab.complexity.pruning import format_sparsity_report

    if not points:
        raise ValueError("sparsity_explorer(points=[]): expected the rows of one_shot_sweep(...)")
    by_amount = {round(p.amount, 4): p for p in points}
    slider = widgets.SelectionSlider(options=[(f"{a:.0%}", a) for a in by_amount],
                                     value=next(iter(by_amount)), description="prune")
    out = widgets.HTML()

    def show(change=None):
        p = by_amount[slider.value]
        text = (f"test accuracy without fine-tuning: {p.accuracy:.1f}%\n"
                + format_sparsity_report(p.report))
        out.value = f"<pre>{text}</pre>"

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])
