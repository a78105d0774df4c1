"""Queues replayed request by request: measured traces, and M/G/c where no formula is exact.

Two uses. A **trace replay** takes the arrival times and service times a load test really saw
and computes the waits an ideal first-come-first-served queue with ``c`` servers would have
given them: what is left between that and the measured latency is dispatch and contention, not
queueing. A **simulation** draws Poisson arrivals and service times from a measured
distribution (M/G/c), for latency quantiles where the M/M/c formulas assume the wrong service.
"""

from __future__ import annotations

import heapq
import math
import numbers
from collections import deque

import numpy as np

from mlscale_lab.validation import check_fraction, check_int, check_positive

__all__ = ["DISPATCH", "dispatch_replay", "fcfs_waits", "lindley_waits", "mgc_latency_quantile",
           "routed_waits", "simulate_mgc"]


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


def routed_waits(assign: np.ndarray, arrivals: np.ndarray, services: np.ndarray,
                 servers: int) -> np.ndarray:
    """Waits when each request's server was fixed in advance: one FIFO queue a server.

    Routing that never looks at the servers (round robin, a random draw) makes each server a
    single-server queue of its own share of the requests, with Lindley's waits
    (:func:`lindley_waits`), server by server.

    Parameters
    ----------
    assign : numpy.ndarray of int
        Each request's server, in ``range(servers)``.
    arrivals, services : numpy.ndarray
        Arrival times (increasing) and each request's service time.
    servers : int

    Returns
    -------
    waits : numpy.ndarray
        One a request, in arrival order: the time it spent in its server's queue.

    Examples
    --------
    >>> routed_waits(np.array([0, 1, 0]), np.array([0.0, 0.1, 0.2]), np.ones(3), 2).tolist()
    [0.0, 0.0, 0.8]
    """
    waits = np.empty_like(arrivals)
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(servers + 1))
    for k in range(servers):
        idx = order[bounds[k] : bounds[k + 1]]
        waits[idx] = lindley_waits(arrivals[idx], services[idx])
    return waits


def _trace(func: str, arrivals, services) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(arrivals, dtype=float).ravel()
    s = np.asarray(services, dtype=float).ravel()
    if a.shape != s.shape:
        raise ValueError(f"{func}(arrivals=..., services=...): expected one service time per "
                         f"arrival, got {a.size} arrivals and {s.size} service times")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(s))) or np.any(s < 0):
        raise ValueError(f"{func}: expected finite arrival times and service times >= 0")
    if a.size > 1 and np.any(np.diff(a) < 0):
        raise ValueError(f"{func}(arrivals=...): expected arrival times in increasing order; "
                         "sort the trace by arrival (np.argsort) and apply the order to both")
    return a, s


def fcfs_waits(arrivals, services, servers: int = 1) -> np.ndarray:
    """Waits of one first-come-first-served queue in front of ``servers`` identical servers.

    Each request, in arrival order, takes the server that frees up first (the Kiefer-Wolfowitz
    recursion); with one server it is Lindley's recursion, vectorised.

    Parameters
    ----------
    arrivals : array-like
        Arrival times, increasing (seconds).
    services : array-like
        Each request's service time (seconds).
    servers : int, default 1

    Returns
    -------
    numpy.ndarray
        Each request's wait before its service starts.

    Examples
    --------
    >>> fcfs_waits([0.0, 0.1, 0.2, 0.3], [1.0, 1.0, 1.0, 1.0], servers=2).tolist()
    [0.0, 0.0, 0.8, 0.8]
    """
    c = check_int("fcfs_waits", "servers", servers, low=1)
    a, s = _trace("fcfs_waits", arrivals, services)
    if c == 1:
        return lindley_waits(a, s)
    free = [0.0] * c  # a heap of the times each server frees up
    waits = np.empty_like(a)
    heapreplace = heapq.heapreplace
    for i, (t, x) in enumerate(zip(a.tolist(), s.tolist(), strict=True)):
        f = free[0]
        start = f if f > t else t
        waits[i] = start - t
        heapreplace(free, start + x)
    return waits


