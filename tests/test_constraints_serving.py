"""Serving under load (constraints/_serving.py): worker processes, an open-loop Poisson stream,
each request's latency from when it was due, the workers' memory, and no process left behind."""

import time
from types import SimpleNamespace

import numpy as np
import psutil
import pytest

from mlscale_lab.constraints import ServingLoad, measure_serving_load
from mlscale_lab.evidence import NotEnoughData
from mlscale_lab.queueing import fcfs_waits

MB = 1024**2


class SleepModel:
    """A model whose predict takes a fixed time without using the CPU (robust on a busy machine)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def predict(self, X):
        time.sleep(self.seconds)
        return np.zeros(len(X))


def _children():
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


@pytest.fixture(scope="module")
def run():
    before = _children()
    load = measure_serving_load(SleepModel(0.004), np.zeros((20, 3)), workers=1, utilisation=0.5,
                                requests=450, warmup=50, seed=1)
    assert _children() - before == set(), "a worker process outlived the measurement"
    return load


def test_an_open_loop_run_keeps_every_request_and_the_workers_memory(run):
    assert isinstance(run, ServingLoad) and run.requests == 400 and run.dropped == 50
    assert 20 * MB < run.memory_bytes < 1024 * MB  # an interpreter with numpy loaded
    assert np.all(np.diff(run.arrivals_s) > 0)
    assert np.all(run.service_s >= 0.004) and np.all(run.waits_s >= 0)
    # the latency runs from when the request was due: its wait (queue, dispatch) plus service
    np.testing.assert_allclose(run.latencies_s, run.waits_s + run.service_s, rtol=1e-9)
    assert 0.3 < run.utilisation < 0.7 and run.rate > 0


def test_the_queue_is_a_real_fcfs_queue_fed_open_loop(run):
    """The measured waits are those of an FCFS queue replayed on the same arrivals and service
    times, plus a little dispatch: a closed loop (waiting for each answer) would show none."""
    replay = fcfs_waits(run.arrivals_s, run.service_s, 1)
    assert replay.mean() > 0.5e-3, "at 50 % load requests must queue behind each other"
    extra = run.waits_s - replay
    assert np.median(extra) < 2e-3, "dispatch between processes adds well under 2 ms"
    assert np.mean(run.waits_s) >= 0.8 * np.mean(replay)


def test_a_p99_needs_enough_requests_and_a_p95_has_an_interval(run):
    p95 = run.latency_quantile(0.95)
    assert p95.low <= p95.estimate <= p95.high and p95.n == 400
    assert run.latency_quantile(0.99).n == 400  # 400 >= 368: bounded
    with pytest.raises(NotEnoughData, match="368"):
        ServingLoad(1, 1.0, 0.5, MB, run.latencies_s[:100], run.waits_s[:100], run.service_s[:100],
                    run.arrivals_s[:100], run.send_lag_s[:100]).latency_quantile(0.99)
    svc = run.service()
    s = run.service_s
    assert svc.mean == pytest.approx(float(np.mean(s)))
    assert svc.scv == pytest.approx(float(np.var(s) / np.mean(s) ** 2))
    # a 4 ms sleep is near-constant service: most requests take it to a millisecond (a busy
    # machine stretches a few sleeps, which moves the SCV, 0.28 on one CI run, not the median)
    assert 0.004 <= float(np.median(s)) < 0.005
    assert 0.0 <= run.late_share() <= 1.0


@pytest.mark.parametrize(("kwargs", "kind", "words"), [
    ({"workers": 0}, ValueError, "workers=0"),
    ({"utilisation": 1.0}, ValueError, "utilisation=1.0"),
    ({"requests": 1}, ValueError, "requests=1"),
    ({"requests": 100, "warmup": 99}, ValueError, "warmup=99"),
    ({"method": "transmogrify"}, ValueError, "method='transmogrify'"),
])
def test_bad_input_is_refused_at_the_door(kwargs, kind, words):
    with pytest.raises(kind, match=words.replace("(", r"\(")):
        measure_serving_load(SleepModel(0.001), np.zeros((3, 2)), **kwargs)


class DiesOnLoad:
    """A model whose unpickling ends the process that loads it, as a worker that cannot start."""

    def predict(self, X):
        return np.zeros(len(X))

    def __reduce__(self):
        import os

        return os._exit, (3,)


class DiesUnderLoad(SleepModel):
    """A model whose worker dies after ``calls`` predicts (the warm-up and calibration take 80)."""

    def __init__(self, seconds, calls):
        super().__init__(seconds)
        self.calls = calls

    def predict(self, X):
        self.calls -= 1
        if self.calls == 0:
            import os

            os._exit(4)
        return super().predict(X)


def _serving_folders():
    import tempfile
    from pathlib import Path

    return set(Path(tempfile.gettempdir()).glob("mlscale-serving-*"))


@pytest.mark.parametrize(("model", "words"), [
    (DiesOnLoad(), "exited with code 3 to start"),
    (DiesUnderLoad(0.002, 150), "exited with code 4"),
])
def test_a_worker_that_dies_raises_at_once_and_nothing_is_left(model, words):
    before, folders = _children(), _serving_folders()
    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match=words):
        measure_serving_load(model, np.zeros((20, 3)), workers=2, utilisation=0.5, requests=400,
                             warmup=10, timeout_s=300)
    # far below timeout_s: the death is seen within 0.1 s, not when the wait runs out
    assert time.perf_counter() - t0 < 60
    assert _children() - before == set(), "a worker process outlived the failed measurement"
    assert _serving_folders() - folders == set(), "the model's file outlived the measurement"


UNGUARDED = """
import numpy as np
from sklearn.dummy import DummyClassifier
from mlscale_lab.constraints import measure_serving_load

