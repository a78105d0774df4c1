"""A discrete-event load-balancer simulator: N replicas, one dispatch policy, Poisson arrivals.

Each replica serves its requests one at a time, first come first served. The policies, by
name, are the entries of :data:`~mlscale_lab.scaling.POLICY_TABLE` (``POLICIES`` lists their
names; each entry says its rule); a callable ``policy(queue_lengths, rng) -> replica index`` is
your own dispatch rule.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.scaling._dispatch import POLICY_TABLE, custom_dispatch
from mlscale_lab.validation import (
    check_choice,
    check_fraction,
    check_int,
    check_number,
    check_positive,
)

__all__ = ["POLICIES", "BalancerResult", "heterogeneous_means", "simulate_balancer", "utilisation_of"]

#: The dispatch policies :func:`simulate_balancer` knows by name (or pass your own function).
POLICIES = tuple(POLICY_TABLE)


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
    waits : numpy.ndarray
        Every request's time in queue, in arrival order (after the warm-up).
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
    waits: np.ndarray | None = field(default=None, repr=False)

    def mean_wait_interval(self, batches: int = 20, level: float = 0.95):
        """Interval of the long-run mean wait, by batch means over the requests in order.

        Consecutive waits are strongly correlated (a request that waits long is followed by
        others that do), so an interval over requests as if independent would be far too
        narrow; means of ``batches`` contiguous batches are nearly independent.
        """
        from mlscale_lab.evidence import batch_means_interval

        if self.waits is None:
            raise ValueError("BalancerResult.mean_wait_interval: this result kept no waits")
        return batch_means_interval(self.waits, batches, level)

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
                f"simulate_balancer(service_time=<sampler>): expected service_time(rng, n) to return "
                f"an array of n={n} service times, got shape {base.shape}"
            )
        if not np.all(np.isfinite(base)) or np.any(base < 0):
            raise ValueError("simulate_balancer(service_time=<sampler>): expected finite service "
                             "times >= 0, got negative or non-finite ones")
        mean = float(base.mean())
        if mean <= 0:
            raise ValueError("simulate_balancer(service_time=<sampler>): expected service times "
                             "with a mean > 0, got all zeros")
        return base, np.ones(servers), np.full(servers, mean)
    if isinstance(service_time, numbers.Real) and not isinstance(service_time, bool):
        mean = check_positive("simulate_balancer", "service_time", service_time)
        return rng.exponential(1.0, n), np.full(servers, mean), np.full(servers, mean)
    if isinstance(service_time, (Sequence, np.ndarray)) and not isinstance(service_time, str):
        means = np.asarray(service_time, dtype=float)
        if means.shape != (servers,):
            raise ValueError(
                f"simulate_balancer(service_time={means.tolist()}): expected one mean per replica "
                f"(servers={servers}), got {means.shape[0] if means.ndim == 1 else means.shape} values"
            )
        if not np.all(np.isfinite(means)) or np.any(means <= 0):
            raise ValueError(f"simulate_balancer(service_time={means.tolist()}): expected "
                             f"per-replica means > 0, got {means.tolist()}")
        return rng.exponential(1.0, n), means, means
    raise TypeError(
        f"simulate_balancer(service_time={service_time!r}): expected a mean (float > 0, "
        "exponential times), a sampler service_time(rng, n) -> array, or one mean per replica "
        "(a list of floats); "
        f"got {type(service_time).__name__}"
    )


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
        A name from :data:`POLICIES` (``POLICY_TABLE[name].rule`` says what it does), or
        ``policy(queue_lengths, rng) -> int`` where ``queue_lengths`` is a tuple of the
        requests at each replica (waiting or in service) when a request arrives, and ``rng``
        a seeded ``numpy.random.Generator``.
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
    func = "simulate_balancer"
    if not callable(policy):
        check_choice(func, "policy", policy, tuple(POLICY_TABLE),
                     hint="or pass a function policy(queue_lengths, rng) -> replica index")
    servers = check_int(func, "servers", servers, low=1, hint="a balancer needs a replica")
    lam = check_positive(func, "arrival_rate", arrival_rate)
    n = check_int(func, "n_requests", n_requests, low=1)
    warmup = check_fraction(func, "warmup", warmup, high_open=True)
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / lam, n))
    base, scale, means = _service_model(service_time, servers, rng, n)
    capacity = float(np.sum(1.0 / means))  # requests per unit time, all replicas busy
    rho = lam / capacity
    if rho >= 1:
        raise ValueError(
            f"simulate_balancer(arrival_rate={lam:g}): utilisation {rho:.3g} >= 1, the rate is at or above the replicas' "
            f"capacity {capacity:g} requests per unit time, so queues grow without bound; "
            "lower arrival_rate, add servers, or shorten service_time"
        )

    name = policy if isinstance(policy, str) else "custom"
    if name == "custom":
        assign, done = custom_dispatch(policy, arrivals, base, scale, servers, rng)
    else:
        entry = POLICY_TABLE[name]
        if entry.blind:
            _warn_unequal_share(name, lam / servers * means)
        assign, done = entry.dispatch(arrivals, base, scale, servers, rng)
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
        waits=w,
    )


def _warn_unequal_share(name: str, per_replica: np.ndarray) -> None:
    """A blind policy gives every replica an equal share: warn when that overloads one."""
    if np.any(per_replica >= 1):
        worst = int(np.argmax(per_replica))
        warnings.warn(
            f"{name} sends each replica an equal share, which loads replica {worst} to "
            f"{per_replica[worst]:.2f} >= 1: its queue grows without bound and its "
            "latencies depend on n_requests",
            RuntimeWarning,
            stacklevel=3,
        )


def heterogeneous_means(servers: int, spread: float = 0.5) -> list[float]:
    """Per-replica mean service times spread evenly over ``1 +- spread/2``, normalised so the
    replicas' total capacity equals ``servers`` replicas of mean 1 (old and new hardware mixed).

    Parameters
    ----------
    servers : int
        Number of replicas (>= 1).
    spread : float
        Relative difference between the slowest and the fastest replica, in ``[0, 2)``.

    Returns
    -------
    list of float
        One mean service time per replica, fastest first.

    Examples
    --------
    >>> means = heterogeneous_means(4, 0.5)
    >>> round(sum(1 / m for m in means), 9)
    4.0
    """
    servers = check_int("heterogeneous_means", "servers", servers, low=1)
    spread = check_number("heterogeneous_means", "spread", spread, low=0, high=2, high_open=True,
                          hint="the slowest replica's mean is 1 + spread/2, the fastest 1 - spread/2")
    raw = np.linspace(1 - spread / 2, 1 + spread / 2, servers)
    raw *= np.sum(1 / raw) / servers
    return [float(x) for x in raw]


def utilisation_of(servers: int, arrival_rate: float, service_time) -> float:
    """Offered utilisation ``arrival_rate / capacity`` for a mean or per-replica means.

    Parameters
    ----------
    servers : int
        Number of replicas (>= 1).
    arrival_rate : float
        Requests per unit of time.
    service_time : float or sequence of float
        One mean service time for every replica, or one per replica.

    Returns
    -------
    float
        Below 1 for a stable system.

    Examples
    --------
    >>> utilisation_of(4, 3.2, 1.0)
    0.8
    >>> round(utilisation_of(2, 1.0, [0.5, 1.0]), 4)  # capacity 2 + 1 = 3 per unit time
    0.3333
    """
    servers = check_int("utilisation_of", "servers", servers, low=1)
    check_positive("utilisation_of", "arrival_rate", arrival_rate)
    means = np.broadcast_to(np.asarray(service_time, dtype=float), (servers,))
    return float(arrival_rate / np.sum(1.0 / means))


