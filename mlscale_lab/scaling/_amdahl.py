"""Amdahl's law: the speedup a serial fraction allows, and the fraction fitted from timings.

``T(p) = T1 * (s + (1 - s) / p)`` has two parameters, ``T1`` and ``s``. Two thread counts (all
a 2-CPU machine can measure) determine them exactly, so such a "fit" reproduces any two
timings and cannot test the law; a test needs more thread counts than parameters, or a
prediction made from something else (the serial part timed on its own) held against the
measured speedup. :func:`fit_amdahl_rounds` says which case it is in, and its interval comes
from the timing rounds (bootstrap), so a noisy machine shows as a wide interval, not a
confident wrong ``s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlscale_lab.validation import check_fraction, check_int

__all__ = ["AmdahlFit", "amdahl_ceiling", "amdahl_speedup", "fit_amdahl", "fit_amdahl_rounds",
           "holdout_ratio"]


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


@dataclass(frozen=True)
class AmdahlFit:
    """Amdahl's ``s`` fitted by least squares to timings at several thread counts.

    Attributes
    ----------
    serial_fraction : Interval
        The fitted ``s`` and its bootstrap interval over the timing rounds.
    threads : tuple of int
        The thread counts fitted.
    parameters : int
        The law's parameters in seconds (``T1`` and ``s``): 2.

    Examples
    --------
    >>> from mlscale_lab.evidence import Interval
    >>> fit = AmdahlFit(Interval(0.6, 0.55, 0.65, 0.95, "bootstrap", 8), (1, 2))
    >>> fit.exactly_determined, fit.measured_up_to
    (True, 2)
    """

    serial_fraction: object
    threads: tuple[int, ...]
    parameters: int = 2

    @property
    def points(self) -> int:
        """Distinct thread counts measured."""
        return len(set(self.threads))

    @property
    def exactly_determined(self) -> bool:
        """As many points as parameters (or fewer): the curve passes through every point, so
        they cannot test the law."""
        return self.points <= self.parameters

    @property
    def measured_up_to(self) -> int:
        """The most threads measured: a prediction past it is an extrapolation."""
        return max(self.threads)

    def describe(self) -> str:
        """One sentence on what the fit can and cannot say."""
        s = f"serial fraction {self.serial_fraction}, fitted on {self.points} thread counts"
        if self.exactly_determined:
            return (f"{s} for {self.parameters} parameters (T1 and s): exactly determined, so the "
                    "curve passes through the points whatever they are, and they cannot test "
                    "Amdahl's law; predictions past "
                    f"{self.measured_up_to} threads are extrapolations")
        return (f"{s} for {self.parameters} parameters ({self.points - self.parameters} to spare); "
                f"predictions past {self.measured_up_to} threads are extrapolations")


def _fit_seconds(p: np.ndarray, t: np.ndarray) -> float:
    """s from a least-squares line of seconds on 1/p: intercept T1*s, slope T1*(1-s)."""
    design = np.column_stack([np.ones_like(p), 1 / p])
    (serial, parallel), *_ = np.linalg.lstsq(design, t, rcond=None)
    total = serial + parallel
    return float(np.clip(serial / total, 0.0, 1.0)) if total > 0 else 1.0


def fit_amdahl_rounds(scaling, *, level: float = 0.95, n_resamples: int = 1000,
                      seed: int = 0) -> AmdahlFit:
    """Fit ``s`` to a :class:`ThreadScaling`'s median seconds, with a bootstrap interval.

    The least-squares line of the median seconds on ``1/p`` gives ``s`` (as in the lab's
    exercise: no speedup, so no one-thread run is needed); the interval resamples the timing
    rounds (every thread count of a round together, as they ran on the same machine state)
    and refits, ``n_resamples`` times.

    Parameters
    ----------
    scaling : ThreadScaling
        From :func:`measure_thread_scaling`, with its per-round samples.
    level : float, default 0.95
    n_resamples : int, default 1000
    seed : int, default 0

    Returns
    -------
    AmdahlFit

    Examples
    --------
    >>> from mlscale_lab.scaling import ThreadScaling
    >>> p = (1, 2, 4)
    >>> rounds = [[2.0 * (0.25 + 0.75 / q) * (1 + 0.01 * r) for r in range(6)] for q in p]
    >>> fit = fit_amdahl_rounds(ThreadScaling(p, tuple(np.median(r) for r in rounds), tuple(map(tuple, rounds))))
    >>> round(fit.serial_fraction.estimate, 3), fit.exactly_determined
    (0.25, False)
    """
    func = "fit_amdahl_rounds"
    threads = tuple(getattr(scaling, "threads", ()))
    if len(set(threads)) < 2:
        raise ValueError(f"{func}(scaling=...): expected timings at two or more thread counts, "
                         f"got {list(threads)}: nothing to fit")
    x, p = _round_samples(func, scaling)

    def fit(cols):
        return _fit_seconds(p, np.median(x[:, cols], axis=1))

    iv = _over_rounds(func, fit, x.shape[1], level, n_resamples, seed, "bootstrap over timing rounds")
    return AmdahlFit(iv, threads)


def _round_samples(func: str, scaling) -> tuple[np.ndarray, np.ndarray]:
    """``scaling``'s per-round seconds (thread counts x rounds) and its thread counts."""
    samples = getattr(scaling, "samples", ())
    if not samples:
        raise ValueError(f"{func}(scaling=...): expected per-round samples (measure with "
                         "measure_thread_scaling); without rounds there is no interval")
    return np.asarray(samples, dtype=float), np.asarray(scaling.threads, dtype=float)


