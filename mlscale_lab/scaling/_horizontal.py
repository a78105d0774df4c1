"""Horizontal scaling on Dask distributed: partitioned inference, its speedup over workers, and
partition size against per-task overhead.

Every function that computes takes a ``distributed.Client``: one connected to a
:func:`~mlscale_lab.scaling.local_cluster` (``_cluster``), or ``Client("tcp://scheduler:8786")``
on a real cluster: the code is the same. dask is imported inside the functions, never at module
import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.scaling._cluster import connected_workers, worker_addresses
from mlscale_lab.validation import check_int

__all__ = [
    "WorkerSpeedup", "local_predict", "make_model", "measure_worker_speedup", "partition_overhead",
    "partitioned_predict",
]


# -- partitioned inference --------------------------------------------------------------------


def make_model(n_features: int = 20, hidden: tuple[int, ...] = (256, 256), seed: int = 0):
    """A small fitted scikit-learn MLP classifier: the model we serve in the Dask sections.

    Parameters
    ----------
    n_features : int
        Inputs of the model (the partitions generate rows this wide).
    hidden : tuple of int
        Hidden layer sizes.
    seed : int
        Seed of the training data and the weights.

    Returns
    -------
    sklearn.neural_network.MLPClassifier
        Fitted for three epochs: enough to predict, the point is the cost of predicting.
    """
    import warnings

    from sklearn.datasets import make_classification
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y = make_classification(n_samples=1000, n_features=n_features, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden, max_iter=3, random_state=seed).fit(X, y)


def _partition(seed: int, rows: int, n_features: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, n_features))


def _predict_partition(model, seed: int, rows: int, n_features: int) -> np.ndarray:
    """One partition's work on a worker: load (here: generate) its rows, predict them."""
    return model.predict_proba(_partition(seed, rows, n_features))[:, 1]


def partitioned_predict(client, model, total_rows: int, n_partitions: int, *, seed: int = 0,
                        workers: Sequence[str] | None = None, spread: bool = False,
                        timeout: float = 120.0):
    """Predict ``total_rows`` rows split into ``n_partitions`` partitions across the cluster.

    Each partition is generated on its worker from ``seed + index`` (as if read from its own
    file), so no data crosses the network except the model (scattered once) and the results.

    Parameters
    ----------
    client : distributed.Client
    model : estimator or distributed.Future
        A fitted estimator, or a future of one (``client.scatter(model)``) to send it once for
        many calls.
    total_rows : int
        Rows to predict (>= n_partitions).
    n_partitions : int
        Tasks to split them into (>= 1).
    seed : int
        Partition ``i`` is generated from ``seed + i``.
    workers : sequence of str, optional
        Pin the work to these worker addresses.
    spread : bool, default False
        With ``workers``: pin partition ``i`` to ``workers[i % len(workers)]``, so each worker
        gets its share whatever the scheduler would decide (for timing a worker count, not the
        scheduler's placement).
    timeout : float
        Seconds before a ``TimeoutError`` instead of a hung cell.

    Returns
    -------
    predictions : numpy.ndarray
        Probability of class 1 per row, in partition order.
    seconds : float
        Wall-clock time from the first submit to the last result.
    """
    func = "partitioned_predict"
    n_partitions = check_int(func, "n_partitions", n_partitions, low=1)
    total_rows = check_int(func, "total_rows", total_rows, low=n_partitions,
                           hint=f"every partition needs a row: total_rows >= n_partitions={n_partitions}")
    from distributed import Future, wait

    sizes = [len(a) for a in np.array_split(np.empty(total_rows, dtype=np.int8), n_partitions)]
    workers = list(workers) if workers else []

    def pin(i):
        if not workers:
            return {}
        return {"workers": [workers[i % len(workers)]] if spread else workers,
                "allow_other_workers": False}

    if isinstance(model, Future):
        model_future = model
        n_features = client.submit(_n_features, model, pure=False).result(timeout=timeout)
    else:
        n_features = int(model.n_features_in_)
        # hash=False: a fresh key each call, so releasing an earlier call's copy cannot cancel this one.
        model_future = client.scatter(model, broadcast=True, hash=False)
    start = time.perf_counter()
    futures = [
        client.submit(_predict_partition, model_future, seed + i, rows, n_features, pure=False,
                      **pin(i))
        for i, rows in enumerate(sizes)
    ]
    wait(futures, timeout=timeout)  # a TimeoutError, never a hung cell
    parts = client.gather(futures, errors="raise")
    seconds = time.perf_counter() - start
    return np.concatenate(parts), seconds


def _n_features(model) -> int:
    return int(model.n_features_in_)


def local_predict(model, total_rows: int, n_partitions: int, *, seed: int = 0) -> np.ndarray:
    """The same predictions as :func:`partitioned_predict`, without Dask, to check against.

    Parameters
    ----------
    model : estimator
    total_rows, n_partitions, seed
        As in :func:`partitioned_predict`.

    Returns
    -------
    numpy.ndarray
    """
    n_features = int(model.n_features_in_)
    sizes = [len(a) for a in np.array_split(np.empty(total_rows, dtype=np.int8), n_partitions)]
    return np.concatenate([
        _predict_partition(model, seed + i, rows, n_features) for i, rows in enumerate(sizes)
    ])


def _warm_up(client, model, workers, timeout: float = 120.0) -> None:
    """Import scikit-learn and unpickle the model on every worker before anything is timed."""
    from distributed import wait

    futs = [client.submit(_predict_partition, model, 0, 10, int(model.n_features_in_),
                          workers=[w], allow_other_workers=False, pure=False) for w in workers]
    wait(futs, timeout=timeout)
    client.gather(futs)


