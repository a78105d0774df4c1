"""Vertical scaling: the same workload at 1..N threads, Amdahl's law, memory and cost.

Thread counts are set for every pool the workload may use: BLAS and OpenMP through
threadpoolctl (NumPy, SciPy, scikit-learn) and, when torch is already imported, torch's own
intra-op pool (``torch.set_num_threads``). Nothing here imports torch.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThreadScaling:
    """Wall-clock seconds of one workload at each thread count (median of ``repeats``)."""

    threads: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def speedup(self) -> tuple[float, ...]:
        """Speedup against the first thread count (usually 1)."""
        return tuple(self.seconds[0] / s for s in self.seconds)

    def as_dict(self) -> dict:
        return {"threads": list(self.threads), "seconds": list(self.seconds), "speedup": list(self.speedup)}


def _set_threads(n: int):
    """Limit every thread pool to ``n``; return a callable that restores them."""
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=n)
    torch = sys.modules.get("torch")
    old_torch = None
    if torch is not None:
        old_torch = torch.get_num_threads()
        torch.set_num_threads(n)

    def restore():
        limiter.restore_original_limits()
        if torch is not None and old_torch is not None:
            torch.set_num_threads(old_torch)

    return restore


def measure_thread_scaling(
    workload: Callable[[], object], threads: Sequence[int] = (1, 2), *, repeats: int = 3, warmup: int = 1
) -> ThreadScaling:
    """Time ``workload()`` with each thread count in ``threads``.

    Parameters
    ----------
    workload : callable
        Called with no arguments; the same work every call.
    threads : sequence of int
        Thread counts to try, e.g. ``range(1, cpus + 1)``. Counts above the CPUs you have
        measure oversubscription, not scaling.
    repeats : int
        Timed calls per thread count; the median is kept (robust to a noisy neighbour).
    warmup : int
        Untimed calls first at each count (caches, lazy initialisation).

    Returns
    -------
    ThreadScaling
    """
    if not callable(workload):
        raise TypeError(f"workload must be a callable taking no arguments, got {type(workload).__name__}")
    threads = tuple(int(t) for t in threads)
    if not threads or any(t < 1 for t in threads):
        raise ValueError(f"threads must be a non-empty sequence of counts >= 1, got {threads!r}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats!r}")
    seconds = []
    for n in threads:
        restore = _set_threads(n)
        try:
            for _ in range(warmup):
                workload()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                workload()
                times.append(time.perf_counter() - t0)
        finally:
            restore()
        seconds.append(statistics.median(times))
    return ThreadScaling(threads, tuple(seconds))


def amdahl_speedup(workers, serial_fraction: float):
    """Amdahl's law: ``1 / (s + (1 - s) / p)`` for serial fraction ``s`` on ``p`` workers.

    >>> amdahl_speedup(2, 0.0), amdahl_speedup(4, 1.0)
    (2.0, 1.0)
    """
    if not 0 <= serial_fraction <= 1:
        raise ValueError(f"serial_fraction must be in [0, 1], got {serial_fraction!r}")
    p = np.asarray(workers, dtype=float)
    if np.any(p < 1):
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    out = 1.0 / (serial_fraction + (1 - serial_fraction) / p)
    return float(out) if out.ndim == 0 else out


def fit_amdahl(workers, speedups) -> float:
    """Least-squares serial fraction ``s`` of Amdahl's law from measured speedups, in [0, 1].

    Amdahl's law is linear in ``s`` once inverted: ``1/S - 1/p = s * (1 - 1/p)``.

    >>> round(fit_amdahl([1, 2, 4, 8], amdahl_speedup([1, 2, 4, 8], 0.1)), 6)
    0.1
    """
    p = np.asarray(workers, dtype=float)
    s = np.asarray(speedups, dtype=float)
    if p.shape != s.shape or p.ndim != 1:
        raise ValueError(f"workers and speedups must be 1-D and the same length, got {p.shape} and {s.shape}")
    if np.any(p < 1) or np.any(s <= 0):
        raise ValueError("workers must be >= 1 and speedups > 0")
    x = 1 - 1 / p
    if not np.any(x > 0):
        raise ValueError("fit_amdahl needs at least one measurement with more than one worker")
    y = 1 / s - 1 / p
    return float(np.clip((x @ y) / (x @ x), 0.0, 1.0))


def amdahl_ceiling(serial_fraction: float) -> float:
    """The speedup no number of workers can beat: ``1 / s`` (infinite for ``s = 0``)."""
    if not 0 <= serial_fraction <= 1:
        raise ValueError(f"serial_fraction must be in [0, 1], got {serial_fraction!r}")
    return math.inf if serial_fraction == 0 else 1 / serial_fraction


@dataclass(frozen=True)
class Machine:
    """A machine size on a price list (illustrative prices: pass your provider's)."""

    name: str
    vcpus: int
    memory_gb: float
    price_per_hour: float


DEFAULT_MACHINES = (
    Machine("small", 2, 4, 0.10),
    Machine("medium", 4, 16, 0.20),
    Machine("large", 8, 32, 0.40),
    Machine("xlarge", 16, 64, 0.80),
    Machine("memory-xl", 16, 256, 1.60),
)


def vertical_cost_table(
    serial_fraction: float,
    rows_per_second_1cpu: float,
    batch_bytes: float,
    machines: Sequence[Machine] = DEFAULT_MACHINES,
    *,
    memory_headroom: float = 0.7,
) -> list[dict]:
    """What each machine size would give for one workload: Amdahl-predicted throughput, cost
    per million rows, and whether a batch of ``batch_bytes`` fits in ``memory_headroom`` of its
    memory (the rest is the OS, the interpreter and copies).

    >>> rows = vertical_cost_table(0.1, 1000.0, 12e9)
    >>> [r["fits"] for r in rows]
    [False, False, True, True, True]
    """
    if rows_per_second_1cpu <= 0:
        raise ValueError(f"rows_per_second_1cpu must be > 0, got {rows_per_second_1cpu!r}")
    if batch_bytes < 0:
        raise ValueError(f"batch_bytes must be >= 0, got {batch_bytes!r}")
    table = []
    for m in machines:
        speedup = amdahl_speedup(m.vcpus, serial_fraction)
        rate = rows_per_second_1cpu * speedup
        table.append({
            "machine": m.name,
            "vcpus": m.vcpus,
            "memory_gb": m.memory_gb,
            "price_per_hour": m.price_per_hour,
            "speedup": speedup,
            "rows_per_second": rate,
            "cost_per_million_rows": m.price_per_hour / 3600 / rate * 1e6,
            "fits": batch_bytes <= memory_headroom * m.memory_gb * 1e9,
        })
    return table


class CsvMlpWorkload:
    """Batch inference as a service does it: parse CSV rows in Python (serial: one thread
    holds the GIL), then a 3-layer MLP in NumPy (parallel: BLAS uses every thread allowed).

    Calling the object runs one batch and returns the class probabilities.
    :attr:`bytes_per_row` is measured from the arrays the last call allocated (input,
    activations, output), so ``rows * bytes_per_row`` is the batch's working memory.

    >>> w = CsvMlpWorkload(rows=200, features=8, hidden=16, seed=0)
    >>> w().shape
    (200, 10)
    >>> w.bytes_per_row > 0
    True
    """

    def __init__(self, rows: int = 8000, features: int = 64, hidden: int = 512, classes: int = 10, seed: int = 0):
        if rows < 1 or features < 1 or hidden < 1 or classes < 2:
            raise ValueError("rows, features and hidden must be >= 1 and classes >= 2")
        rng = np.random.default_rng(seed)
        data = rng.normal(size=(rows, features))
        self.lines = [",".join(f"{v:.5f}" for v in row) for row in data]
        scale = 1 / np.sqrt([features, hidden, hidden])
        self.weights = [
            rng.normal(size=(features, hidden)) * scale[0],
            rng.normal(size=(hidden, hidden)) * scale[1],
            rng.normal(size=(hidden, classes)) * scale[2],
        ]
        self.rows = rows
        self.bytes_per_row = 0.0

    def parse(self) -> np.ndarray:
        return np.array([line.split(",") for line in self.lines], dtype=float)

    def __call__(self) -> np.ndarray:
        x = self.parse()
        allocated = x.nbytes
        h = x
        for w in self.weights[:-1]:
            h = np.maximum(h @ w, 0.0)
            allocated += h.nbytes
        z = h @ self.weights[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        allocated += z.nbytes + p.nbytes
        self.bytes_per_row = allocated / self.rows
        return p
