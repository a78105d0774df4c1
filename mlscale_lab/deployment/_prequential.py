"""Prequential evaluation: test, then train, batch by batch, with labels that may come late.

*Prequential* ("predictive sequential", Dawid 1984) evaluation is test-then-train: each batch is
first predicted by the current model, scored, and only then learned from. Every sample is used
once for testing before the model has seen it, so the accuracy over time is honest, and the
same loop measures what each strategy costs. In production the labels often arrive later than
the inputs (a fraud is confirmed weeks after the payment): ``label_delay`` holds each batch back
until its labels are in, which is what slows every strategy's reaction to a drift.

>>> from mlscale_lab.deployment import Incremental, make_stream
>>> s = make_stream("sudden", 4000, [2000], seed=0)
>>> now = prequential(s, Incremental(), warmup=500)
>>> late = prequential(s, Incremental(), warmup=500, label_delay=1000)
>>> bool(now.accuracy(2000, 3000) > late.accuracy(2000, 3000) + 0.1)
True
"""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.deployment._streams import Stream
from mlscale_lab.evidence import Timings, interleave
from mlscale_lab.validation import check_int


@dataclass
class PrequentialResult:
    """Per-sample outcome of a prequential run, and what it cost (made by :func:`prequential`).

    Attributes
    ----------
    name : str
        The strategy's name.
    correct : ndarray of shape (n_samples,)
        1.0 for a right prediction, 0.0 for a wrong one, NaN for warm-up samples (used to train
        only).
    cpu_seconds, wall_seconds : float
        CPU time of this process (``time.process_time``) and wall time of the initial fit,
        predicting and learning, in this one run: a run of a few hundredths of a second is one
        sample, and the first run of a session pays for warm-up; compare strategies' costs
        with :func:`strategy_cpu`, which repeats and interleaves them.
    warmup : int
        Samples of the initial fit.
    retrains : int
        Fresh models that replaced the served one.
    alarms : list of int
        Stream positions of drift alarms.
    label_delay : int
        Samples between a batch's arrival and the arrival of its labels.

    Examples
    --------
    >>> import numpy as np
    >>> r = PrequentialResult("x", np.r_[np.nan, np.nan, 1.0, 0.0, 1.0, 1.0], 0.0, 0.0, warmup=2)
    >>> r.accuracy(), r.accuracy(4)
    (0.75, 1.0)
    """

    name: str
    correct: np.ndarray
    cpu_seconds: float
    wall_seconds: float
    warmup: int
    retrains: int = 0
    alarms: list[int] = field(default_factory=list)
    label_delay: int = 0

    def accuracy(self, start: int = 0, stop: int | None = None) -> float:
        """Prequential accuracy over stream positions ``[start, stop)``, warm-up excluded.

        Parameters
        ----------
        start, stop : int
            Stream positions; ``stop=None`` runs to the end.

        Returns
        -------
        float

        Examples
        --------
        >>> import numpy as np
        >>> PrequentialResult("x", np.array([np.nan, 1.0, 0.0]), 0.0, 0.0, warmup=1).accuracy(2)
        0.0
        """
        part = self.correct[max(start, self.warmup) : stop]
        part = part[~np.isnan(part)]
        if part.size == 0:
            raise ValueError(
                f"PrequentialResult.accuracy(start={start!r}, stop={stop!r}): expected a range "
                f"holding scored samples (the warm-up ends at {self.warmup}), got none"
            )
        return float(part.mean())

    def rolling_accuracy(self, window: int = 500) -> np.ndarray:
        """Accuracy over the last ``window`` scored samples at each position (NaN in warm-up).

        Parameters
        ----------
        window : int
            Samples averaged (fewer at the start of the scored part).

        Returns
        -------
        ndarray of shape (n_samples,)

        Examples
        --------
        >>> import numpy as np
        >>> r = PrequentialResult("x", np.array([np.nan, 1.0, 0.0, 0.0]), 0.0, 0.0, warmup=1)
        >>> r.rolling_accuracy(2)
        array([nan, 1. , 0.5, 0. ])
        """
        check_int("PrequentialResult.rolling_accuracy", "window", window, low=1)
        out = np.full(self.correct.shape, np.nan)
        scored = self.correct[self.warmup :]
        csum = np.concatenate([[0.0], np.cumsum(scored)])
        idx = np.arange(1, scored.size + 1)
        lo = np.maximum(0, idx - window)
        out[self.warmup :] = (csum[idx] - csum[lo]) / (idx - lo)
        return out


