"""Vertical scaling: the same workload at 1..N threads, timed in interleaved rounds; memory and cost.

Thread counts are set for every pool the workload may use: BLAS and OpenMP through
threadpoolctl (NumPy, SciPy, scikit-learn; OpenBLAS sizes its pool from the CPU affinity, not
from a container's quota, so an unpinned pool may run more threads than the container has
CPUs) and, when torch is already imported, torch's own intra-op pool
(``torch.set_num_threads``). Nothing here imports torch. Amdahl's law and its fits are in
``_amdahl``.
"""

from __future__ import annotations

import contextlib
import math
import sys
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.prices import EXAMPLE_MACHINES, Machine, cost_per_1k
from mlscale_lab.scaling._amdahl import amdahl_speedup
from mlscale_lab.validation import check_fraction, check_int, check_number, check_positive

__all__ = ["ThreadScaling", "measure_thread_scaling", "threads_limited", "vertical_cost_table"]


@dataclass(frozen=True)
class ThreadScaling:
    """Wall-clock seconds of one workload at each thread count, round by round.

    Attributes
    ----------
    threads : tuple of int
    seconds : tuple of float
        The median seconds at each thread count.
    samples : tuple of tuple of float
        Per thread count, the seconds of each timed round; rounds are aligned across thread
        counts (round ``i`` ran every count on the same machine state).
    parts : dict of (str, int) to tuple of float
        Pieces of the workload timed on their own in the same rounds: ``(name, threads)`` to
        the seconds of each round. A part timed at one thread count only is serial: its time
        is the same on any number of threads.

    Examples
    --------
    >>> ThreadScaling((1, 2), (1.0, 0.625)).speedup
    (1.0, 1.6)
    >>> r = ThreadScaling((1, 2), (1.0, 0.5), ((1.0, 1.1, 0.9), (0.5, 0.55, 0.45)))
    >>> print(r.speedup_interval(2))
    2 (95 % CI 2 to 2, paired bootstrap of the ratio, n=3)
    """

    threads: tuple[int, ...]
    seconds: tuple[float, ...]
    samples: tuple[tuple[float, ...], ...] = field(default=(), repr=False)
    parts: dict = field(default_factory=dict, repr=False)

    @property
    def speedup(self) -> tuple[float, ...]:
        """Speedup of the medians against the first thread count (usually 1)."""
        return tuple(self.seconds[0] / s for s in self.seconds)

    def speedup_interval(self, threads: int, level: float = 0.95):
        """Paired bootstrap interval of the speedup at ``threads`` over the first thread count."""
        from mlscale_lab.evidence import ratio_interval

        if threads not in self.threads:
            raise ValueError(f"ThreadScaling.speedup_interval(threads={threads!r}): expected one "
                             f"of the thread counts measured, {list(self.threads)}")
        if not self.samples:
            raise ValueError("ThreadScaling.speedup_interval: no per-round samples to bootstrap "
                             "(measure with measure_thread_scaling)")
        i = self.threads.index(threads)
        return ratio_interval(self.samples[0], self.samples[i], level, paired=True)

    def _part(self, name: str, threads: int) -> np.ndarray:
        counts = sorted(n for part, n in self.parts if part == name)
        if not counts:
            raise ValueError(f"ThreadScaling: no part {name!r} was timed; the parts are "
                             f"{sorted({part for part, _ in self.parts})}")
        if threads not in counts and len(counts) > 1:
            raise ValueError(f"ThreadScaling: part {name!r} was timed at {counts} threads, "
                             f"not at {threads}")
        return np.asarray(self.parts[(name, threads if threads in counts else counts[0])])

    def predicted_seconds(self, threads: int) -> np.ndarray:
        """Per round, the sum of the parts' seconds at ``threads``: what the whole pass should
        take if it is nothing but its parts (a serial part counts its one-thread time)."""
        names = sorted({part for part, _ in self.parts})
        if not names:
            raise ValueError("ThreadScaling.predicted_seconds: no parts were timed (pass parts= "
                             "to measure_thread_scaling)")
        return np.sum([self._part(name, threads) for name in names], axis=0)

    def part_share(self, name: str, threads: int = 1, level: float = 0.95):
        """Paired bootstrap interval of part ``name``'s share of the sum of the parts."""
        from mlscale_lab.evidence import ratio_interval

        iv = ratio_interval(self._part(name, threads), self.predicted_seconds(threads), level)
        return type(iv)(iv.estimate, iv.low, iv.high, iv.level,
                        f"share of {name} in the parts, {iv.method}", iv.n)

    def part_speedup(self, name: str, threads: int, level: float = 0.95):
        """Paired bootstrap interval of part ``name``'s speedup at ``threads`` over its fewest."""
        from mlscale_lab.evidence import ratio_interval

        first = min(n for part, n in self.parts if part == name) if self.parts else threads
        return ratio_interval(self._part(name, first), self._part(name, threads), level)

    def prediction_ratio(self, threads: int, level: float = 0.95):
        """Paired bootstrap interval of the whole pass's measured seconds at ``threads`` over
        the time its parts predict (:meth:`predicted_seconds`): 1 when the law's form holds."""
        from mlscale_lab.evidence import ratio_interval

        if threads not in self.threads:
            raise ValueError(f"ThreadScaling.prediction_ratio(threads={threads!r}): expected "
                             f"one of the thread counts measured, {list(self.threads)}")
        measured = self.samples[self.threads.index(threads)]
        iv = ratio_interval(measured, self.predicted_seconds(threads), level, paired=True)
        return type(iv)(iv.estimate, iv.low, iv.high, iv.level,
                        f"measured over predicted, {iv.method}", iv.n)

    def as_dict(self) -> dict:
        """Threads, seconds and speedups as lists (for JSON)."""
        return {"threads": list(self.threads), "seconds": list(self.seconds), "speedup": list(self.speedup)}


