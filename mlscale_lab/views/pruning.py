"""Plots and a widget over the pruning measurements of :mod:`mlscale_lab.complexity.pruning` (lab 03)."""

from __future__ import annotations

import numpy as np

_COLORS = {"global": "tab:blue", "layerwise": "tab:green", "random": "tab:red"}


def plot_sparsity_accuracy(curves: dict, dense_accuracy, ax=None):
    """Test accuracy against weight sparsity, mean and spread over seeds, one line per method.

    ``curves`` maps a method name to a list (one per seed) of lists of
    :class:`~mlscale_lab.complexity.pruning.ScheduleStep`; ``dense_accuracy`` is the dense models'
    accuracies (one per seed). Returns the figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.8))
    else:
        fig = ax.figure
    for method, runs in curves.items():
        sp = np.array([[s.sparsity for s in run] for run in runs]).mean(axis=0) * 100
        acc = np.array([[s.accuracy for s in run] for run in runs])
        mean, std = acc.mean(axis=0), acc.std(axis=0)
        color = _COLORS.get(method)
        ax.plot(sp, mean, "o-", color=color, label=f"{method} ({len(runs)} seeds)")
        ax.fill_between(sp, mean - std, mean + std, color=color, alpha=0.2)
    dense = np.asarray(dense_accuracy, dtype=float)
    ax.axhline(dense.mean(), color="black", ls="--", lw=1, label="dense")
    ax.axhspan(dense.mean() - 1, dense.mean(), color="grey", alpha=0.1, label="within 1 point")
    ax.set_xlabel("weights pruned (%)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Accuracy after pruning and fine-tuning: mean and spread over seeds")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_layer_sparsity(report, ax=None):
    """Bars of each weight tensor's sparsity from :func:`~mlscale_lab.complexity.pruning.sparsity_report`."""
    import matplotlib.pyplot as plt

    rows = [r for r in report if len(r.shape) == 2]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 2.8))
    else:
        fig = ax.figure
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
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
    else:
        fig = ax.figure
    sp = [100 * t.sparsity for t in timings]
    ax.plot(sp, [t.dense_ms for t in timings], "o-", label="dense torch.mm (zeros included)")
    ax.plot(sp, [t.sparse_ms for t in timings], "s-", label="sparse CSR")
    if crossover is not None:
        ax.axvline(100 * crossover, color="grey", ls=":", label=f"sparse faster from {100 * crossover:.0f}%")
    ax.set_yscale("log")
    ax.set_xlabel("weights that are zero (%)")
    ax.set_ylabel("median latency (ms, log)")
    ax.set_title("Zeros are only free when the format skips them")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_tree_path(path, ax=None):
    """Nodes against train, cross-validated and test accuracy along the ``ccp_alpha`` path."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 3.4))
    else:
        fig = ax.figure
    ax.plot(path.nodes, path.train_accuracy, "o-", label="train")
    ax.plot(path.nodes, path.cv_accuracy, "^-", label="5-fold CV (chooses alpha)")
    ax.plot(path.nodes, path.test_accuracy, "s-", label="test")
    chosen = path.nodes[path.chosen_index]
    ax.axvline(chosen, color="grey", ls=":", label=f"chosen: {chosen} nodes")
    ax.invert_xaxis()
    ax.set_xlabel("nodes in the tree (pruning goes right)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Cost-complexity pruning of a decision tree")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def sparsity_explorer(model, data):
    """A slider of global magnitude sparsity (one shot, no fine-tuning) over a copy of ``model``,
    showing test accuracy and per-layer sparsity. An extra: the lab's cells do not need it."""
    import copy

    import ipywidgets as widgets

    from mlscale_lab.complexity import pruning as P

    out = widgets.Output()
    slider = widgets.FloatSlider(value=0.5, min=0.0, max=0.99, step=0.01, description="prune",
                                 continuous_update=False, readout_format=".0%")

    def show(change=None):
        m = copy.deepcopy(model)
        if slider.value > 0:
            P.prune_global(m, slider.value)
        with out:
            out.clear_output(wait=True)
            print(f"test accuracy without fine-tuning: {P.accuracy(m, data.X_test, data.y_test):.1f}%")
            print(P.format_sparsity_report(P.sparsity_report(m)))

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])
