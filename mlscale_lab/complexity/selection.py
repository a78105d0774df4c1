"""Shrink a model's inputs with feature selection or PCA, and measure what it buys and costs.

Lab 02's helpers. Each sweep returns a table (a list of :class:`SweepPoint`, one row per
``k``): cross-validated accuracy, the bytes a deployment must hold, fit time and prediction
latency, all measured. Plots and the explorer widget live in :mod:`mlscale_lab.views.selection`.

Two facts the lab is built on, both visible in the tables:

* chi-squared selection keeps ``k`` raw features, so a deployment stops collecting the rest;
  PCA keeps ``k`` components, but every component mixes *all* raw features, so serving still
  needs every one of them;
* selecting features is part of training: done on the whole data before cross-validation, it
  leaks the labels of the test folds into the features (see :func:`leakage_demo`).

scikit-learn is imported here at module level; :mod:`mlscale_lab` itself does not import this
module, so ``import mlscale_lab`` stays light.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    chi2,
    mutual_info_classif,
)
from sklearn.feature_selection._base import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from mlscale_lab.constraints._footprint import model_footprint
from mlscale_lab.constraints._latency import measure_latency

METHODS = ("all", "chi2", "mutual_info", "l1", "pca")
"""Ways :func:`make_pipeline` reduces the inputs: none, three selectors, or PCA."""


# -- checks at the door ------------------------------------------------------------------------
def check_nonnegative(X, *, name: str = "X") -> np.ndarray:
    """Return ``X`` as an array, or raise if it holds negative values (chi-squared needs counts).

    Raises
    ------
    ValueError
        Naming how many values are negative and the smallest one, and suggesting a scaling
        that keeps features non-negative.

    Examples
    --------
    >>> check_nonnegative([[0.0, 2.0], [1.0, 3.0]]).shape
    (2, 2)
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples x features), got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    negative = int(np.count_nonzero(X < 0))
    if negative:
        raise ValueError(
            f"chi-squared needs non-negative features (counts or frequencies), but {name} has "
            f"{negative} negative values (smallest {float(X.min()):.4g}). Standardised data "
            "(StandardScaler) is centred on 0, so many values are negative: use raw counts, or "
            "rescale with MinMaxScaler() (to [0, 1]) inside the pipeline, before SelectKBest(chi2)."
        )
    return X


def check_k(k, n_features: int, *, name: str = "k") -> int:
    """Return ``k`` as an int, or raise if it is not a number of features between 1 and ``n_features``.

    Examples
    --------
    >>> check_k(10, 64)
    10
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an integer number of features, got {k!r}")
    if not 1 <= k <= n_features:
        raise ValueError(
            f"{name}={k} is out of range: the data has {n_features} features, so {name} must be "
            f"between 1 and {n_features}. Keep at most as many features (or components) as "
            "there are columns, e.g. min(k, X.shape[1])."
        )
    return int(k)


def check_variance_target(target, *, name: str = "target") -> float:
    """Return a variance target as a float, or raise unless it is a fraction in (0, 1].

    Examples
    --------
    >>> check_variance_target(0.95)
    0.95
    """
    if isinstance(target, bool) or not isinstance(target, numbers.Real):
        raise TypeError(f"{name} must be a fraction of the variance, e.g. 0.95, got {target!r}")
    t = float(target)
    if not (math.isfinite(t) and 0.0 < t <= 1.0):
        hint = f" (did you mean {t / 100:g}?)" if 1.0 < t <= 100.0 else ""
        raise ValueError(
            f"{name}={target!r} is not a fraction of the variance: give a number in (0, 1], "
            f"such as 0.95 for 95%{hint}."
        )
    return t


def _check_xy(X, y):
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per row of X: X has {len(X)} rows, y has shape {y.shape}"
        )
    return X, y


# -- PCA: how many components ------------------------------------------------------------------
def explained_variance_curve(X) -> np.ndarray:
    """Cumulative fraction of the variance explained by the first 1, 2, ... principal components.

    Entry ``i`` is the fraction explained by ``i + 1`` components; the last entry is 1.0
    (up to rounding) when there are at least as many samples as features.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or min(X.shape) < 2:
        raise ValueError(f"X must be 2-D with at least 2 rows and 2 columns, got shape {X.shape}")
    pca = PCA(svd_solver="full").fit(X)
    return np.cumsum(pca.explained_variance_ratio_)


