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

from mlscale_lab.prices import EXAMPLE_MACHINES, Machine
from mlscale_lab.validation import check_fraction, check_int, check_number, check_positive

__all__ = [
    "ThreadScaling", "amdahl_ceiling", "amdahl_speedup", "fit_amdahl", "measure_thread_scaling",
    "vertical_cost_table",
]


@dataclass(frozen=True)
class ThreadScaling:
    """Wall-clock seconds of one workload at each thread count (median of ``repeats``).

    Attributes
    ----------
    threads : tuple of int
    seconds : tuple of float

    Examples
    --------
    >>> ThreadScaling((1, 2), (1.0, 0.625)).speedup
    (1.0, 1.6)
    """

    threads: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def speedup(self) -> tuple[float, ...]:
        """Speedup against the first thread count (usually 1)."""
        return tuple(self.seconds[0] / s for s in self.seconds)

    def as_dict(self) -> dict:
        """Threads, seconds and speedups as lists (for JSON)."""
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

    Examples
    --------
    >>> r = measure_thread_scaling(lambda: sum(range(1000)), (1, 2), repeats=1)
    >>> r.threads, r.speedup[0]
    ((1, 2), 1.0)
    """
    func = "measure_thread_scaling"
    if not callable(workload):
        raise TypeError(f"{func}(workload={workload!r}): expected a callable taking no arguments, "
                        f"got {type(workload).__name__}")
    threads = tuple(check_int(func, "threads[...]", t, low=1) for t in threads)
    if not threads:
        raise ValueError(f"{func}(threads=()): expected at least one thread count, got none")
    repeats = check_int(func, "repeats", repeats, low=1)
    warmup = check_int(func, "warmup", warmup, low=0)
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

    Parameters
    ----------
    workers : int or array-like
        ``p`` (>= 1): threads, cores or machines.
    serial_fraction : float
        ``s`` in [0, 1].

    Returns
    -------
    float or numpy.ndarray
        The speedup over one worker, shaped like ``workers``.

    Examples
    --------
    >>> amdahl_speedup(2, 0.0), amdahl_speedup(4, 1.0)
    (2.0, 1.0)
    >>> amdahl_speedup([1, 2, 4], 0.5).tolist()
    [1.0, 1.3333333333333333, 1.6]
    """
    s = check_fraction("amdahl_speedup", "serial_fraction", serial_fraction)
    p = np.asarray(workers, dtype=float)
    if np.any(p < 1):
        raise ValueError(f"amdahl_speedup(workers={workers!r}): expected counts >= 1, got {workers!r}")
    out = 1.0 / (s + (1 - s) / p)
    return float(out) if out.ndim == 0 else out


def fit_amdahl(workers, speedups) -> float:
    """Least-squares serial fraction ``s`` of Amdahl's law from measured speedups, in [0, 1].

    Amdahl's law is linear in ``s`` once inverted: ``1/S - 1/p = s * (1 - 1/p)``.

    Parameters
    ----------
    workers : array-like
        Worker (thread) counts, >= 1; at least one above 1.
    speedups : array-like
        Measured speedup at each count, > 0.

    Returns
    -------
    float

    Examples
    --------
    >>> round(fit_amdahl([1, 2, 4, 8], amdahl_speedup([1, 2, 4, 8], 0.1)), 6)
    0.1
    """
    p = np.asarray(workers, dtype=float)
    s = np.asarray(speedups, dtype=float)
    if p.shape != s.shape or p.ndim != 1:
        raise ValueError(f"fit_amdahl(workers, speedups): expected 1-D arrays of the same length, "
                         f"got shapes {p.shape} and {s.shape}")
    if np.any(p < 1) or np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise ValueError(f"fit_amdahl(workers={p.tolist()}, speedups={s.tolist()}): expected "
                         "workers >= 1 and finite speedups > 0")
    x = 1 - 1 / p
    if not np.any(x > 0):
        raise ValueError(f"fit_amdahl(workers={p.tolist()}): expected at least one measurement "
                         "with more than one worker, got none (nothing to fit)")
    y = 1 / s - 1 / p
    return float(np.clip((x @ y) / (x @ x), 0.0, 1.0))


