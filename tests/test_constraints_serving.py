"""Serving under load (constraints/_serving.py): worker processes, an open-loop Poisson stream,
each request's latency from when it was due, the workers' memory, and no process left behind."""

import time

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
# service, a real FCFS queue): each fails when its claim's input breaks.

def _made_up_load(scv, *, extra_wait_means=0.0, queue=True, workers=2, rho=0.75, n=1000,
                  mean=0.01, seed=0):
    rng = np.random.default_rng(seed)
    shape = 1 / scv
    service = rng.gamma(shape, mean / shape, n)
    rate = rho * workers / mean
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    waits = fcfs_waits(arrivals, service, workers) if queue else np.zeros(n)
    waits = waits + extra_wait_means * mean
    return ServingLoad(workers, rate, rho, 200 * MB, waits + service, waits, service, arrivals,
                       np.zeros(n))


def _lab01_serving(load, machine=None):
    """What lab 01's cells before its serving verdicts bind, from ``load``."""
    from types import SimpleNamespace

    from checkpoints import QuietMachine

    from mlscale_lab.capacity import evaluate_plan
    from mlscale_lab.evidence import Verdict, bootstrap_interval, checkpoint, judge
    from mlscale_lab.prices import EXAMPLE_MACHINES, PRICE_UNIT
    from mlscale_lab.queueing import ggc_latency_quantile, mmc_latency_quantile

    return {"np": np, "MB": MB, "load": load, "WORKERS": load.workers, "service": load.service(),
            "svc_p95": load.service_quantile(0.95),
            "latency": {q: load.latency_quantile(q) for q in (0.5, 0.95, 0.99)},
            "serving_check": SimpleNamespace(report=machine or QuietMachine(cpus=4)),
            "bootstrap_interval": bootstrap_interval, "fcfs_waits": fcfs_waits,
            "ggc_latency_quantile": ggc_latency_quantile, "evaluate_plan": evaluate_plan,
            "mmc_latency_quantile": mmc_latency_quantile, "judge": judge, "Verdict": Verdict,
            "checkpoint": checkpoint, "EXAMPLE_MACHINES": EXAMPLE_MACHINES,
            "PRICE_UNIT": PRICE_UNIT, "record": lambda name, value: value}


MODEL_CELLS = ("lab01-25b", "lab01-25c")
MACHINE_CELLS = ("lab01-27", "lab01-cheapest-machine-29", "lab01-31", "lab01-31b")


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
    assert run_cells("01", MODEL_CELLS, _lab01_serving(late, BusyMachine()))["model_verdict"].inconclusive


def test_lab01_machine_checkpoint_fails_when_the_measured_run_meets_the_budget_on_capacity_alone():
    """The capacity-sized machine's two workers at 75 % miss the p95 budget in the model and in
    the open-loop run (or the run cannot tell); a run whose requests never queued (what a closed loop shows) meets the
    budget on two workers, and the checkpoint refuses it."""
    from checkpoints import run_cells

    ns = run_cells("01", MACHINE_CELLS, _lab01_serving(_made_up_load(0.05)))
    assert ns["by_capacity"].vcpus == 2 and ns["chosen"].vcpus > 2
    assert not ns["capacity_verdict"].refuted  # 1,000 requests: a p95 of a queue is wide
    with pytest.raises(AssertionError, match="misses the p95 budget"):
        run_cells("01", MACHINE_CELLS, _lab01_serving(_made_up_load(0.05, queue=False)))
