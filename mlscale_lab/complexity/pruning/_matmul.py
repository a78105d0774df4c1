"""Zeros are only free when the kernel skips them: sparse (CSR) against dense matmul, timed.

Every sparsity's dense and sparse products are timed in the same interleaved rounds
(:func:`mlscale_lab.evidence.interleave`: A B A B, warm-up dropped), so each speedup is a
paired ratio with its interval, and the crossover is where the interval, not one pass of
calls, says the sparse product is faster. The dense product does the same work at every
sparsity (zeros are multiplied like any number), so its timings should be flat: how much they
vary is a free gauge of the machine's noise (:func:`dense_spread`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mlscale_lab.complexity.pruning._masks import check_amount
from mlscale_lab.validation import check_int


@dataclass(frozen=True)
class MatmulTiming:
    """Median latency of ``W @ X`` with ``W`` dense and ``W`` in CSR, at one sparsity.

    Attributes
    ----------
    sparsity : float
    dense_ms, sparse_ms : float
        Medians over the interleaved rounds.
    speedup_interval : Interval or None
        Paired interval of dense time over sparse time (above 1: sparse is faster).

    Examples
    --------
    >>> MatmulTiming(0.9, 2.0, 1.0).speedup
    2.0
    """

    sparsity: float
    dense_ms: float
    sparse_ms: float
    speedup_interval: object = None

    @property
    def speedup(self) -> float:
        """Dense time over sparse time: above 1, the sparse product is faster."""
        return self.dense_ms / self.sparse_ms

    def as_dict(self) -> dict:
        """The timing as a plain dict, speedup included."""
        iv = self.speedup_interval
        return {"sparsity": self.sparsity, "dense_ms": self.dense_ms, "sparse_ms": self.sparse_ms,
                "speedup": self.speedup, "speedup_low": None if iv is None else iv.low,
                "speedup_high": None if iv is None else iv.high}


def sparse_matmul_timings(sparsities: Sequence[float], *, size: int = 1024, batch: int = 64,
                          rounds: int = 15, number: int = 3, seed: int = 0) -> list[MatmulTiming]:
    """Time a ``size x size`` weight matrix times a ``size x batch`` input, dense against CSR.

    Dense is ``torch.mm``; sparse a ``torch.sparse_csr`` tensor; the masks are random (no
    magnitude) at each sparsity. All products are timed in the same ``rounds`` interleaved
    rounds of ``number`` calls each.

    Returns
    -------
    list of MatmulTiming
        In the order of ``sparsities``.

    Examples
    --------
    >>> ts = sparse_matmul_timings([0.0, 0.99], size=64, batch=4, rounds=3)
    >>> [t.sparsity for t in ts], ts[0].speedup_interval.n
    ([0.0, 0.99], 3)
    """
    from mlscale_lab.evidence import interleave

    func = "sparse_matmul_timings"
    sparsities = [check_amount(func, s, "sparsities[...]") for s in sparsities]
    size = check_int(func, "size", size, low=1)
    batch = check_int(func, "batch", batch, low=1)
    rounds = check_int(func, "rounds", rounds, low=2)
    number = check_int(func, "number", number, low=1)
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(size, size, generator=gen)
    X = torch.randn(size, batch, generator=gen)
    rand = torch.rand(size, size, generator=gen)
    arms = {}
    for i, s in enumerate(sparsities):
        Wd = W * (rand >= s)
        with warnings.catch_warnings():  # torch flags its CSR layout as beta on every conversion
            warnings.simplefilter("ignore", UserWarning)
            Ws = Wd.to_sparse_csr()
        arms[f"dense {i}"] = lambda Wd=Wd: torch.mm(Wd, X)
        arms[f"sparse {i}"] = lambda Ws=Ws: Ws @ X
    t = interleave(arms, rounds=rounds, warmup=1, number=number)
    return [MatmulTiming(s, 1e3 * t.median(f"dense {i}"), 1e3 * t.median(f"sparse {i}"),
                         t.ratio(f"dense {i}", f"sparse {i}")) for i, s in enumerate(sparsities)]


def crossover_sparsity(timings: Sequence[MatmulTiming]) -> float | None:
    """The lowest measured sparsity from which on the sparse product is faster at every point.

    With intervals (:func:`sparse_matmul_timings`), "faster" means the whole speedup interval
    lies above 1; a point whose interval straddles 1 is not counted as faster.

    Returns
    -------
    float or None
        ``None`` if the sparse product is not (shown to be) faster at the top of the range.

    Examples
    --------
    >>> crossover_sparsity([MatmulTiming(0.5, 1, 2), MatmulTiming(0.9, 1, 0.5),
    ...                     MatmulTiming(0.8, 1, 0.9)])
    0.8
    """
    def faster(t):
        iv = t.speedup_interval
        return t.sparse_ms < t.dense_ms if iv is None else iv.low > 1

    ordered = sorted(timings, key=lambda t: t.sparsity)
    for i, t in enumerate(ordered):
        if all(faster(u) for u in ordered[i:]):
            return t.sparsity
    return None


def dense_spread(timings: Sequence[MatmulTiming]) -> float:
    """Largest over smallest dense median: 1.0 on a quiet machine (the dense work never changes).

    Examples
    --------
    >>> dense_spread([MatmulTiming(0.0, 2.0, 9.0), MatmulTiming(0.9, 2.5, 1.0)])
    1.25
    """
    d = np.array([t.dense_ms for t in timings], dtype=float)
    if d.size == 0:
        raise ValueError("dense_spread(timings=[]): expected the rows of sparse_matmul_timings(...)")
    return float(d.max() / d.min())
