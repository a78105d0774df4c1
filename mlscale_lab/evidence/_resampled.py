"""Scores over resampled train/test splits (cross-validation): an interval that allows for overlap.

Five folds of cross-validation give five accuracies, but not five independent measurements:
any two folds share three fifths of their training rows, so their errors are correlated, and
``std / sqrt(5)`` understates the error of their mean (Bengio and Grandvalet 2004 show that no
unbiased estimate of that variance exists from one run of K-fold CV). Nadeau and Bengio (2003)
correct the variance of the mean of ``J`` resampled scores to ``(1 / J + n_test / n_train) s²``;
with repeated K-fold (Bouckaert and Frank 2004, ``n_test / n_train = 1 / (K - 1)``) it gives
the *corrected resampled t* interval, which keeps close to its level where the naive one falls
far short. Use it on the per-fold scores of one model, or on per-fold differences of two
models scored on the same folds (a paired comparison).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from mlscale_lab.evidence._intervals import Interval, NotEnoughData
from mlscale_lab.validation import check_fraction, check_int

__all__ = ["resampled_interval", "resampled_se"]


def resampled_se(std: float, n_splits: int, *, n_train: int, n_test: int) -> float:
    """Nadeau and Bengio's corrected standard error of a mean over ``n_splits`` resampled scores.

    ``std * sqrt(1 / n_splits + n_test / n_train)``, where ``std`` is the scores' sample
    standard deviation; ``std / sqrt(n_splits)`` would take the splits as independent.

    Examples
    --------
    >>> round(resampled_se(0.02, 5, n_train=4, n_test=1), 4)  # one 5-fold CV: 1.5x std/sqrt(5)
    0.0134
    """
    func = "resampled_se"
    n_splits = check_int(func, "n_splits", n_splits, low=1)
    n_train = check_int(func, "n_train", n_train, low=1)
    n_test = check_int(func, "n_test", n_test, low=1)
    return float(std) * math.sqrt(1 / n_splits + n_test / n_train)


def resampled_interval(scores, *, n_train: int, n_test: int, level: float = 0.95) -> Interval:
    """Corrected resampled t interval of the mean of scores from overlapping train/test splits.

    Parameters
    ----------
    scores : array-like
        One score per split (every fold of every repeat of a repeated K-fold), or per-split
        differences of two models scored on the same splits.
    n_train, n_test : int
        Rows each split trains and tests on (for K-fold on n rows: ``n (K - 1) / K`` and
        ``n / K``; only their ratio matters).
    level : float, default 0.95

    Returns
    -------
    Interval
        Method ``"corrected resampled t"``; ``n`` is the number of splits.

    Examples
    --------
    Two repeats of 5-fold CV: the corrected interval is wider than ``std / sqrt(10)`` says,
    by ``sqrt(1 + 10 / 4)``:

    >>> folds = [0.95, 0.93, 0.96, 0.94, 0.95, 0.96, 0.94, 0.95, 0.93, 0.95]
    >>> iv = resampled_interval(folds, n_train=4, n_test=1)
    >>> print(iv)
    0.946 (95 % CI 0.932 to 0.96, corrected resampled t, n=10)
    >>> naive = np.std(folds, ddof=1) / np.sqrt(10)
    >>> round(float(iv.width / (2 * 2.262 * naive)), 2)  # t(9) = 2.262
    1.87
    """
    func = "resampled_interval"
    level = check_fraction(func, "level", level, low_open=True, high_open=True)
    n_train = check_int(func, "n_train", n_train, low=1)
    n_test = check_int(func, "n_test", n_test, low=1)
    x = np.asarray(scores, dtype=float).ravel()
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError(f"{func}(scores=...): expected finite numbers, got NaN or inf among "
                         f"{x.size} values")
    if x.size < 2:
        raise NotEnoughData(f"{func}: needs the scores of at least 2 splits, got {x.size}")
    mean = float(x.mean())
    se = resampled_se(float(x.std(ddof=1)), x.size, n_train=n_train, n_test=n_test)
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * se
    return Interval(mean, mean - half, mean + half, level, "corrected resampled t", int(x.size))
