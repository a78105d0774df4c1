"""Choosing ``k`` from a sweep, and reporting it on data that did not choose it.

The cross-validated score of the ``k`` that won the cross-validation is optimistic: of many
noisy scores, the maximum was picked. So the choice is made on development data only, by a rule
that does not chase noise (the one-standard-error rule), and the chosen pipeline is then scored
once on held-out rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlscale_lab.complexity.selection._checks import check_xy
from mlscale_lab.complexity.selection._pipelines import selection_pipeline
from mlscale_lab.complexity.selection._sweep import SweepPoint
from mlscale_lab.evidence import Interval, resampled_interval
from mlscale_lab.validation import check_number


def _nonempty(func: str, points: Sequence[SweepPoint]) -> list[SweepPoint]:
    points = list(points)
    if not points:
        raise ValueError(f"{func}(points=[]): expected the rows of a sweep, got []; "
                         "run sweep(...) first")
    return points


def smallest_k_within(points: Sequence[SweepPoint], reference: float,
                      tolerance: float = 0.01) -> SweepPoint:
    """The row with the smallest ``k`` whose accuracy is within ``tolerance`` of ``reference``.

    Parameters
    ----------
    points : sequence of SweepPoint
        A sweep.
    reference : float
        The accuracy to stay close to (the all-features model's, say).
    tolerance : float in [0, 1)
        A fraction: 0.01 is one accuracy point.

    Returns
    -------
    SweepPoint

    Examples
    --------
    >>> rows = [SweepPoint("chi2", k, k, acc, 0, 0, 0, 0, 0, 1)
    ...         for k, acc in [(4, 0.80), (8, 0.955), (16, 0.97)]]
    >>> smallest_k_within(rows, reference=0.96).k
    8
    """
    points = _nonempty("smallest_k_within", points)
    tolerance = check_number("smallest_k_within", "tolerance", tolerance, low=0, high=1,
                             high_open=True, hint="a fraction: 0.01 is one accuracy point")
    ok = [p for p in points if p.accuracy >= float(reference) - tolerance - 1e-12]
    if not ok:
        best = max(p.accuracy for p in points)
        raise ValueError(
            f"smallest_k_within(reference={reference!r}): no k reaches "
            f"{reference - tolerance:.4f} accuracy (best {best:.4f}); sweep larger ks"
        )
    return min(ok, key=lambda p: p.k)


def one_standard_error_k(points: Sequence[SweepPoint]) -> SweepPoint:
    """The smallest ``k`` whose accuracy is within one standard error of the best row's.

    The one-standard-error rule (Hastie, Tibshirani and Friedman, *The Elements of Statistical
    Learning*, section 7.10): scores that close to the best are indistinguishable from it given
    the spread over folds, so take the simplest model among them. The standard error is the
    best row's :attr:`SweepPoint.accuracy_se`, corrected for folds that share training rows
    (Nadeau and Bengio 2003), not ``std / sqrt(folds)``, which takes them as independent.

    Parameters
    ----------
    points : sequence of SweepPoint
        A sweep.

    Returns
    -------
    SweepPoint

    Examples
    --------
    >>> rows = [SweepPoint("chi2", k, k, acc, 0.04, 0, 0, 0, 0, 1, folds=5, cv_repeats=2)
    ...         for k, acc in [(4, 0.90), (8, 0.94), (16, 0.96)]]
    >>> round(rows[2].accuracy_se, 4)  # 0.04 * sqrt(1 / 10 + 1 / 4)
    0.0237
    >>> one_standard_error_k(rows).k  # 0.94 >= 0.96 - 0.0237 (std / sqrt(10) would give 16)
    8
    """
    points = _nonempty("one_standard_error_k", points)
    best = max(points, key=lambda p: p.accuracy)
    floor = best.accuracy - best.accuracy_se - 1e-12
    return min((p for p in points if p.accuracy >= floor), key=lambda p: p.k)


def accuracy_difference(a: SweepPoint, b: SweepPoint, level: float = 0.95) -> Interval:
    """How much more accurate row ``a`` is than row ``b``, fold by fold, with its interval.

    Both rows must come from one :func:`evaluate_many` call (the same splits); the interval is
    the corrected resampled t of the per-fold differences (a paired comparison: a hard fold is
    hard for both).

    Parameters
    ----------
    a, b : SweepPoint
    level : float, default 0.95

    Returns
    -------
    Interval
        Of ``accuracy(a) - accuracy(b)``.

    Examples
    --------
    >>> a = SweepPoint("chi2", 8, 8, 0.9, 0, 0, 0, 0, 0, 1, folds=2, fold_scores=(0.91, 0.89))
    >>> b = SweepPoint("all", 64, 64, 0.95, 0, 0, 0, 0, 0, 1, folds=2, fold_scores=(0.95, 0.95))
    >>> round(accuracy_difference(a, b).estimate, 3)
    -0.05
    """
    for name, p in (("a", a), ("b", b)):
        if len(p.fold_scores) != p.splits or p.splits < 2:
            raise ValueError(f"accuracy_difference({name}=...): expected a row of evaluate_many "
                             f"with its fold scores, got {len(p.fold_scores)} for {p.splits} splits")
    if (a.folds, a.cv_repeats) != (b.folds, b.cv_repeats):
        raise ValueError(f"accuracy_difference(): a and b must be scored on the same splits, got "
                         f"{a.cv_repeats}x{a.folds} and {b.cv_repeats}x{b.folds} folds")
    diff = np.asarray(a.fold_scores) - np.asarray(b.fold_scores)
    return resampled_interval(diff, n_train=a.folds - 1, n_test=1, level=level)


def held_out_correct(X_train, y_train, X_test, y_test, method: str, k: int | None, *,
                     seed: int = 0) -> np.ndarray:
    """Fit ``selection_pipeline(method, k)`` on the training rows; which test rows it gets right.

    Two pipelines' answers on the same held-out rows compare with a paired test
    (:func:`mlscale_lab.evidence.paired_bootstrap`, :func:`~mlscale_lab.evidence.mcnemar`).

    Parameters
    ----------
    X_train, y_train, X_test, y_test : arrays
    method, k
        As in :func:`selection_pipeline`.
    seed : int

    Returns
    -------
    numpy.ndarray of bool
        One per test row.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = load_iris(return_X_y=True)
    >>> Xa, Xb, ya, yb = train_test_split(X, y, random_state=0, stratify=y)
    >>> held_out_correct(Xa, ya, Xb, yb, "f_test", 2).shape
    (38,)
    """
    X_train, y_train = check_xy("held_out_correct", X_train, y_train)
    X_test, y_test = check_xy("held_out_correct", X_test, y_test)
    pipe = selection_pipeline(method, k, seed=seed).fit(X_train, y_train)
    return np.asarray(pipe.predict(X_test) == y_test)


def held_out_accuracy(X_train, y_train, X_test, y_test, method: str, k: int | None, *,
                      seed: int = 0) -> float:
    """Fit ``selection_pipeline(method, k)`` on the training rows; its accuracy on the test rows.

    The honest report of a ``k`` chosen by cross-validation on the training rows: the test rows
    played no part in choosing it.

    Parameters
    ----------
    X_train, y_train, X_test, y_test : arrays
        Development rows (which chose ``k``) and held-out rows.
    method, k
        As in :func:`selection_pipeline`.
    seed : int
        Seed of the pipeline's random steps.

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import train_test_split
    >>> X, y = load_iris(return_X_y=True)
    >>> Xa, Xb, ya, yb = train_test_split(X, y, random_state=0, stratify=y)
    >>> held_out_accuracy(Xa, ya, Xb, yb, "f_test", 2) > 0.8
    True
    """
    X_train, y_train = check_xy("held_out_accuracy", X_train, y_train)
    X_test, y_test = check_xy("held_out_accuracy", X_test, y_test)
    return float(held_out_correct(X_train, y_train, X_test, y_test, method, k, seed=seed).mean())