def amdahl_ceiling(serial_fraction: float) -> float:
    """The speedup no number of workers can beat: ``1 / s`` (infinite for ``s = 0``).

    Parameters
    ----------
    serial_fraction : float
        ``s`` in [0, 1].

    Returns
    -------
    float

    Examples
    --------
    >>> amdahl_ceiling(0.2), amdahl_ceiling(0.0)
    (5.0, inf)
    """
    s = check_fraction("amdahl_ceiling", "serial_fraction", serial_fraction)
    return math.inf if s == 0 else 1 / s


def vertical_cost_table(
    serial_fraction: float,
    rows_per_second_1cpu: float,
    batch_bytes: float,
    machines: Sequence[Machine] | None = None,
    *,
    memory_headroom: float = 0.7,
    process_bytes: float = 0.0,
) -> list[dict]:
    """What each machine size would give for one workload: Amdahl-predicted throughput, cost
    per million rows, and how the batch fits its memory.

    A batch fits in one go when ``process_bytes + batch_bytes <= memory_headroom * memory``
    (the rest is the OS and copies). When it does not, a big machine is one answer and
    out-of-core chunks another: ``chunks`` is the fewest equal chunks whose working set fits,
    each processed and written out before the next is read (lab 01's chunked pass).

    Parameters
    ----------
    serial_fraction : float
        Amdahl's ``s``, from :func:`fit_amdahl`.
    rows_per_second_1cpu : float
        Measured throughput on one thread.
    batch_bytes : float
        Working memory of the whole batch in one go (rows x bytes per row).
    machines : sequence of Machine, optional
        A price list; default :data:`mlscale_lab.prices.EXAMPLE_MACHINES` (example prices).
    memory_headroom : float
        Share of a machine's memory the process may use, in (0, 1].
    process_bytes : float
        What the process needs besides the batch: the interpreter, the libraries, the model
        (measure it: the resident memory of a process that has loaded everything).

    Returns
    -------
    list of dict
        One row per machine: ``machine``, ``vcpus``, ``memory_bytes``, ``usd_per_hour``,
        ``speedup``, ``rows_per_second``, ``usd_per_million_rows``, ``fits`` (in one go) and
        ``chunks`` (1 when it fits; None when the process alone does not fit).

    Examples
    --------
    >>> rows = vertical_cost_table(0.1, 1000.0, 10 * 2**30)  # a 10 GiB batch
    >>> [(r["machine"], r["chunks"]) for r in rows][:5]  # chunks to run it out of core
    [('nano', 29), ('micro', 15), ('small', 8), ('medium', 4), ('large', 2)]
    >>> [r["machine"] for r in rows if r["fits"]]
    ['xlarge', '2xlarge', '4xlarge', 'memory-4xlarge']
    >>> nano = vertical_cost_table(0.1, 1000.0, 2**30, process_bytes=400 * 2**20)[0]
    >>> nano["chunks"] is None  # 70% of 512 MiB cannot even hold the 400 MiB process
    True
    """
    func = "vertical_cost_table"
    s = check_fraction(func, "serial_fraction", serial_fraction)
    rate_1 = check_positive(func, "rows_per_second_1cpu", rows_per_second_1cpu)
    need = check_number(func, "batch_bytes", batch_bytes, low=0)
    headroom = check_fraction(func, "memory_headroom", memory_headroom, low_open=True)
    base = check_number(func, "process_bytes", process_bytes, low=0)
    table = []
    for m in EXAMPLE_MACHINES if machines is None else machines:
        speedup = amdahl_speedup(m.vcpus, s)
        rate = rate_1 * speedup
        usable = headroom * m.memory_bytes - base
        table.append({
            "machine": m.name,
            "vcpus": m.vcpus,
            "memory_bytes": m.memory_bytes,
            "usd_per_hour": m.usd_per_hour,
            "speedup": speedup,
            "rows_per_second": rate,
            "usd_per_million_rows": m.usd_per_hour / 3600 / rate * 1e6,
            "fits": need <= usable,
            "chunks": max(1, math.ceil(need / usable)) if usable > 0 else None,
        })
    return table
