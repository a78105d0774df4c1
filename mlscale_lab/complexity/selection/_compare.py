"""Selectors side by side: which columns each keeps, what it costs, and what its score means."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from mlscale_lab.complexity.selection._checks import check_k, check_nonnegative, check_xy
from mlscale_lab.complexity.selection._pipelines import SELECTORS, selection_pipeline
from mlscale_lab.evidence import interleave, proportion_interval
from mlscale_lab.validation import check_choice, check_fraction, check_int


def feature_scores(X, y, method: str = "chi2", *, seed: int = 0) -> np.ndarray:
    """Each column's score under a univariate selector, as ``SelectKBest`` ranks them.

    Parameters
    ----------
    X, y : arrays
        Data; non-negative for ``"chi2"``.
    method : {"chi2", "f_test", "mutual_info"}
        Chi-squared, the ANOVA F statistic, or mutual information.
    seed : int
        Seed of the mutual-information estimate.

    Returns
    -------
    numpy.ndarray
        One score per column; higher ranks first.

    Examples
    --------
    Chi-squared treats a column as a count: the same column in other units scores differently,
    while the F-test does not notice the unit.

    >>> X = np.array([[1.0, 3.0], [2.0, 1.0], [3.0, 2.0], [6.0, 3.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> a, b = feature_scores(X, y, "chi2"), feature_scores(X * [10, 1], y, "chi2")
    >>> round(float(b[0] / a[0]), 6)
    10.0
    >>> f1, f10 = feature_scores(X, y, "f_test"), feature_scores(X * [10, 1], y, "f_test")
    >>> bool(np.allclose(f1, f10))
    True
    """
    X, y = check_xy("feature_scores", X, y)
    check_choice("feature_scores", "method", method, ("chi2", "f_test", "mutual_info"))
    if method == "chi2":
        check_nonnegative(X, func="feature_scores")
    select = selection_pipeline(method, 1, seed=seed).steps[0][1]
    return np.asarray(select.fit(X, y).scores_, dtype=float)


def compare_selectors(X, y, k: int, methods: Sequence[str] = ("chi2", "mutual_info", "l1"), *,
                      test_size: float = 0.25, seed: int = 0, rounds: int = 4,
                      warmup: int = 1, threads: int | None = 1) -> list[dict]:
    """Compare selectors that keep ``k`` features on one stratified train/test split.

    Cheaper than :func:`sweep` (one fit per selector, no cross-validation), for a side-by-side
    look.

    Parameters
    ----------
    X, y : arrays
        Data; non-negative if ``"chi2"`` is among ``methods``.
    k : int
        Features each selector keeps.
    methods : sequence of str
        Selectors from :data:`SELECTORS`.
    test_size : float
        Fraction of rows held out for the accuracy.
    seed : int
        Seed of the split and the selectors' random steps.
    rounds : int
        Timed fits of each selector, taken in interleaved rounds (chi2, MI, L1, then MI, L1,
        chi2, ...: :func:`mlscale_lab.evidence.interleave`), so a busy moment of the machine
        slows every selector of that round alike; ``select_seconds`` is the median.
    warmup : int
        Rounds fitted first and not kept (the first fit pays for caches and lazy set-up).
    threads : int or None
        BLAS/OpenMP threads (``None``: leave as is).

    Returns
    -------
    list of dict
        One row per method: ``method``, ``k``, ``select_seconds`` (fitting the selector alone,
        the median of ``rounds`` fits), ``select_samples`` (the seconds of each round, aligned
        across methods, for :func:`mlscale_lab.evidence.ratio_interval`), ``accuracy`` on the
        split's held-out rows with ``accuracy_interval`` (exact binomial, an
        :class:`~mlscale_lab.evidence.Interval`), ``train_rows`` and ``test_rows`` (the split of
        the rows given: pass development rows only, and nothing held out elsewhere is touched),
        ``overlap_with_first`` (features in common with the first method's choice) and
        ``features`` (the kept column indices).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> rows = compare_selectors(X, y, 2, methods=("chi2", "f_test"))
    >>> [(r["method"], len(r["features"])) for r in rows]
    [('chi2', 2), ('f_test', 2)]
    """
    func = "compare_selectors"
    X, y = check_xy(func, X, y)
    k = check_k(k, X.shape[1], func=func)
    for m in methods:
        check_choice(func, "methods", m, SELECTORS, hint="PCA and 'all' keep no columns")
    if "chi2" in methods:
        check_nonnegative(X, func=func)
    test_size = check_fraction(func, "test_size", test_size, low_open=True, high_open=True)
    rounds = check_int(func, "rounds", rounds, low=2)
    warmup = check_int(func, "warmup", warmup, low=0)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed)
    rows, first = [], None
    pipes = {m: selection_pipeline(m, k, seed=seed) for m in methods}
    with threadpool_limits(threads):
        timings = interleave({m: (lambda s=p.steps[0][1]: s.fit(X_tr, y_tr))
                              for m, p in pipes.items()}, rounds=rounds, warmup=warmup)
        for m, pipe in pipes.items():
            selector = pipe.steps[0][1]  # fitted by the timed rounds
            kept = selector.get_support(indices=True)
            # The selector is fitted already; fit the rest of the pipeline on its output.
            rest = Pipeline(pipe.steps[1:]).fit(selector.transform(X_tr), y_tr)
            right = int(np.sum(rest.predict(selector.transform(X_te)) == y_te))
            acc = right / len(y_te)
            first = set(kept) if first is None else first
            rows.append({"method": m, "k": k, "select_seconds": timings.median(m),
                         "select_samples": tuple(float(t) for t in timings.samples[m]),
                         "accuracy": acc, "accuracy_interval": proportion_interval(right, len(y_te)),
                         "train_rows": len(y_tr), "test_rows": len(y_te),
                         "overlap_with_first": len(first & set(kept)),
                         "features": [int(i) for i in kept]})
    return rows
