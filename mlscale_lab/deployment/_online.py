"""Online learning on a stream: prequential evaluation and four ways to keep a model current.

*Prequential* ("predictive sequential", Dawid 1984) evaluation is test-then-train: each batch is
first predicted by the current model, scored, and only then learned from. Every sample is used
once for testing before the model has seen it, so the accuracy over time is honest, and the
same loop measures what each strategy costs.

Strategies (all share ``start(X, y)``, ``predict(X)``, ``learn(X, y, y_pred)``):

- :class:`Static`: fit once on the warm-up data, never update (a batch model shipped once).
- :class:`PeriodicRetrain`: refit from scratch on the most recent ``window`` samples every
  ``every`` samples (a nightly retraining job).
- :class:`Incremental`: ``partial_fit`` on each new batch (online learning).
- :class:`DriftTriggered`: incremental, plus a drift detector on the model's errors; on an alarm
  the model is replaced by a fresh one that learns only from data after the alarm.

>>> from mlscale_lab.deployment._streams import make_stream
>>> s = make_stream("sudden", 4000, [2000], seed=0)
>>> static = prequential(s, Static(), warmup=500)
>>> online = prequential(s, Incremental(), warmup=500)
>>> bool(online.accuracy(2000) > static.accuracy(2000))
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.deployment._streams import Stream


def sgd_model(seed: int = 0, *, eta0: float = 0.01, max_iter: int = 20):
    """The lab's model: a logistic-regression ``SGDClassifier`` with a constant learning rate.

    A constant step size keeps ``partial_fit`` able to move the model after a drift; the default
    decaying schedule makes later updates ever smaller, so an old model adapts ever slower.
    """
    from sklearn.linear_model import SGDClassifier

    return SGDClassifier(
        loss="log_loss",
        alpha=1e-4,
        learning_rate="constant",
        eta0=eta0,
        max_iter=max_iter,
        tol=1e-3,
        random_state=seed,
    )


def _fit(make_model: Callable, X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = make_model()
    with warnings.catch_warnings():  # a capped max_iter is a deliberate compute budget
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model


class Static:
    """Fit once on the warm-up data; never learn again."""

    name = "static"

    def __init__(self, make_model: Callable = sgd_model):
        self.make_model = make_model
        self.retrains = 0
        self.alarms: list[int] = []

    def start(self, X, y) -> None:
        self.model = _fit(self.make_model, X, y)

    def predict(self, X):
        return self.model.predict(X)

    def learn(self, X, y, y_pred, position: int) -> None:
        pass


class PeriodicRetrain(Static):
    """Refit from scratch on the last ``window`` samples every ``every`` samples.

    Parameters
    ----------
    every : int
        Samples between retrains (rounded up to whole batches).
    window : int
        How many recent samples each retrain uses.
    """

    name = "periodic retrain"

    def __init__(self, make_model: Callable = sgd_model, *, every: int = 1000, window: int = 2000):
        super().__init__(make_model)
        for pname, v in (("every", every), ("window", window)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{pname} must be a positive integer, got {v!r}")
        self.every, self.window = int(every), int(window)

    def start(self, X, y) -> None:
        super().start(X, y)
        self._X, self._y = [np.asarray(X)], [np.asarray(y)]
        self._since = 0

    def learn(self, X, y, y_pred, position: int) -> None:
        self._X.append(np.asarray(X))
        self._y.append(np.asarray(y))
        self._since += len(y)
        if self._since >= self.every:
            Xw = np.concatenate(self._X)[-self.window :]
            yw = np.concatenate(self._y)[-self.window :]
            self._X, self._y = [Xw], [yw]  # keep only what the next retrain can use
            self.model = _fit(self.make_model, Xw, yw)
            self.retrains += 1
            self._since = 0


class Incremental(Static):
    """``partial_fit`` on every batch after the initial fit (online learning)."""

    name = "online partial_fit"

    def learn(self, X, y, y_pred, position: int) -> None:
        self.model.partial_fit(X, y, classes=self.classes)

    def start(self, X, y) -> None:
        super().start(X, y)
        self.classes = np.unique(y)


class DriftTriggered(Incremental):
    """Incremental learning plus a drift detector fed with the model's 0/1 errors.

    On an alarm the old model is dropped: a fresh model learns from the rest of the batch in
    which the alarm fired, and continues with ``partial_fit``. The alarms are kept (as stream
    positions) in ``alarms``.

    Parameters
    ----------
    detector : object with ``update(x) -> bool``, optional
        Default :class:`mlscale_lab.deployment._drift.PageHinkley` with its default settings.
    """

    name = "online + drift detector"

    def __init__(self, make_model: Callable = sgd_model, detector=None):
        super().__init__(make_model)
        if detector is None:
            from mlscale_lab.deployment._drift import PageHinkley

            detector = PageHinkley()
        if not callable(getattr(detector, "update", None)):
            raise TypeError(f"detector must have an update(x) -> bool method, got {detector!r}")
        self.detector = detector

    def learn(self, X, y, y_pred, position: int) -> None:
        errors = np.asarray(y_pred) != np.asarray(y)
        hit = next((i for i, e in enumerate(errors) if self.detector.update(float(e))), None)
        if hit is None:
            super().learn(X, y, y_pred, position)
            return
        self.alarms.append(position + hit)
        self.retrains += 1
        rest_X, rest_y = X[hit:], y[hit:]
        self.model = self.make_model()
        self.model.partial_fit(rest_X, rest_y, classes=self.classes)
        for e in errors[hit + 1 :]:  # keep the detector's clock in step with the stream
            self.detector.update(float(e))


@dataclass
class PrequentialResult:
    """Per-sample outcome of a prequential run, and what it cost."""

    name: str
    correct: np.ndarray  #: 1.0 correct, 0.0 wrong, NaN for warm-up samples (used to train only)
    cpu_seconds: float  #: CPU of predicting + learning over the stream (ResourceMonitor)
    wall_seconds: float
    warmup: int
    retrains: int = 0
    alarms: list[int] = field(default_factory=list)

    def accuracy(self, start: int = 0, stop: int | None = None) -> float:
        """Prequential accuracy over stream positions ``[start, stop)`` (warm-up excluded)."""
        part = self.correct[max(start, self.warmup) : stop]
        part = part[~np.isnan(part)]
        if part.size == 0:
            raise ValueError(
                f"no scored samples in [{start}, {stop}); the warm-up ends at {self.warmup}"
            )
        return float(part.mean())

    def rolling_accuracy(self, window: int = 500) -> np.ndarray:
        """Accuracy over the last ``window`` scored samples at each position (NaN in warm-up)."""
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window <= 0:
            raise ValueError(f"window must be a positive integer, got {window!r}")
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
    progress: bool = False,
) -> PrequentialResult:
    """Run ``strategy`` over ``stream``: fit on the first ``warmup`` samples, then test-then-train
    batch by batch. CPU seconds are measured with :class:`~mlscale_lab.constraints.ResourceMonitor`.

    Parameters
    ----------
    stream : Stream
    strategy : Static, PeriodicRetrain, Incremental, DriftTriggered or alike
    batch_size : int
        Samples predicted together before the model learns from them.
    warmup : int
        Samples used for the initial fit; they are not scored.
    progress : bool
        Show a tqdm progress bar.
    """
    from mlscale_lab.constraints import ResourceMonitor

    n = len(stream)
    for pname, v in (("batch_size", batch_size), ("warmup", warmup)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{pname} must be a positive integer, got {v!r}")
    if warmup >= n:
        raise ValueError(
            f"warmup={warmup} leaves nothing to evaluate in a stream of {n} samples; use warmup < {n}"
        )
    X, y = stream.X, stream.y
    correct = np.full(n, np.nan)
    starts = range(warmup, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=getattr(strategy, "name", "prequential"), leave=False)
    wall = time.perf_counter()
    with ResourceMonitor(interval=0.05) as mon:
        strategy.start(X[:warmup], y[:warmup])
        for start in starts:
            xb, yb = X[start : start + batch_size], y[start : start + batch_size]
            y_pred = strategy.predict(xb)  # test first ...
            correct[start : start + len(yb)] = y_pred == yb
            strategy.learn(xb, yb, y_pred, start)  # ... then train
    return PrequentialResult(
        name=getattr(strategy, "name", type(strategy).__name__),
        correct=correct,
        cpu_seconds=mon.cpu_seconds,
        wall_seconds=time.perf_counter() - wall,
        warmup=int(warmup),
        retrains=int(getattr(strategy, "retrains", 0)),
        alarms=list(getattr(strategy, "alarms", [])),
    )


def compare_strategies(stream: Stream, strategies: Sequence, **kwargs) -> list[PrequentialResult]:
    """Run each strategy over the same stream (keyword arguments go to :func:`prequential`)."""
    return [prequential(stream, s, **kwargs) for s in strategies]


def results_table(
    results: Sequence[PrequentialResult], drift_points: Sequence[int] = ()
) -> list[dict]:
    """One row per strategy: accuracy overall, before the first drift and after it, CPU seconds,
    retrains and alarms."""
    rows = []
    first = drift_points[0] if len(drift_points) else None
    for r in results:
        row = {"strategy": r.name, "accuracy": r.accuracy()}
        if first is not None:
            row["before_drift"] = r.accuracy(0, first)
            stop = drift_points[1] if len(drift_points) > 1 else None
            row["after_drift"] = r.accuracy(first, stop)
        row.update(cpu_seconds=r.cpu_seconds, retrains=r.retrains, alarms=len(r.alarms))
        rows.append(row)
    return rows


# -- delivering a new model: a full retrain against an incremental update -------------------
def full_retrain(
    X, y, *, alphas: Sequence[float] = (1e-5, 1e-4, 1e-3), seed: int = 0, validation: float = 0.2
):
    """What a retraining job does: choose the regularisation on a validation split, then fit a
    fresh model on all of ``X, y`` with it. Returns the fitted model.

    Every retrain pays for the model selection again; an incremental update keeps the
    hyperparameters it has and only takes gradient steps on the new data.
    """
    from sklearn.base import clone

    if not 0 < validation < 1:
        raise ValueError(f"validation must be a fraction in (0, 1), got {validation!r}")
    if not len(alphas):
        raise ValueError("alphas must hold at least one regularisation strength, e.g. (1e-4,)")
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(len(y) * validation))
    val, train = order[:n_val], order[n_val:]
    base = sgd_model(seed)
    scores = []
    for a in alphas:
        model = _fit(lambda a=a: clone(base).set_params(alpha=a), X[train], y[train])
        scores.append(model.score(X[val], y[val]))
    best = alphas[int(np.argmax(scores))]
    return _fit(lambda: clone(base).set_params(alpha=best), X, y)


def incremental_update(model, X, y):
    """A copy of ``model`` updated with one ``partial_fit`` pass over the new data ``X, y``
    (the production model itself is left as it is)."""
    import copy

    updated = copy.deepcopy(model)
    updated.partial_fit(np.asarray(X), np.asarray(y))
    return updated


def cpu_seconds_per_call(
    fn: Callable[[], object], *, min_seconds: float = 0.3, max_calls: int = 10_000
) -> float:
    """CPU seconds one call of ``fn()`` takes, measured with the ResourceMonitor.

    The operating system counts CPU time in ticks (often 10 ms), so a quick call is repeated
    until the calls together last at least ``min_seconds`` of wall time, and the total is split.
    """
    from mlscale_lab.constraints import ResourceMonitor

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {fn!r}")
    if not min_seconds > 0:
        raise ValueError(f"min_seconds must be > 0, got {min_seconds!r}")
    calls = 0
    with ResourceMonitor(interval=0.05) as mon:
        t0 = time.perf_counter()
        while calls < max_calls and (calls == 0 or time.perf_counter() - t0 < min_seconds):
            fn()
            calls += 1
    return mon.cpu_seconds / calls
