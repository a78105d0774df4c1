"""Elastic Dask clusters: a worker dying mid-computation, and ``cluster.adapt`` under bursts.

Both take a running cluster and client (:func:`~mlscale_lab.scaling.local_cluster` here, any
``distributed`` deployment elsewhere); dask is imported inside the functions.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mlscale_lab.validation import check_int, check_positive

__all__ = ["AdaptTimeline", "adapt_under_bursts", "survive_worker_death"]


# -- failures ----------------------------------------------------------------------------------


def _die_once_then_work(marker: str, x: int) -> int:
    """Kill this worker process the first time (no marker yet), succeed on the retry."""
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        os._exit(1)
    return x * x


def survive_worker_death(client, marker: str, *, timeout: float = 60.0) -> dict:
    """Submit a task that kills its worker process mid-computation on the first try.

    The scheduler notices the lost worker, reschedules the task on another one, and the Nanny
    restarts the dead process.

    Parameters
    ----------
    client : distributed.Client
        A cluster with at least two workers (one dies).
    marker : str
        A file path the workers can see: written by the first try, so the retry succeeds.
    timeout : float
        Seconds before a ``TimeoutError`` instead of a hung cell.

    Returns
    -------
    dict
        ``result`` (49), ``seconds`` it took, and ``died_pid``, the worker that died.
    """
    timeout = check_positive("survive_worker_death", "timeout", timeout)
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
    """Samples of an ``adapt`` run: time, connected workers, unfinished tasks.

    Attributes
    ----------
    t : list of float
        Seconds since the run started.
    workers, pending : list of int
        Connected workers and unfinished tasks at each sample.
    bursts : list of (float, int)
        When each burst was submitted and how many tasks it had.
    """

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

    Parameters
    ----------
    cluster, client
        A ``LocalCluster`` (or any cluster with ``adapt``) and a client on it.
    minimum, maximum : int
        Bounds on the workers ``adapt`` may keep.
    bursts : sequence of int
        Tasks per burst.
    task_seconds, gap_seconds : float
        CPU seconds of one task; idle seconds after each burst.
    interval, wait_count, target_duration
        ``adapt``'s own settings: how often it decides, how many decisions before a worker is
        retired, how long the queued work may take on the current workers.
    sample_every : float
        Seconds between samples.
    timeout : float
        Seconds for the whole run before a ``TimeoutError``.

    Returns
    -------
    AdaptTimeline
    """
    from distributed import wait

    func = "adapt_under_bursts"
    minimum = check_int(func, "minimum", minimum, low=0)
    maximum = check_int(func, "maximum", maximum, low=max(minimum, 1),
                        hint=f"maximum must be at least minimum={minimum} and 1")
    for name, v in (("task_seconds", task_seconds), ("sample_every", sample_every),
                    ("timeout", timeout)):
        check_positive(func, name, v)
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
