"""Four ways to keep a model current on a stream, and the model they share.

Strategies (all share ``start(X, y)``, ``predict(X)``, ``learn(X, y, y_pred, position)``,
from :class:`Strategy`), run by :func:`~mlscale_lab.deployment.prequential`:

- :class:`Static`: fit once on the warm-up data, never update (a batch model shipped once).
- :class:`PeriodicRetrain`: refit from scratch on the most recent ``window`` samples every
  ``every`` samples (a nightly retraining job).
- :class:`Incremental`: ``partial_fit`` on each new batch (online learning).
- :class:`DriftTriggered`: incremental, plus a drift detector on the model's errors; on an alarm
  the model is replaced by a fresh one that learns only from data after the alarm.

>>> from mlscale_lab.deployment import make_stream, prequential
>>> s = make_stream("sudden", 4000, [2000], seed=0)
>>> static = prequential(s, Static(), warmup=500)
>>> online = prequential(s, Incremental(), warmup=500)
>>> bool(online.accuracy(2000) > static.accuracy(2000))
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from mlscale_lab.deployment._page_hinkley import PageHinkley
from mlscale_lab.validation import check_choice, check_int, check_positive


def sgd_model(
    seed: int = 0, *, eta0: float = 0.01, max_iter: int = 20, learning_rate: str = "constant"
):
    """The lab's model: a logistic-regression ``SGDClassifier``, by default with a constant step.

    A constant step size keeps ``partial_fit`` able to move the model after a drift; a decaying
    schedule (``"invscaling"``: ``eta0 / t ** 0.5`` after ``t`` samples) makes every later update
    smaller, so the longer a model has lived, the slower it adapts. Lab 04 measures both.

    Parameters
    ----------
    seed : int
        Seed of the shuffling (scikit-learn's ``random_state``).
    eta0 : float
        The (initial) step size.
    max_iter : int
        Epochs of ``fit``: a deliberate compute budget (``partial_fit`` always does one).
    learning_rate : {"constant", "invscaling", "optimal", "adaptive"}
        scikit-learn's schedule of the step size.

    Returns
    -------
    sklearn.linear_model.SGDClassifier
        Unfitted.

    Examples
    --------
    >>> sgd_model(3).learning_rate, sgd_model(3, learning_rate="invscaling").learning_rate
    ('constant', 'invscaling')
    """
    from sklearn.linear_model import SGDClassifier

    fn = "sgd_model"
    if seed is not None:
        check_int(fn, "seed", seed, low=0)
    check_positive(fn, "eta0", eta0)
    check_int(fn, "max_iter", max_iter, low=1)
    check_choice(fn, "learning_rate", learning_rate, ("constant", "invscaling", "optimal", "adaptive"))
    return SGDClassifier(
        loss="log_loss",
        alpha=1e-4,
        learning_rate=learning_rate,
        eta0=eta0,
        max_iter=max_iter,
        tol=1e-3,
        random_state=seed,
    )


def sgd_step_size(model) -> float:
    """The step size a fitted ``SGDClassifier`` takes on its next sample.

    scikit-learn counts the samples a model has learned from in ``t_`` and derives each step
    from it: ``"constant"`` keeps ``eta0``; ``"invscaling"`` takes ``eta0 / t ** power_t``;
    ``"optimal"`` takes ``1 / (alpha * (t0 + t - 1))`` with Bottou's ``t0``. A step that has
    shrunk to almost nothing is a model that can no longer follow a drift.

    Parameters
    ----------
    model : sklearn.linear_model.SGDClassifier
        Fitted (it has ``t_``).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.eye(4), [0, 1, 0, 1]
    >>> sgd_step_size(sgd_model(0, learning_rate="constant").fit(X, y))
    0.01
    >>> model = sgd_model(0, learning_rate="invscaling", max_iter=5).fit(X, y)
    >>> model.t_, round(sgd_step_size(model), 6)  # 0.01 / 21 ** 0.5
    (21.0, 0.002182)
    """
    t = getattr(model, "t_", None)
    if t is None:
        raise ValueError(
            f"sgd_step_size(model={type(model).__name__}(...)): expected a fitted SGD model "
            f"(with t_), got one that has not learned yet"
        )
    schedule = model.learning_rate
    if schedule in ("constant", "adaptive"):  # adaptive only lowers eta0 inside fit()
        return float(model.eta0)
    if schedule == "invscaling":
        return float(model.eta0 / t**model.power_t)
    if schedule == "optimal":
        typical_w = np.sqrt(1.0 / np.sqrt(model.alpha))
        t0 = 1.0 / (typical_w * model.alpha)
        return float(1.0 / (model.alpha * (t0 + t - 1)))
    raise ValueError(
        f"sgd_step_size(model=...): expected learning_rate 'constant', 'invscaling', 'optimal' "
        f"or 'adaptive', got {schedule!r}"
    )


def _fit(make_model: Callable, X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    model = make_model()
    with warnings.catch_warnings():  # a capped max_iter is a deliberate compute budget
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return model


class Strategy(ABC):
    """What every strategy shares: fit a fresh model on the warm-up data, then predict with it.

    :func:`prequential` calls ``start(X, y)`` once, then for each batch ``predict(X)`` and, once
    the labels are there, ``learn(X, y, y_pred, position)``. Subclasses say how they learn.

    Parameters
    ----------
    make_model : callable, default :func:`sgd_model`
        Returns a fresh, unfitted model with ``fit``, ``predict`` (and ``partial_fit`` for the
        online strategies).

    Attributes
    ----------
    model : estimator
        The model serving now.
    retrains : int
        How many times a fresh model replaced the served one.
    alarms : list of int
        Stream positions of drift alarms (drift-triggered strategies only).

    Examples
    --------
    >>> import numpy as np
    >>> class EveryOther(Strategy):
    ...     name = "learn from every other batch"
    ...     def learn(self, X, y, y_pred, position):
    ...         if position % 2 == 0:
    ...             self.model.partial_fit(X, y)
    >>> EveryOther().start(np.eye(4), [0, 1, 0, 1])
    """

    name = "strategy"

    def __init__(self, make_model: Callable = sgd_model):
        if not callable(make_model):
            raise TypeError(
                f"{type(self).__name__}(make_model={make_model!r}): expected a callable that "
                f"returns a fresh model, e.g. lambda: sgd_model(0), got {type(make_model).__name__}"
            )
        self.make_model = make_model
        self.retrains = 0
        self.alarms: list[int] = []

    def start(self, X, y) -> None:
        """Fit a fresh model on the warm-up data ``X, y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        """
        self.model = _fit(self.make_model, X, y)
        self.classes = np.unique(y)

    def predict(self, X):
        """Predictions of the model serving now.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self.model.predict(X)

    @abstractmethod
    def learn(self, X, y, y_pred, position: int) -> None:
        """Learn from a batch whose labels have arrived (each strategy decides how).

        Parameters
        ----------
        X, y : arrays
            The batch and its labels.
        y_pred : array
            What the model predicted for it, before learning (the prequential order).
        position : int
            Stream position of the batch's first sample.
        """


class Static(Strategy):
    """Fit once on the warm-up data; never learn again (a batch model shipped once).

    Examples
    --------
    >>> from mlscale_lab.deployment import make_stream, prequential
    >>> s = make_stream("sudden", 3000, [2000], seed=0)
    >>> r = prequential(s, Static(), warmup=500)
    >>> bool(r.accuracy(500, 2000) > r.accuracy(2000))  # right before the drift, wrong after
    True
    """

    name = "static"

    def learn(self, X, y, y_pred, position: int) -> None:
        """Ignore the batch: a static model never changes."""


class PeriodicRetrain(Strategy):
    """Refit from scratch on the last ``window`` samples every ``every`` samples.

    Parameters
    ----------
    make_model : callable, default :func:`sgd_model`
    every : int
        Samples between retrains (rounded up to whole batches).
    window : int
        How many recent samples each retrain uses.

    Examples
    --------
    >>> from mlscale_lab.deployment import make_stream, prequential
    >>> s = make_stream("sudden", 3000, [2000], seed=0)
    >>> prequential(s, PeriodicRetrain(every=500, window=1000), warmup=500).retrains
    5
    """

    name = "periodic retrain"

    def __init__(self, make_model: Callable = sgd_model, *, every: int = 1000, window: int = 2000):
        super().__init__(make_model)
        self.every = check_int("PeriodicRetrain", "every", every, low=1)
        self.window = check_int("PeriodicRetrain", "window", window, low=1)

    def start(self, X, y) -> None:
        """Fit on the warm-up data and keep it as the first window."""
        super().start(X, y)
        self._X, self._y = [np.asarray(X)], [np.asarray(y)]
        self._since = 0

    def learn(self, X, y, y_pred, position: int) -> None:
        """Keep the batch; refit on the last ``window`` samples once ``every`` have arrived."""
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


class Incremental(Strategy):
    """``partial_fit`` on every batch after the initial fit (online learning).

    Examples
    --------
    >>> from mlscale_lab.deployment import make_stream, prequential
    >>> s = make_stream("sudden", 3000, [2000], seed=0)
    >>> r = prequential(s, Incremental(), warmup=500)
    >>> bool(r.accuracy(2500) > 0.8)  # it has caught up with the new concept
    True
    """

    name = "online partial_fit"

    def learn(self, X, y, y_pred, position: int) -> None:
        """One ``partial_fit`` step on the batch."""
        self.model.partial_fit(X, y, classes=self.classes)


class DriftTriggered(Incremental):
    """Incremental learning plus a drift detector fed with the model's 0/1 errors.

    On an alarm the old model is dropped: a fresh model learns from the rest of the batch in
    which the alarm fired, and continues with ``partial_fit``. The alarms are kept in ``alarms``
    as the stream positions of the samples whose errors completed a drift; with labels that
    arrive late (``prequential(..., label_delay=d)``) the alarm is raised ``d`` samples or so
    later, once those labels are in.

    Parameters
    ----------
    make_model : callable, default :func:`sgd_model`
    detector : object, optional
        Any detector with River's protocol: ``update(x)``, then ``drift_detected``
        (:class:`PageHinkley`, :class:`Adwin`, ``river.drift.ADWIN()``...). Default:
        :class:`PageHinkley` with its default settings.

    Examples
    --------
    >>> from mlscale_lab.deployment import Adwin, make_stream, prequential
    >>> s = make_stream("sudden", 4000, [2000], seed=0)
    >>> r = prequential(s, DriftTriggered(detector=Adwin()), warmup=500)
    >>> 2000 <= r.alarms[0] < 2300  # the first alarm, soon after the drift
    True
    """

    name = "online + drift detector"

    def __init__(self, make_model: Callable = sgd_model, detector=None):
        super().__init__(make_model)
        if detector is None:
            detector = PageHinkley()
        if not callable(getattr(detector, "update", None)) or not hasattr(
            detector, "drift_detected"
        ):
            raise TypeError(
                f"DriftTriggered(detector={detector!r}): expected a drift detector with an "
                f"update(x) method and a drift_detected attribute (River's protocol), "
                f"got {type(detector).__name__}"
            )
        self.detector = detector

    def _first_alarm(self, errors) -> int | None:
        for i, e in enumerate(errors):
            self.detector.update(float(e))
            if self.detector.drift_detected:
                return i
        return None

    def learn(self, X, y, y_pred, position: int) -> None:
        """Feed the batch's errors to the detector; on an alarm, start a fresh model."""
        errors = np.asarray(y_pred) != np.asarray(y)
        hit = self._first_alarm(errors)
        if hit is None:
            super().learn(X, y, y_pred, position)
            return
        self.alarms.append(position + hit)
        self.retrains += 1
        self.model = self.make_model()
        self.model.partial_fit(X[hit:], y[hit:], classes=self.classes)
        for e in errors[hit + 1 :]:  # keep the detector's clock in step with the stream
            self.detector.update(float(e))
