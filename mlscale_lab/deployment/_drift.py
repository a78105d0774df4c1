"""Using a drift detector on a stream, and scoring it against drifts we know.

Every detector here follows River's protocol, so River's detectors plug in wherever ours do:
``update(x)`` adds one value and returns nothing; the attribute ``drift_detected`` then says
whether that value completed a drift. :func:`detect_drifts` feeds a stream to any of them;
:func:`score_detections` measures the delay to each known drift and counts false alarms.

>>> import numpy as np
>>> from mlscale_lab.deployment import PageHinkley
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
>>> alarms = detect_drifts(PageHinkley(), errors)
>>> score_detections(alarms, [3000], max_delay=300).detected_all
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mlscale_lab.validation import check_int


def _check_detector(func: str, detector) -> None:
    """A detector speaks River's protocol: ``update(x)``, then ``drift_detected``."""
    if not callable(getattr(detector, "update", None)) or not hasattr(detector, "drift_detected"):
        raise TypeError(
            f"{func}(detector={detector!r}): expected a drift detector with an update(x) method "
            f"and a drift_detected attribute (River's protocol, e.g. PageHinkley() or "
            f"river.drift.ADWIN()), got {type(detector).__name__}"
        )


def detect_drifts(detector, values: Iterable[float]) -> list[int]:
    """Feed ``values`` one by one to ``detector``; return the indices at which it alarmed.

    Parameters
    ----------
    detector : object
        Anything with River's protocol: ``update(x)`` adds a value, then ``drift_detected``
        says whether it completed a drift (:class:`PageHinkley`, :class:`Adwin`,
        ``river.drift.PageHinkley()``, ``river.drift.ADWIN()``...).
    values : iterable of float
        The monitored stream, e.g. a model's 0/1 errors.

    Returns
    -------
    list of int
        Positions in ``values`` of the values after which the detector signalled a drift.

    Examples
    --------
    >>> from mlscale_lab.deployment import PageHinkley
    >>> detect_drifts(PageHinkley(threshold=1, min_instances=1), [0, 0, 0, 5, 0])
    [3]
    """
    _check_detector("detect_drifts", detector)
    alarms = []
    for i, x in enumerate(values):
        detector.update(float(x))
        if detector.drift_detected:
            alarms.append(i)
    return alarms


@dataclass(frozen=True)
class DetectionReport:
    """How a detector did against known drift points (made by :func:`score_detections`).

    Attributes
    ----------
    delays : tuple of (int or None)
        Samples from each drift point to the alarm that detected it; None for a missed drift.
    false_alarms : int
        Alarms not attributed to any drift.
    alarms : tuple of int
        Every alarm, sorted.

    Examples
    --------
    >>> report = score_detections([1020], [1000, 5000], max_delay=300)
    >>> report.delays, report.detected_all
    ((20, None), False)
    """

    delays: tuple[int | None, ...]
    false_alarms: int
    alarms: tuple[int, ...]

    @property
    def detected_all(self) -> bool:
        """True when every drift point has its alarm within ``max_delay``."""
        return all(d is not None for d in self.delays)


def score_detections(
    alarms: Iterable[int], drift_points: Iterable[int], *, max_delay: int
) -> DetectionReport:
    """Match alarms to drifts: the first alarm in ``[drift, drift + max_delay)`` detects it.

    Every alarm that detects no drift is a false alarm.

    Parameters
    ----------
    alarms : iterable of int
        Stream positions of the alarms.
    drift_points : iterable of int
        Where the drifts really start.
    max_delay : int
        An alarm later than this after a drift does not count as detecting it.

    Returns
    -------
    DetectionReport

    Examples
    --------
    >>> score_detections([120, 5150, 7000], [5000], max_delay=300)
    DetectionReport(delays=(150,), false_alarms=2, alarms=(120, 5150, 7000))
    """
    max_delay = check_int("score_detections", "max_delay", max_delay, low=1)
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
