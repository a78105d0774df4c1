"""The dispatch loops behind :func:`~mlscale_lab.scaling.simulate_balancer`.

Each takes the arrival times, every request's base work ``base`` and each replica's slowness
``scale`` (replica ``k`` serves request ``i`` in ``base[i] * scale[k]``) and returns which
replica served each request and when it finished. Static policies (round robin, random) need
no event loop: each replica is a FIFO queue whose waits follow Lindley's recursion.
"""

from __future__ import annotations

import heapq
import numbers
from collections import deque

import numpy as np

__all__ = ["central_queue", "least_connections", "lindley_waits", "power_of_two", "static_routing"]


def lindley_waits(arrivals: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Waits of a FIFO single-server queue, vectorised: ``W_n = C_n - min(0, min_{k<=n} C_k)``.

    Parameters
    ----------
    arrivals : numpy.ndarray
        Arrival times, increasing.
    services : numpy.ndarray
        Each request's service time.

    Returns
    -------
    numpy.ndarray
        Each request's wait before service.

    Examples
    --------
    >>> lindley_waits(np.array([0.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0])).tolist()
    [0.0, 0.5, 0.0]
    """
    if arrivals.size == 0:
        return arrivals.copy()
    steps = np.empty_like(arrivals)
    steps[0] = 0.0
    steps[1:] = services[:-1] - np.diff(arrivals)
    c = np.cumsum(steps)
    return c - np.minimum(np.minimum.accumulate(c), 0.0)


def static_routing(assign, arrivals, base, scale, servers):
    """Waits and service times when ``assign`` fixed each request's replica in advance.

    Parameters
    ----------
    assign : numpy.ndarray of int
        The replica of each request (round robin, random).
    arrivals, base, scale : numpy.ndarray
        As in :func:`central_queue`.
    servers : int

    Returns
    -------
    waits, services : numpy.ndarray

    Examples
    --------
    >>> waits, _ = static_routing(np.array([0, 0]), np.array([0.0, 0.5]), np.ones(2), np.ones(1), 1)
    >>> waits.tolist()
    [0.0, 0.5]
    """
    waits = np.empty_like(arrivals)
    services = base * scale[assign]
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(servers + 1))
    for k in range(servers):
        idx = order[bounds[k] : bounds[k + 1]]
        waits[idx] = lindley_waits(arrivals[idx], services[idx])
    return waits, services


def power_of_two(arrivals, base, scale, servers, rng):
    """Sample two different replicas, join the one with fewer requests.

    Per-replica deques of departure times give each sampled replica's count without touching
    the others.

    Parameters
    ----------
    arrivals : numpy.ndarray
        Arrival times, increasing.
    base : numpy.ndarray
        Each request's work (a draw with mean 1, or the sampled service time).
    scale : numpy.ndarray
        Each replica's mean service time multiplier, one per replica.
    servers : int
        Number of replicas.
    rng : numpy.random.Generator
        Draws the two replicas.

    Returns
    -------
    assign : numpy.ndarray of int
        The replica that served each request.
    done : numpy.ndarray
        When each request finished.
    """
    n = arrivals.size
    first = rng.integers(0, servers, n)
    second = (first + rng.integers(1, servers, n)) % servers  # a different replica
    queues = [deque() for _ in range(servers)]
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, (t, x, y) in enumerate(zip(arr, first.tolist(), second.tolist(), strict=True)):
        qx = queues[x]
        while qx and qx[0] <= t:
            qx.popleft()
        qy = queues[y]
        while qy and qy[0] <= t:
            qy.popleft()
        if len(qy) < len(qx):
            x, qx = y, qy
        done = (qx[-1] if qx else t) + b[i] * sc[x]
        qx.append(done)
        assign[i] = x
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)


def least_connections(arrivals, base, scale, servers, policy=None, rng=None):
    """Join the replica with the fewest requests (ties round robin), or ask ``policy``.

    One heap of (departure time, replica) keeps every replica's count current.

    Parameters
    ----------
    arrivals : numpy.ndarray
        Arrival times, increasing.
    base : numpy.ndarray
        Each request's work (a draw with mean 1, or the sampled service time).
    scale : numpy.ndarray
        Each replica's mean service time multiplier, one per replica.
    servers : int
        Number of replicas.
    policy : callable, optional
        ``policy(queue_lengths, rng) -> replica index`` instead of the shortest queue.
    rng : numpy.random.Generator, optional
        Passed to ``policy``.

    Returns
    -------
    assign : numpy.ndarray of int
        The replica that served each request.
    done : numpy.ndarray
        When each request finished.
    """
    n = arrivals.size
    counts = [0] * servers
    free_at = [0.0] * servers
    heap: list[tuple[float, int]] = []
    heappush, heappop = heapq.heappush, heapq.heappop
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, t in enumerate(arr):
        while heap and heap[0][0] <= t:
            counts[heappop(heap)[1]] -= 1
        if policy is None:
            m = min(counts)
            try:
                k = counts.index(m, i % servers)
            except ValueError:
                k = counts.index(m)
        else:
            k = policy(tuple(counts), rng)
            if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= k < servers:
                raise ValueError(
                    f"simulate_balancer(policy=<custom>): expected a replica index, an int in "
                    f"0..{servers - 1}, got {k!r} from the policy"
                )
            k = int(k)
        f = free_at[k]
        done = (f if f > t else t) + b[i] * sc[k]
        free_at[k] = done
        counts[k] += 1
        heappush(heap, (done, k))
        assign[i] = k
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)


def central_queue(arrivals, base, scale, servers):
    """One FIFO queue: each request takes the replica that frees up first (a heap of free times).

    Parameters
    ----------
    arrivals : numpy.ndarray
        Arrival times, increasing.
    base : numpy.ndarray
        Each request's work (a draw with mean 1, or the sampled service time).
    scale : numpy.ndarray
        Each replica's mean service time multiplier, one per replica.
    servers : int
        Number of replicas.

    Returns
    -------
    assign : numpy.ndarray of int
        The replica that served each request.
    done : numpy.ndarray
        When each request finished.

    Examples
    --------
    >>> assign, done = central_queue(np.array([0.0, 0.1, 0.2]), np.ones(3), np.ones(2), 2)
    >>> assign.tolist(), done.tolist()
    ([0, 1, 0], [1.0, 1.1, 2.0])
    """
    n = arrivals.size
    free = [(0.0, k) for k in range(servers)]
    heapreplace = heapq.heapreplace
    arr, b, sc = arrivals.tolist(), base.tolist(), scale.tolist()
    assign = [0] * n
    done_at = [0.0] * n
    for i, t in enumerate(arr):
        f, k = free[0]
        done = (f if f > t else t) + b[i] * sc[k]
        heapreplace(free, (done, k))
        assign[i] = k
        done_at[i] = done
    return np.asarray(assign, dtype=np.int64), np.asarray(done_at)
