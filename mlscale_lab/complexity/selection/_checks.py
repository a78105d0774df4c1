"""Checks at the door for lab 02's helpers: data, ``k`` and variance targets.

Every message has the package's shape (``func(param=value): expected ..., got ...``) and says
how to fix the call. Scalars go through :mod:`mlscale_lab.validation`.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.validation import check_int, check_number

CHI2_HINT = (
    "chi-squared compares per-class totals, so it is for counts and booleans (word counts, "
    "clicks, yes/no flags); for continuous or standardised features use the ANOVA F-test "
    "(method='f_test', sklearn's f_classif) or mutual information (method='mutual_info')"
)


def check_matrix(func: str, X, *, name: str = "X") -> np.ndarray:
    """``X`` as a 2-D numeric array (samples x features), or a clear error.

    Examples
    --------
    >>> check_matrix("sweep", [[1, 2], [3, 4]]).shape
    (2, 2)
    >>> check_matrix("sweep", [1, 2])
    Traceback (most recent call last):
    ...
    ValueError: sweep(X=array of shape (2,)): expected a 2-D array (samples x features), got array of shape (2,)
    """
    X = np.asarray(X)
    shown = f"array of shape {X.shape}"
    if X.ndim != 2:
        raise ValueError(f"{func}({name}={shown}): expected a 2-D array (samples x features), "
                         f"got {shown}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{func}({name}={shown}): expected numbers, got dtype {X.dtype}")
    return X


def check_xy(func: str, X, y) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (2-D) and ``y`` (one label per row of ``X``) as arrays, or a clear error.

    Examples
    --------
    >>> X, y = check_xy("sweep", [[0, 1], [1, 0]], [0, 1])
    >>> X.shape, y.shape
    ((2, 2), (2,))
    """
    X = check_matrix(func, X)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{func}(y=array of shape {y.shape}): expected one label per row of X "
                         f"({len(X)} rows), got array of shape {y.shape}")
    return X, y


def check_nonnegative(X, *, func: str = "check_nonnegative", name: str = "X") -> np.ndarray:
    """``X`` as an array, or raise if it holds negative values: chi-squared needs counts.

    Parameters
    ----------
    X : array-like, 2-D
        Features a chi-squared selector is about to score.
    func, name : str
        The public function the learner called and the parameter, for the message.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        Naming how many values are negative and the smallest one, saying that chi-squared is
        for counts and booleans, and pointing to the F-test or mutual information.

    Examples
    --------
    >>> check_nonnegative([[0.0, 2.0], [1.0, 3.0]]).shape
    (2, 2)
    >>> check_nonnegative([[0.0, -2.0], [1.0, 3.0]], func="sweep")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: sweep(X=array of shape (2, 2)): expected non-negative features ..., got 1 negative values (smallest -2); chi-squared ...
    """
    X = check_matrix(func, X, name=name)
    negative = int(np.count_nonzero(X < 0))
    if negative:
        raise ValueError(
            f"{func}({name}=array of shape {X.shape}): expected non-negative features (counts "
            f"or booleans) for chi-squared, got {negative} negative values (smallest "
            f"{float(X.min()):.4g}); {CHI2_HINT}. Standardised data is centred on 0; shifting "
            "or min-max scaling it only hides the problem, since chi-squared's score then "
            "depends on each column's range and on where its zero sits."
        )
    return X


def check_k(k, n_features: int, *, func: str = "check_k", name: str = "k") -> int:
    """``k`` as an int, or raise unless it is a number of features between 1 and ``n_features``.

    Examples
    --------
    >>> check_k(10, 64)
    10
    >>> check_k(65, 64, func="sweep")
    Traceback (most recent call last):
    ...
    ValueError: sweep(k=65): expected a whole number >= 1 and <= 64, got 65; the data has 64 features (or components), so keep between 1 and 64
    """
    hint = (f"the data has {n_features} features (or components), so keep between 1 and "
            f"{n_features}")
    return check_int(func, name, k, low=1, high=int(n_features), hint=hint)


def check_variance_target(target, *, func: str = "check_variance_target",
                          name: str = "target") -> float:
    """A variance target as a float, or raise unless it is a fraction in (0, 1].

    Examples
    --------
    >>> check_variance_target(0.95)
    0.95
    >>> check_variance_target(95, func="components_for_variance")
    Traceback (most recent call last):
    ...
    ValueError: components_for_variance(target=95): expected a finite number > 0 and <= 1, got 95; a fraction of the variance, e.g. 0.95 for 95% (did you mean 0.95?)
    """
    hint = "a fraction of the variance, e.g. 0.95 for 95%"
    if isinstance(target, int | float) and 1 < target <= 100:
        hint += f" (did you mean {target / 100:g}?)"
    return check_number(func, name, target, low=0, high=1, low_open=True, hint=hint)
