"""Sweeps: cross-validate and time reduce-then-classify pipelines, one table row per ``k``."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from mlscale_lab.complexity.selection._checks import check_k, check_nonnegative, check_xy
from mlscale_lab.complexity.selection._pipelines import (
    METHODS,
    features_to_collect,
    selection_pipeline,
    serving_bytes,
)
from mlscale_lab.constraints import measure_latency
from mlscale_lab.evidence import Interval, resampled_interval, resampled_se
from mlscale_lab.validation import check_choice, check_int


@dataclass(frozen=True)
class SweepPoint:
    """One row of a sweep: a pipeline that keeps ``k`` features or components, measured.

    Attributes
    ----------
    method : str
        How the inputs were reduced (see :func:`selection_pipeline`).
    k : int
        Features or components kept (the number of features for ``"all"``).
    features_to_collect : int
        Raw features serving must collect per prediction.
    accuracy, accuracy_std : float
        Mean and sample standard deviation (ddof=1) of the per-fold accuracies, over every
        fold of every repeat of the cross-validation.
    model_bytes : int
        :func:`serving_bytes` of the pipeline fitted on all the data.
    fit_seconds : float
        Wall time of that fit (reduction included).
    latency_ms : float
        Median time of ``predict`` on one row.
    batch_ms : float
        Median time of ``predict`` on a batch of ``batch_size`` rows.
    batch_size : int
    folds : int
        Folds of each repeat of the cross-validation (K of K-fold).
    cv_repeats : int
        Times the K-fold was repeated on a new shuffle of the rows.
    fold_scores : tuple of float
        The accuracy of every fold of every repeat, in the splitter's order: the same splits
        for every row of one :func:`evaluate_many` call, so two rows can be compared fold by
        fold (:func:`~mlscale_lab.complexity.selection.accuracy_difference`).

    Examples
    --------
    >>> p = SweepPoint("chi2", 8, 8, 0.95, 0.02, 1000, 0.01, 0.1, 0.5, 256, folds=5, cv_repeats=2)
    >>> round(p.accuracy_se, 4)  # 0.02 * sqrt(1 / 10 + 1 / 4), not 0.02 / sqrt(10)
    0.0118
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
    folds: int = 5
    cv_repeats: int = 1
    fold_scores: tuple[float, ...] = ()

    @property
    def splits(self) -> int:
        """Train/test splits behind ``accuracy``: ``folds * cv_repeats``."""
        return self.folds * self.cv_repeats

    @property
    def accuracy_se(self) -> float:
        """Standard error of the mean accuracy, allowing for folds that share training rows.

        Nadeau and Bengio's correction (:func:`mlscale_lab.evidence.resampled_se`):
        ``accuracy_std * sqrt(1 / splits + 1 / (folds - 1))``. The folds are not independent
        (any two train on mostly the same rows), so ``accuracy_std / sqrt(folds)`` would
        understate it (Bengio and Grandvalet 2004).
        """
        return resampled_se(self.accuracy_std, self.splits, n_train=self.folds - 1, n_test=1)

    def accuracy_interval(self, level: float = 0.95) -> Interval:
        """Corrected resampled t interval of the accuracy (:func:`~mlscale_lab.evidence.resampled_interval`)."""
        if len(self.fold_scores) != self.splits:
            raise ValueError(f"SweepPoint.accuracy_interval(): this row holds {len(self.fold_scores)} "
                             f"fold scores for {self.splits} splits; rows from evaluate_many have them")
        return resampled_interval(self.fold_scores, n_train=self.folds - 1, n_test=1, level=level)

    def as_dict(self) -> dict:
        """The row as a plain dict (for tables), with its corrected ``accuracy_se``."""
        return {**asdict(self), "accuracy_se": self.accuracy_se}


def _k_for(func: str, X, method: str, k, name: str) -> int:
    """``k`` checked against what ``method`` can keep on ``X``."""
    if method != "pca" or X.shape[0] >= X.shape[1]:
        return check_k(k, X.shape[1], func=func, name=name)
    limit = min(X.shape)
    hint = (f"PCA finds at most min(n_samples, n_features) = {limit} components here "
            f"({X.shape[0]} rows, {X.shape[1]} features); keep at most {limit}, or use more rows")
    return check_int(func, name, k, low=1, high=limit, hint=hint)


def _config(func: str, X, method, k) -> int:
    check_choice(func, "method", method, METHODS)
    if method == "all":
        return X.shape[1]
    k = _k_for(func, X, method, k, "k")
    if method == "chi2":
        check_nonnegative(X, func=func)
    return k


