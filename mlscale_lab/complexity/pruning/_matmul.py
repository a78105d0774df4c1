"""Zeros are only free when the kernel skips them: sparse (CSR) against dense matmul, timed."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from mlscale_lab.complexity.pruning._masks import check_amount
from mlscale_lab.constraints import measure_latency
from mlscale_lab.validation import check_int


@dataclass(frozen=True)
class MatmulTiming:
    """Median latency of ``W @ X`` with ``W`` dense and ``W`` in CSR, at one sparsity.

    Examples
    --------
    >>> MatmulTiming(0.9, 2.0, 1.0).speedup
    2.0
    """

    sparsity: float
    dense_ms: float
    sparse_ms: float

    @property
    def speedup(self) -> float:
        """Dense time over sparse time: above 1, the sparse product is faster."""
        return self.dense_ms / self.sparse_ms

    def as_dict(self) -> dict:
        """The timing as a plain dict, speedup included."""
        return {**asdict(self), "speedup": self.speedup}


def sparse_matmul_timings(sparsities: Sequence[float], *, size: int = 1024, batch: int = 64,
                          repeats: int = 15, seed: int = 0) -> list[MatmulTiming]:
    """Time a ``size x size`` weight matrix times a ``size x batch`` input, dense against CSR.

    Dense is ``torch.mm``; sparse a ``torch.sparse_csr`` tensor; the masks are random (no
    magnitude) at each sparsity. Each figure is the median of ``repeats`` calls after warm-up,
    by :func:`mlscale_lab.constraints.measure_latency`.

    Returns
    -------
    list of MatmulTiming
        In the order of ``sparsities``.

    Examples
    --------
    >>> ts = sparse_matmul_timings([0.0, 0.99], size=64, batch=4, repeats=3)
    >>> [t.sparsity for t in ts]
    [0.0, 0.99]
    """
    func = "sparse_matmul_timings"
    sparsities = [check_amount(func, s, "sparsities[...]") for s in sparsities]
    size = check_int(func, "size", size, low=1)
    batch = check_int(func, "batch", batch, low=1)
    repeats = check_int(func, "repeats", repeats, low=1)
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(size, size, generator=gen)
    X = torch.randn(size, batch, generator=gen)
    rand = torch.rand(size, size, generator=gen)
    out = []
    for s in sparsities:
        Wd = W * (rand >= s)
        with warnings.catch_warnings():  # torch flags its CSR layout as beta on every conversion
            warnings.simplefilter("ignore", UserWarning)
            Ws = Wd.to_sparse_csr()
        # measure_latency slices rows X[:b]; pass a one-row stand-in so each call uses all of X.
        one = np.zeros((1, 1))
        dense = measure_latency(lambda _x, Wd=Wd: torch.mm(Wd, X), one, (1,), warmup=3,
                                repeats=repeats)[0]
        sparse = measure_latency(lambda _x, Ws=Ws: Ws @ X, one, (1,), warmup=3,
                                 repeats=repeats)[0]
        out.append(MatmulTiming(s, dense.p50_ms, sparse.p50_ms))
    return out


def crossover_sparsity(timings: Sequence[MatmulTiming]) -> float | None:
    """The lowest measured sparsity from which on the sparse product is faster at every point.

    Returns
    -------
    float or None
        ``None`` if the sparse product never wins at the top of the range.

    Examples
    --------
    >>> crossover_sparsity([MatmulTiming(0.5, 1, 2), MatmulTiming(0.9, 1, 0.5),
    ...                     MatmulTiming(0.8, 1, 0.9)])
    0.8
    """
    ordered = sorted(timings, key=lambda t: t.sparsity)
    for i, t in enumerate(ordered):
        if all(u.sparse_ms < u.dense_ms for u in ordered[i:]):
            return t.sparsity
    return None
