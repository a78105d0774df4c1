"""PCA: how many components keep how much of the variance."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mlscale_lab.complexity.selection._checks import check_matrix, check_variance_target


def explained_variance_curve(X) -> np.ndarray:
    """Cumulative fraction of the variance explained by the first 1, 2, ... principal components.

    Parameters
    ----------
    X : array-like, 2-D
        Samples x features, at least 2 of each.

    Returns
    -------
    numpy.ndarray
        Entry ``i`` is the fraction explained by ``i + 1`` components; the last entry is 1.0
        (up to rounding) when there are at least as many samples as features.

    Examples
    --------
    >>> X = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]  # all the variance on one line
    >>> explained_variance_curve(X).round(6).tolist()
    [1.0, 1.0]
    """
    from sklearn.decomposition import PCA

    X = check_matrix("explained_variance_curve", X).astype(float)
    if min(X.shape) < 2:
        raise ValueError(f"explained_variance_curve(X=array of shape {X.shape}): expected at "
                         f"least 2 rows and 2 columns, got array of shape {X.shape}")
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

    Returns
    -------
    int

    Examples
    --------
    >>> components_for_variance([0.5, 0.8, 0.96, 1.0], 0.95)
    3
    >>> components_for_variance([0.5, 0.8, 0.96, 1.0], 0.5)
    1
    """
    t = check_variance_target(target, func="components_for_variance")
    c = np.asarray(cumulative, dtype=float)
    if c.ndim != 1 or c.size == 0 or np.any(np.diff(c) < -1e-12):
        raise ValueError(
            f"components_for_variance(cumulative=array of shape {c.shape}): expected a "
            "non-empty, non-decreasing 1-D array such as explained_variance_curve(X)"
        )
    # Rounding can leave the last entry a hair under 1.0; a target of 1.0 means all components.
    n = int(np.searchsorted(c, t - 1e-9, side="left")) + 1
    return min(n, c.size)


def components_table(X, targets: Iterable[float] = (0.90, 0.95, 0.99)) -> list[dict]:
    """Components each variance target needs: one row per target.

    Parameters
    ----------
    X : array-like, 2-D
        The data.
    targets : iterable of float in (0, 1]
        Fractions of the variance.

    Returns
    -------
    list of dict
        Rows ``{"target", "components", "fraction_of_features", "rows"}`` (``rows``: the samples
        the components were fitted on), in the order of ``targets``
        (what :func:`mlscale_lab.views.selection.plot_variance_curve` marks on the curve).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 6))  # two directions in 6 columns
    >>> [r["components"] for r in components_table(X, (0.5, 0.999))]
    [1, 2]
    """
    targets = [check_variance_target(t, func="components_table", name="targets")
               for t in targets]
    curve = explained_variance_curve(X)
    n_rows, n_features = np.asarray(X).shape
    rows = []
    for t in targets:
        n = components_for_variance(curve, t)
        rows.append({"target": t, "components": n, "fraction_of_features": n / n_features,
                     "rows": n_rows})
    return rows
