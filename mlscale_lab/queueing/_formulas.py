"""Closed forms: M/M/1 and M/M/c (Erlang C), and what holds when service is not exponential.

A replica serving requests one at a time with exponential service times, fed by Poisson
arrivals, is an M/M/1 queue; ``c`` replicas sharing one queue are M/M/c. Their mean waits have
closed forms, so a simulator that disagrees with them is wrong. Response-time quantiles (wait
plus service) of M/M/c are what a latency target is checked against.

A model server's service time is rarely exponential: a forest or an MLP takes nearly the same
time for every request (squared coefficient of variation ``scv`` near 0, M/D/c). The
Allen-Cunneen approximation scales the M/M/c wait by ``(arrival_scv + service_scv) / 2``:
exact for M/M/c, within a few per cent for M/D/c at moderate load, and the standard first
estimate for G/G/c (Allen 1990, *Probability, Statistics and Queueing Theory*; Whitt 1993).
All times are in seconds (any one unit works, as long as it is the same everywhere).
"""

from __future__ import annotations

import math

from mlscale_lab.validation import check_fraction, check_int, check_number, check_positive

__all__ = ["erlang_c", "ggc_mean_wait", "mm1_latency_quantile", "mm1_mean_wait",
           "mmc_latency_exceeds", "mmc_latency_exceeds_each", "mmc_latency_quantile", "mmc_mean_wait",
           "mmc_wait_exceeds", "relaxation_time"]

_NEED_SERVER = "a queue needs at least one server"


def _check_stable(func: str, utilisation: float, what: str) -> None:
    if utilisation >= 1:
        raise ValueError(
            f"{func}: utilisation {utilisation:.3g} >= 1 ({what}): the queue is unstable and its "
            "wait grows without bound; lower the arrival rate or add servers so utilisation < 1"
        )


