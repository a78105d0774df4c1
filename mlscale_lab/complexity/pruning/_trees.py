"""Pruning beyond neural networks: cost-complexity pruning of a decision tree, size chosen by CV."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from mlscale_lab.validation import check_int


@dataclass(frozen=True)
class TreePruningPath:
    """Cost-complexity pruning of a decision tree: one fitted tree per ``ccp_alpha``.

    Attributes
    ----------
    alphas : list of float
        Increasing; the trees shrink as alpha grows.
    nodes : list of int
        Node count of each tree.
    train_accuracy, test_accuracy : list of float
        Percent, on the training rows and on held-out rows that never chose anything.
    cv_accuracy, cv_std : list of float
        Mean and sample standard deviation (percent) of the cross-validated accuracy on the
        training rows.
    folds : int
        Cross-validation folds.
    chosen_alpha : float
        The one-standard-error choice: the largest alpha (smallest tree) whose CV accuracy is
        within one standard error of the best; ties go to the smaller tree.

    Examples
    --------
    >>> p = TreePruningPath([0.0, 0.01, 0.02], [9, 5, 3], [100, 97, 95], [93, 94, 94],
    ...                     [94.0, 94.0, 93.5], [2, 2, 2], 4, 0.02)
    >>> p.best_cv_index, p.chosen_index  # a tie goes to the smaller tree; one SE further still
    (1, 2)
    """

    alphas: list[float]
    nodes: list[int]
    train_accuracy: list[float]
    test_accuracy: list[float]
    cv_accuracy: list[float]
    cv_std: list[float]
    folds: int
    chosen_alpha: float

    @property
    def chosen_index(self) -> int:
        """Index of :attr:`chosen_alpha` in the lists."""
        return self.alphas.index(self.chosen_alpha)

    @property
    def cv_se(self) -> list[float]:
        """Standard error of each CV mean: ``cv_std / sqrt(folds)``."""
        return [sd / math.sqrt(self.folds) for sd in self.cv_std]

    @property
    def best_cv_index(self) -> int:
        """Index of the highest CV accuracy; on a tie, the smaller tree (the larger alpha)."""
        cv = np.round(np.asarray(self.cv_accuracy, dtype=float), 9)
        return int(np.flatnonzero(cv == cv.max())[-1])

    def as_dict(self) -> dict:
        """The path as a plain dict."""
        return asdict(self)


def one_standard_error_index(means, stds, folds: int) -> int:
    """Index of the simplest model within one standard error of the best mean score.

    Models are ordered from most to least complex (a pruning path: growing alpha); the last
    index whose mean is at least ``best - std_best / sqrt(folds)`` wins.

    Examples
    --------
    >>> one_standard_error_index([95.0, 96.0, 95.5, 90.0], [2.0, 2.0, 2.0, 2.0], folds=4)
    2
    """
    folds = check_int("one_standard_error_index", "folds", folds, low=2)
    m = np.asarray(means, dtype=float)
    best = int(np.argmax(m))
    floor = m[best] - float(np.asarray(stds, dtype=float)[best]) / math.sqrt(folds) - 1e-9
    return int(np.flatnonzero(m >= floor)[-1])


def tree_pruning_path(seed: int = 0, *, max_points: int = 12, cv: int = 5) -> TreePruningPath:
    """Decision trees on the breast-cancer set along ``cost_complexity_pruning_path``.

    Fits one tree per ``ccp_alpha`` (at most ``max_points`` of the path's alphas, evenly spread
    over it), records node count and train/test accuracy (percent), and picks the alpha by
    ``cv``-fold cross-validation on the training set only, with the one-standard-error rule
    (:func:`one_standard_error_index`): the test set never chooses.

    Returns
    -------
    TreePruningPath

    Examples
    --------
    >>> p = tree_pruning_path(0, max_points=4, cv=3)
    >>> p.nodes == sorted(p.nodes, reverse=True), p.chosen_index >= p.best_cv_index
    (True, True)
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import cross_val_score, train_test_split
    from sklearn.tree import DecisionTreeClassifier

    max_points = check_int("tree_pruning_path", "max_points", max_points, low=2)
    cv = check_int("tree_pruning_path", "cv", cv, low=2)
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    path = DecisionTreeClassifier(random_state=seed).cost_complexity_pruning_path(X_tr, y_tr)
    alphas = np.unique(np.clip(path.ccp_alphas[:-1], 0.0, None))  # the last alpha leaves one node
    if len(alphas) > max_points:
        alphas = alphas[np.unique(np.linspace(0, len(alphas) - 1, max_points).round().astype(int))]
    nodes, tr, te, cvs, sds = [], [], [], [], []
    for a in alphas:
        tree = DecisionTreeClassifier(random_state=seed, ccp_alpha=float(a)).fit(X_tr, y_tr)
        nodes.append(int(tree.tree_.node_count))
        tr.append(100.0 * tree.score(X_tr, y_tr))
        te.append(100.0 * tree.score(X_te, y_te))
        scores = 100.0 * cross_val_score(
            DecisionTreeClassifier(random_state=seed, ccp_alpha=float(a)), X_tr, y_tr, cv=cv)
        cvs.append(float(scores.mean()))
        sds.append(float(scores.std(ddof=1)))
    chosen = one_standard_error_index(cvs, sds, cv)
    alphas = [float(a) for a in alphas]
    return TreePruningPath(alphas, nodes, tr, te, cvs, sds, cv, alphas[chosen])
