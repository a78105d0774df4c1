"""Measuring a server the way load testers do: service time from inside the worker, the
generator pinned and its lag flagged, a real stall that always ends, the batcher changed while
it runs, and a steady-state load point held to theory and to its own replay."""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import psutil
import pytest

from mlscale_lab.evidence import MachineCheck, machine_cpus
from mlscale_lab.scaling import serving as sv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    model = MLPClassifier(hidden_layer_sizes=(512, 512), max_iter=5, random_state=0).fit(X[:300], y[:300])
    path = tmp_path_factory.mktemp("measure") / "digits.joblib"
    joblib.dump(model, path)
    split = sv.cpu_split(machine_cpus())
    with sv.serve(path, workers=1, n_features=64, cpus=split[1] if split else None) as s:
        s.rows, s.gen = X[:50], split[0] if split else None
        yield s


def test_each_answer_carries_the_worker_s_own_service_time(server):
    r = sv.closed_loop(server, 1, rows=server.rows, n_requests=40)
    assert r.errors == 0 and np.all(np.isfinite(r.service)) and np.all(r.service > 0)
    assert np.all(r.service < r.service_latency), "the handler's time is part of the client's latency"
    assert set(r.worker.tolist()) == {server.worker_info()[0]["pid"]} and np.all(r.batch == 1)


@pytest.mark.skipif(sv.AFFINITY != "thread" or machine_cpus() < 2, reason="needs Linux and 2 CPUs")
def test_the_server_and_the_generator_run_on_the_cpus_they_were_given(server):
    assert server.worker_info()[0]["cpus"] == server.cpus
    seen = {}

    def spy():  # the generator's thread reports its own affinity from inside the run
        seen["cpus"] = sorted(os.sched_getaffinity(0))

    with sv._affinity.pin_thread(server.gen) as pin:
        spy()
    assert pin.pinned and seen["cpus"] == server.gen
    assert sorted(os.sched_getaffinity(0)) != server.gen or machine_cpus() == 1, "restored after"
    r = sv.open_loop(server, 50.0, rows=server.rows, n_requests=20, cpus=server.gen)
    assert r.pinned


def test_occupancy_adds_the_framework_share_and_the_profile_splits_server_from_client(server):
    p = sv.measure_service(server, server.rows, n_requests=100, idle_requests=20, cpus=server.gen)
    assert p.handler.size == 100 and p.framework_s >= 0 and p.delay_s >= 0
    assert p.mean_s == pytest.approx(p.handler.mean() + p.framework_s)
    assert p.service.mean == pytest.approx(p.mean_s) and p.service.samples.size == 100
    r = sv.closed_loop(server, 1, rows=server.rows, n_requests=10)
    occ = sv.occupancy(r)
    if time.get_clock_info("process_time").resolution <= 1e-6:
        # the handler's wall time plus the worker's CPU between the previous handler and this one
        assert np.all(np.isfinite(r.cpu0)) and np.all(r.cpu0 <= r.cpu) and np.all(r.cpu0[1:] >= r.cpu[:-1])
        framework = r.cpu0[1:] - r.cpu[:-1]
        assert np.allclose(occ[1:], r.service[1:] + framework)
        assert occ[0] == pytest.approx(r.service[0] + np.median(framework)), "the first gets the others' median"
    coarse = dataclasses.replace(r, cpu=np.full(r.ok.size, np.nan), cpu0=None)  # a clock that only ticks
    with pytest.raises(ValueError, match=r"occupancy\(cpu_seconds=None\)"):
        sv.occupancy(coarse)
    occ = sv.occupancy(coarse, cpu_seconds=float(r.service.sum()) + 10 * 0.001)
    assert np.allclose(occ, r.service + 0.001)
    assert np.allclose(sv.occupancy(coarse, cpu_seconds=0.0), r.service), "a negative share is clipped"


def test_a_stall_pauses_every_worker_for_its_length_and_always_resumes_it(server):
    pid = server.worker_info()[0]["pid"]
    r = sv.open_loop(server, 100.0, rows=server.rows, duration=1.0, stall=(0.3, 0.3), cpus=server.gen)
    assert r.errors == 0 and len(r.stalls) == 1
    began, ended = r.stalls[0]
    # A busy machine can only make the generator late: the stall starts and ends no earlier, and
    # no later than the sends due at that moment were late (one event loop times both; CI once
    # saw the stall begin at 1.15 s beside a grading).
    lateness = r.sent - r.scheduled

    def late_at(t: float) -> float:
        """How late the sends due in the 0.1 s from ``t`` went out (all of them if none is due)."""
        due = (r.scheduled >= t) & (r.scheduled < t + 0.1)
        return float(np.nanmax(lateness[due] if due.any() else lateness))

    late = late_at(0.3)
    assert 0.29 < began < 0.6 + late, f"asked at 0.3 s, began at {began:.2f} s; sends then {late:.2f} s late"
    late = late_at(began + 0.3)
    assert 0.29 < ended - began < 1.0 + late, f"a 0.3 s stall lasted {ended - began:.2f} s; sends then {late:.2f} s late"
    hit = (r.scheduled >= began + 0.05) & (r.scheduled < ended - 0.05)
    assert np.all(r.done[hit] >= ended - 0.01), "nothing is answered while the worker is paused"
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    closed = sv.closed_loop(server, 1, rows=server.rows, duration=1.0, rate=100.0, stall=(0.3, 0.3))
    assert len(closed.stalls) == 1 and psutil.Process(pid).status() != psutil.STATUS_STOPPED
    # a paced closed loop reports one slow request; timed from its plan, the stall shows
    assert np.sort(closed.service_latency)[-2] < 0.1 < closed.service_latency.max()
    assert (closed.latency > 0.1).sum() > 5


