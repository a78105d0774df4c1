"""M/M/c response-time quantiles and N+1 capacity plans priced from the example price list."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlscale_lab.prices import EXAMPLE_MACHINES, machine
from mlscale_lab.scaling import mm1_latency_quantile
from mlscale_lab.scaling import serving as sv

MB = 1024**2


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_one_server_is_mm1(q):
    assert sv.mmc_latency_quantile(1, 60.0, 0.01, q) == pytest.approx(mm1_latency_quantile(60.0, 0.01, q), rel=1e-6)


def test_quantile_matches_a_simulated_mmc_queue():
    rng = np.random.default_rng(0)
    c, lam, s, n = 3, 240.0, 0.01, 200_000
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    service = rng.exponential(s, n)
    free = np.zeros(c)
    response = np.empty(n)
    for i in range(n):  # first come, first served, one shared queue
        k = int(np.argmin(free))
        start = max(arrivals[i], free[k])
        free[k] = start + service[i]
        response[i] = free[k] - arrivals[i]
    for q in (0.5, 0.99):
        assert sv.mmc_latency_quantile(c, lam, s, q) == pytest.approx(np.quantile(response, q), rel=0.05)


def test_more_servers_or_less_load_never_slower_and_overload_is_infinite():
    assert sv.mmc_latency_quantile(4, 300.0, 0.01) < sv.mmc_latency_quantile(4, 350.0, 0.01)
    assert sv.mmc_latency_quantile(5, 300.0, 0.01) < sv.mmc_latency_quantile(4, 300.0, 0.01)
    assert math.isinf(sv.mmc_latency_quantile(2, 200.0, 0.01))
    with pytest.raises(ValueError, match=r"mmc_latency_quantile\(q=1\)"):
        sv.mmc_latency_quantile(2, 1.0, 0.01, q=1)


def test_workers_that_fit_respect_vcpus_and_memory():
    assert sv.workers_that_fit(machine("xlarge"), 300 * MB) == 4
    assert sv.workers_that_fit(machine("small"), 800 * MB) == 1
    assert sv.workers_that_fit(machine("medium"), 2000 * MB) == 1  # 4 GiB - 0.5 GiB holds one
    assert sv.workers_that_fit(machine("nano"), 600 * MB) == 0


def test_plans_meet_the_target_with_one_machine_down_and_are_the_cheapest():
    rate, target, s, mem = 900.0, 0.040, 0.004, 350 * MB
    plans = sv.plan_capacity(rate, target, s, memory_per_worker_bytes=mem)
    assert plans and plans == sorted(plans, key=lambda p: (p.usd_per_month, p.p99_s))
    best = plans[0]
    assert best.meets_target and best.replicas >= 2
    assert sv.mmc_latency_quantile(best.workers, rate / (best.replicas - 1), s) <= target
    # brute force over every size and count: nothing cheaper meets the target
    for m in EXAMPLE_MACHINES:
        for n in range(2, 60):
            p = sv.evaluate_plan(m, n, rate, s, p99_target_s=target, memory_per_worker_bytes=mem)
            if p.meets_target:
                assert p.usd_per_month >= best.usd_per_month - 1e-9
                break
    one_fewer = sv.evaluate_plan(best.machine, best.replicas - 1, rate, s, p99_target_s=target,
                                 memory_per_worker_bytes=mem)
    assert not one_fewer.meets_target


def test_plan_costs_are_the_price_list_s():
    p = sv.evaluate_plan(machine("large"), 3, 100.0, 0.005, p99_target_s=0.05, memory_per_worker_bytes=300 * MB)
    assert p.usd_per_month == pytest.approx(3 * machine("large").usd_per_month)
    assert p.usd_per_1k == pytest.approx(3 * machine("large").usd_per_hour / 3600 / 100 * 1000)
    assert p.workers == 2 and p.utilisation == pytest.approx(100 / 2 * 0.005 / 2)


@pytest.mark.parametrize("kw, name", [({"spare": -1}, "spare"), ({"q": 1.5}, "q"),
                                      ({"rate": 0}, "rate"), ({"service_time": -1.0}, "service_time")])
def test_plan_capacity_errors_name_plan_capacity(kw, name):
    from mlscale_lab.scaling.serving import plan_capacity

    args = {"rate": 100.0, "p99_target_s": 0.05, "service_time": 0.005, **kw}
    with pytest.raises(ValueError, match=rf"^plan_capacity\({name}="):
        plan_capacity(args.pop("rate"), args.pop("p99_target_s"), args.pop("service_time"),
                      memory_per_worker_bytes=3e8, **args)