@dataclass(frozen=True)
class WorkerSpeedup:
    """Seconds of the same partitioned job on each worker count, round by round.

    Attributes
    ----------
    workers : tuple of int
    seconds : tuple of float
        The median seconds at each worker count.
    samples : tuple of tuple of float
        Per worker count, the seconds of each timed round; rounds are aligned across counts
        (round ``i`` ran every count on the same machine state).

    Examples
    --------
    >>> WorkerSpeedup((1, 2), (2.0, 1.25)).speedup
    (1.0, 1.6)
    >>> r = WorkerSpeedup((1, 2), (2.0, 1.0), ((2.0, 2.2, 1.8), (1.0, 1.1, 0.9)))
    >>> print(r.speedup_interval(2))
    2 (95 % CI 2 to 2, paired bootstrap of the ratio, n=3)
    """

    workers: tuple[int, ...]
    seconds: tuple[float, ...]
    samples: tuple[tuple[float, ...], ...] = field(default=(), repr=False)

    @property
    def speedup(self) -> tuple[float, ...]:
        """Speedup of the medians against the first worker count."""
        return tuple(self.seconds[0] / s for s in self.seconds)

    def speedup_interval(self, workers: int, level: float = 0.95):
        """Paired bootstrap interval of the speedup at ``workers`` over the first count."""
        from mlscale_lab.evidence import ratio_interval

        if workers not in self.workers or not self.samples:
            raise ValueError(f"WorkerSpeedup.speedup_interval(workers={workers!r}): expected one "
                             f"of {list(self.workers)}, timed in rounds (measure_worker_speedup)")
        i = self.workers.index(workers)
        return ratio_interval(self.samples[0], self.samples[i], level, paired=True)


def measure_worker_speedup(client, model, total_rows: int, n_partitions: int,
                           worker_counts: Sequence[int] = (1, 2), *, rounds: int = 8) -> WorkerSpeedup:
    """Time the same partitioned inference pinned to the first ``k`` workers, for each ``k``,
    in interleaved rounds.

    One cluster serves every count (no restarts); partition ``i`` runs on worker ``i % k``, so
    the timing is of ``k`` workers' shares, not of where the scheduler chose to put the tasks
    (it can leave one worker with all of them). Every worker imports scikit-learn and
    unpickles the model first; then each round runs every count once, in an order that
    rotates from round to round (:func:`mlscale_lab.evidence.interleave`), so a slow moment of
    the machine slows both counts alike, and the paired rounds give the speedup an interval.

    Parameters
    ----------
    client : distributed.Client
    model : estimator
    total_rows, n_partitions : int
        As in :func:`partitioned_predict`.
    worker_counts : sequence of int
        Worker counts to time, each at most the cluster's workers.
    rounds : int, default 8
        Timed rounds (>= 2): one run per count each. A percentile bootstrap of a median ratio
        covers less than its stated level from few rounds, hence 8 by default rather than 4.

    Returns
    -------
    WorkerSpeedup
    """
    from mlscale_lab.evidence import interleave

    rounds = check_int("measure_worker_speedup", "rounds", rounds, low=2)
    addrs = connected_workers(client, max(worker_counts))
    if max(worker_counts) > len(addrs):
        raise ValueError(
            f"measure_worker_speedup(worker_counts={tuple(worker_counts)}): expected counts up to "
            f"the cluster's {len(addrs)} workers; start more workers or lower worker_counts"
        )
    _warm_up(client, model, addrs)
    shared = client.scatter(model, broadcast=True, hash=False)

    def job(k):
        return lambda: partitioned_predict(client, shared, total_rows, n_partitions,
                                           workers=addrs[:k], spread=True)

    counts = tuple(worker_counts)
    timings = interleave({str(k): job(k) for k in counts}, rounds=rounds, warmup=0)
    samples = tuple(tuple(float(x) for x in timings.samples[str(k)]) for k in counts)
    return WorkerSpeedup(counts, tuple(float(np.median(x)) for x in samples), samples)


def partition_overhead(client, model, total_rows: int, partition_counts: Sequence[int], *,
                       rounds: int = 5, spread: bool = False):
    """Seconds to predict the same ``total_rows`` split into each of ``partition_counts``.

    Few partitions leave workers idle; many tiny ones pay the per-task cost (scheduling,
    serialisation, a Python call) more often than they do work. The counts are timed in
    interleaved rounds (:func:`mlscale_lab.evidence.interleave`: 1, 2, 8, ..., then rotated),
    after one warm-up round, so one slow moment of the cluster slows every count alike; compare
    two counts with ``timings.ratio(a, b)`` rather than one run each.

    Parameters
    ----------
    client : distributed.Client
    model : estimator
    total_rows : int
    partition_counts : sequence of int
    rounds : int, default 5
        Timed rounds (>= 2).
    spread : bool, default False
        Pin partition ``i`` to worker ``i % workers`` (as :func:`partitioned_predict`'s
        ``spread``): two partitions then run on two workers whatever the scheduler would decide,
        so "2 partitions beat 1" times the partitions, not the scheduler's placement.

    Returns
    -------
    mlscale_lab.evidence.Timings
        ``samples[count]``: seconds of each round; ``median(count)``, ``ratio(a, b)``.
    """
    from mlscale_lab.evidence import interleave

    rounds = check_int("partition_overhead", "rounds", rounds, low=2)
    counts = [check_int("partition_overhead", "partition_counts[...]", n, low=1)
              for n in partition_counts]
    addresses = worker_addresses(client)
    _warm_up(client, model, addresses)
    shared = client.scatter(model, broadcast=True, hash=False)
    pinned = {"workers": addresses, "spread": True} if spread else {}

    def job(n):
        return lambda: partitioned_predict(client, shared, total_rows, n, **pinned)

    return interleave({n: job(n) for n in counts}, rounds=rounds, warmup=1)