def components_for_variance(cumulative, target: float = 0.95) -> int:
    """The fewest components whose cumulative explained variance reaches ``target``.

    Parameters
    ----------
    cumulative : array-like
        The output of :func:`explained_variance_curve`.
    target : float in (0, 1]
        Fraction of the variance to keep.

    Examples
    --------
    >>> components_for_variance([0.5, 0.8, 0.96, 1.0], 0.95)
    3
    >>> components_for_variance([0.5, 0.8, 0.96, 1.0], 0.5)
    1
    """
    t = check_variance_target(target)
    c = np.asarray(cumulative, dtype=float)
    if c.ndim != 1 or c.size == 0 or np.any(np.diff(c) < -1e-12):
        raise ValueError(
            "cumulative must be a non-empty, non-decreasing 1-D array; pass "
            "explained_variance_curve(X)"
        )
    # Rounding can leave the last entry a hair under 1.0; a target of 1.0 means all components.
    n = int(np.searchsorted(c, t - 1e-9, side="left")) + 1
    return min(n, c.size)


def components_table(X, targets: Iterable[float] = (0.90, 0.95, 0.99)) -> list[dict]:
    """Rows ``{"target", "components", "fraction_of_features"}`` for each variance target."""
    targets = [check_variance_target(t, name="targets") for t in targets]
    curve = explained_variance_curve(X)
    n_features = np.asarray(X).shape[1]
    rows = []
    for t in targets:
        n = components_for_variance(curve, t)
        rows.append({"target": t, "components": n, "fraction_of_features": n / n_features})
    return rows


# -- data ----------------------------------------------------------------------------------------
def make_wide_counts(
    n_samples: int = 600,
    n_features: int = 3000,
    n_informative: int = 20,
    *,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A wide, bag-of-words-like data set: non-negative counts, few of them informative.

    Every feature is a Poisson count with its own base rate (think: how often a word appears
    in a document). For the ``n_informative`` first features the rate differs between the two
    classes; the others carry no information. Features are then shuffled, so position gives
    nothing away. Returns ``X`` (float64 counts) and ``y`` (0/1, balanced).
    """
    for name, v, lo in (("n_samples", n_samples, 10), ("n_features", n_features, 2),
                        ("n_informative", n_informative, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"make_wide_counts({name}=...): expected an integer >= {lo}, got {v!r}")
    if n_informative > n_features:
        raise ValueError(
            f"make_wide_counts(n_informative={n_informative}): at most n_features={n_features}"
        )
    rng = np.random.default_rng(random_state)
    y = np.arange(n_samples) % 2
    rng.shuffle(y)
    base = rng.gamma(shape=1.0, scale=1.0, size=n_features)
    rates = np.tile(base, (2, 1))
    # The informative features are about twice (or half) as frequent in class 1.
    factor = rng.choice([0.5, 2.0], size=n_informative)
    rates[1, :n_informative] *= factor
    X = rng.poisson(rates[y]).astype(np.float64)
    order = rng.permutation(n_features)
    return X[:, order], y


# -- pipelines -----------------------------------------------------------------------------------
def default_classifier() -> LogisticRegression:
    """The classifier the lab shrinks: multinomial logistic regression, fast to fit."""
    return LogisticRegression(max_iter=300, tol=1e-3)


def make_pipeline(method: str = "chi2", k: int | None = None, *, estimator=None,
                  random_state: int = 0) -> Pipeline:
    """A reduce-then-classify pipeline: ``[reduce,] StandardScaler, classifier``.

    Parameters
    ----------
    method : {"all", "chi2", "mutual_info", "l1", "pca"}
        ``"all"`` keeps every feature; ``"chi2"`` and ``"mutual_info"`` keep the ``k`` best by
        that score (``SelectKBest``); ``"l1"`` keeps the ``k`` largest weights of an L1-penalised
        linear SVM (``SelectFromModel``); ``"pca"`` keeps ``k`` principal components.
    k : int
        Features or components to keep (ignored for ``"all"``).
    estimator : classifier, optional
        Defaults to :func:`default_classifier`; cloned.

    The scaler comes *after* the reduction: chi-squared needs the raw non-negative values,
    and the scaler then only holds statistics for the features a deployment keeps.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    clf = clone(estimator) if estimator is not None else default_classifier()
    steps = []
    if method != "all":
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"make_pipeline(method={method!r}): k must be an integer >= 1, got {k!r}")
        k = int(k)
        if method == "chi2":
            steps.append(("select", SelectKBest(chi2, k=k)))
        elif method == "mutual_info":
            def score(X, y):
                # Integer-valued features (pixel levels, counts) are scored as discrete:
                # exact and fast; continuous ones by nearest-neighbour estimates (slow).
                discrete = bool(np.all(np.mod(X, 1) == 0))
                return mutual_info_classif(X, y, discrete_features=discrete,
                                           random_state=random_state)

            steps.append(("select", SelectKBest(score, k=k)))
        elif method == "l1":
            # A sparse linear model: the L1 penalty drives most weights to zero; keep the k
            # features with the largest weights (summed over classes).
            l1 = LinearSVC(penalty="l1", dual=False, C=0.01, tol=1e-2)
            steps.append(("select", SelectFromModel(l1, max_features=k, threshold=-np.inf)))
        else:
            steps.append(("reduce", PCA(n_components=k, random_state=random_state)))
    steps += [("scale", StandardScaler()), ("clf", clf)]
    return Pipeline(steps)


