"""Partitioning rows by a key: hash against range, skewed keys, and increasing keys.

Range partitioners (Spark's ``RangePartitioner``, HBase and Bigtable region splits) do not cut
the key *space* into equal slices: they sample the keys and split at the sample's quantiles,
so each partition gets about the same number of rows whatever the keys' distribution. Two
things still break them, and both are measured here:

- one key hotter than a partition's share cannot be split by any key partitioner (hash
  included): salting or treating heavy hitters apart is the fix;
- keys that only grow (timestamps, auto-increment ids): the boundaries were drawn from the
  keys seen so far, so every *new* row sorts after the last boundary and all writes hit the
  last partition. Hashing the key (or prefixing a hash bucket) spreads them.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.validation import check_choice, check_int, check_number

__all__ = [
    "SCHEMES", "increasing_keys", "partition_of", "partition_sizes", "range_boundaries",
    "skewed_keys",
]

#: How :func:`partition_of` can place a key.
SCHEMES = ("hash", "range")


def skewed_keys(n: int, n_keys: int = 10_000, zipf_a: float = 1.2, seed: int = 0) -> np.ndarray:
    """``n`` keys in ``0..n_keys-1`` with Zipf-like popularity: key 0 hottest, a long tail.

    Parameters
    ----------
    n : int
        Rows to draw (>= 1).
    n_keys : int
        Distinct keys (>= 1).
    zipf_a : float
        Skew (> 0): key ``k`` is drawn with probability proportional to ``(k + 1) ** -zipf_a``.
    seed : int

    Returns
    -------
    numpy.ndarray of int64

    Examples
    --------
    >>> keys = skewed_keys(10_000, 100, seed=0)
    >>> int(np.bincount(keys).argmax())
    0
    """
    func = "skewed_keys"
    n = check_int(func, "n", n, low=1)
    n_keys = check_int(func, "n_keys", n_keys, low=1)
    zipf_a = check_number(func, "zipf_a", zipf_a, low=0, low_open=True)
    ranks = np.arange(1, n_keys + 1, dtype=float)
    p = ranks**-zipf_a
    p /= p.sum()
    return np.random.default_rng(seed).choice(n_keys, size=n, p=p).astype(np.int64)


def increasing_keys(n: int, *, start: float = 0.0, rate: float = 100.0, seed: int = 0) -> np.ndarray:
    """Event timestamps in milliseconds: ``n`` Poisson arrivals at ``rate`` per second from
    ``start`` seconds, the kind of key that only grows.

    Parameters
    ----------
    n : int
        Events (>= 1).
    start : float
        Seconds of the first possible event.
    rate : float
        Events per second (> 0).
    seed : int

    Returns
    -------
    numpy.ndarray of int64
        Increasing timestamps (ms).

    Examples
    --------
    >>> ts = increasing_keys(5, start=10.0, rate=1000.0, seed=0)
    >>> bool(np.all(np.diff(ts) >= 0)) and int(ts[0]) >= 10_000
    True
    """
    func = "increasing_keys"
    n = check_int(func, "n", n, low=1)
    check_number(func, "start", start, low=0)
    rate = check_number(func, "rate", rate, low=0, low_open=True)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    return ((start + np.cumsum(gaps)) * 1000).astype(np.int64)


def range_boundaries(keys, n_partitions: int, *, sample_size: int = 1000, seed: int = 0) -> np.ndarray:
    """Split points of a range partitioner: quantiles of a random sample of ``keys``.

    Parameters
    ----------
    keys : array-like of int
        The keys seen so far (the table as it is when it is split).
    n_partitions : int
        Partitions wanted (>= 1); ``n_partitions - 1`` boundaries come back.
    sample_size : int
        Keys sampled (without replacement; all of them when there are fewer), as Spark samples
        each partition rather than sorting the whole table.
    seed : int

    Returns
    -------
    numpy.ndarray
        Increasing boundaries; partition ``i`` holds keys ``b[i-1] < key <= b[i]``.

    Examples
    --------
    >>> range_boundaries(np.arange(1000), 4, sample_size=1000).tolist()
    [249, 499, 749]
    """
    func = "range_boundaries"
    keys = np.asarray(keys)
    n_partitions = check_int(func, "n_partitions", n_partitions, low=1)
    sample_size = check_int(func, "sample_size", sample_size, low=1)
    if keys.size == 0:
        raise ValueError(f"{func}(keys=[]): expected at least one key to sample, got none")
    rng = np.random.default_rng(seed)
    sample = keys if keys.size <= sample_size else rng.choice(keys, sample_size, replace=False)
    q = np.arange(1, n_partitions) / n_partitions
    return np.quantile(np.sort(sample), q, method="inverted_cdf")


def partition_of(keys, n_partitions: int, scheme: str, *, boundaries=None, seed: int = 0) -> np.ndarray:
    """Which partition each key goes to.

    Parameters
    ----------
    keys : array-like of int
    n_partitions : int
        Number of partitions (>= 1).
    scheme : {"hash", "range"}
        ``"hash"``: a multiplicative hash of the key modulo ``n_partitions`` (neighbouring keys
        scatter); ``"range"``: sorted ranges split at ``boundaries`` (neighbouring keys stay
        together, as in a table sorted by key).
    boundaries : array-like, optional
        For ``"range"``: split points from :func:`range_boundaries` (drawn from the keys seen
        so far); default: sampled from ``keys`` themselves.
    seed : int
        Seed of that sample.

    Returns
    -------
    numpy.ndarray of int64
        A partition index in ``0..n_partitions-1`` per key.

    Examples
    --------
    >>> partition_of([1, 2, 3, 40], 2, "range", boundaries=[2]).tolist()
    [0, 0, 1, 1]
    >>> partition_of([5, 5, 5], 4, "hash").tolist()  # one key, one partition
    [1, 1, 1]
    """
    func = "partition_of"
    keys = np.asarray(keys, dtype=np.int64)
    n_partitions = check_int(func, "n_partitions", n_partitions, low=1)
    check_choice(func, "scheme", scheme, SCHEMES)
    if scheme == "hash":
        mixed = (keys.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
        return (mixed % np.uint64(n_partitions)).astype(np.int64)
    if boundaries is None:
        boundaries = range_boundaries(keys, n_partitions, seed=seed)
    b = np.asarray(boundaries)
    if b.shape != (n_partitions - 1,) or np.any(np.diff(b) < 0):
        raise ValueError(f"{func}(boundaries={b.tolist()}): expected {n_partitions - 1} "
                         f"increasing split points for n_partitions={n_partitions}")
    return np.searchsorted(b, keys, side="left").astype(np.int64)


def partition_sizes(keys, n_partitions: int, scheme: str, **kwargs) -> np.ndarray:
    """Rows per partition under ``scheme``; ``max / mean`` is how much the hotspot slows a stage.

    Parameters
    ----------
    keys, n_partitions, scheme
        As in :func:`partition_of`; ``kwargs`` go to it too (``boundaries``, ``seed``).

    Returns
    -------
    numpy.ndarray of int64
        Length ``n_partitions``.

    Examples
    --------
    >>> partition_sizes(np.arange(100), 4, "range").tolist()
    [25, 25, 25, 25]
    """
    return np.bincount(partition_of(keys, n_partitions, scheme, **kwargs), minlength=n_partitions)
