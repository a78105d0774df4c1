"""Choosing ``k`` from a sweep, and reporting it on data that did not choose it.

The cross-validated score of the ``k`` that won the cross-validation is optimistic: of many
noisy scores, the maximum was picked. So the choice is made on development data only, by a rule
that does not chase noise (the one-standard-error rule), and the chosen pipeline is then scored
once on held-out rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlscale_lab.complexity.selection._checks import check_xy
from mlscale_lab.complexity.selection._pipelines import selection_pipeline
from mlscale_lab.complexity.selection._sweep import SweepPoint
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
    the spread over folds, so take the simplest model among them.

    Parameters
    ----------
    points : sequence of SweepPoint
        A sweep; each row's standard error is ``accuracy_std / sqrt(folds)``.

    Returns
    -------
    SweepPoint

    Examples
    --------
    >>> rows = [SweepPoint("chi2", k, k, acc, 0.04, 0, 0, 0, 0, 1, folds=4)
    ...         for k, acc in [(4, 0.90), (8, 0.95), (16, 0.96)]]
    >>> one_standard_error_k(rows).k  # 0.95 >= 0.96 - 0.04 / 2
    8
    """
    points = _nonempty("one_standard_error_k", points)
    best = max(points, key=lambda p: p.accuracy)
    floor = best.accuracy - best.accuracy_se - 1e-12
    return min((p for p in points if p.accuracy >= floor), key=lambda p: p.k)


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
    pipe = selection_pipeline(method, k, seed=seed).fit(X_train, y_train)
    return float(pipe.score(X_test, y_test))
