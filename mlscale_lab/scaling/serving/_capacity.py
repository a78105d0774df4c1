"""Capacity and cost: how many machines of which size serve a rate within a p99 target.

The model of a deployment: ``replicas`` identical machines behind a balancer that splits the
requests evenly; each machine runs one worker per vCPU (as many as its memory holds), sharing
one accept queue, so each machine is an M/M/c queue with ``c`` workers. **N+1**: the plan must
meet the target with one machine down (``spare=1``), so a single failure or a rolling deploy
does not break the SLO. Prices come from :mod:`mlscale_lab.prices` (example prices).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlscale_lab.prices import EXAMPLE_MACHINES, HOURS_PER_MONTH, Machine
from mlscale_lab.scaling import mmc_latency_quantile
from mlscale_lab.validation import check_fraction, check_int, check_number

__all__ = ["ServingPlan", "evaluate_plan", "plan_capacity", "workers_that_fit"]

MB = 1024**2


def workers_that_fit(machine: Machine, memory_per_worker_bytes: float,
                     base_memory_bytes: float = 512 * MB) -> int:
    """Worker processes a machine runs: one per vCPU, fewer if its memory cannot hold them.

    ``base_memory_bytes`` is left for the operating system and the server's supervisor.

    >>> from mlscale_lab.prices import machine
    >>> workers_that_fit(machine("large"), 300 * 1024**2)
    2
    >>> workers_that_fit(machine("nano"), 300 * 1024**2)
    0
    """
    check_number("workers_that_fit", "memory_per_worker_bytes", memory_per_worker_bytes, low=0, low_open=True)
    check_number("workers_that_fit", "base_memory_bytes", base_memory_bytes, low=0)
    fit = math.floor((machine.memory_bytes - base_memory_bytes) / memory_per_worker_bytes)
    return max(0, min(machine.vcpus, fit))


@dataclass(frozen=True)
class ServingPlan:
    """``replicas`` machines of one size serving a rate, and what it costs.

    Attributes
    ----------
    machine : Machine
    replicas : int
        Machines paid for (spares included).
    workers : int
        Worker processes per machine.
    p99_s : float
        The latency quantile with ``spare`` machines down (seconds; inf if overloaded).
    utilisation : float
        Busy fraction of each worker with the spares down.
    usd_per_month : float
        Example price of all replicas for a month.
    usd_per_1k : float
        Example dollars per 1,000 predictions at the planned rate.
    meets_target : bool
    """

    machine: Machine
    replicas: int
    workers: int
    p99_s: float
    utilisation: float
    usd_per_month: float
    usd_per_1k: float
    meets_target: bool


def evaluate_plan(machine: Machine, replicas: int, rate: float, service_time: float, *,
                  p99_target_s: float, memory_per_worker_bytes: float,
                  base_memory_bytes: float = 512 * MB, spare: int = 1, q: float = 0.99) -> ServingPlan:
    """How ``replicas`` machines serve ``rate`` requests/s when ``spare`` of them are down."""
    check_fraction("evaluate_plan", "q", q, low_open=True, high_open=True)
    replicas = check_int("evaluate_plan", "replicas", replicas, low=1)
    rate = check_number("evaluate_plan", "rate", rate, low=0, low_open=True)
    s = check_number("evaluate_plan", "service_time", service_time, low=0, low_open=True)
    target = check_number("evaluate_plan", "p99_target_s", p99_target_s, low=0, low_open=True)
    spare = check_int("evaluate_plan", "spare", spare, low=0)
    workers = workers_that_fit(machine, memory_per_worker_bytes, base_memory_bytes)
    serving = replicas - spare
    if workers == 0 or serving < 1:
        p99, util = math.inf, math.inf
    else:
        lam = rate / serving
        util = lam * s / workers
        p99 = mmc_latency_quantile(workers, lam, s, q)
    usd_hour = machine.usd_per_hour * replicas
    return ServingPlan(machine, replicas, workers, p99, util, usd_hour * HOURS_PER_MONTH,
                       usd_hour / 3600.0 / rate * 1000.0, bool(p99 <= target))


def plan_capacity(rate: float, p99_target_s: float, service_time: float, *,
                  memory_per_worker_bytes: float, machines=EXAMPLE_MACHINES,
                  base_memory_bytes: float = 512 * MB, spare: int = 1, q: float = 0.99,
                  max_replicas: int = 1000) -> list[ServingPlan]:
    """For each machine size, the fewest replicas meeting the target; cheapest plan first.

    Sizes whose memory holds no worker, or that cannot meet the target even when idle (the
    service time alone exceeds it), are left out.

    >>> plans = plan_capacity(200.0, 0.05, 0.005, memory_per_worker_bytes=300 * 1024**2)
    >>> best = plans[0]
    >>> best.meets_target, best.replicas >= 2
    (True, True)
    """
    func = "plan_capacity"  # checked here, so an error names what the learner called
    check_int(func, "max_replicas", max_replicas, low=1)
    check_number(func, "rate", rate, low=0, low_open=True)
    check_number(func, "p99_target_s", p99_target_s, low=0, low_open=True)
    check_number(func, "service_time", service_time, low=0, low_open=True)
    check_number(func, "memory_per_worker_bytes", memory_per_worker_bytes, low=0, low_open=True)
    check_number(func, "base_memory_bytes", base_memory_bytes, low=0)
    check_int(func, "spare", spare, low=0)
    check_fraction(func, "q", q, low_open=True, high_open=True)
    plans = []
    for m in machines:
        workers = workers_that_fit(m, memory_per_worker_bytes, base_memory_bytes)
        if workers == 0:
            continue
        # start at the replicas the rate needs at utilisation < 1, then add until the target holds
        n = max(spare + 1, spare + math.ceil(rate * service_time / workers + 1e-12))
        while n <= max_replicas:
            plan = evaluate_plan(m, n, rate, service_time, p99_target_s=p99_target_s,
                                 memory_per_worker_bytes=memory_per_worker_bytes,
                                 base_memory_bytes=base_memory_bytes, spare=spare, q=q)
            if plan.meets_target:
                plans.append(plan)
                break
            if math.isfinite(plan.p99_s) and mmc_latency_quantile(workers, 1e-9, service_time, q) > p99_target_s:
                break  # even an idle machine misses the target
            n += 1
    return sorted(plans, key=lambda p: (p.usd_per_month, p.p99_s))
