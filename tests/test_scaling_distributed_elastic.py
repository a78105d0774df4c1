"""torchrun's elastic restart (run_elastic): a worker killed at other moments than the lab's,
from inside and from outside, the job resumed from its checkpoint, and nothing left running."""

from __future__ import annotations

import _thread
import signal
import tempfile
import threading
import time

import psutil
import pytest

from mlscale_lab.scaling import distributed as dd

pytestmark = pytest.mark.slow
SETUP = dd.TrainSetup(features=8, hidden=32, depth=1, classes=4, rows=512, batch=64, seed=5)
STEPS = 14


@pytest.fixture(scope="module")
def uninterrupted():
    return dd.train_one_process(SETUP, STEPS)


def _check(job, uninterrupted, every):
    assert job.succeeded, job.log
    assert job.attempts == 2
    assert 0 <= job.lost_steps <= every
    assert job.resumed_from % every == 0 and job.resumed_from <= job.done_before_failure
    assert dd.max_abs_difference(job.parameters, uninterrupted) < 1e-5
    assert job.restart_seconds > 0
    assert not dd.leftover_processes()


# The torchrun command line once; the other moments with the same agent forked (lab 08's
# launcher: no interpreter start and torch import per process).
@pytest.mark.parametrize("kill_at, kill_rank, every, lost, launcher", [
    (2, 1, 4, 2, "torchrun"),  # before the first checkpoint: the restart begins at step 0
    (8, 0, 4, 0, "fork"),      # right after a checkpoint, the process hosting rank 0
    (11, 1, 4, 3, "fork"),     # just before the next one: almost a whole interval
])
def test_a_worker_killed_at_a_step_loses_only_what_came_after_the_checkpoint(
        tmp_path, uninterrupted, kill_at, kill_rank, every, lost, launcher):
    job = dd.run_elastic(tmp_path / "job", SETUP, steps=STEPS, checkpoint_every=every,
                         kill_at_step=kill_at, kill_rank=kill_rank, launcher=launcher)
    _check(job, uninterrupted, every)
    assert job.killed_step == kill_at and job.lost_steps == lost


@pytest.mark.parametrize("kill_from_outside", [False, True])
def test_the_forked_agent_restarts_as_torchrun_does_and_leaves_nothing(
        tmp_path, uninterrupted, kill_from_outside, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the kernel's temporary folder
    # the agent torchrun runs, forked from this process with forked workers (lab 08's launcher)
    job = dd.run_elastic(tmp_path / "job", SETUP, steps=STEPS, checkpoint_every=4, kill_at_step=6,
                         kill_rank=1, kill_from_outside=kill_from_outside, launcher="fork")
    _check(job, uninterrupted, 4)
    # the surviving rank's error file (torch.multiprocessing's) is in the job's folder
    assert not list(scratch.iterdir()), sorted(p.name for p in scratch.iterdir())
    if not kill_from_outside:  # from outside, the worker may be a step or two further on
        assert job.killed_step == 6 and job.lost_steps == 2


def test_a_worker_killed_from_outside_mid_step(tmp_path, uninterrupted):
    job = dd.run_elastic(tmp_path / "job", SETUP, steps=STEPS, checkpoint_every=3,
                         kill_at_step=7, kill_rank=1, kill_from_outside=True)
    _check(job, uninterrupted, 3)
    assert not any(e["kind"] == "kill" for e in job.events)  # nobody killed itself


def test_without_restarts_the_job_fails_and_says_so(tmp_path):
    job = dd.run_elastic(tmp_path / "job", SETUP, steps=STEPS, checkpoint_every=4, kill_at_step=5,
                         max_restarts=0)
    assert not job.succeeded and job.returncode != 0 and job.attempts == 1
    assert job.lost_steps is None and job.parameters is None
    assert "ChildFailedError" in job.log or "failed" in job.log.lower()
    assert not dd.leftover_processes()


def test_no_fault_trains_once_and_matches_one_process(tmp_path, uninterrupted, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # torchrun and its workers' temporary folder
    job = dd.run_elastic(tmp_path / "job", SETUP, steps=STEPS, checkpoint_every=5, kill_at_step=None)
    assert job.succeeded and job.attempts == 1 and job.killed_step is None
    assert dd.max_abs_difference(job.parameters, uninterrupted) < 1e-5
    # torchrun's logs stay in the job's folder: nothing (a torchelastic_* folder) is left behind
    assert not list(scratch.iterdir()), sorted(p.name for p in scratch.iterdir())
    assert (tmp_path / "job" / "torchrun-logs").is_dir()


def test_an_interrupt_kills_torchrun_and_its_workers(tmp_path, request):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # interrupt_main does nothing where SIGINT is ignored (a test before this one in the same
    # worker process may have left it so): the kernel's handler, as IPython has it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    timer = threading.Timer(4.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            dd.run_elastic(tmp_path / "job", SETUP, steps=100_000, checkpoint_every=1000,
                           kill_at_step=None)
    finally:
        timer.cancel()
    time.sleep(0.5)
    assert not dd.leftover_processes(), {p.pid for p in psutil.Process().children(recursive=True)} - before


def test_a_used_folder_is_refused(tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "checkpoint.pt").write_bytes(b"old")
    with pytest.raises(ValueError, match="empty folder"):
        dd.run_elastic(tmp_path / "job", SETUP)