def prequential(
    stream: Stream,
    strategy,
    *,
    batch_size: int = 50,
    warmup: int = 1000,
    label_delay: int = 0,
    progress: bool = False,
) -> PrequentialResult:
    """Run ``strategy`` over ``stream``: fit on the warm-up, then test-then-train batch by batch.

    The labels of the batch that ends at position ``p`` arrive once the stream has reached
    ``p + label_delay``: only then does the strategy learn from it (batches learn in arrival
    order; those whose labels never arrive are not learned). The run's CPU seconds are this
    process's ``time.process_time`` (see :func:`strategy_cpu` to compare strategies' costs).

    Parameters
    ----------
    stream : Stream
    strategy : Strategy
        :class:`Static`, :class:`PeriodicRetrain`, :class:`Incremental`,
        :class:`DriftTriggered`, or any object with their ``start``, ``predict``, ``learn``.
    batch_size : int
        Samples predicted together before the model learns from them.
    warmup : int
        Samples used for the initial fit; they are not scored.
    label_delay : int, default 0
        Samples that arrive between a batch and its labels (0: labels come with the batch).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    PrequentialResult

    Examples
    --------
    >>> from mlscale_lab.deployment import Incremental, make_stream
    >>> r = prequential(make_stream("stationary", 2000, seed=0), Incremental(), warmup=500)
    >>> bool(r.accuracy() > 0.85), int(np.isnan(r.correct).sum())
    (True, 500)
    """
    fn = "prequential"
    n = len(stream)
    batch_size = check_int(fn, "batch_size", batch_size, low=1)
    warmup = check_int(
        fn, "warmup", warmup, low=1, high=n - 1,
        hint=f"the stream has {n} samples and some must remain to be evaluated",
    )
    label_delay = check_int(fn, "label_delay", label_delay, low=0)
    X, y = stream.X, stream.y
    correct = np.full(n, np.nan)
    starts = range(warmup, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=getattr(strategy, "name", "prequential"), leave=False)
    wall, cpu = time.perf_counter(), time.process_time()
    strategy.start(X[:warmup], y[:warmup])
    waiting: deque = deque()  # batches predicted, their labels not yet arrived
    for start in starts:
        xb, yb = X[start : start + batch_size], y[start : start + batch_size]
        y_pred = strategy.predict(xb)  # test first ...
        correct[start : start + len(yb)] = y_pred == yb
        waiting.append((start, xb, yb, y_pred))
        now = start + len(yb)
        while waiting and waiting[0][0] + len(waiting[0][2]) + label_delay <= now:
            first, xl, yl, pl = waiting.popleft()
            strategy.learn(xl, yl, pl, first)  # ... then train, once the labels are in
    return PrequentialResult(
        name=getattr(strategy, "name", type(strategy).__name__),
        correct=correct,
        cpu_seconds=time.process_time() - cpu,
        wall_seconds=time.perf_counter() - wall,
        warmup=int(warmup),
        retrains=int(getattr(strategy, "retrains", 0)),
        alarms=list(getattr(strategy, "alarms", [])),
        label_delay=label_delay,
    )


def compare_strategies(stream: Stream, strategies: Sequence, **kwargs) -> list[PrequentialResult]:
    """Run each strategy over the same stream.

    Parameters
    ----------
    stream : Stream
    strategies : sequence of Strategy
        Fresh strategies (each is started on the warm-up).
    **kwargs
        Passed to :func:`prequential` (``warmup``, ``batch_size``, ``label_delay``...).

    Returns
    -------
    list of PrequentialResult
        In the order of ``strategies``.

    Examples
    --------
    >>> from mlscale_lab.deployment import Incremental, Static, make_stream
    >>> s = make_stream("sudden", 2000, seed=0)
    >>> [r.name for r in compare_strategies(s, [Static(), Incremental()], warmup=500)]
    ['static', 'online partial_fit']
    """
    return [prequential(stream, s, **kwargs) for s in strategies]