def _set_threads(n: int, controller=None):
    """Limit every thread pool to ``n``; return a callable that restores them."""
    if controller is None:
        from threadpoolctl import ThreadpoolController

        controller = ThreadpoolController()
    limiter = controller.limit(limits=n)
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


@contextlib.contextmanager
def threads_limited(n: int):
    """Every thread pool (BLAS, OpenMP, torch's) limited to ``n`` threads inside the block.

    >>> with threads_limited(1):
    ...     _ = np.ones((50, 50)) @ np.ones((50, 50))
    """
    restore = _set_threads(check_int("threads_limited", "n", n, low=1))
    try:
        yield
    finally:
        restore()


def measure_thread_scaling(
    workload: Callable[[], object], threads: Sequence[int] = (1, 2), *, rounds: int = 8,
    warmup: int = 1, parts: Mapping[str, tuple[Callable[[], object], Sequence[int]]] | None = None,
) -> ThreadScaling:
    """Time ``workload()`` at each thread count in ``threads``, in interleaved rounds.

    Each round runs every thread count once, in an order that rotates from round to round
    (:func:`mlscale_lab.evidence.interleave`), so a slow moment of the machine slows every
    count alike instead of one block of them; warm-up rounds are discarded and garbage
    collection is off while a call is timed.

    Parameters
    ----------
    workload : callable
        Called with no arguments; the same work every call.
    threads : sequence of int
        Thread counts to try, e.g. ``range(1, cpus + 1)``. Counts above the CPUs you have
        measure oversubscription, not scaling.
    rounds : int, default 8
        Timed rounds (>= 2): one call per thread count each.
    warmup : int, default 1
        Rounds run first and discarded (caches, lazy initialisation).
    parts : mapping of str to (callable, sequence of int), optional
        Pieces of the workload to time on their own in the same rounds, each at the thread
        counts given: ``{"parse": (parse, [1]), "mlp": (forward, [1, 2])}``. A part given one
        count is taken as serial. Their sum predicts the whole pass
        (:meth:`ThreadScaling.prediction_ratio`).

    Returns
    -------
    ThreadScaling

    Raises
    ------
    RuntimeError
        While ``tracemalloc`` traces: it slows every allocation and would be timed too.

    Examples
    --------
    >>> r = measure_thread_scaling(lambda: sum(range(1000)), (1, 2), rounds=3)
    >>> r.threads, r.speedup[0], len(r.samples[1])
    ((1, 2), 1.0, 3)
    """
    from threadpoolctl import ThreadpoolController

    from mlscale_lab.evidence import interleave

    func = "measure_thread_scaling"
    if not callable(workload):
        raise TypeError(f"{func}(workload={workload!r}): expected a callable taking no arguments, "
                        f"got {type(workload).__name__}")
    threads = tuple(check_int(func, "threads[...]", t, low=1) for t in threads)
    if not threads:
        raise ValueError(f"{func}(threads=()): expected at least one thread count, got none")
    if len(set(threads)) != len(threads):
        raise ValueError(f"{func}(threads={list(threads)}): expected each thread count once")
    rounds = check_int(func, "rounds", rounds, low=2)
    warmup = check_int(func, "warmup", warmup, low=0)
    if tracemalloc.is_tracing():
        raise RuntimeError(f"{func}: tracemalloc is tracing, which slows every allocation and "
                           "would be timed with the workload; call tracemalloc.stop() first")
    controller = ThreadpoolController()

    # setting the pools takes microseconds, beside the workload's time
    arms = {str(n): _pinned(workload, n, controller) for n in threads}
    part_arms = {}
    for name, (fn, counts) in (parts or {}).items():
        if not callable(fn):
            raise TypeError(f"{func}(parts={{{name!r}: ...}}): expected (callable, thread counts)")
        for n in counts:
            n = check_int(func, f"parts[{name!r}] threads", n, low=1)
            arms[f"{name}@{n}"] = _pinned(fn, n, controller)
            part_arms[(name, n)] = f"{name}@{n}"
    timings = interleave(arms, rounds=rounds, warmup=warmup)
    samples = tuple(tuple(float(x) for x in timings.samples[str(n)]) for n in threads)
    timed = {key: tuple(float(x) for x in timings.samples[arm]) for key, arm in part_arms.items()}
    return ThreadScaling(threads, tuple(float(np.median(x)) for x in samples), samples, timed)


