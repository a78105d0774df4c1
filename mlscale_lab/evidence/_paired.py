"""Two models, or two settings, measured on the same rows or the same seeds: paired comparisons.

Two classifiers scored on the same 450 test images make mostly the same mistakes, so the
difference of their accuracies is far more precise than two separate binomial intervals
suggest; pairing is what lets a small gain be told from noise. The same holds over seeds
(each seed gives both models the same data split and start).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mlscale_lab.evidence._intervals import Interval, NotEnoughData, mean_interval
from mlscale_lab.validation import check_fraction, check_int

__all__ = ["McNemar", "mcnemar", "paired_bootstrap", "paired_interval"]


def _pairs(func: str, a, b, *, boolean: bool = False) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a).ravel(), np.asarray(b).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{func}(a=..., b=...): expected one value of each per row (or seed), "
                         f"got {x.size} and {y.size}")
    if boolean:
        for name, v in (("a", x), ("b", y)):
            if not np.all((v == 0) | (v == 1)):
                raise ValueError(f"{func}({name}=...): expected per-row correctness (True/False "
                                 "or 1/0), e.g. `pred == y_test`; got other values")
        return x.astype(bool), y.astype(bool)
    return x.astype(float), y.astype(float)


def paired_interval(a, b, level: float = 0.95) -> Interval:
    """Student t interval of the mean of ``a - b``, over paired runs (seeds, rounds).

    Examples
    --------
    >>> distilled = [0.91, 0.93, 0.90, 0.92, 0.94]
    >>> hard_labels = [0.90, 0.91, 0.90, 0.90, 0.92]
    >>> iv = paired_interval(distilled, hard_labels)
    >>> round(iv.estimate, 3), iv.low > 0
    (0.014, True)
    """
    x, y = _pairs("paired_interval", a, b)
    iv = mean_interval(x - y, level)
    return Interval(iv.estimate, iv.low, iv.high, iv.level, "paired t", iv.n)


def paired_bootstrap(a_correct, b_correct, level: float = 0.95, *, n_resamples: int = 2000,
                     seed: int = 0) -> Interval:
    """Bootstrap interval of accuracy(a) - accuracy(b) on the same test rows, resampled together.

    Parameters
    ----------
    a_correct, b_correct : array-like of bool
        Per test row, whether each model got it right (``pred_a == y_test``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> truth_hard = rng.random(1000) < 0.1
    >>> a = ~truth_hard | (rng.random(1000) < 0.5)   # a gets half the hard rows
    >>> b = ~truth_hard                              # b gets none of them
    >>> iv = paired_bootstrap(a, b)
    >>> iv.low > 0
    True
    """
    level = check_fraction("paired_bootstrap", "level", level, low_open=True, high_open=True)
    check_int("paired_bootstrap", "n_resamples", n_resamples, low=100)
    x, y = _pairs("paired_bootstrap", a_correct, b_correct, boolean=True)
    if x.size < 2:
        raise NotEnoughData(f"paired_bootstrap: needs at least 2 rows, got {x.size}")
    d = x.astype(float) - y.astype(float)
    est = float(d.mean())
    if np.all(d == d[0]):
        return Interval(est, est, est, level, "paired bootstrap (rows all agree)", int(x.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((d,), np.mean, confidence_level=level, n_resamples=n_resamples,
                              method="percentile", random_state=np.random.default_rng(seed))
    return Interval(est, float(res.confidence_interval.low), float(res.confidence_interval.high),
                    level, "paired bootstrap over rows", int(x.size))


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test of two models on the same rows.

    Attributes
    ----------
    only_a, only_b : int
        Rows only model a got right, rows only model b got right (the discordant pairs: the
        only rows that say anything about which model is better).
    p_value : float
        Two-sided exact p-value (``binomtest(only_a, only_a + only_b, 0.5)``).
    n : int
        Rows compared.
    """

    only_a: int
    only_b: int
    p_value: float
    n: int

    def __str__(self) -> str:
        return (f"McNemar: {self.only_a} rows only a gets right, {self.only_b} only b, "
                f"exact p = {self.p_value:.3g} (n={self.n})")


def mcnemar(a_correct, b_correct) -> McNemar:
    """McNemar's exact test: does model a get different rows right than model b, beyond chance?

    Examples
    --------
    >>> a = [True] * 90 + [False] * 10
    >>> b = [True] * 80 + [False] * 20
    >>> m = mcnemar(a, b)
    >>> m.only_a, m.only_b, round(m.p_value, 4)
    (10, 0, 0.002)
    """
    x, y = _pairs("mcnemar", a_correct, b_correct, boolean=True)
    only_a, only_b = int(np.sum(x & ~y)), int(np.sum(~x & y))
    discordant = only_a + only_b
    p = float(stats.binomtest(only_a, discordant, 0.5).pvalue) if discordant else 1.0
    return McNemar(only_a, only_b, p, int(x.size))
