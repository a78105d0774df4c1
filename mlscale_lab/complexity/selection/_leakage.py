"""The selection-leakage trap: selecting features on all rows before cross-validating."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.base import clone
from sklearn.feature_selection import SelectKBest, chi2
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlscale_lab.complexity.selection._checks import check_k, check_nonnegative, check_xy
from mlscale_lab.complexity.selection._pipelines import default_classifier
from mlscale_lab.validation import check_int


@dataclass(frozen=True)
class LeakageResult:
    """Cross-validated accuracy with selection outside (leaky) and inside (clean) the folds.

    Attributes
    ----------
    inflated_accuracy : float
        Selector fitted on all rows, then the classifier cross-validated on the kept columns.
    leakage_free_accuracy : float
        Selector and classifier in one pipeline, refitted in every fold.
    chance : float
        The majority class's share: what a model that learned nothing scores.
    n_samples, n_features, k : int
        The data's shape and the features kept.

    Examples
    --------
    >>> r = LeakageResult(0.8, 0.5, 0.5, 100, 1000, 10)
    >>> round(r.inflated_accuracy - r.leakage_free_accuracy, 2)
    0.3
    """

    inflated_accuracy: float
    leakage_free_accuracy: float
    chance: float
    n_samples: int
    n_features: int
    k: int

    def as_dict(self) -> dict:
        """The result as a plain dict."""
        return asdict(self)


def leakage_demo(X, y, k: int = 20, *, cv: int = 5, seed: int = 0, estimator=None,
                 threads: int | None = 1) -> LeakageResult:
    """Show the selection-leakage trap on ``X, y`` (use :func:`noise_data` for the classic case).

    Parameters
    ----------
    X, y : arrays
        Non-negative features (chi-squared) and labels.
    k : int
        Features the selector keeps.
    cv : int
        Folds of stratified, shuffled cross-validation.
    seed : int
        Seed of the folds.
    estimator : classifier, optional
        Defaults to :func:`default_classifier`.
    threads : int or None
        BLAS/OpenMP threads (``None``: leave as is).

    Returns
    -------
    LeakageResult
        *Inflated*: ``SelectKBest(chi2, k)`` fitted on all rows, then the classifier
        cross-validated on the kept columns: the test folds' labels chose those columns.
        *Leakage-free*: the same selector and classifier in one ``Pipeline``, so each fold
        selects on its training rows only.

    Examples
    --------
    >>> from mlscale_lab.complexity.selection import noise_data
    >>> X, y = noise_data(60, 2000, seed=1)
    >>> r = leakage_demo(X, y, k=10, cv=3)
    >>> r.inflated_accuracy > r.leakage_free_accuracy + 0.2
    True
    """
    func = "leakage_demo"
    X, y = check_xy(func, X, y)
    X = check_nonnegative(X, func=func)
    k = check_k(k, X.shape[1], func=func)
    cv = check_int(func, "cv", cv, low=2)
    clf = clone(estimator) if estimator is not None else default_classifier()
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    with threadpool_limits(threads):
        kept = SelectKBest(chi2, k=k).fit_transform(X, y)
        inflated = cross_val_score(clf, kept, y, cv=folds).mean()
        pipe = Pipeline([("select", SelectKBest(chi2, k=k)), ("clf", clone(clf))])
        clean = cross_val_score(pipe, X, y, cv=folds).mean()
    _, counts = np.unique(y, return_counts=True)
    return LeakageResult(
        inflated_accuracy=float(inflated), leakage_free_accuracy=float(clean),
        chance=float(counts.max() / counts.sum()), n_samples=int(X.shape[0]),
        n_features=int(X.shape[1]), k=k,
    )
