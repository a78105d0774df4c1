"""Generated data sets for lab 02: wide counts with few informative columns, and pure noise."""

from __future__ import annotations

import numpy as np

from mlscale_lab.validation import check_int


def make_wide_counts(n_samples: int = 600, n_features: int = 3000, n_informative: int = 20, *,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A wide, bag-of-words-like data set: non-negative counts, few of them informative.

    Every feature is a Poisson count with its own base rate (think: how often a word appears
    in a document). For ``n_informative`` features the rate in class 1 is twice or half the
    rate in class 0; the others carry no information. Columns are shuffled, so position gives
    nothing away.

    Parameters
    ----------
    n_samples, n_features, n_informative : int
        Rows (>= 10), columns (>= 2) and informative columns (1 to ``n_features``).
    seed : int
        Seed of the random generator.

    Returns
    -------
    X : numpy.ndarray of float64 counts, shape (n_samples, n_features)
    y : numpy.ndarray of 0/1 labels, balanced

    Examples
    --------
    >>> X, y = make_wide_counts(20, 50, 5, seed=1)
    >>> X.shape, int(y.sum()), bool((X >= 0).all())
    ((20, 50), 10, True)
    """
    func = "make_wide_counts"
    n_samples = check_int(func, "n_samples", n_samples, low=10)
    n_features = check_int(func, "n_features", n_features, low=2)
    n_informative = check_int(func, "n_informative", n_informative, low=1, high=n_features,
                              hint="at most n_features")
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % 2
    rng.shuffle(y)
    base = rng.gamma(shape=1.0, scale=1.0, size=n_features)
    rates = np.tile(base, (2, 1))
    rates[1, :n_informative] *= rng.choice([0.5, 2.0], size=n_informative)
    X = rng.poisson(rates[y]).astype(np.float64)
    order = rng.permutation(n_features)
    return X[:, order], y


def noise_data(n_samples: int = 200, n_features: int = 5000, *,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels that are independent random numbers: no model can beat chance.

    Parameters
    ----------
    n_samples, n_features : int
        Rows (>= 2, an even number gives balanced labels) and columns (>= 1).
    seed : int
        Seed of the random generator.

    Returns
    -------
    X : numpy.ndarray, uniform in [0, 1) (non-negative, so chi-squared accepts it)
    y : numpy.ndarray of 0/1 labels, balanced

    Examples
    --------
    >>> X, y = noise_data(10, 3, seed=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((10, 3), [0, 1])
    """
    n_samples = check_int("noise_data", "n_samples", n_samples, low=2)
    n_features = check_int("noise_data", "n_features", n_features, low=1)
    rng = np.random.default_rng(seed)
    X = rng.random((n_samples, n_features))
    y = rng.permutation(np.arange(n_samples) % 2)
    return X, y
