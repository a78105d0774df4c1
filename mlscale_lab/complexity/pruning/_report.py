"""How much of a model pruning removed: per tensor, per model, and the compression ratio."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from mlscale_lab.complexity.pruning._masks import (
    effective_state_dict,
    effective_tensor,
    prunable_weights,
)


@dataclass(frozen=True)
class LayerSparsity:
    """One parameter tensor's sparsity.

    Attributes
    ----------
    name : str
        The tensor's ``state_dict`` key (``"0.weight"``).
    shape : tuple of int
    parameters, nonzero : int
        Values stored, and how many of them are not zero.

    Examples
    --------
    >>> LayerSparsity("0.weight", (2, 2), 4, 1).sparsity
    0.75
    """

    name: str
    shape: tuple[int, ...]
    parameters: int
    nonzero: int

    @property
    def sparsity(self) -> float:
        """Fraction of the values that are zero."""
        return 1.0 - self.nonzero / self.parameters if self.parameters else 0.0

    def as_dict(self) -> dict:
        """The row as a plain dict, sparsity included."""
        return {**asdict(self), "sparsity": self.sparsity}


def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Per-tensor parameters, non-zeros and sparsity of the effective (masked) parameters.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> [r.name for r in sparsity_report(make_mlp((4, 2)))]
    ['0.weight', '0.bias']
    """
    return [
        LayerSparsity(name, tuple(t.shape), t.numel(), int(torch.count_nonzero(t)))
        for name, t in effective_state_dict(model).items()
    ]


def format_sparsity_report(report: list[LayerSparsity]) -> str:
    """A plain-text table of :func:`sparsity_report`, with a total row.

    Examples
    --------
    >>> print(format_sparsity_report([LayerSparsity("0.weight", (2, 2), 4, 1)]))
    tensor             shape   params  nonzero  sparsity
    0.weight             2x2        4        1     75.0%
    total                           4        1     75.0%
    """
    rows = [f"{'tensor':<12}{'shape':>12}{'params':>9}{'nonzero':>9}{'sparsity':>10}"]
    for r in report:
        shape = "x".join(map(str, r.shape))
        rows.append(f"{r.name:<12}{shape:>12}{r.parameters:>9}{r.nonzero:>9}{r.sparsity:>10.1%}")
    total, nz = sum(r.parameters for r in report), sum(r.nonzero for r in report)
    rows.append(f"{'total':<12}{'':>12}{total:>9}{nz:>9}{1 - nz / total:>10.1%}")
    return "\n".join(rows)


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of the ``nn.Linear`` layers' weights that are zero (biases not counted).

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> weight_sparsity(make_mlp((4, 2)))
    0.0
    """
    ws = [effective_tensor(m, "weight") for m, _ in prunable_weights(model)]
    total = sum(w.numel() for w in ws)
    return 1.0 - sum(int(torch.count_nonzero(w)) for w in ws) / total


def compression_ratio(model: nn.Module) -> float:
    """All parameters (weights and biases) of the dense model over the non-zero ones.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, prune_global
    >>> m = make_mlp((10, 10))
    >>> prune_global(m, 0.9)
    >>> round(compression_ratio(m), 2)  # 110 parameters, 10 weights and 10 biases left
    5.5
    """
    report = sparsity_report(model)
    nonzero = sum(r.nonzero for r in report)
    return sum(r.parameters for r in report) / max(nonzero, 1)


def layer_density(model: nn.Module) -> dict[str, float]:
    """Fraction of each ``nn.Linear`` weight matrix that is still non-zero, by tensor name.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, prune_layerwise
    >>> m = make_mlp((4, 4, 2))
    >>> prune_layerwise(m, 0.5)
    >>> layer_density(m)
    {'0.weight': 0.5, '2.weight': 0.5}
    """
    return {r.name: 1.0 - r.sparsity for r in sparsity_report(model)
            if r.name.endswith("weight") and len(r.shape) == 2}
