"""Queueing theory the simulators are held against: M/M/1 and M/M/c (Erlang C).

A replica serving requests one at a time with exponential service times, fed by Poisson
arrivals, is an M/M/1 queue; ``c`` replicas sharing one queue are M/M/c. Their mean waits have
closed forms, so a simulator that disagrees with them is wrong.
"""

from __future__ import annotations

import math
import numbers


def _check_servers(servers, name: str = "servers") -> int:
    if isinstance(servers, bool) or not isinstance(servers, numbers.Integral):
        raise TypeError(f"{name} must be a whole number of replicas (an int >= 1), got {servers!r}")
    if servers < 1:
        raise ValueError(
            f"{name}={servers!r}: a queue needs at least one server; pass {name} >= 1"
        )
    return int(servers)


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _check_stable(utilisation: float, what: str) -> None:
    if utilisation >= 1:
        raise ValueError(
            f"utilisation {utilisation:.3g} >= 1 ({what}): the queue is unstable and its wait "
            "grows without bound; lower the arrival rate or add servers so utilisation < 1"
        )


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that a request has to wait in an M/M/c queue (Erlang's C formula).

    Parameters
    ----------
    servers : int
        ``c``, the number of identical servers sharing one queue (>= 1).
    offered_load : float
        ``a = arrival_rate * mean_service_time`` in Erlangs; must be below ``servers``
        (utilisation ``a / c`` < 1), otherwise the queue is unstable.

    Returns
    -------
    float
        ``P(wait > 0)``, between 0 and 1.

    Examples
    --------
    >>> round(erlang_c(1, 0.8), 6)  # one server: P(wait) is the utilisation
    0.8
    >>> round(erlang_c(2, 1.0), 4)
    0.3333
    """
    c = _check_servers(servers)
    if isinstance(offered_load, bool) or not isinstance(offered_load, numbers.Real):
        raise TypeError(f"offered_load must be a number of Erlangs >= 0, got {offered_load!r}")
    a = float(offered_load)
    if not math.isfinite(a) or a < 0:
        raise ValueError(f"offered_load must be a finite number >= 0, got {offered_load!r}")
    rho = a / c
    _check_stable(rho, f"offered_load {a:g} Erlangs on {c} servers")
    if a == 0:
        return 0.0
    # Erlang B by its stable recursion, then C from B: no factorials, no overflow at c = 1000.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - rho * (1 - b))


def mm1_mean_wait(arrival_rate: float, service_time: float) -> float:
    """Mean time a request waits before service in an M/M/1 queue: ``rho * s / (1 - rho)``.

    >>> round(mm1_mean_wait(0.8, 1.0), 6)
    4.0
    """
    lam = _check_positive(arrival_rate, "arrival_rate")
    s = _check_positive(service_time, "service_time")
    rho = lam * s
    _check_stable(rho, f"arrival_rate {lam:g}/s x service_time {s:g} s on one server")
    return rho * s / (1 - rho)


def mm1_latency_quantile(arrival_rate: float, service_time: float, q: float) -> float:
    """The ``q`` quantile of M/M/1 response time (wait + service), exponential with rate mu - lambda.

    >>> round(mm1_latency_quantile(0.5, 1.0, 0.5), 4)  # median of Exp(0.5)
    1.3863
    """
    lam = _check_positive(arrival_rate, "arrival_rate")
    s = _check_positive(service_time, "service_time")
    if not 0 < q < 1:
        raise ValueError(f"q must be a probability strictly between 0 and 1, got {q!r}")
    _check_stable(lam * s, f"arrival_rate {lam:g}/s x service_time {s:g} s on one server")
    return -math.log(1 - q) / (1 / s - lam)


def mmc_mean_wait(servers: int, arrival_rate: float, service_time: float) -> float:
    """Mean wait before service in an M/M/c queue: ``C(c, a) * s / (c - a)``.

    >>> round(mmc_mean_wait(1, 0.8, 1.0), 6)  # c = 1 is M/M/1
    4.0
    """
    c = _check_servers(servers)
    lam = _check_positive(arrival_rate, "arrival_rate")
    s = _check_positive(service_time, "service_time")
    a = lam * s
    return erlang_c(c, a) * s / (c - a)


def mmc_wait_exceeds(servers: int, arrival_rate: float, service_time: float, t: float) -> float:
    """``P(wait > t)`` in an M/M/c queue: ``C(c, a) * exp(-(c*mu - lambda) * t)``."""
    c = _check_servers(servers)
    lam = _check_positive(arrival_rate, "arrival_rate")
    s = _check_positive(service_time, "service_time")
    if t < 0:
        raise ValueError(f"t must be >= 0 seconds, got {t!r}")
    return erlang_c(c, lam * s) * math.exp(-(c / s - lam) * t)
