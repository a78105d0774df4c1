"""Horizontal scaling on Dask distributed: partitioned inference, a hyperparameter search on
joblib's Dask backend, partition size against overhead, hash against range partitioning, a
worker dying mid-computation, and ``cluster.adapt``.

Every function that computes takes a ``distributed.Client``: one connected to a
:func:`local_cluster` here, or ``Client("tcp://scheduler:8786")`` on a real cluster: the code
is the same. dask is imported inside the functions, never at module import.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@contextlib.contextmanager
def local_cluster(n_workers: int = 2, threads_per_worker: int = 1, *, memory_limit="600MiB", **kwargs):
    """A ``LocalCluster`` of worker *processes* and a ``Client`` on it; both closed on exit.

    Yields ``(cluster, client)``. The dashboard is off (no port to clash with), logs are quiet,
    and every worker runs its BLAS with one thread (Dask's default for worker processes), so
    ``n_workers`` is the parallelism you asked for.

    Examples
    --------
    >>> with local_cluster(1) as (cluster, client):  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    import logging

    from distributed import Client, LocalCluster

    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 0:
        raise ValueError(f"n_workers must be an int >= 0, got {n_workers!r}")
    options = {
        "n_workers": n_workers,
        "threads_per_worker": threads_per_worker,
        "processes": True,
        "memory_limit": memory_limit,
        "dashboard_address": None,
        # No dashboard, and the scheduler's small HTTP server on a free loopback port: the
        # default 8787 may be taken by another cluster (a warning), and 0.0.0.0 is not needed.
        "scheduler_kwargs": {"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        "silence_logs": logging.ERROR,
    }
    options.update(kwargs)
    # The scheduler runs in this process: keep its INFO chatter (a worker retired by adapt, a
    # connection closed) out of notebook cells while the cluster lives.
    dlog = logging.getLogger("distributed")
    old_level = dlog.level
    dlog.setLevel(logging.ERROR)
    # Worker processes (also those adapt starts later) read their log level from the
    # environment when they import distributed.
    env_key = "DASK_LOGGING__DISTRIBUTED"
    old_env = os.environ.get(env_key)
    if old_env is None:
        os.environ[env_key] = "error"
    try:
        cluster = LocalCluster(**options)
        try:
            client = Client(cluster)
            try:
                yield cluster, client
            finally:
                client.close()
        finally:
            cluster.close()
    finally:
        dlog.setLevel(old_level)
        if old_env is None:
            os.environ.pop(env_key, None)


def connect(address: str, *, timeout: float = 10.0):
    """A ``Client`` for a running scheduler at ``address`` (``"tcp://host:8786"``).

    This is how a notebook reaches a real cluster; the functions below then run unchanged.
    """
    from distributed import Client

    if not isinstance(address, str) or "://" not in address:
        raise ValueError(
            f"address must be a scheduler address such as 'tcp://10.0.0.5:8786', got {address!r}"
        )
    return Client(address, timeout=f"{timeout}s")


def worker_addresses(client) -> list[str]:
    """The connected workers' addresses, sorted (stable order for pinning work)."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


# -- partitioned inference --------------------------------------------------------------------


def make_model(n_features: int = 20, hidden: tuple[int, ...] = (256, 256), seed: int = 0):
    """A small fitted scikit-learn MLP classifier: the model we serve in the Dask sections."""
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
                        workers: Sequence[str] | None = None, timeout: float = 120.0):
    """Predict ``total_rows`` rows split into ``n_partitions`` partitions across the cluster.

    Each partition is generated on its worker from ``seed + index`` (as if read from its own
    file), so no data crosses the network except the model (scattered once) and the results.

    Returns ``(predictions, seconds)``; ``workers`` pins the work to those worker addresses.
    ``model`` may be a fitted estimator or a future of one (``client.scatter(model)``), to
    send it once for many calls.
    """
    from distributed import Future, wait

    if n_partitions < 1 or total_rows < n_partitions:
        raise ValueError(
            f"need 1 <= n_partitions <= total_rows, got n_partitions={n_partitions!r}, "
            f"total_rows={total_rows!r}"
        )
    sizes = [len(a) for a in np.array_split(np.empty(total_rows, dtype=np.int8), n_partitions)]
    pin = {"workers": list(workers), "allow_other_workers": False} if workers else {}
    if isinstance(model, Future):
        model_future = model
        n_features = client.submit(_n_features, model, pure=False).result(timeout=timeout)
    else:
        n_features = int(model.n_features_in_)
        # hash=False: a fresh key each call, so releasing an earlier call's copy cannot cancel this one.
        model_future = client.scatter(model, broadcast=True, hash=False)
    start = time.perf_counter()
    futures = [
        client.submit(_predict_partition, model_future, seed + i, rows, n_features, pure=False, **pin)
        for i, rows in enumerate(sizes)
    ]
    wait(futures, timeout=timeout)  # a TimeoutError, never a hung cell
    parts = client.gather(futures, errors="raise")
    seconds = time.perf_counter() - start
    return np.concatenate(parts), seconds


def _n_features(model) -> int:
    return int(model.n_features_in_)


def local_predict(model, total_rows: int, n_partitions: int, *, seed: int = 0) -> np.ndarray:
    """The same predictions without Dask, to check a distributed run against."""
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
    workers: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def speedup(self) -> tuple[float, ...]:
        return tuple(self.seconds[0] / s for s in self.seconds)


def measure_worker_speedup(client, model, total_rows: int, n_partitions: int,
                           worker_counts: Sequence[int] = (1, 2), *, repeats: int = 1) -> WorkerSpeedup:
    """Time the same partitioned inference pinned to the first ``k`` workers, for each ``k``.

    One cluster serves every count (no restarts); the best of ``repeats`` runs is kept.
    """
    addrs = worker_addresses(client)
    if max(worker_counts) > len(addrs):
        raise ValueError(
            f"worker_counts asks for {max(worker_counts)} workers but the cluster has {len(addrs)}; "
            "start more workers or lower worker_counts"
        )
    _warm_up(client, model, addrs)
    shared = client.scatter(model, broadcast=True, hash=False)
    seconds = []
    for k in worker_counts:
        best = min(partitioned_predict(client, shared, total_rows, n_partitions, workers=addrs[:k])[1]
                   for _ in range(repeats))
        seconds.append(best)
    return WorkerSpeedup(tuple(worker_counts), tuple(seconds))


def partition_overhead(client, model, total_rows: int, partition_counts: Sequence[int]) -> dict:
    """Seconds to predict the same ``total_rows`` split into each of ``partition_counts``.

    Few partitions leave workers idle; many tiny ones pay the per-task cost (scheduling,
    serialisation, a Python call) more often than they do work. Returns ``{count: seconds}``.
    """
    _warm_up(client, model, worker_addresses(client))
    shared = client.scatter(model, broadcast=True, hash=False)
    return {int(n): partitioned_predict(client, shared, total_rows, int(n))[1] for n in partition_counts}


# -- hyperparameter search on joblib's Dask backend -------------------------------------------


def dask_grid_search(client, param_grid: dict | None = None, *, cv: int = 3, seed: int = 0):
    """``GridSearchCV`` of an SVC on the digits data, its fits spread over the cluster with
    joblib's Dask backend. Returns ``(search, seconds, fits_per_worker)``."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_digits(return_X_y=True)
    grid = param_grid or {"C": [0.5, 5.0, 50.0], "gamma": [1e-4, 1e-3, 1e-2]}
    search = GridSearchCV(SVC(), grid, cv=cv, n_jobs=-1)
    from distributed import get_task_stream

    start = time.perf_counter()
    with get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        search.fit(X, y)
    seconds = time.perf_counter() - start
    per_worker: dict[str, int] = {}
    for task in stream.data:
        per_worker[task["worker"]] = per_worker.get(task["worker"], 0) + 1
    return search, seconds, per_worker


# -- partitioning a skewed key -----------------------------------------------------------------


def skewed_keys(n: int, n_keys: int = 10_000, zipf_a: float = 1.2, seed: int = 0) -> np.ndarray:
    """``n`` keys in ``0..n_keys-1`` with Zipf-like popularity: key 0 hottest, a long tail.

    >>> keys = skewed_keys(10_000, 100, seed=0)
    >>> int(np.bincount(keys).argmax())
    0
    """
    if n < 1 or n_keys < 1 or zipf_a <= 0:
        raise ValueError("need n >= 1, n_keys >= 1 and zipf_a > 0")
    ranks = np.arange(1, n_keys + 1, dtype=float)
    p = ranks**-zipf_a
    p /= p.sum()
    return np.random.default_rng(seed).choice(n_keys, size=n, p=p)


def partition_of(keys, n_partitions: int, scheme: str, *, key_range: tuple[int, int] | None = None) -> np.ndarray:
    """Which partition each key goes to.

    ``"hash"``: a multiplicative hash of the key modulo ``n_partitions`` (neighbouring keys
    scatter); ``"range"``: ``n_partitions`` equal slices of ``key_range`` (default the keys'
    min..max), as a table sorted by key would be split.
    """
    keys = np.asarray(keys, dtype=np.int64)
    if n_partitions < 1:
        raise ValueError(f"n_partitions must be >= 1, got {n_partitions!r}")
    if scheme == "hash":
        mixed = (keys.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
        return (mixed % np.uint64(n_partitions)).astype(np.int64)
    if scheme == "range":
        lo, hi = key_range or (int(keys.min()), int(keys.max()))
        width = (hi - lo + 1) / n_partitions
        return np.minimum(((keys - lo) / width).astype(np.int64), n_partitions - 1)
    raise ValueError(f"scheme={scheme!r} is not known; use 'hash' or 'range'")


def partition_sizes(keys, n_partitions: int, scheme: str, **kwargs) -> np.ndarray:
    """Rows per partition under ``scheme``; ``max / mean`` is how much the hotspot slows a stage."""
    return np.bincount(partition_of(keys, n_partitions, scheme, **kwargs), minlength=n_partitions)


# -- failures ----------------------------------------------------------------------------------


def _die_once_then_work(marker: str, x: int) -> int:
    """Kill this worker process the first time (no marker yet), succeed on the retry."""
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        os._exit(1)
    return x * x


def _always_die(x: int) -> int:
    os._exit(1)


def survive_worker_death(client, marker: str, *, timeout: float = 60.0) -> dict:
    """Submit a task that kills its worker process mid-computation on the first try.

    The scheduler notices the lost worker, reschedules the task on another one, and the Nanny
    restarts the dead process. Returns the result, the seconds it took and the PID that died;
    a ``TimeoutError`` after ``timeout`` seconds instead of a hung cell.
    """
    if os.path.exists(marker):
        os.remove(marker)
    start = time.perf_counter()
    fut = client.submit(_die_once_then_work, marker, 7, pure=False)
    value = fut.result(timeout=timeout)
    with open(marker) as fh:
        died = int(fh.read())
    return {"result": value, "seconds": time.perf_counter() - start, "died_pid": died}


# -- adaptive scaling --------------------------------------------------------------------------


def _spin(seconds: float) -> float:
    """Burn CPU for ``seconds`` (not sleep: a busy worker, as real work is)."""
    end = time.perf_counter() + seconds
    x = 0.0
    while time.perf_counter() < end:
        x += 1.0
    return x


def _n_workers(cluster) -> int:
    """Connected workers, read live from an in-process scheduler (a LocalCluster's), else from
    the cluster's periodically refreshed ``scheduler_info`` (which can lag by a second)."""
    sched = getattr(cluster, "scheduler", None)
    if sched is not None and hasattr(sched, "workers"):
        return len(sched.workers)
    return len(cluster.scheduler_info.get("workers", {}))


@dataclass
class AdaptTimeline:
    """Samples of an ``adapt`` run: time, connected workers, unfinished tasks."""

    t: list[float] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    bursts: list[tuple[float, int]] = field(default_factory=list)


def adapt_under_bursts(
    cluster,
    client,
    *,
    minimum: int = 1,
    maximum: int = 2,
    bursts: Sequence[int] = (16, 16),
    task_seconds: float = 0.25,
    gap_seconds: float = 2.5,
    interval: str = "250ms",
    wait_count: int = 4,
    target_duration: str = "1s",
    sample_every: float = 0.1,
    timeout: float = 60.0,
) -> AdaptTimeline:
    """Let ``cluster.adapt(minimum, maximum)`` follow a bursty load and record what it did.

    First idles until the cluster has shrunk to ``minimum`` workers (at most ``gap_seconds``
    x 2), then submits ``bursts[i]`` CPU tasks of ``task_seconds`` each, waits for them, idles
    ``gap_seconds``, and so on, while a thread samples the worker count and the unfinished tasks
    every ``sample_every`` seconds. Adaptive scaling is stopped at the end (the cluster stays).
    """
    from distributed import wait

    if not 0 <= minimum <= maximum:
        raise ValueError(f"need 0 <= minimum <= maximum, got minimum={minimum!r}, maximum={maximum!r}")
    timeline = AdaptTimeline()
    outstanding: list = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def sample():
        while not stop.is_set():
            timeline.t.append(time.perf_counter() - t0)
            timeline.workers.append(_n_workers(cluster))
            timeline.pending.append(sum(not f.done() for f in list(outstanding)))
            stop.wait(sample_every)

    adaptive = cluster.adapt(minimum=minimum, maximum=maximum, interval=interval,
                             wait_count=wait_count, target_duration=target_duration)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    deadline = time.perf_counter() + timeout
    try:
        settle = time.perf_counter() + 2 * gap_seconds
        while _n_workers(cluster) > minimum and time.perf_counter() < settle:
            time.sleep(sample_every)
        for n in bursts:
            timeline.bursts.append((time.perf_counter() - t0, int(n)))
            futs = [client.submit(_spin, task_seconds, pure=False) for _ in range(int(n))]
            outstanding[:] = futs
            if futs:
                # distributed's wait raises a TimeoutError when the deadline passes: no hung cell
                wait(futs, timeout=max(1.0, deadline - time.perf_counter()))
                client.gather(futs)
            time.sleep(gap_seconds)
    finally:
        stop.set()
        sampler.join()
        adaptive.stop()
    return timeline