def evaluate_many(X, y, configs: Sequence[tuple[str, int | None]], *, estimator=None,
                  cv: int = 5, cv_repeats: int = 2, seed: int = 0, batch_size: int = 256,
                  repeats: int = 20,
                  rounds: int = 5, threads: int | None = 1,
                  progress: bool = False) -> list[SweepPoint]:
    """Cross-validate and measure several reduce-then-classify pipelines: one row each.

    Parameters
    ----------
    X, y : arrays
        Data; for ``"chi2"`` the features must be non-negative (counts or booleans).
    configs : sequence of (method, k)
        Pipelines to build with :func:`selection_pipeline`, e.g. ``[("all", None), ("chi2", 10)]``.
    estimator : classifier, optional
        The classifier after the reduction (default :func:`default_classifier`).
    cv : int
        Folds of stratified, shuffled cross-validation. The reduction is fitted inside each
        fold (it is a pipeline step), so the accuracy is free of selection leakage.
    cv_repeats : int
        Times the ``cv``-fold split is repeated on a new shuffle (repeated K-fold): more
        splits make the corrected standard error of the accuracy smaller. Every row is scored
        on the same splits.
    seed : int
        Seed of the folds and of the pipelines' random steps.
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
    list of SweepPoint
        In the order of ``configs``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> rows = evaluate_many(X, y, [("all", None), ("chi2", 2)], cv=3, repeats=2, rounds=1)
    >>> [(r.method, r.k, r.features_to_collect) for r in rows]
    [('all', 4, 4), ('chi2', 2, 2)]
    """
    func = "evaluate_many"
    X, y = check_xy(func, X, y)
    configs = list(configs)
    if not configs:
        raise ValueError(f"{func}(configs=[]): expected at least one (method, k), "
                         "e.g. [('chi2', 10)], got []")
    ks = [_config(func, X, m, k) for m, k in configs]
    cv = check_int(func, "cv", cv, low=2)
    cv_repeats = check_int(func, "cv_repeats", cv_repeats, low=1)
    repeats = check_int(func, "repeats", repeats, low=1)
    rounds = check_int(func, "rounds", rounds, low=1)
    batch_size = check_int(func, "batch_size", batch_size, low=1)
    folds = RepeatedStratifiedKFold(n_splits=cv, n_repeats=cv_repeats, random_state=seed)
    items = list(zip(configs, ks, strict=True))
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="fitting", leave=False)
    fitted = []
    # Small linear models: BLAS threads cost more than they bring, and on a shared machine
    # they can slow a fit down many times. One thread makes the timings steady.
    with threadpool_limits(threads):
        for (method, _), k in items:
            pipe = selection_pipeline(method, k, estimator=estimator, seed=seed)
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
            method=method, k=int(k), features_to_collect=features_to_collect(pipe, X.shape[1]),
            accuracy=float(scores.mean()), accuracy_std=float(scores.std(ddof=1)),
            model_bytes=serving_bytes(pipe), fit_seconds=float(fit_seconds),
            latency_ms=float(np.median(one[i])), batch_ms=float(np.median(batch[i])),
            batch_size=batch_size, folds=cv, cv_repeats=cv_repeats,
            fold_scores=tuple(float(v) for v in scores),
        )
        for i, (method, k, pipe, scores, fit_seconds) in enumerate(fitted)
    ]


def evaluate(X, y, method: str = "chi2", k: int | None = None, **kwargs) -> SweepPoint:
    """One row of :func:`evaluate_many`: a single pipeline, cross-validated and measured.

    Parameters
    ----------
    X, y : arrays
        Data.
    method, k
        As in :func:`selection_pipeline`.
    **kwargs
        Passed to :func:`evaluate_many`.

    Returns
    -------
    SweepPoint

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> evaluate(X, y, "pca", 2, cv=3, repeats=1, rounds=1).features_to_collect
    4
    """
    return evaluate_many(X, y, [(method, k)], **kwargs)[0]


def sweep(X, y, ks: Sequence[int], method: str = "chi2", **kwargs) -> list[SweepPoint]:
    """Accuracy, model bytes, fit time and latency for each ``k`` in ``ks``: one row each.

    Parameters
    ----------
    X, y : arrays
        Data.
    ks : sequence of int
        Features (or components, for ``"pca"``) to keep, each between 1 and the number of
        features.
    method : str
        One of :data:`METHODS` but ``"all"``.
    **kwargs
        Passed to :func:`evaluate_many`, which measures all of them (cross-validated,
        leakage-free).

    Returns
    -------
    list of SweepPoint
        In increasing ``k``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> [p.k for p in sweep(X, y, [3, 1], "f_test", cv=3, repeats=1, rounds=1)]
    [1, 3]
    """
    X, y = check_xy("sweep", X, y)
    if isinstance(ks, numbers.Integral):
        ks = [ks]
    ks = list(ks)
    if not ks:
        raise ValueError("sweep(ks=[]): expected at least one k, e.g. [5, 10, 20], got []")
    check_choice("sweep", "method", method, METHODS)
    ks = sorted({_k_for("sweep", X, method, k, "ks") for k in ks})
    return evaluate_many(X, y, [(method, k) for k in ks], **kwargs)


def by_method(points: Sequence[SweepPoint]) -> dict[str, list[SweepPoint]]:
    """Group rows by method, each group sorted by ``k``.

    Parameters
    ----------
    points : sequence of SweepPoint

    Returns
    -------
    dict
        Method -> its rows, in increasing ``k``; methods in order of first appearance.

    Examples
    --------
    >>> rows = [SweepPoint(m, k, k, 0.9, 0, 0, 0, 0, 0, 1) for m, k in
    ...         [("pca", 4), ("chi2", 8), ("chi2", 2)]]
    >>> {m: [p.k for p in g] for m, g in by_method(rows).items()}
    {'pca': [4], 'chi2': [2, 8]}
    """
    groups: dict[str, list[SweepPoint]] = {}
    for p in points:
        groups.setdefault(p.method, []).append(p)
    return {m: sorted(g, key=lambda p: p.k) for m, g in groups.items()}
