"""Timings two ways of doing the same thing can be compared by: A B A B, on one machine state.

Timing A for a minute and then B for a minute compares A on a quiet machine with B during the
backup job that started in between. Interleaving them round by round (A B, then B A, ...) puts
each pair on the same machine state, so a slow moment slows both and the per-round ratio
cancels it; warm-up rounds (caches, lazy initialisation, the first call's allocations) are
discarded, and garbage collection stays off while a call is timed, as ``timeit`` does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from mlscale_lab.evidence._intervals import Interval, bootstrap_interval, ratio_interval
from mlscale_lab.validation import check_int

__all__ = ["Timings", "interleave"]


@dataclass(frozen=True)
class Timings:
    """Seconds per call of each arm, one value per round, rounds aligned across arms.

    Attributes
    ----------
    samples : dict of str to ndarray
        Per arm, seconds per call in each timed round (warm-up dropped).
    rounds : int
    number : int
        Calls per arm per round (their mean is one sample).
    """

    samples: dict[str, np.ndarray]
    rounds: int
    number: int

    def _arm(self, name: str) -> np.ndarray:
        if name not in self.samples:
            raise KeyError(f"Timings: no arm {name!r}; the arms are {sorted(self.samples)}")
        return self.samples[name]

    def median(self, name: str) -> float:
        """Median seconds per call of arm ``name``."""
        return float(np.median(self._arm(name)))

    def interval(self, name: str, level: float = 0.95) -> Interval:
        """Bootstrap interval of the median seconds per call of arm ``name``."""
        return bootstrap_interval(self._arm(name), np.median, level)

    def ratio(self, slow: str, fast: str, level: float = 0.95) -> Interval:
        """Paired interval of ``median(slow) / median(fast)``: how many times faster ``fast`` is."""
        return ratio_interval(self._arm(slow), self._arm(fast), level, paired=True)


def interleave(arms: Mapping[str, Callable[[], object]], *, rounds: int = 20, warmup: int = 1,
               number: int = 1, clock: Callable[[], float] = time.perf_counter) -> Timings:
    """Time each of ``arms`` (name -> a call with no arguments) in interleaved rounds.

    Each round calls every arm ``number`` times, in an order that rotates from round to round
    (so no arm always runs right after another); the first ``warmup`` rounds are not kept.

    Parameters
    ----------
    arms : mapping of str to callable
        At least one; each called with no arguments.
    rounds : int, default 20
        Timed rounds (samples per arm).
    warmup : int, default 1
        Rounds run first and discarded.
    number : int, default 1
        Calls per arm per round; raise it for calls of microseconds.
    clock : callable, default time.perf_counter
        What a sample measures: wall time by default; ``time.process_time`` for the CPU
        seconds of this process (all its threads), the compute a call costs whatever else
        the machine runs. Linux and macOS read it to the microsecond or better; Windows counts
        it in 15.6 ms ticks, so raise ``number`` there until a round lasts many ticks.

    Returns
    -------
    Timings

    Examples
    --------
    >>> t = interleave({"sum": lambda: sum(range(20_000)), "len": lambda: len(range(20_000))},
    ...                rounds=10)
    >>> t.ratio("sum", "len").low > 5  # len is O(1), sum walks 20,000 numbers
    True
    >>> cpu = interleave({"sleep": lambda: time.sleep(0.01)}, rounds=3, clock=time.process_time)
    >>> cpu.median("sleep") < 0.005  # sleeping takes wall time, not CPU time
    True
    """
    if not isinstance(arms, Mapping) or not arms:
        raise ValueError("interleave(arms=...): expected a dict of name -> function, e.g. "
                         "{'fp32': lambda: fp32(x), 'int8': lambda: int8(x)}")
    for name, fn in arms.items():
        if not callable(fn):
            raise TypeError(f"interleave(arms=...): arm {name!r} is not callable")
    rounds = check_int("interleave", "rounds", rounds, low=2)
    warmup = check_int("interleave", "warmup", warmup, low=0)
    number = check_int("interleave", "number", number, low=1)
    if not callable(clock):
        raise TypeError(f"interleave(clock={clock!r}): expected a function returning seconds, "
                        "e.g. time.perf_counter or time.process_time")
    names = list(arms)
    out = {name: [] for name in names}
    gc_was_on = gc.isenabled()
    try:
        for r in range(warmup + rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                fn = arms[name]
                gc.disable()
                t0 = clock()
                for _ in range(number):
                    fn()
                elapsed = clock() - t0
                if gc_was_on:
                    gc.enable()
                if r >= warmup:
                    out[name].append(elapsed / number)
    finally:
        if gc_was_on:
            gc.enable()
    return Timings({k: np.asarray(v) for k, v in out.items()}, rounds, number)