def _pinned(fn, n: int, controller):
    def call():
        restore = _set_threads(n, controller)
        try:
            fn()
        finally:
            restore()
    return call


def vertical_cost_table(
    serial_fraction: float,
    rows_per_second_1cpu: float,
    batch_bytes: float,
    machines: Sequence[Machine] | None = None,
    *,
    memory_headroom: float = 0.7,
    process_bytes: float = 0.0,
    measured_up_to: int | None = None,
) -> list[dict]:
    """What each machine size would give for one workload: Amdahl-predicted throughput, cost
    per million rows, and how the batch fits its memory.

    The speedup is Amdahl's law at the machine's vCPUs: a prediction, and past the thread
    counts actually measured (``measured_up_to``) an extrapolation, which each row says.

    A batch fits in one go when ``process_bytes + batch_bytes <= memory_headroom * memory``
    (the rest is the OS and copies). When it does not, a big machine is one answer and
    out-of-core chunks another: ``chunks`` is the fewest equal chunks whose working set fits,
    each processed and written out before the next is read (lab 01's chunked pass).

    Parameters
    ----------
    serial_fraction : float
        Amdahl's ``s``: fitted (:func:`fit_amdahl_rounds`), or the serial part's measured
        share (:meth:`CsvMlpWorkload.serial_share`), which makes the speedups upper bounds.
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
    measured_up_to : int, optional
        The most threads the serial fraction was measured with: rows with more vCPUs are
        marked ``extrapolated``.

    Returns
    -------
    list of dict
        One row per machine: ``machine``, ``vcpus``, ``memory_bytes``, ``usd_per_hour``,
        ``speedup``, ``rows_per_second``, ``usd_per_million_rows``, ``fits`` (in one go),
        ``chunks`` (1 when it fits; None when the process alone does not fit) and
        ``extrapolated`` (more vCPUs than ``measured_up_to``; False when it is not given).

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
    if measured_up_to is not None:
        measured_up_to = check_int(func, "measured_up_to", measured_up_to, low=1)
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
            "usd_per_million_rows": cost_per_1k(m.usd_per_hour, rate) * 1000,
            "fits": need <= usable,
            "chunks": max(1, math.ceil(need / usable)) if usable > 0 else None,
            "extrapolated": measured_up_to is not None and m.vcpus > measured_up_to,
        })
    return table
