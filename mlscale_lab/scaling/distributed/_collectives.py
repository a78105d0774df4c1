"""What communication costs: all-reduce time against message size, and the alpha-beta model.

Sending ``M`` bytes costs a latency ``alpha`` plus ``M / bandwidth``. A ring all-reduce over
``n`` processes takes ``2(n-1)`` steps, each sending ``M / n`` bytes to the next process, so
every process sends (and receives) ``2(n-1)/n * M`` bytes in all (Thakur, Rabenseifner and Gropp
2005; Patarasuk and Yuan 2009):

    T(M, n) = 2(n-1) * alpha + 2(n-1)/n * M / bandwidth        (0 for n = 1)

:func:`measure_allreduce` times ``torch.distributed.all_reduce`` on a worker group over a range
of sizes, in interleaved rounds; :meth:`AllReduceSweep.fit` fits ``alpha`` and ``bandwidth``
(relative least squares, both kept non-negative); the fitted :class:`AlphaBeta` predicts other
sizes and other numbers of processes, and :meth:`AllReduceSweep.prediction_interval` puts a
bootstrap interval (over rounds) on a prediction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlscale_lab.validation import check_int, check_positive

__all__ = ["AllReduceSweep", "AlphaBeta", "measure_allreduce", "predict_step_seconds",
           "ring_bytes", "task_allreduce"]


def ring_bytes(message_bytes: float, world_size: int) -> float:
    """Bytes each process sends in a ring all-reduce of ``message_bytes`` over ``world_size``.

    >>> ring_bytes(1000, 2), ring_bytes(1000, 4), ring_bytes(1000, 1)
    (1000.0, 1500.0, 0.0)
    """
    n = check_int("ring_bytes", "world_size", world_size, low=1)
    return 2 * (n - 1) / n * float(message_bytes)


@dataclass(frozen=True)
class AlphaBeta:
    """The alpha-beta (latency-bandwidth) model of a ring all-reduce.

    Attributes
    ----------
    alpha : float
        Seconds of latency per ring step.
    bandwidth : float
        Bytes per second each process sends.

    Examples
    --------
    >>> m = AlphaBeta(alpha=50e-6, bandwidth=1e9)
    >>> round(m.seconds(4e6, 2) * 1000, 3)  # 2 steps of latency + 4 MB at 1 GB/s
    4.1
    >>> round(m.seconds(4e6, 8) * 1000, 3)
    7.7
    """

    alpha: float
    bandwidth: float

    def seconds(self, message_bytes, world_size: int):
        """Predicted all-reduce seconds of ``message_bytes`` (a number or an array)."""
        import numpy as np

        n = check_int("AlphaBeta.seconds", "world_size", world_size, low=1)
        m = np.asarray(message_bytes, dtype=float)
        t = 2 * (n - 1) * self.alpha + 2 * (n - 1) / n * m / self.bandwidth
        return float(t) if t.ndim == 0 else t


def predict_step_seconds(compute_seconds: float, gradient_bytes: float, model: AlphaBeta,
                         world_size: int, *, scaling: str = "strong") -> float:
    """Predicted seconds per step on ``world_size`` processes, communication not overlapped.

    ``compute_seconds`` is one process's forward and backward pass over the global batch
    (``scaling="strong"``: the batch is split, compute shrinks as ``1/n``) or over one
    process's own batch (``scaling="weak"``: each process keeps its batch, the global batch
    grows with ``n``). Either way every step all-reduces the whole gradient.

    >>> m = AlphaBeta(alpha=1e-4, bandwidth=1e9)
    >>> round(predict_step_seconds(0.04, 4e6, m, 2), 4)  # 0.02 s of compute + 4.2 ms
    0.0242
    >>> round(predict_step_seconds(0.04, 4e6, m, 2, scaling="weak"), 4)
    0.0442
    """
    compute = check_positive("predict_step_seconds", "compute_seconds", compute_seconds)
    n = check_int("predict_step_seconds", "world_size", world_size, low=1)
    if scaling not in ("strong", "weak"):
        raise ValueError(f"predict_step_seconds(scaling={scaling!r}): expected 'strong' or 'weak'")
    per_process = compute / n if scaling == "strong" else compute
    return per_process + (model.seconds(gradient_bytes, n) if n > 1 else 0.0)


# -- measuring -------------------------------------------------------------------------------
def task_allreduce(ctx, sizes_bytes, repeats: int, seed: int):
    """Seconds of one ``all_reduce`` per round and size, sizes in a new order every round."""
    import random

    import torch
    import torch.distributed as dist

    # one buffer of the biggest size; each size is a view of its start (memory: the biggest only)
    whole = torch.ones(max(max(1, int(b) // 4) for b in sizes_bytes))
    buffers = [whole[:max(1, int(b) // 4)] for b in sizes_bytes]
    for x in buffers:  # warm-up: the first collective of a size sets up its buffers
        dist.all_reduce(x)
    order = list(range(len(buffers)))
    rng = random.Random(seed)
    out = [[0.0] * len(buffers) for _ in range(repeats)]
    for r in range(repeats):
        rng.shuffle(order)  # every rank draws the same order from the same seed
        for i in order:
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buffers[i])
            out[r][i] = time.perf_counter() - t0
    return out


@dataclass(frozen=True)
class AllReduceSweep:
    """All-reduce seconds measured over sizes and rounds.

    Attributes
    ----------
    sizes : ndarray
        Message bytes.
    seconds : ndarray, shape (rounds, sizes)
        Per round and size, the slowest rank's time (the collective is done when every rank is).
    world_size : int
    """

    sizes: object
    seconds: object
    world_size: int

    def medians(self, rounds=None):
        """Median seconds per size (over ``rounds``, indices of rounds, default all)."""
        import numpy as np

        s = self.seconds if rounds is None else self.seconds[np.asarray(rounds, dtype=int)]
        return np.median(s, axis=0)

    def _mask(self, exclude):
        import numpy as np

        ex = np.atleast_1d(np.asarray([] if exclude is None else exclude, dtype=float))
        return ~np.isin(self.sizes, ex)

    def fit(self, *, exclude=None, rounds=None) -> AlphaBeta:
        """Fit the alpha-beta model to the median times, sizes in ``exclude`` held out.

        Relative least squares (each size's error over its time, so the microsecond sizes
        count as much as the megabyte ones), alpha and 1/bandwidth kept non-negative.
        """
        import numpy as np
        from scipy.optimize import nnls

        keep = self._mask(exclude)
        m, t = self.sizes[keep].astype(float), self.medians(rounds)[keep]
        if m.size < 2:
            raise ValueError("AllReduceSweep.fit: needs at least two sizes that are not held out")
        n = self.world_size
        # t = 2(n-1) alpha + 2(n-1)/n * m * (1 / bandwidth), each row divided by t
        design = np.column_stack([np.full_like(m, 2 * (n - 1)), 2 * (n - 1) / n * m]) / t[:, None]
        (alpha, inv_bw), _ = nnls(design, np.ones_like(t))
        return AlphaBeta(float(alpha), float(1 / inv_bw) if inv_bw > 0 else float("inf"))

    def _bootstrap(self, statistic, level, seed):
        import numpy as np

        from mlscale_lab.evidence import bootstrap_interval

        rounds = np.arange(self.seconds.shape[0])
        return bootstrap_interval(rounds, lambda idx: statistic(np.asarray(idx).astype(int)),
                                  level, n_resamples=1000, seed=seed)

    def prediction_interval(self, message_bytes: float, world_size: int | None = None, *,
                            exclude=None, level: float = 0.95, seed: int = 0):
        """Bootstrap interval (rounds resampled, model refitted) of the predicted seconds."""
        n = world_size or self.world_size
        return self._bootstrap(lambda idx: self.fit(exclude=exclude, rounds=idx).seconds(
            message_bytes, n), level, seed)

    def held_out_error(self, message_bytes: float, *, level: float = 0.95, seed: int = 0):
        """Interval of ``|predicted / measured - 1|`` at a size the fit did not see."""
        import numpy as np

        col = int(np.flatnonzero(self.sizes == message_bytes)[0]) if np.any(
            self.sizes == message_bytes) else None
        if col is None:
            raise ValueError(f"AllReduceSweep.held_out_error(message_bytes={message_bytes!r}): "
                             f"expected one of the measured sizes {self.sizes.tolist()}")

        def error(idx):
            predicted = self.fit(exclude=[message_bytes], rounds=idx).seconds(message_bytes,
                                                                             self.world_size)
            return abs(predicted / float(np.median(self.seconds[idx, col])) - 1)

        return self._bootstrap(error, level, seed)


def measure_allreduce(group, sizes_bytes, *, repeats: int = 10, seed: int = 0) -> AllReduceSweep:
    """Time ``all_reduce`` of float32 tensors of ``sizes_bytes`` on ``group``, ``repeats`` rounds.

    Every round visits every size once, in a new random order (so a slow moment of the
    machine is spread over sizes rather than landing on one), each after a barrier.
    """
    import numpy as np

    sizes = np.asarray(sorted({int(s) for s in sizes_bytes}), dtype=np.int64)
    if sizes.size < 2 or sizes.min() < 4:
        raise ValueError(f"measure_allreduce(sizes_bytes={sizes_bytes!r}): expected two or more "
                         "sizes of at least 4 bytes (one float32)")
    repeats = check_int("measure_allreduce", "repeats", repeats, low=2)
    per_rank = np.asarray(group.run(task_allreduce, sizes.tolist(), repeats, seed))
    return AllReduceSweep(sizes, per_rank.max(axis=0), group.world_size)