def _rates(func: str, arrival_rate, service_time) -> tuple[float, float]:
    return (check_positive(func, "arrival_rate", arrival_rate),
            check_positive(func, "service_time", service_time))


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

    Raises
    ------
    ValueError
        ``servers < 1``, a negative load, or utilisation ``a / c >= 1``.

    Examples
    --------
    >>> round(erlang_c(1, 0.8), 6)  # one server: P(wait) is the utilisation
    0.8
    >>> round(erlang_c(2, 1.0), 4)
    0.3333
    """
    c = check_int("erlang_c", "servers", servers, low=1, hint=_NEED_SERVER)
    a = check_number("erlang_c", "offered_load", offered_load, low=0,
                     hint="the offered load is arrival_rate * service_time, in Erlangs")
    rho = a / c
    _check_stable("erlang_c", rho, f"offered_load {a:g} Erlangs on {c} servers")
    if a == 0:
        return 0.0
    # Erlang B by its stable recursion, then C from B: no factorials, no overflow at c = 1000.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1 - rho * (1 - b))


def mm1_mean_wait(arrival_rate: float, service_time: float) -> float:
    """Mean time a request waits before service in an M/M/1 queue: ``rho * s / (1 - rho)``.

    Parameters
    ----------
    arrival_rate : float
        Requests per unit of time (> 0).
    service_time : float
        Mean service time, in the same unit (> 0).

    Returns
    -------
    float
        Mean wait in the unit of ``service_time``.

    Examples
    --------
    >>> round(mm1_mean_wait(0.8, 1.0), 6)
    4.0
    """
    lam, s = _rates("mm1_mean_wait", arrival_rate, service_time)
    rho = lam * s
    _check_stable("mm1_mean_wait", rho, f"arrival_rate {lam:g} x service_time {s:g} on one server")
    return rho * s / (1 - rho)


def mm1_latency_quantile(arrival_rate: float, service_time: float, q: float) -> float:
    """The ``q`` quantile of M/M/1 response time (wait + service): exponential with rate mu - lambda.

    Parameters
    ----------
    arrival_rate, service_time : float
        As in :func:`mm1_mean_wait`.
    q : float
        The quantile, strictly between 0 and 1 (0.99 for p99).

    Returns
    -------
    float

    Examples
    --------
    >>> round(mm1_latency_quantile(0.5, 1.0, 0.5), 4)  # median of Exp(0.5)
    1.3863
    """
    lam, s = _rates("mm1_latency_quantile", arrival_rate, service_time)
    q = check_fraction("mm1_latency_quantile", "q", q, low_open=True, high_open=True)
    _check_stable("mm1_latency_quantile", lam * s,
                  f"arrival_rate {lam:g} x service_time {s:g} on one server")
    return -math.log(1 - q) / (1 / s - lam)


def mmc_mean_wait(servers: int, arrival_rate: float, service_time: float) -> float:
    """Mean wait before service in an M/M/c queue: ``C(c, a) * s / (c - a)``.

    Parameters
    ----------
    servers : int
        ``c`` servers sharing one queue (>= 1).
    arrival_rate, service_time : float
        As in :func:`mm1_mean_wait`.

    Returns
    -------
    float

    Examples
    --------
    >>> round(mmc_mean_wait(1, 0.8, 1.0), 6)  # c = 1 is M/M/1
    4.0
    >>> round(mmc_mean_wait(8, 6.4, 1.0), 3)  # 8 servers at 80%: a fraction of M/M/1's 4.0
    0.286
    """
    c = check_int("mmc_mean_wait", "servers", servers, low=1, hint=_NEED_SERVER)
    lam, s = _rates("mmc_mean_wait", arrival_rate, service_time)
    a = lam * s
    _check_stable("mmc_mean_wait", a / c, f"offered load {a:g} Erlangs on {c} servers")
    return erlang_c(c, a) * s / (c - a)


def mmc_wait_exceeds(servers: int, arrival_rate: float, service_time: float, t: float) -> float:
    """``P(wait > t)`` in an M/M/c queue: ``C(c, a) * exp(-(c*mu - lambda) * t)``.

    Parameters
    ----------
    servers : int
    arrival_rate, service_time : float
        As in :func:`mmc_mean_wait`.
    t : float
        A wait (>= 0), in the unit of ``service_time``.

    Returns
    -------
    float

    Examples
    --------
    >>> round(mmc_wait_exceeds(2, 1.0, 1.0, 0.0), 4)  # t = 0 is Erlang C itself
    0.3333
    >>> round(mmc_wait_exceeds(2, 1.0, 1.0, 1.0), 4)
    0.1226
    """
    c = check_int("mmc_wait_exceeds", "servers", servers, low=1, hint=_NEED_SERVER)
    lam, s = _rates("mmc_wait_exceeds", arrival_rate, service_time)
    t = check_number("mmc_wait_exceeds", "t", t, low=0)
    a = lam * s
    _check_stable("mmc_wait_exceeds", a / c, f"offered load {a:g} Erlangs on {c} servers")
    return erlang_c(c, a) * math.exp(-(c / s - lam) * t)


def mmc_latency_exceeds(servers: int, arrival_rate: float, service_time: float, t: float) -> float:
    """``P(wait + service > t)`` in an M/M/c queue (exponential service of mean ``service_time``).

    >>> round(mmc_latency_exceeds(1, 0.5, 1.0, 1.3863), 3)  # M/M/1: Exp(mu - lambda) = Exp(0.5)
    0.5
    """
    c = check_int("mmc_latency_exceeds", "servers", servers, low=1)
    lam = check_number("mmc_latency_exceeds", "arrival_rate", arrival_rate, low=0)
    s = check_number("mmc_latency_exceeds", "service_time", service_time, low=0, low_open=True)
    t = check_number("mmc_latency_exceeds", "t", t, low=0)
    mu = 1.0 / s
    if lam >= c * mu:
        return 1.0
    p_wait = erlang_c(c, lam * s) if lam > 0 else 0.0
    alpha = c * mu - lam  # given that it waits, the wait is Exp(alpha)
    if abs(alpha - mu) < 1e-9 * mu:
        both = (1 + mu * t) * math.exp(-mu * t)
    else:  # Exp(alpha) + Exp(mu) exceeding t
        both = (alpha * math.exp(-mu * t) - mu * math.exp(-alpha * t)) / (alpha - mu)
    return min(1.0, max(0.0, (1 - p_wait) * math.exp(-mu * t) + p_wait * both))


def mmc_latency_exceeds_each(servers, arrival_rates, service_time: float, t: float):
    """:func:`mmc_latency_exceeds` elementwise: one M/M/c queue per entry, all at once (numpy).

    For a simulator that holds a queue to the formula at every step of a trace: ``servers`` and
    ``arrival_rates`` are arrays of the same shape, every entry stable (``servers >= 1`` and
    ``arrival_rates < servers / service_time``); nothing is checked, the caller has. Erlang B's
    recursion runs once up to the largest ``servers`` for every entry together.

    >>> import numpy as np
    >>> each = mmc_latency_exceeds_each(np.array([1.0, 3.0]), np.array([0.5, 2.0]), 1.0, 2.0)
    >>> [round(float(p), 9) for p in each] == [round(mmc_latency_exceeds(1, 0.5, 1.0, 2.0), 9),
    ...                                        round(mmc_latency_exceeds(3, 2.0, 1.0, 2.0), 9)]
    True
    """
    import numpy as np

    c, lam, mu = servers, arrival_rates, 1.0 / service_time
    a = lam / mu
    c_max = int(c.max())
    b = np.ones_like(a)
    erlang_b = np.ones_like(a)
    for k in range(1, c_max + 1):  # Erlang B recursion for every entry at once
        b = a * b / (k + a * b)
        erlang_b = np.where(c == k, b, erlang_b)
    rho = a / c
    p_wait = erlang_b / (1 - rho * (1 - erlang_b))
    alpha = c * mu - lam  # rate of the exponential wait, given a wait
    p_service = np.exp(-mu * t)
    close = np.abs(alpha - mu) < 1e-9 * mu
    safe = np.where(close, alpha + 1e-6 * mu, alpha)
    # Exp(alpha) wait + Exp(mu) service exceeding t (hypoexponential tail).
    p_both = (safe * np.exp(-mu * t) - mu * np.exp(-safe * t)) / (safe - mu)
    p_both = np.where(close, (1 + mu * t) * np.exp(-mu * t), p_both)
    return np.clip((1 - p_wait) * p_service + p_wait * p_both, 0.0, 1.0)


def mmc_latency_quantile(servers: int, arrival_rate: float, service_time: float, q: float = 0.99) -> float:
    """The ``q`` quantile of response time (wait + service) in an M/M/c queue, in seconds.

    Returns ``inf`` when the queue is unstable (``arrival_rate * service_time >= servers``).

    >>> round(mmc_latency_quantile(1, 0.5, 1.0, 0.5), 3)  # median of Exp(0.5)
    1.386
    >>> mmc_latency_quantile(2, 0.2, 0.01) < mmc_latency_quantile(1, 0.2, 0.01)
    True
    """
    c = check_int("mmc_latency_quantile", "servers", servers, low=1)
    lam = check_number("mmc_latency_quantile", "arrival_rate", arrival_rate, low=0)
    s = check_number("mmc_latency_quantile", "service_time", service_time, low=0, low_open=True)
    q = check_fraction("mmc_latency_quantile", "q", q, low_open=True, high_open=True)
    if lam * s >= c:
        return math.inf
    lo, hi = 0.0, s
    while mmc_latency_exceeds(c, lam, s, hi) > 1 - q:
        hi *= 2
    while hi - lo > 1e-7 * hi:  # a relative precision far below any timing's
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mmc_latency_exceeds(c, lam, s, mid) > 1 - q else (lo, mid)
    return hi


def ggc_mean_wait(servers: int, arrival_rate: float, service_time: float, *,
                  service_scv: float, arrival_scv: float = 1.0) -> float:
    """Mean wait in a G/G/c queue by the Allen-Cunneen approximation.

    ``Wq ~ Wq(M/M/c) * (arrival_scv + service_scv) / 2``, with ``scv`` the squared coefficient
    of variation (variance over mean squared): 1 for exponential times (then it is exact), 0 for
    constant ones (M/D/c: half the M/M/c wait).

    Parameters
    ----------
    servers : int
    arrival_rate, service_time : float
        As in :func:`mmc_mean_wait`.
    service_scv : float
        Measured ``var(service) / mean(service)**2`` (>= 0).
    arrival_scv : float, default 1
        Of the gaps between arrivals; 1 for Poisson arrivals.

    Returns
    -------
    float

    Examples
    --------
    >>> round(ggc_mean_wait(2, 1.6, 1.0, service_scv=1.0), 4) == round(mmc_mean_wait(2, 1.6, 1.0), 4)
    True
    >>> round(ggc_mean_wait(2, 1.6, 1.0, service_scv=0.0) / mmc_mean_wait(2, 1.6, 1.0), 2)
    0.5
    """
    scv_s = check_number("ggc_mean_wait", "service_scv", service_scv, low=0,
                         hint="the squared coefficient of variation: var / mean**2")
    scv_a = check_number("ggc_mean_wait", "arrival_scv", arrival_scv, low=0)
    return mmc_mean_wait(servers, arrival_rate, service_time) * (scv_a + scv_s) / 2


def relaxation_time(servers: int, arrival_rate: float, service_time: float) -> float:
    """How long an M/M/c queue takes to forget its start: ``1 / (c * mu * (1 - sqrt(rho))**2)``.

    A load test that starts from an empty queue measures a transient for several of these; a
    steady-state figure needs a run many relaxation times long, with the first ones discarded
    (Morse 1955; for M/M/1 it is ``s / (1 - sqrt(rho))**2``). At 95 % load on one server with
    ``s`` = 5 ms it is about 7.8 s; at 50 % it is 0.06 s.

    Returns
    -------
    float
        In the unit of ``service_time``.

    Examples
    --------
    >>> round(relaxation_time(1, 0.95, 1.0))
    1560
    >>> round(relaxation_time(2, 1.0, 1.0), 2)
    5.83
    """
    c = check_int("relaxation_time", "servers", servers, low=1, hint=_NEED_SERVER)
    lam, s = _rates("relaxation_time", arrival_rate, service_time)
    rho = lam * s / c
    _check_stable("relaxation_time", rho, f"offered load {lam * s:g} Erlangs on {c} servers")
    return s / (c * (1 - math.sqrt(rho)) ** 2)