def _service_draws(func: str, service_times, rng, n: int) -> tuple[np.ndarray, float]:
    """n service times: exponential around a mean, or resampled from measured times."""
    if isinstance(service_times, numbers.Real) and not isinstance(service_times, bool):
        mean = check_positive(func, "service_times", service_times)
        return rng.exponential(mean, n), mean
    measured = np.asarray(service_times, dtype=float).ravel()
    if measured.size < 2 or not np.all(np.isfinite(measured)) or np.any(measured < 0):
        raise ValueError(f"{func}(service_times=...): expected a mean (float > 0, exponential "
                         "times) or at least 2 measured service times >= 0")
    mean = float(measured.mean())
    if mean <= 0:
        raise ValueError(f"{func}(service_times=...): expected measured times with a mean > 0")
    return rng.choice(measured, n, replace=True), mean


def simulate_mgc(servers: int, arrival_rate: float, service_times, *, n: int = 20_000,
                 warmup: int | None = None, seed: int = 0) -> np.ndarray:
    """Response times (wait + service) of an M/G/c queue in steady state, by simulation.

    Parameters
    ----------
    servers : int
    arrival_rate : float
        Poisson arrivals per second.
    service_times : float or array-like
        A mean (exponential service: M/M/c) or measured service times, resampled with
        replacement (the measured distribution: M/G/c).
    n : int, default 20,000
        Requests kept.
    warmup : int, optional
        Requests simulated first and dropped, so the queue has forgotten it started empty
        (default ``n // 5``).
    seed : int, default 0

    Returns
    -------
    numpy.ndarray
        ``n`` response times, in the unit of the service times.

    Examples
    --------
    >>> from mlscale_lab.queueing import mmc_mean_wait
    >>> r = simulate_mgc(2, 1.5, 1.0, n=200_000)
    >>> bool(abs(r.mean() / (mmc_mean_wait(2, 1.5, 1.0) + 1.0) - 1) < 0.05)  # mean response
    True
    """
    c = check_int("simulate_mgc", "servers", servers, low=1)
    lam = check_positive("simulate_mgc", "arrival_rate", arrival_rate)
    n = check_int("simulate_mgc", "n", n, low=1)
    warm = n // 5 if warmup is None else check_int("simulate_mgc", "warmup", warmup, low=0)
    rng = np.random.default_rng(seed)
    services, mean = _service_draws("simulate_mgc", service_times, rng, n + warm)
    if lam * mean >= c:
        raise ValueError(f"simulate_mgc: utilisation {lam * mean / c:.3g} >= 1 (arrival_rate "
                         f"{lam:g} x mean service {mean:g} on {c} servers): the queue grows "
                         "without bound and has no steady state")
    arrivals = np.cumsum(rng.exponential(1 / lam, n + warm))
    waits = fcfs_waits(arrivals, services, c)
    return (waits + services)[warm:]


def mgc_latency_quantile(servers: int, arrival_rate: float, service_times, q: float = 0.99, *,
                         n: int = 50_000, seed: int = 0) -> float:
    """The ``q`` quantile of M/G/c response time, by simulation; ``inf`` when unstable.

    With measured service times this is the capacity planner's answer where service is not
    exponential (a model's near-constant predict: M/D/c has about half M/M/c's queueing).

    Examples
    --------
    >>> from mlscale_lab.queueing import mmc_latency_quantile
    >>> const = mgc_latency_quantile(2, 1.6, [1.0, 1.0], 0.99)
    >>> expo = mmc_latency_quantile(2, 1.6, 1.0, 0.99)
    >>> const < expo
    True
    """
    q = check_fraction("mgc_latency_quantile", "q", q, low_open=True, high_open=True)
    c = check_int("mgc_latency_quantile", "servers", servers, low=1)
    lam = check_positive("mgc_latency_quantile", "arrival_rate", arrival_rate)
    mean = (float(service_times) if isinstance(service_times, numbers.Real)
            else float(np.mean(np.asarray(service_times, dtype=float))))
    if lam * mean >= c:
        return math.inf
    return float(np.quantile(simulate_mgc(c, lam, service_times, n=n, seed=seed), q))


DISPATCH = ("central", "greedy", "shortest", "random")


