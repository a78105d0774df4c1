"""The checks a candidate model must pass before it replaces production.

Each check is a plain function returning a :class:`CheckResult`; a check never raises because
the *model* is broken (a candidate that cannot predict on the input schema fails the check, with
the reason). :func:`run_checks` runs them all in this process; the gate file that
:func:`~mlscale_lab.deployment.write_gate` writes runs the same functions in a separate one.

>>> import numpy as np
>>> from sklearn.dummy import DummyClassifier
>>> X, y = np.zeros((20, 3)), np.r_[np.zeros(15), np.ones(5)].astype(int)
>>> majority = DummyClassifier().fit(X, y)
>>> check_accuracy(majority, X, y, min_accuracy=0.8).passed
False
>>> check_schema(majority, np.zeros((4, 2)), classes=[0, 1]).reason
'model expects 3 features, the schema has 2'
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mlscale_lab.validation import check_fraction, check_int, check_number


@dataclass(frozen=True)
class GateConfig:
    """The budgets a candidate must meet.

    Attributes
    ----------
    min_accuracy : float
        Accuracy on the held-out data, at least.
    max_regression : float
        The candidate may be at most this much less accurate than production (0.02 = 2 points).
    max_p95_ms : float
        95th-percentile latency of one prediction of ``latency_batch`` rows, in milliseconds.
    max_artifact_bytes : int
        Size of the serialised model (``model_footprint(model).serialized_bytes``).
    max_flip_rate : float
        Share of predictions allowed to change when the inputs get a small noise of
        ``noise_scale`` feature standard deviations (a change that should not matter).
    noise_scale : float
        That noise, in standard deviations of each feature.
    latency_batch : int
        Rows per timed prediction.
    latency_repeats : int
        Timed predictions.

    Examples
    --------
    >>> GateConfig(min_accuracy=0.9).max_regression
    0.02
    >>> GateConfig(max_flip_rate=2)
    Traceback (most recent call last):
    ...
    ValueError: GateConfig(max_flip_rate=2): expected a finite number >= 0 and <= 1, got 2
    """

    min_accuracy: float = 0.8
    max_regression: float = 0.02
    max_p95_ms: float = 100.0
    max_artifact_bytes: int = 100_000
    max_flip_rate: float = 0.02
    noise_scale: float = 0.01
    latency_batch: int = 1
    latency_repeats: int = 50

    def __post_init__(self):
        fn = "GateConfig"
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("min_accuracy", "max_flip_rate"):
                check_fraction(fn, f.name, value)
            elif f.name in ("latency_batch", "latency_repeats"):
                check_int(fn, f.name, value, low=1)
            else:
                check_number(fn, f.name, value, low=0)

    def as_dict(self) -> dict:
        """The budgets as a plain dict (what ``gate_config.json`` holds).

        Examples
        --------
        >>> GateConfig().as_dict()["min_accuracy"]
        0.8
        """
        return asdict(self)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> GateConfig:
        """Read the budgets from a JSON file written from :meth:`as_dict`.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        GateConfig
        """
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one gate check.

    Attributes
    ----------
    name : str
        The check, e.g. ``"accuracy"``.
    passed : bool
    value : float or None
        What was measured (None when the model could not be measured).
    limit : float or None
        The budget it was held to.
    reason : str
        One sentence a person reads: what was measured against what.

    Examples
    --------
    >>> CheckResult("accuracy", True, 0.9, 0.8, "accuracy 0.900 >= required 0.800").as_dict()["value"]
    0.9
    """

    name: str
    passed: bool
    value: float | None
    limit: float | None
    reason: str

    def as_dict(self) -> dict:
        """The result as a plain dict (for JSON reports).

        Returns
        -------
        dict
        """
        return asdict(self)


def _predict(model, X):
    """``(predictions, None)`` or ``(None, reason)``: a broken model is a result, not a crash."""
    try:
        pred = np.asarray(model.predict(X))
    except Exception as exc:  # any failure of the candidate's own code fails the check
        shape = f"{len(X)} rows of {np.shape(X)[1]} features"
        return None, f"predict failed on {shape}: {type(exc).__name__}: {exc}"
    if pred.shape != (len(X),):
        return None, f"predict returned shape {pred.shape}; expected one label per row, ({len(X)},)"
    return pred, None