def _over_rounds(func: str, statistic, rounds: int, level: float, n_resamples: int, seed: int,
                 method: str):
    """``statistic(columns)`` on every round, with a bootstrap interval that resamples whole
    rounds (all thread counts of a round together)."""
    from mlscale_lab.evidence import Interval

    level = check_fraction(func, "level", level, low_open=True, high_open=True)
    n_resamples = check_int(func, "n_resamples", n_resamples, low=100)
    est = statistic(np.arange(rounds))
    rng = np.random.default_rng(seed)
    boot = [statistic(i) for i in rng.integers(0, rounds, (n_resamples, rounds))]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(est), float(lo), float(hi), level, method, int(rounds))


def holdout_ratio(scaling, held_out: int | None = None, *, level: float = 0.95,
                  n_resamples: int = 1000, seed: int = 0):
    """Test the law on a thread count it was not fitted on: measured over predicted seconds.

    The line of median seconds on ``1/p`` is fitted to every count but ``held_out`` (default:
    the most threads), and predicts ``T(held_out)``; the interval resamples the timing rounds
    (all counts of a round together), refitting each time, so it carries the fit's
    uncertainty and the measurement's. 1 means the law predicted the held-out count.

    Parameters
    ----------
    scaling : ThreadScaling
        With per-round samples at three or more thread counts.
    held_out : int, optional
        The count to predict; default the largest.
    level, n_resamples, seed
        As in :func:`fit_amdahl_rounds`.

    Returns
    -------
    Interval

    Raises
    ------
    NotEnoughData
        With fewer than three thread counts: a fit on the others needs two.

    Examples
    --------
    >>> from mlscale_lab.scaling import ThreadScaling
    >>> p = (1, 2, 3, 4)
    >>> rounds = [[2.0 * (0.25 + 0.75 / q) * (1 + 0.01 * r) for r in range(6)] for q in p]
    >>> iv = holdout_ratio(ThreadScaling(p, tuple(np.median(r) for r in rounds), tuple(map(tuple, rounds))))
    >>> round(iv.estimate, 3)
    1.0
    """
    from mlscale_lab.evidence import NotEnoughData

    func = "holdout_ratio"
    threads = tuple(getattr(scaling, "threads", ()))
    if len(set(threads)) < 3:
        raise NotEnoughData(f"{func}: needs timings at three or more thread counts (fit on two, "
                            f"predict a third), got {list(threads)}")
    x, p = _round_samples(func, scaling)
    k = max(threads) if held_out is None else int(held_out)
    if k not in threads:
        raise ValueError(f"{func}(held_out={held_out!r}): expected one of {list(threads)}")
    fit_rows = p != k
    design = np.column_stack([np.ones(int(fit_rows.sum())), 1 / p[fit_rows]])

    def ratio(cols):
        med = np.median(x[:, cols], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, med[fit_rows], rcond=None)
        return float(med[threads.index(k)] / (a + b / k))

    fitted = ", ".join(str(t) for t in threads if t != k)
    return _over_rounds(func, ratio, x.shape[1], level, n_resamples, seed,
                        f"{k}-thread seconds over the law fitted on {fitted}, bootstrap over rounds")