def dispatch_replay(arrivals, services, servers: int, policy: str = "central", *,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Replay a measured trace through ``servers`` workers dispatched by ``policy``.

    - ``"central"``: one FCFS queue in front of all workers (M/G/c; :func:`fcfs_waits`);
    - ``"greedy"``: greedy accept, what uvicorn's workers do on a shared listening socket. An idle
      worker (waiting in its event loop) takes an arriving request at once (the one idle the
      shortest time first: Linux wakes waiters last in, first out); a busy worker takes nothing
      until its predict returns, then accepts *every* request waiting on the socket into its own
      queue (asyncio accepts up to ``backlog`` connections per wake-up) and serves them in order,
      while a worker that frees up a moment later finds the socket empty;
    - ``"shortest"``: join the worker with the fewest requests (join-the-shortest-queue);
    - ``"random"``: a worker drawn at random (seeded).

    Parameters
    ----------
    arrivals, services : array-like
        Arrival times (increasing) and each request's service time, seconds.
    servers : int
    policy : str, default "central"
    seed : int, default 0
        For ``"random"``.

    Returns
    -------
    waits : numpy.ndarray
        Each request's wait before its service started.
    worker : numpy.ndarray of int
        The worker that served it.

    Examples
    --------
    >>> a, s = [0.0, 0.1, 0.2, 0.3], [1.0, 1.0, 1.0, 1.0]
    >>> dispatch_replay(a, s, 2, "central")[0].round(2).tolist()
    [0.0, 0.0, 0.8, 0.8]
    >>> dispatch_replay(a, s, 2, "greedy")[0].round(2).tolist()  # worker 0 took both at t=1.0
    [0.0, 0.0, 0.8, 1.7]
    """
    c = check_int("dispatch_replay", "servers", servers, low=1)
    if policy not in DISPATCH:
        raise ValueError(f"dispatch_replay(policy={policy!r}): expected one of {', '.join(DISPATCH)}")
    a, s = _trace("dispatch_replay", arrivals, services)
    n = a.size
    if policy == "central":
        waits = fcfs_waits(a, s, c)
        return waits, _central_workers(a, s, waits, c)
    if policy == "random":
        worker = np.random.default_rng(seed).integers(0, c, n)
        return routed_waits(worker, a, s, c), worker
    if policy == "shortest":
        return _shortest(a, s, c)
    return _greedy(a, s, c)


def _central_workers(a, s, waits, c):
    free = [(0.0, k) for k in range(c)]
    worker = np.empty(a.size, dtype=int)
    for i, begin in enumerate((a + waits).tolist()):
        worker[i] = free[0][1]
        heapq.heapreplace(free, (begin + s[i], free[0][1]))
    return worker


def _shortest(a, s, c):
    n = a.size
    free_at = [0.0] * c
    departures = [deque() for _ in range(c)]  # each worker's pending finish times
    waits, worker = np.empty(n), np.empty(n, dtype=int)
    for i, (t, x) in enumerate(zip(a.tolist(), s.tolist(), strict=True)):
        for d in departures:
            while d and d[0] <= t:
                d.popleft()
        k = min(range(c), key=lambda j: (len(departures[j]), (j - i) % c))
        start = max(t, free_at[k])
        free_at[k] = start + x
        departures[k].append(start + x)
        waits[i], worker[i] = start - t, k
    return waits, worker


def _greedy(a, s, c):
    n = a.size
    busy = [False] * c
    until = [0.0] * c            # when each busy worker's predict returns
    idle_since = [0.0] * c
    local = [deque() for _ in range(c)]  # each worker's own queue, accepted from the socket
    pending: list[int] = []      # waiting on the listening socket, accepted by nobody yet
    waits, worker = np.empty(n), np.empty(n, dtype=int)
    at, sv = a.tolist(), s.tolist()
    i = 0

    def start(k: int, j: int, t: float) -> None:
        waits[j], worker[j] = t - at[j], k
        busy[k], until[k] = True, t + sv[j]

    while True:
        t_done = min((until[k] for k in range(c) if busy[k]), default=math.inf)
        t_arr = at[i] if i < n else math.inf
        if t_arr == math.inf and t_done == math.inf:
            break
        if t_arr < t_done:
            idle = [k for k in range(c) if not busy[k]]
            if idle:
                start(max(idle, key=lambda k: idle_since[k]), i, t_arr)
            else:
                pending.append(i)
            i += 1
            continue
        k = min((k for k in range(c) if busy[k]), key=lambda k: until[k])
        local[k].extend(pending)  # back from predict: accept every connection waiting
        pending.clear()
        if local[k]:
            start(k, local[k].popleft(), t_done)
        else:
            busy[k], idle_since[k] = False, t_done
    return waits, worker