def check_schema(model, X, classes) -> CheckResult:
    """The model takes rows shaped like ``X`` and returns one known label per row.

    Parameters
    ----------
    model : estimator
    X : array-like of shape (n_samples, n_features)
        Rows in the schema production serves.
    classes : array-like
        The labels a prediction may take.

    Returns
    -------
    CheckResult
        Named ``"schema"``.
    """
    X = np.asarray(X)
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and expected != X.shape[1]:
        why = f"model expects {expected} features, the schema has {X.shape[1]}"
        return CheckResult("schema", False, float(expected), float(X.shape[1]), why)
    pred, why = _predict(model, X)
    if why:
        return CheckResult("schema", False, None, None, why)
    unknown = sorted(set(pred.tolist()) - set(np.asarray(classes).tolist()))
    if unknown:
        why = f"predicted labels {unknown[:5]} not in the classes {list(classes)}"
        return CheckResult("schema", False, None, None, why)
    n = float(X.shape[1])
    return CheckResult("schema", True, n, n, f"{X.shape[1]} features in, known labels out")


def _accuracy(model, X, y):
    pred, why = _predict(model, np.asarray(X))
    return (None, why) if why else (float(np.mean(pred == np.asarray(y))), None)


def check_accuracy(model, X, y, *, min_accuracy: float) -> CheckResult:
    """Accuracy on the held-out ``X, y`` is at least ``min_accuracy``.

    Parameters
    ----------
    model : estimator
    X, y : array-like
        Held-out recent data.
    min_accuracy : float in [0, 1]

    Returns
    -------
    CheckResult
        Named ``"accuracy"``; ``value`` is the accuracy.
    """
    acc, why = _accuracy(model, X, y)
    if why:
        return CheckResult("accuracy", False, None, min_accuracy, why)
    ok = acc >= min_accuracy
    why = f"accuracy {acc:.3f} {'>=' if ok else '<'} required {min_accuracy:.3f}"
    return CheckResult("accuracy", ok, acc, min_accuracy, why)


def check_no_regression(candidate, production, X, y, *, max_regression: float) -> CheckResult:
    """The candidate is not worse than production by more than ``max_regression`` (accuracy).

    Without a production model (the first deployment) the check passes.

    Parameters
    ----------
    candidate, production : estimator
        ``production`` may be None.
    X, y : array-like
        Held-out recent data.
    max_regression : float
        The largest accuracy drop allowed (0.02 = 2 points).

    Returns
    -------
    CheckResult
        Named ``"no_regression"``; ``value`` is production's accuracy minus the candidate's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((10, 1)), np.r_[np.zeros(8), np.ones(2)].astype(int)
    >>> ones = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    >>> check_no_regression(ones, DummyClassifier().fit(X, y), X, y, max_regression=0.02).reason
    'candidate 0.200 vs production 0.800: drop +0.600 (beyond the allowed 0.020)'
    """
    cand, why = _accuracy(candidate, X, y)
    if why:
        return CheckResult("no_regression", False, None, max_regression, f"candidate: {why}")
    if production is None:
        return CheckResult("no_regression", True, 0.0, max_regression, "no production model yet")
    prod, why = _accuracy(production, X, y)
    if why:  # production cannot be scored on today's schema: anything that can beats it
        why = f"production cannot be scored ({why})"
        return CheckResult("no_regression", True, None, max_regression, why)
    drop = prod - cand
    ok = drop <= max_regression
    why = (f"candidate {cand:.3f} vs production {prod:.3f}: drop {drop:+.3f} "
           f"({'within' if ok else 'beyond'} the allowed {max_regression:.3f})")
    return CheckResult("no_regression", ok, drop, max_regression, why)


