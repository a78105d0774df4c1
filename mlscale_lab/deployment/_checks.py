"""The checks a candidate model must pass before it replaces production.

Each check is a plain function returning a :class:`CheckResult`; a check never raises because
the *model* is broken (a candidate that cannot predict on the input schema fails the check, with
the reason). The gate's table (``_gate_checks.GATE_CHECKS``) says which checks run, in which
order and with which budgets; :func:`~mlscale_lab.deployment.run_checks` runs them in this
process, and the gate file that :func:`~mlscale_lab.deployment.write_gate` writes runs the same
table in a separate one.

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

from dataclasses import asdict, dataclass

import numpy as np

from mlscale_lab.evidence import (
    HOLDS,
    INCONCLUSIVE,
    REFUTED,
    MachineCheck,
    NotEnoughData,
    interleave,
    judge,
    quantile_interval,
)


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
    status : str
        The evidence core's verdict on the budget: ``"holds"``, ``"does not hold"`` or
        ``"inconclusive"`` (a measurement that cannot tell, such as a latency ratio whose
        interval straddles the budget or that a busy machine made unreliable). Exact checks
        leave it to follow ``passed``. Only ``"holds"`` passes: a gate that cannot show a
        budget holds does not promote.
    interval : dict or None
        The measured quantity's interval (:meth:`mlscale_lab.evidence.Interval.as_dict`) for a
        check that measures with noise.
    verdict_reason : str
        For such a check, why its verdict is what it is (where the interval lies against the
        budget, or what made the machine untrustworthy).

    Examples
    --------
    >>> r = CheckResult("accuracy", True, 0.9, 0.8, "accuracy 0.900 >= required 0.800")
    >>> r.as_dict()["value"], r.status
    (0.9, 'holds')
    >>> CheckResult("latency", False, 1.6, 1.5, "...", status="inconclusive").inconclusive
    True
    """

    name: str
    passed: bool
    value: float | None
    limit: float | None
    reason: str
    status: str = ""
    interval: dict | None = None
    verdict_reason: str = ""

    def __post_init__(self):
        status = self.status or (HOLDS if self.passed else REFUTED)
        if status not in (HOLDS, REFUTED, INCONCLUSIVE) or (status == HOLDS) != bool(self.passed):
            raise ValueError(f"CheckResult(passed={self.passed!r}, status={self.status!r}): expected "
                             "status 'holds' for a pass, 'does not hold' or 'inconclusive' for a fail")
        object.__setattr__(self, "status", status)

    @property
    def inconclusive(self) -> bool:
        """The measurement could not tell whether the budget holds (the check fails)."""
        return self.status == INCONCLUSIVE

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
    candidate, production, X, *, max_ratio: float = 1.5, max_p95_ms: float = 100.0,
    batch_size: int = 1, rounds: int = 100,
) -> CheckResult:
    """The candidate predicts at most ``max_ratio`` times slower than the model it replaces.

    A fixed budget in milliseconds says nothing about a model that takes 0.05 ms: it could get
    a hundred times slower and still pass. So the budget is scaled to the model the gate guards:
    candidate and production predict the same ``batch_size`` rows in interleaved rounds (A B,
    B A, ...: :func:`mlscale_lab.evidence.interleave`), inside a
    :class:`~mlscale_lab.evidence.MachineCheck`, and the paired interval of the ratio of their
    median times is judged against ``max_ratio``. The check passes when the whole interval lies
    below the budget, fails when it lies above (a regression), and fails as *inconclusive* when
    the interval straddles it or the machine was too busy to trust a refutation: rerun the gate
    on a quiet runner. A first deployment, with no production model to compare with, is held
    to the absolute ``max_p95_ms`` instead (the order-statistic interval of its p95).

    Parameters
    ----------
    candidate, production : estimator
        ``production`` may be None (a first deployment).
    X : array-like
        Rows to predict; the first ``batch_size`` are timed.
    max_ratio : float
        The candidate's median time over production's, at most.
    max_p95_ms : float
        p95 budget in milliseconds, for a first deployment only.
    batch_size : int
        Rows per timed call.
    rounds : int
        Timed calls of each model (after a few warm-up rounds).

    Returns
    -------
    CheckResult
        Named ``"latency"``; ``value`` is the median ratio (or the p95 in ms on a first
        deployment), ``status`` the verdict.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.random.default_rng(0).normal(size=(50, 3)); y = (X[:, 0] > 0).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> check_latency(model, model, X, rounds=30).status  # a model against itself: ratio 1
    'holds'
    """
    X = np.asarray(X)
    rows = X[: int(batch_size)]
    _, why = _predict(candidate, rows)
    if why:
        limit = max_ratio if production is not None else max_p95_ms
        return CheckResult("latency", False, None, limit, why)
    compare = production is not None and _predict(production, rows)[1] is None
    arms = {"candidate": lambda: candidate.predict(rows)}
    if compare:
        arms["production"] = lambda: production.predict(rows)
    with MachineCheck() as machine:
        timed = interleave(arms, rounds=int(rounds), warmup=max(2, int(rounds) // 20))
    per_call = {name: timed.median(name) * 1000 for name in arms}
    size = f"{len(rows)} row(s)"
    if compare:
        measured_iv = ratio = timed.ratio("candidate", "production")
        verdict = judge(ratio, f"the candidate is at most {max_ratio:g}x slower than production",
                        below=max_ratio, machine=machine.report)
        value, limit = ratio.estimate, max_ratio
        measured = (f"candidate {per_call['candidate']:.3f} ms vs production "
                    f"{per_call['production']:.3f} ms per call of {size}")
    else:
        try:
            measured_iv = p95 = quantile_interval(timed.samples["candidate"] * 1000, 0.95)
        except NotEnoughData as exc:
            return CheckResult("latency", False, None, max_p95_ms, str(exc), status=INCONCLUSIVE)
        verdict = judge(p95, f"p95 latency within {max_p95_ms:g} ms (no production model to "
                        "compare with)", below=max_p95_ms, machine=machine.report)
        value, limit = p95.estimate, max_p95_ms
        measured = f"candidate p95 {p95.estimate:.3f} ms per call of {size}"
    return CheckResult("latency", verdict.holds, float(value), float(limit),
                       f"{measured}: {verdict}", status=verdict.status,
                       interval=measured_iv.as_dict(), verdict_reason=verdict.reason)


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
