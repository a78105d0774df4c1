"""Intervals: what a measured number is, give or take, at a stated confidence level.

Each function takes raw measurements and returns an :class:`Interval`. Where scipy has the
interval it is used (Student t, ``scipy.stats.bootstrap``, ``binomtest(...).proportion_ci``,
the binomial distribution of order statistics); nothing here is hand-rolled that scipy does.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from mlscale_lab.validation import check_fraction, check_int

__all__ = ["Interval", "NotEnoughData", "batch_means_interval", "block_bootstrap_interval",
           "bootstrap_interval",
           "mean_interval", "proportion_interval", "quantile_interval", "ratio_interval",
           "samples_for_quantile"]


class NotEnoughData(ValueError):
    """Too few measurements to bound the quantity; the message says how many are needed."""


@dataclass(frozen=True)
class Interval:
    """A measured quantity with its confidence interval.

    Attributes
    ----------
    estimate : float
        The point estimate (the statistic on the data as measured).
    low, high : float
        The interval's ends.
    level : float
        Its confidence level (0.95 for a 95 % interval).
    method : str
        How it was computed ("Student t", "bootstrap BCa", "exact binomial", ...).
    n : int
        How many measurements it rests on.

    Examples
    --------
    >>> iv = Interval(4.0, 3.8, 4.2, 0.95, "bootstrap BCa", 30)
    >>> print(iv)
    4 (95 % CI 3.8 to 4.2, bootstrap BCa, n=30)
    >>> iv.contains(3.9), round(iv.width, 3)
    (True, 0.4)
    >>> print(iv.scaled(100, digits=1))
    400.0 (95 % CI 380.0 to 420.0, bootstrap BCa, n=30)
    >>> print(iv.relative_to(4.1))  # against a reference: -2.4 % (-7.3 % to +2.4 %)
    -0.0244 (95 % CI -0.0732 to 0.0244, bootstrap BCa, n=30)
    """

    estimate: float
    low: float
    high: float
    level: float = 0.95
    method: str = ""
    n: int = 0
    digits: int | None = None

    @classmethod
    def exact(cls, value: float, method: str = "computed, no sampling error") -> Interval:
        """A quantity known exactly (a byte count, a deterministic comparison): low = high."""
        v = float(value)
        return cls(v, v, v, 1.0, method, 1)

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (ends included)."""
        return self.low <= value <= self.high

    def scaled(self, factor: float, *, digits: int | None = None) -> Interval:
        """The same interval in another unit (``factor=1000`` for seconds to milliseconds)."""
        lo, hi = sorted((self.low * factor, self.high * factor))
        return Interval(self.estimate * factor, lo, hi, self.level, self.method, self.n,
                        self.digits if digits is None else digits)

    def relative_to(self, reference: float) -> Interval:
        """The interval of ``quantity / reference - 1``: a simulator against theory, say."""
        ref = float(reference)
        if not math.isfinite(ref) or ref <= 0:
            raise ValueError(f"Interval.relative_to(reference={reference!r}): expected a "
                             "finite reference > 0")
        return Interval(self.estimate / ref - 1, self.low / ref - 1, self.high / ref - 1,
                        self.level, self.method, self.n, self.digits)

    def _fmt(self, x: float) -> str:
        return f"{x:.{self.digits}f}" if self.digits is not None else f"{x:.3g}"

    def __str__(self) -> str:
        if self.level >= 1:
            return f"{self._fmt(self.estimate)} ({self.method})"
        ci = f"{self.level * 100:.0f} % CI {self._fmt(self.low)} to {self._fmt(self.high)}"
        return f"{self._fmt(self.estimate)} ({ci}, {self.method}, n={self.n})"

    def as_dict(self) -> dict:
        """The fields as a plain dict (for :func:`mlscale_lab.record` and JSON)."""
        d = asdict(self)
        d.pop("digits")
        return d


def _samples(func: str, samples, minimum: int = 2) -> np.ndarray:
    x = np.asarray(samples, dtype=float).ravel()
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{func}(samples=...): expected finite numbers, got NaN or inf among "
                         f"{x.size} values; drop failed measurements before summarising")
    if x.size < minimum:
        raise NotEnoughData(f"{func}: needs at least {minimum} measurements, got {x.size}")
    return x


def _level(func: str, level: float) -> float:
    return check_fraction(func, "level", level, low_open=True, high_open=True)


def mean_interval(samples, level: float = 0.95) -> Interval:
    """Student t interval of the mean of independent measurements.

    Examples
    --------
    >>> iv = mean_interval([9.8, 10.1, 10.0, 10.3, 9.9])
    >>> round(iv.estimate, 2), round(iv.low, 2), round(iv.high, 2)
    (10.02, 9.78, 10.26)
    """
    level = _level("mean_interval", level)
    x = _samples("mean_interval", samples)
    m, se = float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * se
    return Interval(m, m - half, m + half, level, "Student t", int(x.size))