def check_latency(
    model, X, *, max_p95_ms: float, batch_size: int = 1, repeats: int = 50
) -> CheckResult:
    """p95 latency of ``model.predict`` on ``batch_size`` rows is within ``max_p95_ms``.

    Parameters
    ----------
    model : estimator
    X : array-like
        Rows to predict (consecutive batches of them are timed).
    max_p95_ms : float
        The budget, in milliseconds.
    batch_size : int
        Rows per timed call.
    repeats : int
        Timed calls.

    Returns
    -------
    CheckResult
        Named ``"p95_latency"``; ``value`` in milliseconds.
    """
    from mlscale_lab.constraints import measure_latency

    X = np.asarray(X)
    _, why = _predict(model, X[:batch_size])
    if why:
        return CheckResult("p95_latency", False, None, max_p95_ms, why)
    res = measure_latency(model.predict, X, (int(batch_size),), repeats=int(repeats))[0]
    ok = res.p95_ms <= max_p95_ms
    why = f"p95 {res.p95_ms:.2f} ms for {batch_size} row(s) {'<=' if ok else '>'} {max_p95_ms:g} ms"
    return CheckResult("p95_latency", ok, res.p95_ms, max_p95_ms, why)


def check_size(model, *, max_bytes: int) -> CheckResult:
    """The serialised artifact is at most ``max_bytes``.

    Parameters
    ----------
    model : estimator
    max_bytes : int

    Returns
    -------
    CheckResult
        Named ``"artifact_size"``; ``value`` in bytes.
    """
    from mlscale_lab.constraints import model_footprint

    try:
        size = model_footprint(model).serialized_bytes
    except Exception as exc:
        why = f"cannot measure the model: {type(exc).__name__}: {exc}"
        return CheckResult("artifact_size", False, None, max_bytes, why)
    ok = size <= max_bytes
    why = f"{size:,} bytes {'<=' if ok else '>'} {int(max_bytes):,}"
    return CheckResult("artifact_size", ok, float(size), float(max_bytes), why)


def check_invariance(
    model, X, *, noise_scale: float = 0.01, max_flip_rate: float = 0.02, seed: int = 0
) -> CheckResult:
    """Behaviour: a small noise on the inputs changes almost no prediction.

    A noise of ``noise_scale`` standard deviations per feature (a measurement jitter that should
    not matter) may change at most ``max_flip_rate`` of the predictions.

    Parameters
    ----------
    model : estimator
    X : array-like
    noise_scale : float
    max_flip_rate : float in [0, 1]
    seed : int
        Seed of the noise.

    Returns
    -------
    CheckResult
        Named ``"invariance"``; ``value`` is the share of predictions that changed.
    """
    X = np.asarray(X, dtype=float)
    base, why = _predict(model, X)
    if why:
        return CheckResult("invariance", False, None, max_flip_rate, why)
    rng = np.random.default_rng(seed)
    noisy = X + rng.normal(size=X.shape) * X.std(axis=0) * noise_scale
    moved, why = _predict(model, noisy)
    if why:
        return CheckResult("invariance", False, None, max_flip_rate, why)
    rate = float(np.mean(moved != base))
    ok = rate <= max_flip_rate
    why = (f"{rate:.1%} of predictions changed under {noise_scale:g}-sd noise "
           f"({'<=' if ok else '>'} {max_flip_rate:.1%})")
    return CheckResult("invariance", ok, rate, max_flip_rate, why)


def run_checks(candidate, production, X, y, config: GateConfig | None = None) -> list[CheckResult]:
    """All checks in this process (the same ones the gate file runs), in gate order.

    Parameters
    ----------
    candidate, production : estimator
        ``production`` may be None (a first deployment).
    X, y : array-like
        Held-out recent data.
    config : GateConfig, optional
        The budgets (default ``GateConfig()``).

    Returns
    -------
    list of CheckResult
        schema, accuracy, no_regression, p95_latency, artifact_size, invariance.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> [c.name for c in run_checks(model, None, X, y) if not c.passed]
    []
    """
    c = config or GateConfig()
    X, y = np.asarray(X), np.asarray(y)
    return [
        check_schema(candidate, X, classes=np.unique(y)),
        check_accuracy(candidate, X, y, min_accuracy=c.min_accuracy),
        check_no_regression(candidate, production, X, y, max_regression=c.max_regression),
        check_latency(candidate, X, max_p95_ms=c.max_p95_ms, batch_size=c.latency_batch,
                      repeats=c.latency_repeats),
        check_size(candidate, max_bytes=c.max_artifact_bytes),
        check_invariance(candidate, X, noise_scale=c.noise_scale, max_flip_rate=c.max_flip_rate),
    ]
