"""Faults: a worker dies mid-training and torchrun's elastic agent restarts the job from its
last checkpoint.

:func:`run_elastic` starts ``torchrun`` (``torch.distributed.run``, here through a thin wrapper
that ties it to the notebook) with ``--max-restarts``, on a rendezvous port the agent picks
itself (``127.0.0.1:0``), running :mod:`._elastic_train` in each worker. A worker is killed with
SIGKILL at a chosen step of the first attempt (by itself, or from outside by this process); the
agent sees it, stops the other workers, and starts a new attempt, which resumes from the
checkpoint. The events each worker logged say what happened: :class:`ElasticRun` reads the
steps lost (done, but after the checkpoint the restart resumed from), the restart's delay and
the checkpoints' cost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab._core.environment import TRAIN_PARENT_ENV
from mlscale_lab._core.processes import kill_process_tree
from mlscale_lab.scaling.distributed._launch import HOST, MAX_WORKERS, worker_environment
from mlscale_lab.scaling.distributed._model import TrainSetup
from mlscale_lab.validation import check_int, check_positive

__all__ = ["ElasticRun", "run_elastic"]


@dataclass(frozen=True)
class ElasticRun:
    """What one torchrun job did, read from its workers' event logs.

    Attributes
    ----------
    succeeded : bool
        torchrun exited 0 and rank 0 wrote the final parameters.
    returncode : int
    attempts : int
        Worker groups started (1 + restarts).
    steps, checkpoint_every : int
    killed_step : int or None
        The step during which the worker died (its update never happened).
    done_before_failure : int or None
        Steps rank 0 completed in the first attempt.
    resumed_from : int or None
        The step the second attempt started at (from the checkpoint).
    restart_seconds : float or None
        From the kill to the new attempt's first step (processes started, group joined,
        checkpoint loaded).
    checkpoint_seconds : list of float
        Time rank 0 took to write each checkpoint.
    seconds : float
    parameters : dict or None
        The final parameters (``{name: array}``).
    events : list of dict
    log : str
        The end of torchrun's output.
    command : str
        The job as a ``torchrun`` command line.
    """

    succeeded: bool
    returncode: int
    attempts: int
    steps: int
    checkpoint_every: int
    killed_step: int | None
    done_before_failure: int | None
    resumed_from: int | None
    restart_seconds: float | None
    checkpoint_seconds: list
    seconds: float
    parameters: dict | None = field(repr=False)
    events: list = field(repr=False)
    log: str = field(repr=False)
    command: str = field(default="", repr=False)

    @property
    def lost_steps(self) -> int | None:
        """Steps done before the failure that the restart had to do again."""
        if self.done_before_failure is None or self.resumed_from is None:
            return None
        return self.done_before_failure - self.resumed_from


def _read_events(work: Path) -> list[dict]:
    out = []
    for path in sorted(work.glob("events-rank*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut short by SIGKILL
    return sorted(out, key=lambda e: e["t"])


def _summarise(events: list[dict]) -> dict:
    first = [e for e in events if e["attempt"] == 0]
    kill = next((e for e in first if e["kind"] == "kill"), None)
    done0 = [e["step"] for e in first if e["kind"] == "step" and e["rank"] == 0]
    second = [e for e in events if e["attempt"] == 1 and e["rank"] == 0]
    start1 = next((e for e in second if e["kind"] == "start"), None)
    step1 = next((e for e in second if e["kind"] == "step"), None)
    failed_at = kill["t"] if kill else (max(e["t"] for e in first) if first else None)
    killed = kill["step"] if kill else None
    if killed is None and start1 is not None:
        victims = [e for e in first if e["kind"] == "step"]
        killed = min((max(e["step"] for e in victims if e["rank"] == r) + 1
                      for r in {e["rank"] for e in victims}), default=None)
    return {
        "attempts": len({e["attempt"] for e in events if e["kind"] == "start"}),
        "killed_step": killed,
        "done_before_failure": (max(done0) + 1 if done0 else 0) if start1 else None,
        "resumed_from": start1["step"] if start1 else None,
        "restart_seconds": (step1["t"] - failed_at) if step1 and failed_at else None,
        "checkpoint_seconds": [e["seconds"] for e in events if e["kind"] == "checkpoint"],
    }


def _kill_from_outside(work: Path, rank: int, after_step: int, proc) -> None:
    """SIGKILL rank ``rank``'s process once its log shows ``after_step`` done."""
    path = work / f"events-rank{rank}.jsonl"
    while proc.poll() is None:
        for e in _read_events(work):
            if e["rank"] == rank and e["attempt"] == 0 and e["kind"] == "step" and e["step"] >= after_step:
                try:
                    os.kill(e["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
        time.sleep(0.005 if path.exists() else 0.05)


def _forked_agent(config: dict, train_argv: list, log_path: str, env: dict) -> None:
    """The body of the forked elastic agent: torchrun's agent, called as a library, whose
    workers are forks of it (and so of the notebook's kernel, with torch already imported)."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    # the kernel's sys.stdout/stderr send through its own threads, which a fork does not have
    old = (sys.stdout, sys.stderr)
    sys.stdout = sys.stderr = open(fd, "w", buffering=1, closefd=False)  # noqa: SIM115
    import logging

    # handlers made in the kernel (torch's own among them) hold the kernel's streams: repoint them
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in old:
                handler.setStream(sys.stderr)
    code = 1
    try:
        from mlscale_lab._core.lifeline import set_parent_death_signal, watch_parent

        set_parent_death_signal()
        watch_parent(int(env[TRAIN_PARENT_ENV]))
        os.environ.update(env)
        from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch

        from mlscale_lab.scaling.distributed._elastic_train import main as train

        log_dir = config.pop("log_dir")
        # torch.multiprocessing gives each rank an error file in the temporary folder and never
        # removes one a failed rank wrote (pytorch-errorfile-*.pickle): make them in the job's
        tempfile.tempdir = config.pop("tmp_dir")
        os.makedirs(tempfile.tempdir, exist_ok=True)
        launch = LaunchConfig(**config, start_method="fork",
                              logs_specs=DefaultLogsSpecs(log_dir=log_dir))
        elastic_launch(launch, train)(train_argv)
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        os._exit(code)  # no teardown of the kernel's copied state


class _Forked:
    """A forked agent, with the bits of ``subprocess.Popen`` that :func:`run_elastic` uses."""

    def __init__(self, target, args):
        import multiprocessing as mp

        self._proc = mp.get_context("fork").Process(target=target, args=args, daemon=False)
        self._proc.start()
        self.pid = self._proc.pid

    def poll(self):
        return self._proc.exitcode

    def wait(self, timeout=None):
        self._proc.join(timeout)
        if self._proc.exitcode is None:
            raise subprocess.TimeoutExpired("elastic agent", timeout)
        return self._proc.exitcode

    @property
    def returncode(self):
        return self._proc.exitcode


def run_elastic(workdir, setup: TrainSetup, *, steps: int = 40, checkpoint_every: int = 5,
                kill_at_step: int | None = 23, kill_rank: int = 1, world_size: int = 2,
                max_restarts: int = 1, kill_from_outside: bool = False,
                timeout: float = 180.0, launcher: str = "torchrun") -> ElasticRun:
    """Train ``setup`` with torchrun on ``world_size`` processes, killing one worker once.

    Parameters
    ----------
    workdir : path-like
        An empty folder for checkpoints, event logs and torchrun's output.
    setup : TrainSetup
    steps, checkpoint_every : int
        Optimiser steps in all; a checkpoint after every ``checkpoint_every`` of them.
    kill_at_step : int or None
        The step of the first attempt during which rank ``kill_rank`` dies (None: no fault).
    kill_rank : int
    world_size : int
    max_restarts : int
        torchrun's ``--max-restarts``; with 0 the job fails at the fault.
    kill_from_outside : bool
        False: the worker sends itself SIGKILL at the start of ``kill_at_step``. True: this
        process sends it, as soon as the worker's log shows step ``kill_at_step - 1`` done (the
        worker may then be anywhere in the next step).
    timeout : float
        Seconds for the whole job; past them every process is killed and TimeoutError raised.
    launcher : {"torchrun", "fork"}, default "torchrun"
        ``"torchrun"``: the ``torchrun`` command in a new process, whose workers are new
        interpreters (each importing torch: about 350 MB resident apiece). ``"fork"``: the same
        elastic agent torchrun runs (``torch.distributed.launcher.api.elastic_launch``), in a
        fork of this process, with workers forked from it (``start_method="fork"``): they share
        the torch this process has imported, so the job adds tens of MB, not a GB. POSIX only.

    Returns
    -------
    ElasticRun
    """
    import numpy as np

    steps = check_int("run_elastic", "steps", steps, low=1)
    every = check_int("run_elastic", "checkpoint_every", checkpoint_every, low=1)
    world = check_int("run_elastic", "world_size", world_size, low=1, high=MAX_WORKERS)
    kill_rank = check_int("run_elastic", "kill_rank", kill_rank, low=0, high=world - 1)
    max_restarts = check_int("run_elastic", "max_restarts", max_restarts, low=0, high=10)
    if kill_at_step is not None:
        kill_at_step = check_int("run_elastic", "kill_at_step", kill_at_step, low=0, high=steps - 1)
    timeout = check_positive("run_elastic", "timeout", timeout)
    if launcher not in ("torchrun", "fork"):
        raise ValueError(f"run_elastic(launcher={launcher!r}): expected 'torchrun' or 'fork'")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        raise ValueError(f"run_elastic(workdir={str(work)!r}): expected an empty folder (a "
                         "checkpoint left there would be resumed from)")
    run_id = uuid.uuid4().hex
    cmd = [sys.executable, "-m", "mlscale_lab.scaling.distributed._agent",
           "--nnodes=1", f"--nproc-per-node={world}", f"--max-restarts={max_restarts}",
           "--rdzv-backend=c10d", f"--rdzv-endpoint={HOST}:0", f"--rdzv-id={run_id}",
           f"--local-addr={HOST}", "--monitor-interval=0.05",
           # torchrun's own logs go in the job's folder (by default it makes a torchelastic_*
           # folder in the temporary folder and never removes it)
           f"--log-dir={work / 'torchrun-logs'}",
           "-m", "mlscale_lab.scaling.distributed._elastic_train", "--workdir", str(work),
           "--setup", json.dumps(setup.as_dict()), "--steps", str(steps), "--every", str(every),
           "--kill-at", str(-1 if kill_at_step is None or kill_from_outside else kill_at_step),
           "--kill-rank", str(kill_rank)]
    env = {**os.environ, **worker_environment(), "OMP_NUM_THREADS": "1",
           TRAIN_PARENT_ENV: str(os.getpid()), "PYTHONUNBUFFERED": "1"}
    log_path = work / "torchrun.log"
    t0 = time.perf_counter()
    if launcher == "fork":
        config = {"min_nodes": 1, "max_nodes": 1, "nproc_per_node": world, "run_id": run_id,
                  "rdzv_backend": "c10d", "rdzv_endpoint": f"{HOST}:0", "local_addr": HOST,
                  "max_restarts": max_restarts, "monitor_interval": 0.05,
                  "log_dir": str(work / "torchrun-logs"), "tmp_dir": str(work / "tmp")}
        train_argv = cmd[cmd.index("mlscale_lab.scaling.distributed._elastic_train") + 1:]
        proc = _Forked(_forked_agent, (config, train_argv, str(log_path),
                                        {k: env[k] for k in env if k not in os.environ
                                         or os.environ[k] != env[k]}))
    else:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if kill_from_outside and kill_at_step is not None:
            _kill_from_outside(work, kill_rank, kill_at_step - 1, proc)
        proc.wait(timeout=max(0.0, timeout - (time.perf_counter() - t0)))
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"run_elastic(timeout={timeout:g}): the job did not finish; every "
                           f"process was killed. torchrun's log ends with:\n{_tail(log_path)}") from None
    finally:
        if proc.poll() is None:
            kill_process_tree(proc.pid)
        proc.wait()
    seconds = time.perf_counter() - t0
    events = _read_events(work)
    final = work / "final.npz"
    params = None
    if final.exists():
        with np.load(final) as data:
            params = {k: data[k].copy() for k in data.files}
    shown = " ".join(["torchrun", *cmd[3:14], "...", *cmd[-4:]])
    return ElasticRun(proc.returncode == 0 and params is not None, proc.returncode,
                      steps=steps, checkpoint_every=every, seconds=seconds, parameters=params,
                      events=events, log=_tail(log_path), command=shown, **_summarise(events))


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