def test_a_run_cancelled_mid_stall_still_resumes_the_worker(server):
    import asyncio

    from mlscale_lab.scaling.serving._load import _stall_workers

    pid = server.worker_info()[0]["pid"]
    states = []

    async def run():
        t0 = asyncio.get_running_loop().time()
        log: list = []
        task = asyncio.create_task(_stall_workers(server, 0.0, 3.0, lambda: asyncio.get_running_loop().time() - t0, log))
        await asyncio.sleep(0.2)
        states.append(psutil.Process(pid).status())
        task.cancel()  # as when the run fails or the cell is interrupted
        await asyncio.gather(task, return_exceptions=True)
        return log

    log = asyncio.run(run())
    assert states == [psutil.STATUS_STOPPED] and len(log) == 1
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    assert server.predict(server.rows[0]) >= 0
    with pytest.raises(ValueError, match=r"open_loop\(stall=9.0\)"):
        sv.open_loop(server, 100.0, rows=server.rows, duration=1.0, stall=(0.1, 9))


def test_the_batcher_changes_while_the_server_runs_and_its_cost_line_fits(server):
    server.set_batching(16, 5.0)
    try:
        r = sv.open_loop(server, 600.0, rows=server.rows, duration=0.6, cpus=server.gen)
        assert r.errors == 0 and r.batch.max() > 1 and np.all(r.queued >= 0)
        fixed, per_row = sv.fit_batch_cost(r.batch, r.service)
        assert fixed >= 0 and per_row >= 0
    finally:
        server.set_batching(1, 0.0)
    r = sv.closed_loop(server, 4, rows=server.rows, n_requests=40)
    assert np.all(r.batch == 1)
    with pytest.raises(ValueError, match=r"set_batching\(max_batch=0\)"):
        server.set_batching(0, 1.0)


def test_late_sends_flag_the_machine_check(server):
    r = sv.open_loop(server, 50.0, rows=server.rows, n_requests=20)
    r.sent = r.scheduled + 0.02  # as if the generator had been starved of CPU
    with MachineCheck() as mc:
        pass
    assert sv.flag_late_sends(mc, r) == 1.0
    assert not mc.report.trusted and "load generator" in mc.report.reasons[-1]


def test_a_load_point_is_steady_state_and_its_replay_explains_its_mean(server):
    p = sv.measure_service(server, server.rows, n_requests=100, idle_requests=20, cpus=server.gen)
    with MachineCheck() as mc:
        point = sv.measure_load_point(server, 0.5, p, rows=server.rows, requests=300, repeats=2,
                                      cpus=server.gen, check=mc)
    assert len(point.runs) == 2 and all(r.errors == 0 for r in point.runs)
    assert point.warmup_s >= 0.2 and point.responses.size >= 250
    iv = point.measured()
    assert iv.low < point.responses.mean() < iv.high
    assert point.predicted() > point.service.mean + p.delay_s
    # exponential service queues more than this near-constant predict (on a busy machine the
    # measured occupancy gets a long tail, scv > 1, and then no longer)
    assert (point.predicted(exponential=True) > point.predicted()) == (point.service.scv < 1)
    if mc.report.trusted:  # on a quiet machine the ideal FCFS replay is close to what happened
        assert point.replayed() == pytest.approx(iv.estimate, rel=0.35)
        assert 0.35 < point.realised_rho < 0.65


def test_the_simulated_batcher_is_a_fifo_queue_without_batching():
    from mlscale_lab.queueing import lindley_waits

    a = np.cumsum(np.random.default_rng(0).exponential(0.005, 2000))
    r = sv.simulate_batcher(a, max_batch=1, max_wait_s=0.0, cost=(0.004, 0.0))
    assert np.allclose(r, lindley_waits(a, np.full(a.size, 0.004)) + 0.004)
    batched = sv.simulate_batcher(a, max_batch=16, max_wait_s=0.002, cost=(0.003, 0.0005))
    assert np.median(batched) < np.median(r), "batching keeps up where one row at a time queues"
    with pytest.raises(ValueError, match="increasing"):
        sv.simulate_batcher([1.0, 0.0], max_batch=1, max_wait_s=0.0, cost=(0.001, 0.0))