X = np.random.default_rng(0).random((50_000, 4))  # 1.6 MB: far more than a pipe holds
model = DummyClassifier().fit(X[:10], [0, 1] * 5)
measure_serving_load(model, X, requests=100, warmup=10, timeout_s=600)
"""


def test_a_script_without_a_main_guard_raises_instead_of_hanging(tmp_path):
    """Under spawn, a worker re-runs an unguarded script, which fails in the worker before it
    read its start-up data: with a megabyte model in that data, Process.start() used to block
    for good writing it (the parent held both ends of the pipe). Now it must fail fast."""
    import subprocess
    import sys

    script = tmp_path / "serve_unguarded.py"
    script.write_text(UNGUARDED)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert "a worker process" in done.stderr and "exited with code 1" in done.stderr
    assert "__main__" in done.stderr
    assert time.perf_counter() - t0 < 120


# Lab 01's serving checkpoints, on open-loop runs a test made up (Poisson arrivals, gamma
# service, a real FCFS queue): each fails when its claim's input breaks. The lab's own serving
# cell (lab01-25) runs on them, with the made-up run standing in for what measure_serving_load
# measures, so the cells after it see exactly what the lab binds.

def _made_up_load(scv, *, extra_wait_means=0.0, queue=True, workers=2, rho=0.75, n=1000,
                  mean=0.01, seed=0, drift=0.0):
    rng = np.random.default_rng(seed)
    shape = 1 / scv
    service = rng.gamma(shape, mean / shape, n)
    if drift:  # a machine whose speed drifts: slower and faster stretches of 100 requests
        service = service * (1 + drift * np.sin(2 * np.pi * np.arange(n) / 200))
    rate = rho * workers / mean
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    waits = fcfs_waits(arrivals, service, workers) if queue else np.zeros(n)
    waits = waits + extra_wait_means * mean
    return ServingLoad(workers, rate, rho, 200 * MB, waits + service, waits, service, arrivals,
                       np.zeros(n))


class _Forest:
    def set_params(self, **params):
        return self


def _lab01_serving(load, machine=None, *, cpus=None):
    """Lab 01's serving cell run on a machine of ``cpus`` CPUs (its budget and MachineCheck),
    ``load`` standing in for the open-loop run; the cell must ask for ``load.workers``."""
    from checkpoints import FixedCheck, QuietMachine, run_cells

    from mlscale_lab.capacity import evaluate_plan
    from mlscale_lab.evidence import (
        NotEnoughData,
        Verdict,
        bootstrap_interval,
        checkpoint,
        judge,
        quantile_interval,
    )
    from mlscale_lab.prices import EXAMPLE_MACHINES, PRICE_UNIT
    from mlscale_lab.queueing import ggc_latency_quantile, mmc_latency_quantile

    cpus = cpus or getattr(machine, "cpus", None) or (4 if load.workers > 1 else 2)
    machine = machine or QuietMachine(cpus=cpus)
    asked = []

    def measure_serving_load(model, X, *, workers, **kwargs):
        asked.append(workers)
        assert workers == load.workers, f"the lab asked for {workers} worker(s) on {cpus} CPU(s)"
        return load

    ns = {"np": np, "MB": MB, "SEED": 0, "forest": _Forest(), "X_digits": np.zeros((300, 64)),
          "budget": SimpleNamespace(usable_cpus=int(cpus)), "MachineCheck": FixedCheck(machine),
          "measure_serving_load": measure_serving_load, "quantile_interval": quantile_interval,
          "NotEnoughData": NotEnoughData, "bootstrap_interval": bootstrap_interval,
          "fcfs_waits": fcfs_waits, "ggc_latency_quantile": ggc_latency_quantile,
          "evaluate_plan": evaluate_plan, "mmc_latency_quantile": mmc_latency_quantile,
          "judge": judge, "Verdict": Verdict, "checkpoint": checkpoint,
          "EXAMPLE_MACHINES": EXAMPLE_MACHINES, "PRICE_UNIT": PRICE_UNIT,
          "record": lambda name, value: value}
    ns = run_cells("01", ("lab01-25",), ns)
    assert asked == [load.workers]
    return ns


MODEL_CELLS = ("lab01-25b", "lab01-25c")
MACHINE_CELLS = ("lab01-27", "lab01-cheapest-machine-29", "lab01-31", "lab01-31b")


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (3, 2), (16, 2)])
def test_lab01_leaves_the_load_generator_a_cpu(cpus, workers):
    """One worker fewer than the CPUs, two at most, and one on one CPU (the helper fails when
    the lab's serving cell asks for any other number)."""
    ns = _lab01_serving(_made_up_load(0.05, workers=workers), cpus=cpus)
    assert ns["WORKERS"] == workers
    assert set(ns["latency"]) == {0.5, 0.95}, "the p99 is shown, not judged"
    assert ns["p99"].method == "order statistics"


def test_lab01_queue_model_checkpoint_fails_on_exponential_service_or_a_queue_it_does_not_predict():
    """Near-constant service through a real FCFS queue: the shape claim holds and M/G/c is not
    refuted. Exponential service refutes the shape; three service times of dispatch added to
    every request put the measured p95 past the model's 25 %; a busy machine cannot tell."""
    from checkpoints import BusyMachine, run_cells

    ns = run_cells("01", MODEL_CELLS, _lab01_serving(_made_up_load(0.05)))
    assert ns["shape_verdict"].holds and not ns["model_verdict"].refuted
    with pytest.raises(AssertionError, match="far from exponential"):
        run_cells("01", MODEL_CELLS, _lab01_serving(_made_up_load(1.0)))
    late = _made_up_load(0.05, extra_wait_means=3.0)
    with pytest.raises(AssertionError, match="within 25 %"):
        run_cells("01", MODEL_CELLS, _lab01_serving(late))
    busy = _lab01_serving(late, BusyMachine(), cpus=4)
    assert run_cells("01", MODEL_CELLS, busy)["model_verdict"].inconclusive


def test_lab01s_queue_model_is_not_held_to_predicts_that_came_in_runs():
    """Predicts whose time drifts with the machine's speed (slow ones in runs) queue longer than
    M/G/c of independent service allows: the lab says the model cannot be tested on that run,
    and why, instead of refuting it; the same run with independent predicts is judged."""
    from checkpoints import run_cells

    drifting = _made_up_load(0.05, workers=1, drift=0.4)
    ns = run_cells("01", MODEL_CELLS, _lab01_serving(drifting, cpus=2))
    assert ns["service_lag1"] > 0.5 and ns["model_verdict"].inconclusive
    assert "not independent" in ns["model_verdict"].reason
    assert ns["model_error"].estimate > 0.25, "the runs of slow predicts did lengthen the queue"
    steady = run_cells("01", MODEL_CELLS, _lab01_serving(_made_up_load(0.05, workers=1, seed=1), cpus=2))
    assert abs(steady["service_lag1"]) < steady["lag1_bound"] and steady["model_verdict"].holds


def test_lab01s_queue_model_can_conclude_on_two_cpus_and_says_why_not_on_one():
    """On 2 CPUs the lab runs one worker and the generator has the other CPU: the M/G/1 check
    is judged on its interval (a queue M/G/1 does not predict fails it). On one CPU (Binder)
    the worker and the generator took turns: inconclusive, and the verdict says why."""
    from checkpoints import QuietMachine, run_cells

    late = _made_up_load(0.05, workers=1, extra_wait_means=6.0)
    with pytest.raises(AssertionError, match="within 25 %"):
        run_cells("01", MODEL_CELLS, _lab01_serving(late, cpus=2))
    sound = run_cells("01", MODEL_CELLS, _lab01_serving(_made_up_load(0.05, workers=1, seed=1), cpus=2))
    assert sound["model_verdict"].holds
    binder = run_cells("01", MODEL_CELLS, _lab01_serving(late, QuietMachine(cpus=1)))
    assert binder["model_verdict"].inconclusive
    assert "1 CPU(s) only, and the claim needs 2" in binder["model_verdict"].reason


def test_lab01_capacity_checkpoint_is_judged_on_the_measured_tail_at_the_load_the_run_achieved():
    """The run is the capacity-sized machine: its measured p95 is held to the budget. One worker
    75 % busy on 2 CPUs misses it, measured; the same run with no queue (a closed loop's) meets
    it, and the checkpoint fails. A run that landed lighter than planned (two workers 66 % busy,
    where M/G/c meets the budget) is inconclusive, though its measured p95 meets the budget: it
    tests a lighter machine. One CPU (Binder), or a busy machine, cannot tell."""
    from checkpoints import BusyMachine, QuietMachine, run_cells

    def machine_cells(load, machine=None, **kwargs):
        return run_cells("01", ("lab01-25b", *MACHINE_CELLS), _lab01_serving(load, machine, **kwargs))

    ns = machine_cells(_made_up_load(0.05, workers=1), cpus=2)
    assert ns["REQUESTS_PER_S"] == ns["load"].rate
    assert ns["by_capacity"].vcpus == 1 and ns["chosen"].vcpus == 2
    assert ns["capacity_verdict"].holds, ns["capacity_verdict"]
    with pytest.raises(AssertionError, match="misses the p95 budget"):
        machine_cells(_made_up_load(0.05, workers=1, queue=False), cpus=2)
    with pytest.raises(AssertionError, match="misses the p95 budget"):
        machine_cells(_made_up_load(0.05, queue=False), cpus=4)

    light = machine_cells(_made_up_load(0.02, rho=0.66, n=4000), cpus=4)
    assert light["by_capacity"].vcpus == 2 and light["capacity_plan"].meets_target
    assert light["latency"][0.95].high < light["TARGET_S"], "measured, the light run meets the budget"
    assert light["capacity_verdict"].inconclusive and "does not test" in light["capacity_verdict"].reason

    binder = machine_cells(_made_up_load(0.05, workers=1, queue=False), QuietMachine(cpus=1))
    assert binder["capacity_verdict"].inconclusive  # the worker and the generator took turns
    assert "1 CPU(s) only" in binder["capacity_verdict"].reason
    busy = machine_cells(_made_up_load(0.05, workers=1), BusyMachine(), cpus=2)
    assert busy["capacity_verdict"].inconclusive  # noise favours "misses"
