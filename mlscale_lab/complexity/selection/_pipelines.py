"""Reduce-then-classify pipelines, and what a fitted one costs to serve."""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.feature_selection import (
    SelectFromModel,
    SelectKBest,
    SelectorMixin,
    chi2,
    f_classif,
    mutual_info_classif,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from mlscale_lab.constraints import model_footprint
from mlscale_lab.validation import check_choice, check_int

METHODS = ("all", "chi2", "f_test", "mutual_info", "l1", "pca")
"""Ways :func:`selection_pipeline` reduces the inputs: none, four selectors, or PCA."""

SELECTORS = ("chi2", "f_test", "mutual_info", "l1")
"""The methods of :data:`METHODS` that keep raw columns (a deployment collects only those)."""


def default_classifier() -> LogisticRegression:
    """The classifier the lab shrinks: multinomial logistic regression, fast to fit.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        Unfitted, ``max_iter=300, tol=1e-3``.

    Examples
    --------
    >>> default_classifier().max_iter
    300
    """
    return LogisticRegression(max_iter=300, tol=1e-3)


def mutual_info_scores(X, y, *, seed: int = 0) -> np.ndarray:
    """Mutual information between each column and the labels: ``SelectKBest``'s score.

    Integer-valued features (pixel levels, counts) are scored as discrete, which is exact and
    fast; continuous ones by nearest-neighbour estimates (slower, seeded).

    Parameters
    ----------
    X, y : arrays
        Features and class labels.
    seed : int
        Seed of the nearest-neighbour estimate's jitter.

    Returns
    -------
    numpy.ndarray
        One score (nats) per column.

    Examples
    --------
    >>> X = np.array([[0, 1], [0, 0], [1, 1], [1, 0]])
    >>> mutual_info_scores(X, np.array([0, 0, 1, 1])).round(3).tolist()  # column 0 is y
    [0.693, 0.0]
    """
    X = np.asarray(X)
    discrete = bool(np.all(np.mod(X, 1) == 0))
    return mutual_info_classif(X, y, discrete_features=discrete, random_state=seed)


def selection_pipeline(method: str = "chi2", k: int | None = None, *, estimator=None,
                       seed: int = 0) -> Pipeline:
    """A reduce-then-classify pipeline: ``[reduce,] StandardScaler, classifier``.

    (Not scikit-learn's ``make_pipeline``, which chains the steps it is given.)

    Parameters
    ----------
    method : {"all", "chi2", "f_test", "mutual_info", "l1", "pca"}
        ``"all"`` keeps every feature; ``"chi2"``, ``"f_test"`` (ANOVA F) and ``"mutual_info"``
        keep the ``k`` best columns by that score (``SelectKBest``); ``"l1"`` keeps the ``k``
        largest weights of an L1-penalised linear SVM (``SelectFromModel``); ``"pca"`` keeps
        ``k`` principal components.
    k : int
        Features or components to keep (ignored for ``"all"``).
    estimator : classifier, optional
        Defaults to :func:`default_classifier`; cloned.
    seed : int
        Seed of the steps that draw random numbers (mutual information, the L1 selector's
        ``LinearSVC``, PCA).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted. The scaler comes *after* the reduction: chi-squared needs the raw
        non-negative values, and the scaler then only holds statistics for the kept columns.

    Examples
    --------
    >>> [name for name, _ in selection_pipeline("chi2", 5).steps]
    ['select', 'scale', 'clf']
    >>> [name for name, _ in selection_pipeline("all").steps]
    ['scale', 'clf']
    """
    check_choice("selection_pipeline", "method", method, METHODS)
    clf = clone(estimator) if estimator is not None else default_classifier()
    steps = []
    if method != "all":
        k = check_int("selection_pipeline", "k", k, low=1,
                      hint=f"method={method!r} keeps k features or components")
        if method == "chi2":
            steps.append(("select", SelectKBest(chi2, k=k)))
        elif method == "f_test":
            steps.append(("select", SelectKBest(f_classif, k=k)))
        elif method == "mutual_info":
            # A partial of a module-level function, not a closure: the pipeline pickles, so
            # it can be measured, registered and shipped like any other.
            steps.append(("select", SelectKBest(partial(mutual_info_scores, seed=seed), k=k)))
        elif method == "l1":
            # A sparse linear model: the L1 penalty drives most weights to zero; keep the k
            # features with the largest weights (summed over classes).
            # liblinear's coordinate descent visits the features in a random order: without
            # random_state it draws it from numpy's global generator, and the kept columns
            # change from one process to the next.
            l1 = LinearSVC(penalty="l1", dual=False, C=0.01, tol=1e-2, random_state=seed)
            steps.append(("select", SelectFromModel(l1, max_features=k, threshold=-np.inf)))
        else:
            steps.append(("reduce", PCA(n_components=k, random_state=seed)))
    steps += [("scale", StandardScaler()), ("clf", clf)]
    return Pipeline(steps)


def features_to_collect(pipeline: Pipeline, n_features: int) -> int:
    """Raw features a deployment of this fitted pipeline must collect for each prediction.

    A selector needs only the columns it kept; anything else (PCA, a scaler, the classifier)
    reads every column it was given.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted.
    n_features : int
        Columns of the data it was fitted on.

    Returns
    -------
    int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> features_to_collect(selection_pipeline("chi2", 2).fit(X, y), X.shape[1])
    2
    >>> features_to_collect(selection_pipeline("pca", 2).fit(X, y), X.shape[1])
    4
    """
    first = pipeline.steps[0][1]
    if isinstance(first, SelectorMixin):
        return int(first.get_support().sum())
    return int(n_features)


def serving_bytes(pipeline: Pipeline) -> int:
    """Bytes of the learned values a deployment of this fitted pipeline holds.

    Every step is measured with :func:`mlscale_lab.constraints.model_footprint`
    (``dense_bytes``) except selectors: serving a selector needs only the indices of the kept
    columns (int64), not the scores it ranked them by, so that is what they count.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline
        Fitted.

    Returns
    -------
    int

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> small = serving_bytes(selection_pipeline("chi2", 2).fit(X, y))
    >>> small < serving_bytes(selection_pipeline("all").fit(X, y))
    True
    """
    total = 0
    for _, step in pipeline.steps:
        if isinstance(step, SelectorMixin):
            total += int(step.get_support(indices=True).astype(np.int64).nbytes)
        else:
            total += model_footprint(step).dense_bytes
    return total
