"""The one capacity planner: memory per worker, the latency tail on the measured service
distribution, N+1, the cheapest plan by brute force, prices from mlscale_lab.prices, and a day's
load shape."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlscale_lab.capacity import (
    cheapest_plan,
    evaluate_plan,
    plan_capacity,
    plan_for_day,
    sustainable_rate,
    workers_that_fit,
)
from mlscale_lab.prices import EXAMPLE_MACHINES, Machine, cost_per_1k, machine, monthly_cost
from mlscale_lab.queueing import (
    ServiceTime,
    ggc_latency_quantile,
    mmc_latency_quantile,
    simulate_mgc,
)

MB = 1024**2


def test_workers_are_one_per_vcpu_unless_memory_holds_fewer():
    box = Machine("box", 4, 1024 * MB, 0.1)
    assert workers_that_fit(box, 200 * MB) == 4
    assert workers_that_fit(box, 300 * MB, memory_headroom=1.25) == 2  # 375 MB a worker
    assert workers_that_fit(box, 300 * MB, reserved_memory_bytes=512 * MB) == 1
    assert workers_that_fit(box, 2000 * MB) == 0
    with pytest.raises(ValueError, match=r"workers_that_fit\(memory_headroom=0.5\)"):
        workers_that_fit(box, 100 * MB, memory_headroom=0.5)


def test_sustainable_rate_is_where_the_tail_meets_the_target_and_below_saturation():
    s = ServiceTime.measured(np.random.default_rng(0).normal(0.004, 0.0004, 2000))
    for c in (1, 2, 4):
        r = sustainable_rate(c, s, 0.02)
        assert 0 < r < c / s.mean
        assert ggc_latency_quantile(c, r, s, 0.99) == pytest.approx(0.02, rel=1e-4)
        assert ggc_latency_quantile(c, r * 1.01, s, 0.99) > 0.02
    assert sustainable_rate(2, s, 0.003) == 0.0  # the service time alone misses it


def test_a_plan_with_exponential_service_is_mmc_and_its_prices_are_the_price_list_s():
    m = machine("large")
    p = evaluate_plan(m, 3, rate=100.0, service=0.005, latency_target_s=0.05,
                      worker_memory_bytes=300 * MB, spare=1)
    assert p.workers == 2 and p.utilisation == pytest.approx(100 / 2 * 0.005 / 2)
    assert p.latency_s == pytest.approx(mmc_latency_quantile(2, 50.0, 0.005, 0.99), rel=5e-3)
    assert p.usd_per_month == pytest.approx(monthly_cost(m.usd_per_hour, 3))
    assert p.usd_per_1k == pytest.approx(cost_per_1k(3 * m.usd_per_hour, 100.0))
    assert p.meets_target and p.reasons == ()


def test_a_plan_says_why_it_fails_memory_load_or_latency():
    s = ServiceTime.constant(0.01)
    common = dict(service=s, worker_memory_bytes=300 * MB)
    mem = evaluate_plan(machine("nano"), 2, rate=10.0, latency_target_s=1.0, memory_headroom=2.0, **common)
    assert not mem.meets_target and mem.reasons[0].startswith("memory") and mem.workers == 0
    load = evaluate_plan(machine("medium"), 2, rate=250.0, latency_target_s=1.0, spare=1, **common)
    assert load.reasons[0].startswith("load") and math.isinf(load.latency_s)
    assert load.utilisation >= 1
    slow = evaluate_plan(machine("medium"), 1, rate=150.0, latency_target_s=0.02, **common)
    assert slow.reasons[0].startswith("latency: p99") and slow.latency_s > 0.02
    down = evaluate_plan(machine("medium"), 1, rate=1.0, latency_target_s=1.0, spare=1, **common)
    assert down.reasons[0].startswith("load") and math.isinf(down.latency_s)


def test_the_cheapest_plan_is_cheapest_by_brute_force_and_one_fewer_machine_misses():
    rate, target, mem = 900.0, 0.025, 350 * MB
    s = ServiceTime.measured(np.random.default_rng(1).gamma(20, 0.004 / 20, 3000))
    opts = dict(service=s, latency_target_s=target, worker_memory_bytes=mem, spare=1,
                reserved_memory_bytes=512 * MB)
    plans = plan_capacity(rate, **opts)
    assert plans == sorted(plans, key=lambda p: (p.usd_per_month, p.latency_s))
    best = plans[0]
    assert best.meets_target and best.replicas >= 2 and best == cheapest_plan(rate, **opts)
    for m in EXAMPLE_MACHINES:
        for n in range(2, 80):
            p = evaluate_plan(m, n, rate=rate, **opts)
            if p.meets_target:
                assert p.usd_per_month >= best.usd_per_month - 1e-9
                assert any(q.machine == m and q.replicas == n for q in plans)
                break
    fewer = evaluate_plan(best.machine, best.replicas - 1, rate=rate, **opts)
    assert not fewer.meets_target


def test_constant_service_needs_no_more_machines_than_exponential_and_the_plan_holds_in_simulation():
    rate, target = 1500.0, 0.025
    opts = dict(latency_target_s=target, worker_memory_bytes=300 * MB, spare=1)
    const = cheapest_plan(rate, service=ServiceTime.constant(0.004), **opts)
    expo = cheapest_plan(rate, service=0.004, **opts)
    assert const.usd_per_month < expo.usd_per_month  # M/D/c queues about half as long
    lam = rate / (const.replicas - const.spare)
    sim = np.quantile(simulate_mgc(const.workers, lam, [0.004, 0.004], n=200_000), 0.99)
    assert sim <= target * 1.05, "the plan on M/D/c's tail must hold in an M/D/c simulation"


def test_no_plan_when_the_service_alone_is_too_slow():
    assert plan_capacity(10.0, service=0.05, latency_target_s=0.01, worker_memory_bytes=MB) == []
    assert cheapest_plan(10.0, service=0.05, latency_target_s=0.01, worker_memory_bytes=MB) is None


def test_a_day_sized_for_its_peak_costs_more_than_following_it_and_the_mean_fails_the_peak():
    hours = np.arange(24)
    rates = 200 + 800 * np.exp(-((hours - 14) / 3.0) ** 2)  # night 200/s, peak 1,000/s
    day = plan_for_day(rates, 3600.0, machine("large"), service=ServiceTime.constant(0.004),
                       latency_target_s=0.02, worker_memory_bytes=300 * MB, spare=1)
    assert day.peak_rate == pytest.approx(rates.max()) and day.mean_rate == pytest.approx(rates.mean())
    assert day.peak_plan.meets_target and day.peak_plan.replicas == max(day.scaled_replicas)
    assert day.usd_per_day_scaled < day.usd_per_day_peak
    assert day.usd_per_day_peak == pytest.approx(day.peak_plan.replicas * machine("large").usd_per_hour * 24)
    assert day.usd_per_1k_peak == pytest.approx(day.usd_per_day_peak / (rates.sum() * 3600) * 1000)
    assert 0 < day.missed_share_at_mean < 0.6 and day.mean_replicas < day.peak_plan.replicas
    flat = plan_for_day(np.full(24, 500.0), 3600.0, machine("large"), service=0.004,
                        latency_target_s=0.02, worker_memory_bytes=300 * MB, spare=1)
    assert flat.usd_per_day_scaled == pytest.approx(flat.usd_per_day_peak)
    assert flat.missed_share_at_mean == 0.0


@pytest.mark.parametrize("kw, match", [
    ({"spare": -1}, r"^plan_capacity\(spare=-1\)"),
    ({"quantile": 1.5}, r"^plan_capacity\(quantile=1.5\)"),
    ({"latency_target_s": 0}, r"^plan_capacity\(latency_target_s=0\)"),
    ({"service": [0.01]}, r"^plan_capacity\(service=\[0.01\]\)"),
])
def test_errors_name_the_function_the_learner_called(kw, match):
    args = {"service": 0.005, "latency_target_s": 0.05, "worker_memory_bytes": 3e8, **kw}
    with pytest.raises(ValueError, match=match):
        plan_capacity(100.0, **args)


def test_a_day_without_load_or_a_size_that_cannot_serve_is_refused():
    with pytest.raises(ValueError, match="plan_for_day"):
        plan_for_day([0.0, 0.0], 3600.0, machine("large"), service=0.005, latency_target_s=0.05,
                     worker_memory_bytes=MB)
    with pytest.raises(ValueError, match="cannot meet the target even idle"):
        plan_for_day([10.0], 3600.0, machine("large"), service=0.05, latency_target_s=0.01,
                     worker_memory_bytes=MB)
