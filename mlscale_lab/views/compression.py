"""Plots over the compression measurements of :mod:`mlscale_lab.complexity.compression` (lab 06).

Plots only: every number comes from the lab's measurements, nothing is computed here beyond
means and spreads for display. Each function returns the matplotlib figure.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.views._axes import figure_and_axes


def _mean_ci(values):
    from mlscale_lab.evidence import mean_interval

    iv = mean_interval(values)
    return iv.estimate, iv.estimate - iv.low, iv.high - iv.estimate


def plot_bits_accuracy(drops: dict, ax=None):
    """Accuracy lost against bits per weight, one line per method, with 95 % intervals over seeds.

    ``drops`` maps a method name to ``{bits: [points lost per seed]}`` (dense minus quantized,
    on the same rows).
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.8))
    for name, curve in drops.items():
        bits = sorted(curve)
        stats = [_mean_ci(curve[b]) for b in bits]
        ax.errorbar(bits, [m for m, _, _ in stats], yerr=np.array([[lo for _, lo, _ in stats],
                                                                   [hi for _, _, hi in stats]]),
                    fmt="o-", capsize=3, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axhspan(0, 1, color="grey", alpha=0.12, label="within 1 point")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("bits per weight")
    ax.set_ylabel("accuracy lost (points, symlog)")
    ax.set_title("Where the bits run out: mean over seeds, 95 % interval")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roofline(points: dict, predicted: dict, ax=None):
    """Measured batch-1 latency against the bytes a prediction reads, with the roofline estimate.

    ``points`` maps a format ("fp32", "int8") to a list of ``(bytes, Interval of ms)``;
    ``predicted`` maps the same formats to a list of ``(bytes, ms)``.
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.8))
    for i, (name, pts) in enumerate(points.items()):
        color = f"C{i}"
        xs = [b for b, _ in pts]
        mid = [iv.estimate for _, iv in pts]
        err = np.array([[iv.estimate - iv.low for _, iv in pts], [iv.high - iv.estimate for _, iv in pts]])
        ax.errorbar(xs, mid, yerr=err, fmt="o", color=color, capsize=3, label=f"{name}, measured")
        px = predicted.get(name, [])
        ax.plot([b for b, _ in px], [m for _, m in px], "--", color=color, label=f"{name}, roofline estimate")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bytes read per prediction (log)")
    ax.set_ylabel("batch-1 latency, ms (log)")
    ax.set_title("Batch 1: fixed overhead, then the bytes set the time")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_distillation(accuracies: dict, teacher=None, ax=None):
    """Student test accuracy per kind, each seed a dot joined to its other kinds (paired).

    ``accuracies`` maps a kind ("scratch", "hard labels", "distilled") to a list of accuracies,
    one per seed in the same order; ``teacher`` optionally the teacher's, one per seed.
    """
    fig, ax = figure_and_axes(ax, figsize=(7, 3.6))
    kinds = list(accuracies)
    runs = np.array([accuracies[k] for k in kinds], dtype=float)
    for j in range(runs.shape[1]):
        ax.plot(range(len(kinds)), runs[:, j], "-", color="grey", alpha=0.5)
    for i in range(len(kinds)):
        m, lo, hi = _mean_ci(runs[i])
        ax.errorbar([i], [m], yerr=[[lo], [hi]], fmt="s", color="tab:blue", capsize=4,
                    label="mean, 95 % interval" if i == 0 else None)
        ax.plot([i] * runs.shape[1], runs[i], "k.", ms=6)
    if teacher is not None:
        ax.axhline(float(np.mean(teacher)), color="tab:orange", ls=":", label="teacher (mean)")
    ax.set_xticks(range(len(kinds)), kinds)
    ax.set_ylabel("student test accuracy (%)")
    ax.set_title("Students: same start, same steps; lines join one seed's students")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_pipeline(stages_by_seed: dict, ax=None):
    """Bytes on disk of each pipeline stage (log scale), with the mean accuracy written on.

    ``stages_by_seed`` maps a seed to its list of
    :class:`~mlscale_lab.complexity.compression.Stage` (same stage names for every seed).
    """
    fig, ax = figure_and_axes(ax, figsize=(8, 3.6))
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
