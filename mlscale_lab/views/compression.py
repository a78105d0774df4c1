"""Plots over the compression measurements of :mod:`mlscale_lab.complexity.compression` (lab 06).

Plots only: every number comes from the lab's measurements, nothing is computed here beyond
means and spreads for display. Each function returns the matplotlib figure.
"""

from __future__ import annotations

import numpy as np


def _axes(ax, size):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def plot_quantized_latency(latency: dict, ax=None):
    """Median latency per model at each batch size, relative to the first model.

    ``latency`` maps a model name to ``{batch size: median ms}``; the first model is the
    baseline every bar is divided by (so bars read as "times the fp32 latency").
    """
    fig, ax = _axes(ax, (7, 3.4))
    names = list(latency)
    batches = sorted({b for v in latency.values() for b in v})
    width = 0.8 / len(names)
    base = latency[names[0]]
    for i, name in enumerate(names):
        rel = [latency[name][b] / base[b] for b in batches]
        pos = np.arange(len(batches)) + (i - (len(names) - 1) / 2) * width
        bars = ax.bar(pos, rel, width, label=name)
        for bar, b in zip(bars, batches, strict=True):
            ax.annotate(f"{latency[name][b]:.2f} ms", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(batches)), [f"batch {b}" for b in batches])
    ax.set_ylabel(f"latency / {names[0]} latency")
    ax.set_title("int8 against fp32: median latency per call (lower is faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_bits_accuracy(bits, uniform: dict, baseline, per_layer: dict | None = None, ax=None):
    """Test accuracy against k-means bits per weight.

    ``uniform`` maps bits to a list of accuracies (one per seed, every layer shared);
    ``baseline`` is the fp32 accuracies (one per seed); ``per_layer`` optionally maps a layer
    name to ``{bits: accuracy}`` with only that layer shared (one seed).
    """
    fig, ax = _axes(ax, (7, 3.6))
    acc = np.array([uniform[b] for b in bits], dtype=float)
    ax.errorbar(bits, acc.mean(axis=1), yerr=acc.std(axis=1), fmt="o-", color="black", capsize=3,
                label=f"all layers shared ({acc.shape[1]} seeds)")
    for name, curve in (per_layer or {}).items():
        xs = [b for b in bits if b in curve]
        ax.plot(xs, [curve[b] for b in xs], "s--", alpha=0.7, label=f"only layer {name} shared")
    base = float(np.mean(baseline))
    ax.axhline(base, color="grey", ls=":", label="fp32")
    ax.axhspan(base - 1, base, color="grey", alpha=0.12, label="within 1 point")
    ax.set_xlabel("bits per weight (k-means codebook of 2**bits values)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(list(bits))
    ax.set_title("Weight sharing: accuracy against bits per weight")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_distillation(results: dict, ax=None):
    """Student accuracy trained from labels alone against distilled, per setting.

    ``results`` maps a setting name to ``{"from labels": [acc per seed], "distilled": [...]}``;
    each seed is a dot, the bar is the mean.
    """
    fig, ax = _axes(ax, (7, 3.4))
    colors = {"from labels": "tab:grey", "distilled": "tab:blue"}
    for i, runs in enumerate(results.values()):
        for j, (kind, accs) in enumerate(runs.items()):
            x = i + (j - 0.5) * 0.35
            ax.bar(x, np.mean(accs), 0.33, color=colors.get(kind), alpha=0.6,
                   label=kind if i == 0 else None)
            ax.plot([x] * len(accs), accs, "k.", ms=6)
    lows = [min(min(a) for a in runs.values()) for runs in results.values()]
    highs = [max(max(a) for a in runs.values()) for runs in results.values()]
    ax.set_ylim(min(lows) - 3, min(100, max(highs) + 2))
    ax.set_xticks(range(len(results)), list(results))
    ax.set_ylabel("student test accuracy (%)")
    ax.set_title("Distillation: mean (bar) and each seed (dot)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pipeline(stages_by_seed: dict, ax=None):
    """Bytes on disk of each pipeline stage (log scale), with the mean accuracy written on.

    ``stages_by_seed`` maps a seed to its list of
    :class:`~mlscale_lab.complexity.compression.Stage` (same stage names for every seed).
    """
    fig, ax = _axes(ax, (8, 3.6))
    runs = list(stages_by_seed.values())
    names = [s.name for s in runs[0]]
    size = np.array([[s.file_bytes for s in run] for run in runs], dtype=float).mean(axis=0)
    acc = np.array([[s.accuracy for s in run] for run in runs], dtype=float).mean(axis=0)
    bars = ax.barh(range(len(names)), size, color=["tab:grey"] + ["tab:blue"] * (len(names) - 1))
    ax.set_xscale("log")
    for bar, b, a in zip(bars, size, acc, strict=True):
        ax.annotate(f" {b / 1024:,.0f} KiB, {size[0] / b:.0f}x smaller, {a:.2f}%",
                    (bar.get_width(), bar.get_y() + bar.get_height() / 2), va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(size.min() / 3, size.max() * 40)
    ax.set_xlabel("bytes on disk (log scale), mean over seeds")
    ax.set_title(f"Deep compression, stage by stage ({len(runs)} seeds)")
    fig.tight_layout()
    return fig


def plot_recipes(recipes, chosen: dict | None = None):
    """One row per recipe: the file to ship, the memory it runs in (log scale) and its batch-1
    latency, with its accuracy and the profiles that chose it written on.

    ``chosen`` maps a profile name to the recipe it picked (or None).
    """
    import matplotlib.pyplot as plt

    fig, (ax_bytes, ax_lat) = plt.subplots(1, 2, figsize=(10, 0.45 * len(recipes) + 1.6), sharey=True,
                                           gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(recipes))
    ax_bytes.barh(y - 0.2, [r.file_bytes for r in recipes], 0.4, label="file to ship", color="tab:blue")
    ax_bytes.barh(y + 0.2, [r.memory_bytes for r in recipes], 0.4, label="memory to run", color="tab:orange")
    ax_bytes.set_xscale("log")
    ax_bytes.set_xlabel("bytes (log scale)")
    labels = []
    for r in recipes:
        picked = [p for p, c in (chosen or {}).items() if c is not None and c.name == r.name]
        labels.append(f"{r.name} ({r.accuracy:.2f}%)" + (f"\n<- {', '.join(picked)}" if picked else ""))
    ax_bytes.set_yticks(y, labels, fontsize=8)
    ax_bytes.invert_yaxis()
    ax_bytes.legend(fontsize=8, loc="lower right")
    ax_lat.barh(y, [r.latency_ms for r in recipes], 0.6, color="tab:green")
    ax_lat.set_xlabel("median latency at batch 1 (ms)")
    fig.suptitle("Recipes: bytes to ship and to run, latency, accuracy, and which profile chose each")
    fig.tight_layout()
    return fig
