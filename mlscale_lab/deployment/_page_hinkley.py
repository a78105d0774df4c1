"""The Page-Hinkley test: a cumulative sum that climbs when a stream's mean rises.

Page (1954) and Hinkley (1971); the same test as ``river.drift.PageHinkley``, and the reference
detector of lab 04. Feed it a model's 0/1 errors, one at a time, then read ``drift_detected``.

>>> ph = PageHinkley(threshold=5)
>>> alarms = []
>>> for i, x in enumerate([0.0] * 100 + [1.0] * 20):
...     ph.update(x)
...     if ph.drift_detected:
...         alarms.append(i)
>>> alarms
[105]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mlscale_lab.validation import check_int, check_number


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

    Attributes
    ----------
    drift_detected : bool
        Whether the last value given to :meth:`update` completed a drift.

    Examples
    --------
    >>> ph = PageHinkley(threshold=5)
    >>> for _ in range(1000):  # a stable stream: no alarm
    ...     ph.update(0.0)
    >>> ph.drift_detected
    False
    >>> for i in range(100):  # errors jump from 0 to 1
    ...     ph.update(1.0)
    ...     if ph.drift_detected:
    ...         break
    >>> i
    5
    """

    def __init__(
        self,
        delta: float = 0.03,
        threshold: float = 30.0,
        alpha: float = 1.0,
        min_instances: int = 30,
    ):
        fn = "PageHinkley"
        self.delta = check_number(fn, "delta", delta, low=0)
        self.threshold = check_number(fn, "threshold", threshold, low=0, low_open=True)
        self.alpha = check_number(fn, "alpha", alpha, low=0, high=1, low_open=True)
        self.min_instances = check_int(fn, "min_instances", min_instances, low=1)
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far (done automatically on the value after an alarm).

        Examples
        --------
        >>> ph = PageHinkley()
        >>> ph.update(1.0); ph.reset(); ph.n
        0
        """
        self.n = 0
        self.mean = 0.0
        self.sum = 0.0
        self.min_sum = 0.0
        self.drift_detected = False

    @property
    def statistic(self) -> float:
        """The current test statistic ``m - m_min``; drift when it exceeds ``threshold``.

        Examples
        --------
        >>> ph = PageHinkley(delta=0.0)
        >>> for x in (0.0, 0.0, 1.0):
        ...     ph.update(x)
        >>> round(ph.statistic, 3)
        0.667
        """
        return self.sum - self.min_sum

    def update(self, x: float) -> None:
        """Add one value; afterwards ``drift_detected`` says whether it completed a drift.

        As in River, ``update`` returns nothing: read :attr:`drift_detected`. After an alarm the
        next value starts a fresh test.

        Parameters
        ----------
        x : float
            The next value, e.g. 1.0 for a wrong prediction and 0.0 for a right one.

        Examples
        --------
        >>> ph = PageHinkley(threshold=1, min_instances=1)
        >>> ph.update(0.0); ph.drift_detected
        False
        >>> ph.update(5.0); ph.drift_detected
        True
        """
        if self.drift_detected:
            self.reset()
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.sum = self.alpha * self.sum + (x - self.mean - self.delta)
        self.min_sum = min(self.min_sum, self.sum)
        self.drift_detected = self.n >= self.min_instances and self.statistic > self.threshold

    def __repr__(self) -> str:
        return (
            f"PageHinkley(delta={self.delta:g}, threshold={self.threshold:g}, alpha={self.alpha:g}, "
            f"min_instances={self.min_instances})"
        )


def page_hinkley_trace(
    errors: Iterable[float], *, delta: float = 0.03, threshold: float = 30.0, offset: int = 0
) -> tuple[np.ndarray, list[int]]:
    """Run a fresh :class:`PageHinkley` over ``errors``, keeping its statistic after each value.

    What a plot of the test needs: the statistic to draw against the threshold, and the alarms.

    Parameters
    ----------
    errors : iterable of float
        The monitored stream (a model's 0/1 errors).
    delta, threshold : float
        The detector's settings (see :class:`PageHinkley`).
    offset : int, default 0
        Stream position of ``errors[0]`` (e.g. the warm-up length): the statistic is padded with
        ``offset`` NaNs in front and the alarms are shifted by ``offset``.

    Returns
    -------
    statistics : ndarray of shape (offset + len(errors),)
    alarms : list of int
        Stream positions of the alarms.

    Examples
    --------
    >>> stats, alarms = page_hinkley_trace([0.0] * 50 + [1.0] * 50, threshold=5, offset=10)
    >>> stats.shape, alarms
    ((110,), [65])
    """
    offset = check_int("page_hinkley_trace", "offset", offset, low=0)
    ph = PageHinkley(delta=delta, threshold=threshold)
    stats, alarms = [], []
    for i, e in enumerate(errors):
        ph.update(float(e))
        if ph.drift_detected:
            alarms.append(i + offset)
        stats.append(ph.statistic)
    return np.r_[np.full(offset, np.nan), stats], alarms