def strategy_cpu(stream: Stream, strategies: Sequence, *, rounds: int = 5, warmup: int = 1,
                 samples_warmup: int = 1000, **kwargs) -> Timings:
    """CPU seconds each strategy spends over ``stream``, runs repeated and interleaved.

    One prequential run of a strategy lasts a few hundredths of a second, a handful of the
    clock's ticks, and the first run of a session also pays for loading and warming the
    libraries (a second where later runs take 0.02 s). So each strategy runs ``warmup`` times
    unmeasured and then ``rounds`` times, in rounds that visit every strategy in a rotating
    order (:func:`mlscale_lab.evidence.interleave`), each run on a fresh copy of the strategy
    given, and what is counted is this process's CPU time (``time.process_time``), which other
    programs on the machine do not add to.

    Parameters
    ----------
    stream : Stream
    strategies : sequence of Strategy
        Strategies that have not run yet (each run copies one), with distinct names.
    rounds, warmup : int
        Timed runs of each strategy, and unmeasured runs first.
    samples_warmup : int, default 1000
        Samples of each run's initial fit (:func:`prequential`'s ``warmup``).
    **kwargs
        Passed to :func:`prequential` (``batch_size``, ``label_delay``).

    Returns
    -------
    Timings
        CPU seconds per run, by strategy name: ``.interval(name)``, ``.ratio(a, b)``.

    Examples
    --------
    >>> from mlscale_lab.deployment import Incremental, Static, make_stream
    >>> s = make_stream("sudden", 2000, seed=0)
    >>> cpu = strategy_cpu(s, [Static(), Incremental()], rounds=3, samples_warmup=500)
    >>> bool(cpu.median("online partial_fit") > cpu.median("static"))
    True
    """
    names = [getattr(s, "name", type(s).__name__) for s in strategies]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"strategy_cpu(strategies=...): expected strategies with distinct names, "
                         f"got {names}")
    for s, name in zip(strategies, names, strict=True):
        if hasattr(s, "model"):
            raise ValueError(f"strategy_cpu(strategies=...): {name!r} has run already; pass "
                             "fresh strategies (each timed run starts from a copy of one)")
    arms = {name: (lambda s=s: prequential(stream, copy.deepcopy(s), warmup=samples_warmup,
                                           **kwargs))
            for s, name in zip(strategies, names, strict=True)}
    return interleave(arms, rounds=rounds, warmup=warmup, clock=time.process_time)


def results_table(
    results: Sequence[PrequentialResult], drift_points: Sequence[int] = (), *,
    cpu: Timings | None = None,
) -> list[dict]:
    """One row per strategy: accuracy overall, before and after the first drift, and costs.

    Parameters
    ----------
    results : sequence of PrequentialResult
    drift_points : sequence of int
        The stream's drift points; "after" runs from the first to the second (or the end).
    cpu : Timings, optional
        From :func:`strategy_cpu`: each row's ``cpu_seconds`` is then the median of the timed
        runs, with ``cpu_low`` and ``cpu_high`` its interval; without it, the one run's.

    Returns
    -------
    list of dict
        Keys ``strategy``, ``accuracy``, ``before_drift`` and ``after_drift`` (with drift
        points), ``cpu_seconds`` (and ``cpu_low``, ``cpu_high``), ``retrains``, ``alarms``.

    Examples
    --------
    >>> from mlscale_lab.deployment import Static, make_stream
    >>> s = make_stream("sudden", 2000, [1200], seed=0)
    >>> row, = results_table([prequential(s, Static(), warmup=500)], s.drift_points)
    >>> sorted(row)
    ['accuracy', 'after_drift', 'alarms', 'before_drift', 'cpu_seconds', 'retrains', 'strategy']
    """
    rows = []
    first = drift_points[0] if len(drift_points) else None
    for r in results:
        row = {"strategy": r.name, "accuracy": r.accuracy()}
        if first is not None:
            row["before_drift"] = r.accuracy(0, first)
            stop = drift_points[1] if len(drift_points) > 1 else None
            row["after_drift"] = r.accuracy(first, stop)
        if cpu is not None:
            iv = cpu.interval(r.name)
            row.update(cpu_seconds=iv.estimate, cpu_low=iv.low, cpu_high=iv.high)
        else:
            row["cpu_seconds"] = r.cpu_seconds
        row.update(retrains=r.retrains, alarms=len(r.alarms))
        rows.append(row)
    return rows