def bootstrap_interval(samples, statistic=np.median, level: float = 0.95, *,
                       n_resamples: int = 2000, seed: int = 0) -> Interval:
    """Bootstrap interval of ``statistic`` over independent measurements (``scipy.stats.bootstrap``).

    BCa (bias-corrected and accelerated) from 20 measurements on; the percentile interval below
    that, where BCa's acceleration estimate is unstable. Identical measurements give a
    zero-width interval.

    Examples
    --------
    >>> ms = [12.1, 11.8, 12.6, 12.0, 15.3, 12.2, 11.9, 12.4, 12.0, 12.3]  # one slow call
    >>> print(bootstrap_interval(ms))  # the median, give or take
    12.1 (95 % CI 12 to 12.4, bootstrap percentile, n=10)
    """
    level = _level("bootstrap_interval", level)
    check_int("bootstrap_interval", "n_resamples", n_resamples, low=100)
    x = _samples("bootstrap_interval", samples)
    est = float(statistic(x))
    if np.all(x == x[0]):
        return Interval(est, est, est, level, "bootstrap (all measurements equal)", int(x.size))
    method = "BCa" if x.size >= 20 else "percentile"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a test cell's stderr costs its points: keep it quiet
        res = stats.bootstrap((x,), statistic, confidence_level=level, n_resamples=n_resamples,
                              method=method, random_state=np.random.default_rng(seed))
        ends = (float(res.confidence_interval.low), float(res.confidence_interval.high))
        if method == "BCa" and not all(math.isfinite(e) for e in ends):
            method = "percentile"  # BCa is undefined on near-degenerate data (ties): fall back
            res = stats.bootstrap((x,), statistic, confidence_level=level,
                                  n_resamples=n_resamples, method=method,
                                  random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(est, lo, hi, level, f"bootstrap {method}", int(x.size))


def proportion_interval(successes: int, n: int, level: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval of a proportion: an accuracy on ``n`` test rows.

    Examples
    --------
    >>> iv = proportion_interval(439, 450)  # 97.6 % on 450 images
    >>> round(iv.low, 3), round(iv.high, 3)
    (0.957, 0.988)
    """
    level = _level("proportion_interval", level)
    n = check_int("proportion_interval", "n", n, low=1)
    k = check_int("proportion_interval", "successes", successes, low=0, high=n)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return Interval(k / n, float(ci.low), float(ci.high), level, "exact binomial", n)


def _quantile_ranks(n: int, q: float, level: float) -> tuple[int, int]:
    """1-based ranks (l, u) with P(X_(l) <= xi_q <= X_(u)) >= level; l=0 or u=n+1 if unbounded."""
    alpha = 1 - level
    lower = int(stats.binom.ppf(alpha / 2, n, q))  # P(B < lower) < alpha / 2
    upper = int(stats.binom.ppf(1 - alpha / 2, n, q)) + 1  # P(B >= upper) <= alpha / 2
    return lower, upper


def samples_for_quantile(q: float, level: float = 0.95) -> int:
    """The fewest measurements whose order statistics bound the ``q`` quantile at ``level``.

    A p99 from 100 requests is one or two order statistics: no interval can say where the true
    p99 lies. This is how many it takes.

    Examples
    --------
    >>> samples_for_quantile(0.5)
    6
    >>> samples_for_quantile(0.99)
    368
    """
    q = check_fraction("samples_for_quantile", "q", q, low_open=True, high_open=True)
    level = _level("samples_for_quantile", level)
    # the upper end needs P(all n below xi_q) = q**n <= (1 - level) / 2; start from there
    n = max(2, math.ceil(math.log((1 - level) / 2) / math.log(max(q, 1 - q))) - 1)
    while True:
        lower, upper = _quantile_ranks(n, q, level)
        if lower >= 1 and upper <= n:
            return n
        n += 1


def quantile_interval(samples, q: float, level: float = 0.95) -> Interval:
    """Distribution-free interval of the ``q`` quantile (p99: ``q=0.99``) from order statistics.

    The number of measurements below the true quantile is binomial(n, q) whatever the
    distribution, so two order statistics bound it at ``level`` (no bootstrap, which is
    unreliable in the tails).

    Raises
    ------
    NotEnoughData
        When ``n`` is too small for both ends to exist; the message says how many are needed.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.exponential(1.0, 2000)
    >>> iv = quantile_interval(x, 0.99)
    >>> bool(iv.low < -np.log(0.01) < iv.high)  # the p99 of Exp(1) is 4.6
    True
    >>> quantile_interval(x[:100], 0.99)
    Traceback (most recent call last):
    ...
    mlscale_lab.evidence._intervals.NotEnoughData: quantile_interval: 100 measurements cannot bound the 0.99 quantile at 95 %; it takes at least 368
    """
    q = check_fraction("quantile_interval", "q", q, low_open=True, high_open=True)
    level = _level("quantile_interval", level)
    x = np.sort(_samples("quantile_interval", samples))
    lower, upper = _quantile_ranks(x.size, q, level)
    if lower < 1 or upper > x.size:
        need = samples_for_quantile(q, level)
        raise NotEnoughData(f"quantile_interval: {x.size} measurements cannot bound the {q:g} "
                            f"quantile at {level * 100:.0f} %; it takes at least {need}")
    est = float(np.quantile(x, q))
    return Interval(est, float(x[lower - 1]), float(x[upper - 1]), level, "order statistics",
                    int(x.size))


def ratio_interval(a, b, level: float = 0.95, *, statistic=np.median, paired: bool = True,
                   n_resamples: int = 2000, seed: int = 0) -> Interval:
    """Bootstrap interval of ``statistic(a) / statistic(b)``: a speedup, a size or latency ratio.

    ``paired=True`` (timings taken in interleaved rounds, ``a[i]`` and ``b[i]`` from the same
    round) resamples rounds together, so a slow moment of the machine slows both sides of the
    ratio and cancels; ``paired=False`` resamples each side on its own.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> slow = rng.normal(2.0, 0.05, 40)
    >>> fast = slow / 2 * rng.normal(1.0, 0.01, 40)
    >>> iv = ratio_interval(slow, fast)
    >>> 1.95 < iv.low < iv.estimate < iv.high < 2.05
    True
    """
    level = _level("ratio_interval", level)
    check_int("ratio_interval", "n_resamples", n_resamples, low=100)
    x, y = _samples("ratio_interval", a), _samples("ratio_interval", b)
    if paired and x.size != y.size:
        raise ValueError(f"ratio_interval(paired=True): a and b must come in pairs (one of each "
                         f"per round), got {x.size} and {y.size}; pass paired=False otherwise")
    if np.any(y <= 0):
        raise ValueError("ratio_interval(b=...): expected positive measurements in b (times or "
                         f"sizes), got a minimum of {float(y.min())!r}")
    den = float(statistic(y))

    def ratio(u, v, axis=-1):
        return statistic(u, axis=axis) / statistic(v, axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((x, y), ratio, paired=paired, vectorized=True,
                              confidence_level=level, n_resamples=n_resamples,
                              method="percentile", random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    method = "paired bootstrap" if paired else "bootstrap"
    return Interval(float(statistic(x)) / den, lo, hi, level, f"{method} of the ratio",
                    int(min(x.size, y.size)))


def batch_means_interval(series, batches: int = 20, level: float = 0.95) -> Interval:
    """Interval of the long-run mean of an autocorrelated series (a simulator's waits).

    Consecutive waits in a queue are correlated, so ``std / sqrt(n)`` understates the error.
    The method of batch means cuts the series into ``batches`` contiguous batches, whose means
    are nearly independent, and puts a Student t interval on them.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> x = np.repeat(rng.normal(0, 1, 200), 50)  # strongly correlated, true mean 0
    >>> naive = mean_interval(x)
    >>> bm = batch_means_interval(x)
    >>> bm.width > 5 * naive.width
    True
    """
    level = _level("batch_means_interval", level)
    batches = check_int("batch_means_interval", "batches", batches, low=2)
    x = _samples("batch_means_interval", series, minimum=2 * batches)
    size = x.size // batches
    means = x[: size * batches].reshape(batches, size).mean(axis=1)
    iv = mean_interval(means, level)
    return Interval(float(x.mean()), iv.low, iv.high, level, f"batch means ({batches} batches)",
                    int(x.size))


def block_bootstrap_interval(series, statistic=np.median, level: float = 0.95, *,
                             blocks: int = 20, n_resamples: int = 2000, seed: int = 0) -> Interval:
    """Interval of ``statistic`` of an autocorrelated series (queue latencies), by moving blocks.

    Consecutive latencies in a queue rise and fall together (a burst delays many requests in a
    row), so an interval that treats them as independent is too narrow. The moving-block
    bootstrap (Kunsch 1989) resamples contiguous blocks of ``len(series) // blocks`` values,
    which keep the correlation inside them, and takes the percentile interval of ``statistic``
    over ``n_resamples`` series glued from such blocks.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> x = np.repeat(rng.exponential(1.0, 100), 20)  # 2,000 values in runs of 20
    >>> iid = bootstrap_interval(x, lambda v, axis=-1: np.quantile(v, 0.9, axis=axis))
    >>> blocked = block_bootstrap_interval(x, lambda v: np.quantile(v, 0.9))
    >>> blocked.width > 2 * iid.width
    True
    """
    level = _level("block_bootstrap_interval", level)
    blocks = check_int("block_bootstrap_interval", "blocks", blocks, low=2)
    check_int("block_bootstrap_interval", "n_resamples", n_resamples, low=100)
    x = _samples("block_bootstrap_interval", series, minimum=2 * blocks)
    size = x.size // blocks
    starts = np.random.default_rng(seed).integers(0, x.size - size + 1, (n_resamples, blocks))
    idx = (starts[:, :, None] + np.arange(size)).reshape(n_resamples, -1)
    stats_ = np.array([statistic(x[i]) for i in idx], dtype=float)
    lo, hi = np.quantile(stats_, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(statistic(x)), float(lo), float(hi), level,
                    f"moving-block bootstrap ({blocks} blocks)", int(x.size))
