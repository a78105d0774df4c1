"""Queueing theory once: the formulas agree with replays and simulations where they should, and
the approximation for non-exponential service is held to simulation."""

import subprocess
import sys

import numpy as np
import pytest

from mlscale_lab.queueing import (
    DISPATCH,
    ServiceTime,
    dispatch_replay,
    fcfs_waits,
    ggc_latency_exceeds,
    ggc_latency_quantile,
    ggc_mean_wait,
    lindley_waits,
    mgc_latency_quantile,
    mmc_latency_exceeds,
    mmc_latency_quantile,
    mmc_mean_wait,
    relaxation_time,
    simulate_mgc,
)


def test_importing_the_formulas_does_not_import_numpy():
    code = "import sys, mlscale_lab.queueing as q; q.erlang_c(2, 1.0); print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fcfs_with_one_server_is_lindley_and_with_c_servers_matches_erlang_c():
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.exponential(1 / 0.8, 5000))
    s = rng.exponential(1.0, 5000)
    assert np.allclose(fcfs_waits(a, s, 1), lindley_waits(a, s))
    waits = []
    for seed in range(8):
        r = np.random.default_rng(seed)
        arr = np.cumsum(r.exponential(1 / 1.6, 60_000))
        waits.append(fcfs_waits(arr, r.exponential(1.0, 60_000), 2)[10_000:].mean())
    assert np.mean(waits) == pytest.approx(mmc_mean_wait(2, 1.6, 1.0), rel=0.08)


def test_fcfs_replay_of_a_trace_is_exact_by_hand():
    # two servers; the third request waits for the first to finish
    assert fcfs_waits([0.0, 0.0, 0.5], [1.0, 2.0, 1.0], 2).tolist() == [0.0, 0.0, 0.5]


@pytest.mark.parametrize(("servers", "rho"), [(1, 0.6), (2, 0.7), (4, 0.8)])
def test_allen_cunneen_for_constant_service_is_within_12_percent_of_simulated_md_c(servers, rho):
    lam = rho * servers
    sims = [simulate_mgc(servers, lam, [1.0, 1.0], n=60_000, seed=s).mean() - 1.0 for s in range(6)]
    approx = ggc_mean_wait(servers, lam, 1.0, service_scv=0.0)
    assert np.mean(sims) == pytest.approx(approx, rel=0.12)
    # and M/D/c waits far less than M/M/c: the reason a lab must not assume exponential service
    assert approx < 0.6 * mmc_mean_wait(servers, lam, 1.0)


def test_simulated_quantile_with_exponential_service_matches_the_mmc_formula():
    sim = np.mean([mgc_latency_quantile(2, 1.5, 1.0, 0.99, seed=s) for s in range(4)])
    assert sim == pytest.approx(mmc_latency_quantile(2, 1.5, 1.0, 0.99), rel=0.06)
    assert mgc_latency_quantile(2, 2.5, 1.0, 0.99) == float("inf")


def test_relaxation_time_grows_without_bound_near_saturation():
    times = [relaxation_time(1, rho / 0.005, 0.005) for rho in (0.3, 0.6, 0.9, 0.95)]
    assert times == sorted(times) and times[-1] > 100 * times[0]
    assert relaxation_time(1, 190.0, 0.005) == pytest.approx(7.8, rel=0.01)
    with pytest.raises(ValueError, match="unstable"):
        relaxation_time(2, 3.0, 1.0)


