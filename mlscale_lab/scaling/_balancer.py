"""A discrete-event load-balancer simulator: N replicas, one dispatch policy, Poisson arrivals.

Each replica serves its requests one at a time, first come first served. Policies:

- ``"round_robin"`` and ``"random"`` route without looking at the replicas, so each replica is
  an independent single-server queue; its waits follow Lindley's recursion, computed for all
  requests at once with NumPy (a cumulative sum and a running minimum).
- ``"least_connections"`` (join the shortest queue) and ``"power_of_two"`` (sample two replicas,
  join the shorter) look at the number of requests at each replica on arrival: one event loop
  with a heap of departures keeps those counts.
- ``"central_queue"``: one shared queue, the next request goes to the first replica that frees
  up (M/M/c when service times are exponential); a heap of the replicas' free times.
- a callable ``policy(queue_lengths, rng) -> replica index`` for your own dispatch rule.
"""

from __future__ import annotations

import heapq
import numbers
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.scaling._queueing import _check_positive, _check_servers

POLICIES = ("round_robin", "random", "least_connections", "power_of_two", "central_queue")


@dataclass
class BalancerResult:
    """Latency and utilisation of one simulated run (times in the unit of ``service_time``).

    Attributes
    ----------
    policy : str
        The policy's name (``"custom"`` for a callable).
    servers : int
        Number of replicas.
    offered_utilisation : float
        Arrival rate over total service capacity, the utilisation theory expects.
    mean_wait, mean_latency : float
        Mean time in queue and mean response time (wait + service).
    p50, p95, p99 : float
        Percentiles of response time.
    utilisation : numpy.ndarray
        Fraction of the run each replica was busy, one value per replica.
    requests_per_replica : numpy.ndarray
        How many requests each replica served.
    latencies : numpy.ndarray
        Every request's response time, in arrival order (after the warm-up).
    """

    policy: str
    servers: int
    offered_utilisation: float
    mean_wait: float
    mean_latency: float
    p50: float
    p95: float
    p99: float
    utilisation: np.ndarray
    requests_per_replica: np.ndarray
    latencies: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        """The summary figures as plain Python (no per-request arrays)."""
        return {
            "policy": self.policy,
            "servers": self.servers,
            "offered_utilisation": self.offered_utilisation,
            "mean_wait": self.mean_wait,
            "mean_latency": self.mean_latency,
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "utilisation": self.utilisation.tolist(),
            "requests_per_replica": self.requests_per_replica.tolist(),
        }


def _service_model(service_time, servers: int, rng, n: int):
    """Per-request base draws and per-replica scale: replica k serves request i in base[i]*scale[k]."""
    if callable(service_time):
        base = np.asarray(service_time(rng, n), dtype=float)
        if base.shape != (n,):
            raise ValueError(
                f"service_time sampler returned shape {base.shape}; it must return an array of "
                f"n={n} service times, as service_time(rng, n)"
            )
        if not np.all(np.isfinite(base)) or np.any(base < 0):
            raise ValueError("service_time sampler returned negative or non-finite times; "
                             "service times must be finite and >= 0")
        mean = float(base.mean())
        if mean <= 0:
            raise ValueError("service_time sampler returned all zeros; service times must have a mean > 0")
        return base, np.ones(servers), np.full(servers, mean)
    if isinstance(service_time, numbers.Real) and not isinstance(service_time, bool):
        mean = _check_positive(service_time, "service_time")
        return rng.exponential(1.0, n), np.full(servers, mean), np.full(servers, mean)
    if isinstance(service_time, (Sequence, np.ndarray)) and not isinstance(service_time, str):
        means = np.asarray(service_time, dtype=float)
        if means.shape != (servers,):
            raise ValueError(
                f"service_time as per-replica means needs one mean per replica: got "
                f"{means.shape[0] if means.ndim == 1 else means.shape} values for servers={servers}"
            )
        if not np.all(np.isfinite(means)) or np.any(means <= 0):
            raise ValueError(f"service_time per-replica means must all be > 0, got {means.tolist()}")
        return rng.exponential(1.0, n), means, means
    raise TypeError(
        "service_time must be a mean (float > 0, exponential times), a sampler "
        "service_time(rng, n) -> array, or one mean per replica (a list of floats); "
        f"got {type(service_time).__name__}"
    )


