"""Using a drift detector on a stream, and scoring it against drifts we know.

Every detector here follows River's protocol, so River's detectors plug in wherever ours do:
``update(x)`` adds one value and returns nothing; the attribute ``drift_detected`` then says
whether that value completed a drift. :func:`detect_drifts` feeds a stream to any of them;
:func:`score_detections` measures the delay to each known drift and counts false alarms on one
stream, and :func:`score_detector` does it over many, as Gama et al. (2014) evaluate detectors:
the share of drifts detected, the mean detection delay and the false-alarm rate, each with its
interval. One stream cannot bound a false-alarm rate: no alarm in 10,000 samples only says the
rate is below about 3 in 10,000.

>>> import numpy as np
>>> from mlscale_lab.deployment import PageHinkley
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
>>> alarms = detect_drifts(PageHinkley(), errors)
>>> score_detections(alarms, [3000], max_delay=300).detected_all
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mlscale_lab.evidence import Interval, NotEnoughData, mean_interval, proportion_interval
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


@dataclass(frozen=True)
class DetectorScores:
    """A detector scored over many streams with known drifts (made by :func:`score_detector`).

    Attributes
    ----------
    name : str
    streams : int
        Streams scored.
    drifts, detected : int
        Known drifts, and those with an alarm within ``max_delay``.
    delays : tuple of int
        Samples from each detected drift to its alarm.
    false_alarms : int
        Alarms that detected no drift.
    monitored : int
        Samples on which an alarm would be false: every sample outside the detection windows
        ``[drift, drift + max_delay)``.
    max_delay : int

    Examples
    --------
    >>> s = DetectorScores("ph", 3, 2, 2, (80, 120), 0, 30_000, 1000)
    >>> print(s.mean_delay())
    100 (95 % CI -154 to 354, Student t, n=2)
    >>> s.false_alarm_rate().high < 1.3  # per 10,000 samples: 0 alarms in 30,000
    True
    """

    name: str
    streams: int
    drifts: int
    detected: int
    delays: tuple[int, ...]
    false_alarms: int
    monitored: int
    max_delay: int

    def detection_rate(self, level: float = 0.95) -> Interval:
        """Share of drifts detected within ``max_delay`` (exact binomial interval)."""
        return proportion_interval(self.detected, self.drifts, level)

    def mean_delay(self, level: float = 0.95) -> Interval:
        """Mean detection delay in samples over the detected drifts (Student t interval)."""
        if len(self.delays) < 2:
            raise NotEnoughData(f"DetectorScores.mean_delay: {len(self.delays)} detected drift(s); "
                                "score the detector on more streams")
        return mean_interval(self.delays, level)

    def false_alarm_rate(self, level: float = 0.95, *, per: int = 10_000) -> Interval:
        """False alarms per ``per`` monitored samples (exact binomial interval per sample)."""
        return proportion_interval(self.false_alarms, self.monitored, level).scaled(per)

    def __str__(self) -> str:
        rate = self.false_alarm_rate()
        delay = str(self.mean_delay()) if len(self.delays) >= 2 else f"{list(self.delays)}"
        return (f"{self.name}: {self.detected} of {self.drifts} drifts detected within "
                f"{self.max_delay} samples, mean delay {delay}; {self.false_alarms} false "
                f"alarm(s) in {self.monitored:,} monitored samples, {rate} per 10,000")


def score_detector(make_detector: Callable[[], object], error_streams: Sequence,
                   drift_points: Sequence[Sequence[int]], *, max_delay: int,
                   name: str | None = None) -> DetectorScores:
    """Run a fresh detector over each stream and pool what :func:`score_detections` finds.

    Parameters
    ----------
    make_detector : callable
        Returns a fresh detector (River's protocol), e.g. ``PageHinkley``.
    error_streams : sequence of array-like
        The monitored streams, e.g. a model's 0/1 errors on each of many generated streams.
    drift_points : sequence of sequences of int
        The known drifts of each stream, as positions in it (``()`` for a stationary one).
    max_delay : int
        An alarm later than this after a drift does not detect it.
    name : str, optional
        Default: the detector's class name.

    Returns
    -------
    DetectorScores

    Examples
    --------
    >>> import numpy as np
    >>> from mlscale_lab.deployment import PageHinkley
    >>> rng = np.random.default_rng(0)
    >>> drifting = [np.r_[rng.random(2000) < 0.1, rng.random(1000) < 0.5] for _ in range(5)]
    >>> calm = [rng.random(5000) < 0.1 for _ in range(5)]
    >>> s = score_detector(PageHinkley, drifting + calm, [[2000]] * 5 + [()] * 5, max_delay=500)
    >>> s.detected, s.false_alarms, s.monitored
    (5, 0, 37500)
    """
    if not callable(make_detector):
        raise TypeError(f"score_detector(make_detector={make_detector!r}): expected a callable "
                        "returning a fresh detector, e.g. PageHinkley")
    max_delay = check_int("score_detector", "max_delay", max_delay, low=1)
    streams, points = list(error_streams), [tuple(int(p) for p in ps) for ps in drift_points]
    if len(streams) != len(points) or not streams:
        raise ValueError(f"score_detector(error_streams=..., drift_points=...): expected one list "
                         f"of drift points per stream, got {len(streams)} streams and "
                         f"{len(points)} lists")
    drifts = detected = false_alarms = monitored = 0
    delays: list[int] = []
    label = name
    for errors, at in zip(streams, points, strict=True):
        detector = make_detector()
        _check_detector("score_detector", detector)
        label = label or type(detector).__name__
        values = list(errors)
        report = score_detections(detect_drifts(detector, values), at, max_delay=max_delay)
        drifts += len(at)
        found = [d for d in report.delays if d is not None]
        detected += len(found)
        delays += found
        false_alarms += report.false_alarms
        windows = sum(min(max_delay, len(values) - p) for p in at)
        monitored += len(values) - windows
    return DetectorScores(label, len(streams), drifts, detected, tuple(delays), false_alarms,
                          monitored, max_delay)
