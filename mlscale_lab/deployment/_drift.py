"""Drift detectors: watch a model's stream of errors and raise an alarm when it gets worse.

:class:`PageHinkley` is the reference detector of lab 04: a cumulative-sum test on the
deviations of each value from the running mean (Page 1954; Hinkley 1971), the same test as
``river.drift.PageHinkley``. Feed it the 0/1 errors of a model, one at a time.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
>>> alarms = detect_drifts(PageHinkley(), errors)
>>> len(alarms), 3000 <= alarms[0] < 3300
(1, True)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


def _check_number(name: str, value, *, minimum: float = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    bad = value <= minimum if strict else value < minimum
    if bad or not np.isfinite(value):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {minimum:g}, got {value!r}")
    return value


class PageHinkley:
    """Page-Hinkley test for an increase in the mean of a stream (e.g. a model's error rate).

    After each value ``x`` it updates the running mean ``mean``, the cumulative sum
    ``m = alpha * m + (x - mean - delta)`` and its minimum ``m_min``; it signals drift when
    ``m - m_min > threshold`` (after ``min_instances`` values), then starts afresh.

    Parameters
    ----------
    delta : float, default 0.03
        Changes in the mean smaller than this are tolerated. Larger: fewer false alarms on a
        noisy stream, and small drifts go unnoticed.
    threshold : float, default 30
        The alarm level ``lambda``. Larger: fewer false alarms, longer detection delay.
    alpha : float in (0, 1], default 1.0
        Forgetting factor of the cumulative sum (1 = no forgetting, the classical test).
    min_instances : int, default 30
        Values seen before an alarm is allowed.

    Examples
    --------
    >>> ph = PageHinkley(threshold=5)
    >>> sum(ph.update(0.0) for _ in range(1000))  # a stable stream: no alarm
    0
    >>> next(i for i in range(100) if ph.update(1.0))  # errors jump from 0 to 1
    5
    """

    def __init__(
        self,
        delta: float = 0.03,
        threshold: float = 30.0,
        alpha: float = 1.0,
        min_instances: int = 30,
    ):
        self.delta = _check_number("delta", delta)
        self.threshold = _check_number("threshold", threshold, strict=True)
        self.alpha = _check_number("alpha", alpha, strict=True)
        if self.alpha > 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        if (
            isinstance(min_instances, bool)
            or not isinstance(min_instances, (int, np.integer))
            or min_instances < 1
        ):
            raise ValueError(f"min_instances must be an integer >= 1, got {min_instances!r}")
        self.min_instances = int(min_instances)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far (done automatically after an alarm)."""
        self.n = 0
        self.mean = 0.0
        self.sum = 0.0
        self.min_sum = 0.0
        self.drift_detected = False

    @property
    def statistic(self) -> float:
        """The current test statistic ``m - m_min``; drift when it exceeds ``threshold``."""
        return self.sum - self.min_sum

    def update(self, x: float) -> bool:
        """Add one value; return True when it completes a drift (the detector then resets)."""
        if self.drift_detected:
            self.reset()
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.sum = self.alpha * self.sum + (x - self.mean - self.delta)
        self.min_sum = min(self.min_sum, self.sum)
        self.drift_detected = self.n >= self.min_instances and self.statistic > self.threshold
        return self.drift_detected

    def __repr__(self) -> str:
        return (
            f"PageHinkley(delta={self.delta:g}, threshold={self.threshold:g}, alpha={self.alpha:g}, "
            f"min_instances={self.min_instances})"
        )


def detect_drifts(detector, values: Iterable[float]) -> list[int]:
    """Feed ``values`` one by one to ``detector`` (anything with ``update(x) -> bool``);
    return the indices at which it raised an alarm."""
    if not callable(getattr(detector, "update", None)):
        raise TypeError(
            f"detector must have an update(x) method returning a bool, got {detector!r}"
        )
    return [i for i, x in enumerate(values) if detector.update(float(x))]


@dataclass(frozen=True)
class DetectionReport:
    """How a detector did against known drift points."""

    delays: tuple[int | None, ...]  #: samples from each drift to its first alarm (None: missed)
    false_alarms: int  #: alarms not attributed to a drift
    alarms: tuple[int, ...]

    @property
    def detected_all(self) -> bool:
        return all(d is not None for d in self.delays)


def score_detections(
    alarms: Iterable[int], drift_points: Iterable[int], *, max_delay: int
) -> DetectionReport:
    """Match alarms to drifts: the first alarm in ``[drift, drift + max_delay)`` detects it;
    every other alarm is false.

    >>> score_detections([120, 5150, 7000], [5000], max_delay=300)
    DetectionReport(delays=(150,), false_alarms=2, alarms=(120, 5150, 7000))
    """
    max_delay = int(_check_number("max_delay", max_delay, strict=True))
    alarms = tuple(sorted(int(a) for a in alarms))
    points = [int(p) for p in drift_points]
    used: set[int] = set()
    delays: list[int | None] = []
    for p in points:
        hit = next((a for a in alarms if p <= a < p + max_delay and a not in used), None)
        if hit is not None:
            used.add(hit)
        delays.append(None if hit is None else hit - p)
    return DetectionReport(tuple(delays), len(alarms) - len(used), alarms)


class Adwin:
    """ADWIN-style detector (Bifet & Gavaldà, 2007): an adaptive window of recent values that
    drops its older part when the two parts' means differ by more than chance allows.

    Every ``clock`` values, each split of the window into an older part (``n0`` values, mean
    ``mu0``) and a newer part (``n1``, ``mu1``) is tested with the bound
    ``eps = sqrt(2 / m * var * ln(2 / d)) + 2 / (3 m) * ln(2 / d)``, where
    ``m = 1 / (1 / n0 + 1 / n1)``, ``var`` is the window's variance and ``d = delta / ln(n)``.
    A split with ``|mu0 - mu1| > eps`` is a drift: the older part is dropped. This version keeps
    the values themselves (at most ``max_window``) instead of ADWIN's exponential histogram,
    so it is easy to read and fast enough for streams of tens of thousands of values.

    Parameters
    ----------
    delta : float in (0, 1), default 0.002
        Confidence: smaller means fewer false alarms and later detection.
    clock : int, default 32
        Test the splits every ``clock`` values.
    max_window : int, default 5000
        Oldest values beyond this are forgotten.
    min_side : int, default 10
        Fewest values on each side of a tested split.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
    >>> alarms = detect_drifts(Adwin(), errors)
    >>> len(alarms), 3000 <= alarms[0] < 3300
    (1, True)
    """

    def __init__(
        self, delta: float = 0.002, clock: int = 32, max_window: int = 5000, min_side: int = 10
    ):
        self.delta = _check_number("delta", delta, strict=True)
        if self.delta >= 1:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        for name, v, lo in (
            ("clock", clock, 1),
            ("max_window", max_window, 2),
            ("min_side", min_side, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        if 2 * min_side > max_window:
            raise ValueError(
                f"min_side={min_side} leaves no split in max_window={max_window}; use min_side <= max_window / 2"
            )
        self.clock, self.max_window, self.min_side = int(clock), int(max_window), int(min_side)
        self.window: list[float] = []
        self.drift_detected = False
        self._since_check = 0

    @property
    def width(self) -> int:
        """Values in the window now."""
        return len(self.window)

    def update(self, x: float) -> bool:
        """Add one value; return True when the window just dropped its older part."""
        self.window.append(float(x))
        if len(self.window) > self.max_window:
            del self.window[0]
        self._since_check += 1
        self.drift_detected = False
        if self._since_check >= self.clock and len(self.window) >= 2 * self.min_side:
            self._since_check = 0
            cut = self._find_cut()
            if cut is not None:
                del self.window[:cut]
                self.drift_detected = True
        return self.drift_detected

    def _find_cut(self) -> int | None:
        w = np.asarray(self.window)
        n = w.size
        csum = np.cumsum(w)
        n0 = np.arange(self.min_side, n - self.min_side + 1)
        n1 = n - n0
        mu0 = csum[n0 - 1] / n0
        mu1 = (csum[-1] - csum[n0 - 1]) / n1
        m = 1.0 / (1.0 / n0 + 1.0 / n1)
        d = self.delta / np.log(n)
        var = w.var()
        eps = np.sqrt(2.0 / m * var * np.log(2.0 / d)) + 2.0 / (3.0 * m) * np.log(2.0 / d)
        over = np.nonzero(np.abs(mu0 - mu1) > eps)[0]
        # Drop the largest older part that differs: everything before the last significant split.
        return int(n0[over[-1]]) if over.size else None

    def __repr__(self) -> str:
        return f"Adwin(delta={self.delta:g}, clock={self.clock}, max_window={self.max_window}, min_side={self.min_side})"