def _lindley_waits(arrivals: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Waits of a FIFO single-server queue, vectorised: W_n = C_n - min(0, min_{k<=n} C_k)."""
    if arrivals.size == 0:
        return arrivals.copy()
    steps = np.empty_like(arrivals)
    steps[0] = 0.0
    steps[1:] = services[:-1] - np.diff(arrivals)
    c = np.cumsum(steps)
    return c - np.minimum(np.minimum.accumulate(c), 0.0)


def _static_routing(assign, arrivals, base, scale, servers):
    waits = np.empty_like(arrivals)
    services = base * scale[assign]
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(servers + 1))
    for k in range(servers):
        idx = order[bounds[k] : bounds[k + 1]]
        waits[idx] = _lindley_waits(arrivals[idx], services[idx])
    return waits, services


def _power_of_two(arrivals, base, scale, servers, rng):
    """Sample two different replicas, join the one with fewer requests; per-replica deques of
    departure times give each sampled replica's count without touching the others."""
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


def _least_connections(arrivals, base, scale, servers, policy=None, rng=None):
    """Join the replica with the fewest requests (ties round robin), or ask ``policy``.

    One heap of (departure time, replica) keeps every replica's count current."""
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
                    f"policy returned {k!r}; a dispatch policy must return a replica index, "
                    f"an int in 0..{servers - 1}"
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


def _central_queue(arrivals, base, scale, servers):
    """One FIFO queue: each request takes the replica that frees up first (a heap of free times)."""
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


def simulate_balancer(
    policy: str | Callable,
    servers: int,
    arrival_rate: float,
    service_time: float | Sequence[float] | Callable,
    n_requests: int = 100_000,
    seed: int = 0,
    *,
    warmup: float = 0.0,
) -> BalancerResult:
    """Simulate ``n_requests`` Poisson arrivals dispatched to ``servers`` replicas by ``policy``.

    Parameters
    ----------
    policy : str or callable
        ``"round_robin"``, ``"random"``, ``"least_connections"``, ``"power_of_two"``,
        ``"central_queue"``, or ``policy(queue_lengths, rng) -> int`` where ``queue_lengths``
        is a tuple of the requests at each replica (waiting or in service) when a request
        arrives, and ``rng`` a seeded ``numpy.random.Generator``.
    servers : int
        Number of replicas (>= 1).
    arrival_rate : float
        Requests per unit of time (> 0).
    service_time : float, sequence of float, or callable
        A mean (every replica, exponential service times); one mean per replica
        (heterogeneous replicas, exponential times: a request's work is drawn once and
        stretched by the replica that serves it); or a sampler ``service_time(rng, n) ->
        array`` of ``n`` times (same distribution on every replica).
    n_requests : int
        Requests to simulate (>= 1). 10^6 take a few seconds.
    seed : int
        Seed of the arrivals, service times and random choices: same seed, same result.
    warmup : float, default 0
        Fraction of the first requests left out of the statistics (the empty-system start).

    Returns
    -------
    BalancerResult

    Raises
    ------
    ValueError
        Unknown policy, ``servers < 1``, or total utilisation ``arrival_rate / capacity >= 1``
        (the queue would grow forever).

    Examples
    --------
    >>> r = simulate_balancer("central_queue", 4, 3.2, 1.0, n_requests=20_000, seed=1)
    >>> r.offered_utilisation
    0.8
    >>> bool(0.7 < r.utilisation.mean() < 0.9)
    True
    """
    if not callable(policy) and policy not in POLICIES:
        raise ValueError(
            f"policy={policy!r} is not a known dispatch policy; use one of {', '.join(POLICIES)}, "
            "or a function policy(queue_lengths, rng) -> replica index"
        )
    servers = _check_servers(servers)
    lam = _check_positive(arrival_rate, "arrival_rate")
    if isinstance(n_requests, bool) or not isinstance(n_requests, numbers.Integral) or n_requests < 1:
        raise ValueError(f"n_requests must be an int >= 1, got {n_requests!r}")
    if not 0 <= warmup < 1:
        raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup!r}")
    n = int(n_requests)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n))
    base, scale, means = _service_model(service_time, servers, rng, n)
    capacity = float(np.sum(1.0 / means))  # requests per unit time, all replicas busy
    rho = lam / capacity
    if rho >= 1:
        raise ValueError(
            f"utilisation {rho:.3g} >= 1: arrival_rate {lam:g} is at or above the replicas' "
            f"capacity {capacity:g} requests per unit time, so queues grow without bound; "
            "lower arrival_rate, add servers, or shorten service_time"
        )

    name = policy if isinstance(policy, str) else "custom"
    if name in ("round_robin", "random"):
        if name == "round_robin":
            assign = np.arange(n, dtype=np.int64) % servers
        else:
            assign = rng.integers(0, servers, n)
        per_replica = lam / servers * means
        if np.any(per_replica >= 1):
            worst = int(np.argmax(per_replica))
            warnings.warn(
                f"{name} sends each replica an equal share, which loads replica {worst} to "
                f"{per_replica[worst]:.2f} >= 1: its queue grows without bound and its "
                "latencies depend on n_requests",
                RuntimeWarning,
                stacklevel=2,
            )
        waits, services = _static_routing(assign, arrivals, base, scale, servers)
    else:
        if name == "central_queue":
            assign, done = _central_queue(arrivals, base, scale, servers)
        elif name == "power_of_two" and servers > 1:
            assign, done = _power_of_two(arrivals, base, scale, servers, rng)
        elif name in ("least_connections", "power_of_two"):
            assign, done = _least_connections(arrivals, base, scale, servers)
        else:
            assign, done = _least_connections(arrivals, base, scale, servers, policy, rng)
        services = base * scale[assign]
        waits = np.maximum(done - services - arrivals, 0.0)  # clip float round-off

    latencies = waits + services
    horizon = float(np.max(arrivals + latencies))
    busy = np.bincount(assign, weights=services, minlength=servers)
    served = np.bincount(assign, minlength=servers)
    skip = int(n * warmup)
    w, lat = waits[skip:], latencies[skip:]
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    return BalancerResult(
        policy=name,
        servers=servers,
        offered_utilisation=round(rho, 12),
        mean_wait=float(w.mean()),
        mean_latency=float(lat.mean()),
        p50=float(p50),
        p95=float(p95),
        p99=float(p99),
        utilisation=busy / horizon,
        requests_per_replica=served,
        latencies=lat,
    )


def heterogeneous_means(servers: int, spread: float = 0.5) -> list[float]:
    """Per-replica mean service times spread evenly over ``1 +- spread/2``, normalised so the
    replicas' total capacity equals ``servers`` replicas of mean 1 (old and new hardware mixed).

    >>> means = heterogeneous_means(4, 0.5)
    >>> round(sum(1 / m for m in means), 9)
    4.0
    """
    servers = _check_servers(servers)
    if not 0 <= spread < 2:
        raise ValueError(f"spread must be in [0, 2), got {spread!r}")
    raw = np.linspace(1 - spread / 2, 1 + spread / 2, servers)
    raw *= np.sum(1 / raw) / servers
    return [float(x) for x in raw]


def utilisation_of(servers: int, arrival_rate: float, service_time) -> float:
    """Offered utilisation ``arrival_rate / capacity`` for a mean or per-replica means."""
    servers = _check_servers(servers)
    means = np.broadcast_to(np.asarray(service_time, dtype=float), (servers,))
    return float(arrival_rate / np.sum(1.0 / means))