def test_bad_traces_and_overloads_say_what_is_wrong():
    with pytest.raises(ValueError, match="one service time per arrival"):
        fcfs_waits([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="increasing order"):
        fcfs_waits([1.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="no steady state"):
        simulate_mgc(1, 2.0, 1.0)
    with pytest.raises(ValueError, match="at least 2 measured"):
        simulate_mgc(1, 0.5, [1.0])
    with pytest.raises(ValueError, match=r"ggc_mean_wait\(service_scv=-1\)"):
        ggc_mean_wait(1, 0.5, 1.0, service_scv=-1)


@pytest.mark.parametrize("name", ["constant", "near-constant", "bimodal", "exponential"])
@pytest.mark.parametrize(("servers", "rho"), [(1, 0.6), (1, 0.9), (2, 0.5), (2, 0.9), (4, 0.8)])
def test_allen_cunneen_tail_on_measured_service_is_within_12_percent_of_simulation(name, servers, rho):
    rng = np.random.default_rng(3)
    x = {"constant": np.ones(2), "near-constant": rng.normal(1, 0.1, 4000).clip(0.5),
         "bimodal": np.r_[np.full(900, 0.8), np.full(100, 2.8)], "exponential": rng.exponential(1, 20_000)}[name]
    service = ServiceTime.measured(x / x.mean())
    lam = rho * servers
    sim = np.concatenate([simulate_mgc(servers, lam, service.samples, n=150_000, seed=s) for s in range(3)])
    for q in (0.5, 0.99):
        assert ggc_latency_quantile(servers, lam, service, q) == pytest.approx(np.quantile(sim, q), rel=0.12)


def test_the_tail_with_exponential_service_is_mmc_s_and_constant_service_queues_less():
    for c, lam in ((1, 0.5), (2, 1.5), (4, 3.6)):
        for q in (0.5, 0.9, 0.99):
            assert ggc_latency_quantile(c, lam, 1.0, q) == pytest.approx(mmc_latency_quantile(c, lam, 1.0, q), rel=3e-3)
            assert ggc_latency_exceeds(c, lam, 1.0, 2.0) == pytest.approx(mmc_latency_exceeds(c, lam, 1.0, 2.0), abs=2e-3)
    assert ggc_latency_quantile(2, 1.6, ServiceTime.constant(1.0)) < 0.7 * mmc_latency_quantile(2, 1.6, 1.0)
    assert ggc_latency_quantile(2, 2.0, 1.0) == float("inf") and ggc_latency_exceeds(1, 1.0, 1.0, 5.0) == 1.0


def test_service_time_reads_its_moments_and_refuses_what_is_not_a_distribution():
    s = ServiceTime.measured([0.002, 0.004, 0.006])
    assert s.mean == pytest.approx(0.004) and s.scv == pytest.approx((0.008 / 3) / 0.004 / 4, rel=1e-9)
    assert s.quantile(1.0) == 0.006 and ServiceTime.of(s) is s
    assert ServiceTime.exponential(2.0).quantile(0.5) == pytest.approx(2.0 * np.log(2))
    assert ServiceTime(1.0, 0.25).quantile(0.5) == pytest.approx(np.median(np.random.default_rng(0).gamma(4, 0.25, 400_000)), rel=0.01)
    with pytest.raises(ValueError, match="at least 2 finite"):
        ServiceTime.measured([0.01])
    with pytest.raises(ValueError, match=r"ServiceTime\(scv=-1\)"):
        ServiceTime(1.0, -1)
    with pytest.raises(ValueError, match=r"^ggc_latency_quantile\(service='fast'\)"):
        ggc_latency_quantile(1, 1.0, "fast")


def test_dispatch_replays_agree_with_one_worker_and_order_as_theory_says_with_two():
    rng = np.random.default_rng(4)
    a = np.cumsum(rng.exponential(1 / 0.7, 4000))
    s = rng.normal(1.0, 0.1, 4000).clip(0.3)
    lone = lindley_waits(a, s)
    for policy in DISPATCH:
        waits, worker = dispatch_replay(a, s, 1, policy)
        assert np.allclose(waits, lone) and np.all(worker == 0)
    a2 = np.cumsum(rng.exponential(1 / 1.6, 40_000))
    s2 = rng.normal(1.0, 0.1, 40_000).clip(0.3)
    mean = {p: dispatch_replay(a2, s2, 2, p)[0][5000:].mean() for p in DISPATCH}
    assert np.allclose(dispatch_replay(a2, s2, 2, "central")[0], fcfs_waits(a2, s2, 2))
    # JSQ is close to the central queue; greedy accept waits longer; random longest of all
    assert mean["shortest"] == pytest.approx(mean["central"], rel=0.1)
    assert mean["central"] * 1.2 < mean["greedy"] < mean["random"]


def test_greedy_accept_by_hand_a_worker_back_from_predict_takes_every_waiting_request():
    waits, worker = dispatch_replay([0.0, 0.1, 0.2, 0.3, 1.5], [1.0] * 5, 2, "greedy")
    # requests 2 and 3 wait on the socket; worker 0 is back first (t=1.0) and takes both;
    # worker 1, back at 1.1, finds nothing, and is idle when request 4 arrives
    assert waits.round(6).tolist() == [0.0, 0.0, 0.8, 1.7, 0.0]
    assert worker.tolist() == [0, 1, 0, 0, 1]
    with pytest.raises(ValueError, match="expected one of central, greedy"):
        dispatch_replay([0.0], [1.0], 2, "round_robin")
