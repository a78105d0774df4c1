"""Capacity planning, once for every lab: which machines, how many, at what cost, for a latency target.

The model of a deployment: ``replicas`` identical machines from a price list behind a balancer
that splits the requests evenly; each machine runs one worker process per vCPU, as many as its
memory holds, and its workers share one FCFS queue (``c`` servers of a G/G/c queue). A plan
meets its target when the ``quantile`` of response time (wait + service) is at most
``latency_target_s`` with ``spare`` machines down (``spare=1`` is N+1: one failure or a rolling
deploy does not break the target). The service time is given as measured
(:class:`~mlscale_lab.queueing.ServiceTime`: samples, or a mean and its scv; a plain float is
exponential service), and the tail comes from :func:`~mlscale_lab.queueing.ggc_latency_quantile`
(exact M/M/c for exponential service, Allen-Cunneen otherwise). Prices come from
:mod:`mlscale_lab.prices` (:func:`~mlscale_lab.prices.monthly_cost`,
:func:`~mlscale_lab.prices.cost_per_1k`). Everything is in seconds, bytes and requests per second.

- one size: :func:`workers_that_fit`, :func:`sustainable_rate` (the most a machine serves within
  the target), :func:`evaluate_plan` (a :class:`Plan`, with the reasons it fails);
- the cheapest: :func:`plan_capacity` (the fewest replicas of each size, cheapest first),
  :func:`cheapest_plan`;
- over a day: :func:`plan_for_day` prices a fleet sized for the peak against one that follows
  the load, and says how many requests a fleet sized for the mean would fail (a :class:`DayPlan`).

>>> from mlscale_lab.queueing import ServiceTime
>>> best = cheapest_plan(200.0, service=ServiceTime.constant(0.005), latency_target_s=0.02,
...                      worker_memory_bytes=300 * 1024**2, spare=1)
>>> best.meets_target, best.replicas >= 2
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlscale_lab.prices import EXAMPLE_MACHINES, Machine, cost_per_1k, monthly_cost
from mlscale_lab.queueing import ServiceTime, ggc_latency_quantile
from mlscale_lab.validation import check_fraction, check_int, check_number, check_positive

__all__ = ["DayPlan", "Plan", "cheapest_plan", "evaluate_plan", "plan_capacity", "plan_for_day",
           "sustainable_rate", "workers_that_fit"]

_MB = 1024**2


def workers_that_fit(machine: Machine, worker_memory_bytes: float, *, memory_headroom: float = 1.0,
                     reserved_memory_bytes: float = 0.0) -> int:
    """Worker processes ``machine`` runs: one per vCPU, fewer if its memory cannot hold them.

    Each worker needs ``worker_memory_bytes * memory_headroom``; ``reserved_memory_bytes`` is left
    for the operating system and the server's supervisor.

    >>> from mlscale_lab.prices import machine
    >>> workers_that_fit(machine("large"), 300 * 1024**2)
    2
    >>> workers_that_fit(machine("micro"), 300 * 1024**2, reserved_memory_bytes=512 * 1024**2)
    1
    >>> workers_that_fit(machine("nano"), 300 * 1024**2, memory_headroom=2.0)
    0
    """
    func = "workers_that_fit"
    per = check_positive(func, "worker_memory_bytes", worker_memory_bytes)
    headroom = check_number(func, "memory_headroom", memory_headroom, low=1,
                            hint="a factor such as 1.25 (25 % spare per worker)")
    reserved = check_number(func, "reserved_memory_bytes", reserved_memory_bytes, low=0)
    fit = math.floor((machine.memory_bytes - reserved) / (per * headroom))
    return max(0, min(int(machine.vcpus), fit))


def sustainable_rate(workers: int, service, latency_target_s: float, quantile: float = 0.99, *,
                     arrival_scv: float = 1.0) -> float:
    """The most requests/s ``workers`` sharing one queue serve with the ``quantile`` within target.

    0 when even an idle machine misses the target (the service time alone is too long). It is
    always below the saturation rate ``workers / mean service``: the capacity a latency target
    lets you sell.

    >>> s = ServiceTime.constant(0.01)
    >>> r = sustainable_rate(2, s, 0.05)
    >>> 100 < r < 200  # saturation is 200/s
    True
    >>> sustainable_rate(2, s, 0.005)
    0.0
    """
    func = "sustainable_rate"
    c = check_int(func, "workers", workers, low=1)
    s = ServiceTime.of(service, func=func)
    target = check_positive(func, "latency_target_s", latency_target_s)
    q = check_fraction(func, "quantile", quantile, low_open=True, high_open=True)
    if ggc_latency_quantile(c, 0.0, s, q, arrival_scv=arrival_scv) > target:
        return 0.0
    lo, hi = 0.0, c / s.mean
    while hi - lo > 1e-6 * hi:  # far finer than any measured rate
        mid = (lo + hi) / 2
        ok = ggc_latency_quantile(c, mid, s, q, arrival_scv=arrival_scv) <= target
        lo, hi = (mid, hi) if ok else (lo, mid)
    return lo


@dataclass(frozen=True)
class Plan:
    """``replicas`` machines of one size serving ``rate``, how fast and at what cost.

    Attributes
    ----------
    machine : Machine
    replicas : int
        Machines paid for, spares included.
    spare : int
        Machines assumed down when the latency is computed.
    workers : int
        Worker processes per machine.
    rate : float
        Requests per second for the whole fleet.
    utilisation : float
        Busy fraction of each worker with the spares down (inf with no worker).
    latency_s : float
        The ``quantile`` of response time with the spares down (inf when overloaded).
    service_s : float
        The same quantile of the service time alone: ``latency_s - service_s`` is what queueing adds.
    quantile, latency_target_s : float
    meets_target : bool
    reasons : tuple of str
        Why it does not (memory, load or latency), in words; empty when it meets the target.
    usd_per_hour, usd_per_month, usd_per_1k : float
        Example prices of the whole fleet (:mod:`mlscale_lab.prices`); per 1,000 predictions at ``rate``.
    """

    machine: Machine
    replicas: int
    spare: int
    workers: int
    rate: float
    utilisation: float
    latency_s: float
    service_s: float
    quantile: float
    latency_target_s: float
    meets_target: bool
    reasons: tuple[str, ...]
    usd_per_hour: float
    usd_per_month: float
    usd_per_1k: float

    def __str__(self) -> str:
        state = "meets" if self.meets_target else "misses"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return (f"{self.replicas} x {self.machine.name} ({workers} each, spare "
                f"{self.spare}): p{self.quantile * 100:g} {self.latency_s * 1000:.1f} ms, {state} "
                f"{self.latency_target_s * 1000:.1f} ms; ${self.usd_per_month:,.0f}/month (example prices)")


def _check_common(func, rate, latency_target_s, quantile, spare):
    return (check_number(func, "rate", rate, low=0, low_open=True),
            check_positive(func, "latency_target_s", latency_target_s),
            check_fraction(func, "quantile", quantile, low_open=True, high_open=True),
            check_int(func, "spare", spare, low=0))


def evaluate_plan(machine: Machine, replicas: int, *, rate: float, service, latency_target_s: float,
                  worker_memory_bytes: float, quantile: float = 0.99, spare: int = 0,
                  memory_headroom: float = 1.0, reserved_memory_bytes: float = 0.0,
                  arrival_scv: float = 1.0) -> Plan:
    """How ``replicas`` machines serve ``rate`` requests/s when ``spare`` of them are down.

    Parameters
    ----------
    machine : Machine
    replicas : int
    rate : float
        Requests per second for the whole fleet.
    service : ServiceTime, float or array-like
        The measured service distribution (a float is an exponential mean, seconds).
    latency_target_s : float
        The response time the ``quantile`` of requests must meet, queueing included.
    worker_memory_bytes : float
        Memory one worker process holds (measured: its unique set, or a fresh process's peak).
    quantile : float, default 0.99
    spare : int, default 0
        Machines down (1 for N+1).
    memory_headroom, reserved_memory_bytes : float
        As in :func:`workers_that_fit`.
    arrival_scv : float, default 1
        Of the gaps between arrivals (1 for Poisson).

    Returns
    -------
    Plan

    Examples
    --------
    >>> from mlscale_lab.prices import machine
    >>> p = evaluate_plan(machine("medium"), 1, rate=150.0, service=0.01, latency_target_s=0.03,
    ...                   worker_memory_bytes=300 * 1024**2, quantile=0.95)
    >>> p.reasons
    ('latency: p95 64.8 ms (30.0 service + 34.8 queueing) over the target of 30.0 ms',)
    """
    func = "evaluate_plan"
    rate, target, q, spare = _check_common(func, rate, latency_target_s, quantile, spare)
    replicas = check_int(func, "replicas", replicas, low=1)
    s = ServiceTime.of(service, func=func)
    workers = workers_that_fit(machine, worker_memory_bytes, memory_headroom=memory_headroom,
                               reserved_memory_bytes=reserved_memory_bytes)
    serving = replicas - spare
    service_q = s.quantile(q)
    name = f"p{q * 100:g}"
    if workers == 0:
        need = worker_memory_bytes * memory_headroom / _MB
        reasons = (f"memory: one worker needs {need:,.0f} MB, the machine has "
                   f"{(machine.memory_bytes - reserved_memory_bytes) / _MB:,.0f} MB for workers",)
        util = latency = math.inf
    elif serving < 1:
        reasons = (f"load: {replicas} machine(s) with {spare} down leave none serving",)
        util = latency = math.inf
    else:
        lam = rate / serving
        util = lam * s.mean / workers
        latency = ggc_latency_quantile(workers, lam, s, q, arrival_scv=arrival_scv)
        if util >= 1:
            why = f"only {workers} worker(s) fit in memory; " if workers < machine.vcpus else ""
            reasons = (f"load: {why}{serving} machine(s) of {workers} worker(s) serve "
                       f"{serving * workers / s.mean:,.0f} requests/s at most, the load is {rate:,.0f}",)
        elif latency > target:
            reasons = (f"latency: {name} {latency * 1000:.1f} ms ({service_q * 1000:.1f} service + "
                       f"{(latency - service_q) * 1000:.1f} queueing) over the target of "
                       f"{target * 1000:.1f} ms",)
        else:
            reasons = ()
    usd_hour = machine.usd_per_hour * replicas
    return Plan(machine, replicas, spare, workers, rate, util, latency, service_q, q, target,
                not reasons, reasons, usd_hour, monthly_cost(machine.usd_per_hour, replicas),
                cost_per_1k(usd_hour, rate))


def plan_capacity(rate: float, *, service, latency_target_s: float, worker_memory_bytes: float,
                  machines=EXAMPLE_MACHINES, quantile: float = 0.99, spare: int = 0,
                  memory_headroom: float = 1.0, reserved_memory_bytes: float = 0.0,
                  arrival_scv: float = 1.0, max_replicas: int = 10_000) -> list[Plan]:
    """For each machine size, the fewest replicas meeting the target; the cheapest plan first.

    Sizes whose memory holds no worker, or that miss the target even idle, are left out.
    Parameters as in :func:`evaluate_plan`; ``machines`` is the price list to choose from.

    >>> plans = plan_capacity(200.0, service=0.005, latency_target_s=0.05,
    ...                       worker_memory_bytes=300 * 1024**2, spare=1)
    >>> plans[0].meets_target and plans == sorted(plans, key=lambda p: (p.usd_per_month, p.latency_s))
    True
    """
    func = "plan_capacity"  # checked here, so an error names what the learner called
    rate, target, q, spare = _check_common(func, rate, latency_target_s, quantile, spare)
    check_positive(func, "worker_memory_bytes", worker_memory_bytes)
    check_int(func, "max_replicas", max_replicas, low=1)
    s = ServiceTime.of(service, func=func)
    options = dict(rate=rate, service=s, latency_target_s=target, worker_memory_bytes=worker_memory_bytes,
                   quantile=q, spare=spare, memory_headroom=memory_headroom,
                   reserved_memory_bytes=reserved_memory_bytes, arrival_scv=arrival_scv)
    plans = []
    for m in machines:
        workers = workers_that_fit(m, worker_memory_bytes, memory_headroom=memory_headroom,
                                   reserved_memory_bytes=reserved_memory_bytes)
        per_machine = sustainable_rate(workers, s, target, q, arrival_scv=arrival_scv) if workers else 0.0
        if per_machine <= 0:
            continue
        n = spare + max(1, math.ceil(rate / per_machine - 1e-9))
        plan = evaluate_plan(m, n, **options)
        while not plan.meets_target and n < max_replicas:  # the bisection's last digit
            n += 1
            plan = evaluate_plan(m, n, **options)
        while n > spare + 1 and (fewer := evaluate_plan(m, n - 1, **options)).meets_target:
            n, plan = n - 1, fewer
        if plan.meets_target:
            plans.append(plan)
    return sorted(plans, key=lambda p: (p.usd_per_month, p.latency_s))


def cheapest_plan(rate: float, **kwargs) -> Plan | None:
    """The cheapest plan of :func:`plan_capacity`, or None when no size meets the target."""
    plans = plan_capacity(rate, **kwargs)
    return plans[0] if plans else None


@dataclass(frozen=True)
class DayPlan:
    """One machine size over a day's load: sized for the peak, following the load, sized for the mean.

    Attributes
    ----------
    machine : Machine
    peak_rate, mean_rate : float
        Requests per second at the day's busiest step and on average.
    peak_plan : Plan
        The fleet that meets the target at the peak, running all day.
    scaled_replicas : list of int
        Replicas each step needs (an ideal auto-scaler: no start-up delay; a lower bound).
    usd_per_day_peak, usd_per_day_scaled : float
        Example prices of the day, sized for the peak and following the load.
    usd_per_1k_peak, usd_per_1k_scaled : float
        Per 1,000 requests of the day.
    mean_replicas : int
        The fleet sized for the mean rate.
    missed_share_at_mean : float
        Share of the day's requests that arrive while that fleet misses the target.
    """

    machine: Machine
    peak_rate: float
    mean_rate: float
    peak_plan: Plan
    scaled_replicas: list[int]
    usd_per_day_peak: float
    usd_per_day_scaled: float
    usd_per_1k_peak: float
    usd_per_1k_scaled: float
    mean_replicas: int
    missed_share_at_mean: float


def plan_for_day(rates, step_s: float, machine: Machine, **kwargs) -> DayPlan:
    """Price ``machine`` over a day whose load is ``rates`` (requests/s, one per ``step_s`` seconds).

    ``kwargs`` are :func:`evaluate_plan`'s (``service``, ``latency_target_s``,
    ``worker_memory_bytes``, ``quantile``, ``spare``, ...). The request-rate traces of lab 05
    (:func:`mlscale_lab.scaling.make_request_trace`) give ``rates=trace.rate, step_s=trace.step``.

    Examples
    --------
    >>> from mlscale_lab.prices import machine
    >>> day = plan_for_day([100.0, 1000.0, 500.0, 100.0], 3600.0, machine("large"), service=0.005,
    ...                    latency_target_s=0.05, worker_memory_bytes=300 * 1024**2, spare=1)
    >>> day.usd_per_day_scaled < day.usd_per_day_peak and day.missed_share_at_mean > 0
    True
    """
    import numpy as np

    func = "plan_for_day"
    r = np.asarray(rates, dtype=float).ravel()
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r < 0) or r.max() <= 0:
        raise ValueError(f"{func}(rates=...): expected request rates >= 0 per step, not all zero")
    step = check_positive(func, "step_s", step_s)
    for key in ("service", "latency_target_s", "worker_memory_bytes"):
        if key not in kwargs:
            raise TypeError(f"{func}(): missing the keyword argument {key}=")
    s = ServiceTime.of(kwargs.pop("service"), func=func)
    spare = check_int(func, "spare", kwargs.get("spare", 0), low=0)
    q = kwargs.get("quantile", 0.99)
    workers = workers_that_fit(machine, kwargs["worker_memory_bytes"],
                               memory_headroom=kwargs.get("memory_headroom", 1.0),
                               reserved_memory_bytes=kwargs.get("reserved_memory_bytes", 0.0))
    per_machine = (sustainable_rate(workers, s, kwargs["latency_target_s"], q,
                                    arrival_scv=kwargs.get("arrival_scv", 1.0)) if workers else 0.0)
    if per_machine <= 0:
        raise ValueError(f"{func}(machine={machine.name!r}): this size cannot meet the target even "
                         "idle (memory holds no worker, or the service time alone is too long)")
    peak, mean = float(r.max()), float(r.mean())

    def needed(rate):
        return spare + max(1, math.ceil(rate / per_machine - 1e-9)) if rate > 0 else spare + 1

    peak_plan = evaluate_plan(machine, needed(peak), rate=peak, service=s, **kwargs)
    scaled = [needed(x) for x in r]
    hours = r.size * step / 3600.0
    usd_peak = peak_plan.replicas * machine.usd_per_hour * hours
    usd_scaled = float(sum(scaled)) * machine.usd_per_hour * step / 3600.0
    total = float(r.sum() * step)
    mean_n = needed(mean)
    over = r > per_machine * (mean_n - spare)
    return DayPlan(machine, peak, mean, peak_plan, scaled, usd_peak, usd_scaled,
                   usd_peak / total * 1000, usd_scaled / total * 1000, mean_n,
                   float(r[over].sum() * step / total))