def features_to_collect(pipeline: Pipeline, n_features: int) -> int:
    """Raw features a deployment of this fitted pipeline must collect for each prediction.

    A selector needs only the columns it kept; anything else (PCA, a scaler, the classifier)
    reads every column it was given.
    """
    first = pipeline.steps[0][1]
    if isinstance(first, SelectorMixin):
        return int(first.get_support().sum())
    return int(n_features)


def serving_bytes(pipeline: Pipeline) -> int:
    """Bytes of the learned values a deployment of this fitted pipeline holds.

    Measured with :func:`mlscale_lab.constraints._footprint.model_footprint` (``dense_bytes``) for every
    step, except selectors: serving a selector needs only the indices of the kept columns
    (int64), not the scores it ranked them by, so that is what they count.
    """
    total = 0
    for _, step in pipeline.steps:
        if isinstance(step, SelectorMixin):
            total += int(step.get_support(indices=True).astype(np.int64).nbytes)
        else:
            total += model_footprint(step).dense_bytes
    return total


# -- sweeps ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One row of a sweep: a pipeline that keeps ``k`` features or components, measured.

    Attributes
    ----------
    method : str
        How the inputs were reduced (see :func:`make_pipeline`).
    k : int
        Features or components kept (the number of features for ``"all"``).
    features_to_collect : int
        Raw features serving must collect per prediction.
    accuracy, accuracy_std : float
        Mean and standard deviation of the cross-validated accuracy.
    model_bytes : int
        :func:`serving_bytes` of the pipeline fitted on all the data.
    fit_seconds : float
        Wall time of that fit (reduction included).
    latency_ms : float
        Median time of ``predict`` on one row.
    batch_ms : float
        Median time of ``predict`` on a batch of ``batch_size`` rows.
    batch_size : int
    """

    method: str
    k: int
    features_to_collect: int
    accuracy: float
    accuracy_std: float
    model_bytes: int
    fit_seconds: float
    latency_ms: float
    batch_ms: float
    batch_size: int

    def as_dict(self) -> dict:
        return asdict(self)


def _check_k_for(X, method: str, k, name: str) -> int:
    if method != "pca" or X.shape[0] >= X.shape[1]:
        return check_k(k, X.shape[1], name=name)
    limit = min(X.shape)
    if not isinstance(k, bool) and isinstance(k, numbers.Integral) and k > limit:
        raise ValueError(
            f"{name}={k} is out of range: PCA finds at most min(n_samples, n_features) = {limit} "
            f"components here ({X.shape[0]} rows, {X.shape[1]} features). Keep at most {limit} "
            "components, or use more rows."
        )
    return check_k(k, limit, name=name)


def _check_config(X, method, k) -> int:
    n_features = X.shape[1]
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if method == "all":
        return n_features
    k = _check_k_for(X, method, k, "k")
    if method == "chi2":
        check_nonnegative(X)
    return k


def evaluate_many(X, y, configs: Sequence[tuple[str, int | None]], *, estimator=None,
                  cv: int = 5, random_state: int = 0, batch_size: int = 256,
                  repeats: int = 20, rounds: int = 5, threads: int | None = 1,
                  progress: bool = False) -> list[SweepPoint]:
    """Cross-validate and measure several reduce-then-classify pipelines: one row each.

    Parameters
    ----------
    X, y : arrays
        Data; for ``"chi2"`` the features must be non-negative.
    configs : sequence of (method, k)
        Pipelines to build with :func:`make_pipeline`, e.g. ``[("all", None), ("chi2", 10)]``.
    cv : int
        Folds of stratified, shuffled cross-validation. The reduction is fitted inside each
        fold (it is a pipeline step), so the accuracy is free of selection leakage.
    batch_size, repeats : int
        Latency is measured on one row and on ``batch_size`` rows, ``repeats`` calls each.
    rounds : int
        The latency calls are spread over this many rounds that visit every pipeline in turn,
        so that a burst of load on a shared machine hits all rows alike; each row reports the
        median over its rounds of the per-round median.
    threads : int or None
        BLAS/OpenMP threads during the measurements (``None``: leave as is).
    progress : bool
        Show a tqdm progress bar over the fits.

    Returns
    -------
    list of SweepPoint, in the order of ``configs``
    """
    X, y = _check_xy(X, y)
    configs = list(configs)
    if not configs:
        raise ValueError("configs must hold at least one (method, k), e.g. [('chi2', 10)]")
    ks = [_check_config(X, m, k) for m, k in configs]
    for name, v, lo in (("cv", cv, 2), ("repeats", repeats, 1), ("rounds", rounds, 1),
                        ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    folds = StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    items = list(zip(configs, ks, strict=True))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="fitting", leave=False)
    fitted = []
    # Small linear models: BLAS threads cost more than they bring, and on a shared machine
    # they can slow a fit down many times. One thread makes the timings steady.
    with threadpool_limits(threads):
        for (method, _), k in items:
            pipe = make_pipeline(method, k, estimator=estimator, random_state=random_state)
            scores = cross_val_score(pipe, X, y, cv=folds, n_jobs=1)
            t0 = time.perf_counter()
            pipe.fit(X, y)
            fitted.append((method, k, pipe, scores, time.perf_counter() - t0))
        per_round = max(1, math.ceil(repeats / rounds))
        one = [[] for _ in fitted]
        batch = [[] for _ in fitted]
        for r in range(rounds):
            for i, (_, _, pipe, _, _) in enumerate(fitted):
                a, b = measure_latency(pipe.predict, X, (1, batch_size),
                                       warmup=2 if r == 0 else 1, repeats=per_round)
                one[i].append(a.p50_ms)
                batch[i].append(b.p50_ms)
    return [
        SweepPoint(
            method=method,
            k=int(k),
            features_to_collect=features_to_collect(pipe, X.shape[1]),
            accuracy=float(scores.mean()),
            accuracy_std=float(scores.std()),
            model_bytes=serving_bytes(pipe),
            fit_seconds=float(fit_seconds),
            latency_ms=float(np.median(one[i])),
            batch_ms=float(np.median(batch[i])),
            batch_size=int(batch_size),
        )
        for i, (method, k, pipe, scores, fit_seconds) in enumerate(fitted)
    ]


def evaluate(X, y, method: str = "chi2", k: int | None = None, **kwargs) -> SweepPoint:
    """One row of :func:`evaluate_many`: a single pipeline, cross-validated and measured."""
    return evaluate_many(X, y, [(method, k)], **kwargs)[0]


def sweep(X, y, ks: Sequence[int], method: str = "chi2", **kwargs) -> list[SweepPoint]:
    """Accuracy, model bytes, fit time and latency for each ``k`` in ``ks``: one row each.

    ``ks`` are features (or components, for ``"pca"``) to keep, each between 1 and the number
    of features; rows come back in increasing ``k``. Keyword arguments go to
    :func:`evaluate_many`, which measures all of them (cross-validated, leakage-free).
    """
    X, y = _check_xy(X, y)
    if isinstance(ks, numbers.Integral):
        ks = [ks]
    ks = list(ks)
    if not ks:
        raise ValueError("ks must hold at least one k, e.g. [5, 10, 20]")
    ks = sorted({_check_k_for(X, method, k, "ks") for k in ks})
    return evaluate_many(X, y, [(method, k) for k in ks], **kwargs)


def by_method(points: Sequence[SweepPoint]) -> dict[str, list[SweepPoint]]:
    """Group rows by method, each group sorted by ``k``."""
    groups: dict[str, list[SweepPoint]] = {}
    for p in points:
        groups.setdefault(p.method, []).append(p)
    return {m: sorted(g, key=lambda p: p.k) for m, g in groups.items()}


def smallest_k_within(points: Sequence[SweepPoint], reference: float, tolerance: float = 0.01) -> SweepPoint:
    """The row with the smallest ``k`` whose accuracy is within ``tolerance`` of ``reference``.

    ``tolerance`` is a fraction: 0.01 is one accuracy point.

    Examples
    --------
    >>> rows = [SweepPoint("chi2", k, k, acc, 0, 0, 0, 0, 0, 1)
    ...         for k, acc in [(4, 0.80), (8, 0.955), (16, 0.97)]]
    >>> smallest_k_within(rows, reference=0.96).k
    8
    """
    if not points:
        raise ValueError("points is empty: run sweep(...) first")
    if not (isinstance(tolerance, numbers.Real) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance must be a fraction in [0, 1), e.g. 0.01, got {tolerance!r}")
    ok = [p for p in points if p.accuracy >= float(reference) - tolerance - 1e-12]
    if not ok:
        best = max(p.accuracy for p in points)
        raise ValueError(
            f"no k reaches {reference - tolerance:.4f} accuracy (best {best:.4f}); sweep larger ks"
        )
    return min(ok, key=lambda p: p.k)


def compare_selectors(X, y, k: int, methods: Sequence[str] = ("chi2", "mutual_info", "l1"), *,
                      test_size: float = 0.25, random_state: int = 0,
                      threads: int | None = 1) -> list[dict]:
    """Compare selectors that keep ``k`` features on one stratified train/test split.

    Cheaper than :func:`sweep` (one fit per selector, no cross-validation), for a side-by-side
    look. Each row: ``method``, ``k``, ``select_seconds`` (fitting the selector alone),
    ``accuracy`` (held-out), ``overlap_with_first`` (features in common with the first
    method's choice) and ``features`` (the kept column indices).
    """
    X, y = _check_xy(X, y)
    k = check_k(k, X.shape[1])
    for m in methods:
        if m not in METHODS or m in ("all", "pca"):
            raise ValueError(f"methods: {m!r} is not a selector; use 'chi2', 'mutual_info' or 'l1'")
    if "chi2" in methods:
        check_nonnegative(X)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=random_state)
    rows, first = [], None
    with threadpool_limits(threads):
        for m in methods:
            pipe = make_pipeline(m, k, random_state=random_state)
            selector = pipe.steps[0][1]
            t0 = time.perf_counter()
            selector.fit(X_tr, y_tr)
            seconds = time.perf_counter() - t0
            kept = selector.get_support(indices=True)
            # The selector is fitted already; fit the rest of the pipeline on its output.
            rest = Pipeline(pipe.steps[1:]).fit(selector.transform(X_tr), y_tr)
            acc = float(rest.score(selector.transform(X_te), y_te))
            first = set(kept) if first is None else first
            rows.append({"method": m, "k": k, "select_seconds": seconds, "accuracy": acc,
                         "overlap_with_first": len(first & set(kept)),
                         "features": [int(i) for i in kept]})
    return rows


# -- the leakage trap ------------------------------------------------------------------------
@dataclass(frozen=True)
class LeakageResult:
    """Cross-validated accuracy on pure-noise labels, with selection outside and inside CV."""

    inflated_accuracy: float
    leakage_free_accuracy: float
    chance: float
    n_samples: int
    n_features: int
    k: int

    def as_dict(self) -> dict:
        return asdict(self)


def noise_data(n_samples: int = 200, n_features: int = 5000, *, random_state: int = 0):
    """Features and labels that are independent random numbers: no model can beat chance."""
    rng = np.random.default_rng(random_state)
    X = rng.random((n_samples, n_features))
    y = rng.permutation(np.arange(n_samples) % 2)
    return X, y


def leakage_demo(X, y, k: int = 20, *, cv: int = 5, random_state: int = 0,
                 estimator=None, threads: int | None = 1) -> LeakageResult:
    """Show the selection-leakage trap on ``X, y`` (use :func:`noise_data` for the classic case).

    *Inflated*: ``SelectKBest(chi2, k)`` is fitted on all rows, then the classifier is
    cross-validated on the kept columns; the test folds' labels chose those columns.
    *Leakage-free*: the same selector and classifier in one ``Pipeline``, so each fold selects
    on its training rows only.
    """
    X, y = _check_xy(X, y)
    X = check_nonnegative(X)
    k = check_k(k, X.shape[1])
    clf = clone(estimator) if estimator is not None else default_classifier()
    folds = StratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    with threadpool_limits(threads):
        kept = SelectKBest(chi2, k=k).fit_transform(X, y)
        inflated = cross_val_score(clf, kept, y, cv=folds).mean()
        pipe = Pipeline([("select", SelectKBest(chi2, k=k)), ("clf", clone(clf))])
        clean = cross_val_score(pipe, X, y, cv=folds).mean()
    _, counts = np.unique(y, return_counts=True)
    return LeakageResult(
        inflated_accuracy=float(inflated),
        leakage_free_accuracy=float(clean),
        chance=float(counts.max() / counts.sum()),
        n_samples=int(X.shape[0]),
        n_features=int(X.shape[1]),
        k=k,
    )
