"""Execute one notebook with nbgrader's ``Execute`` preprocessor, under limits.

Limits: a per-cell timeout (the cell is interrupted and the next cells still run), a
wall-clock budget for the whole notebook (then every process of the kernel is killed), an
address-space cap, and optionally the bubblewrap sandbox of :mod:`._sandbox`. Whatever
happens, the caller gets a status in {graded, timeout, kernel_died, error} and a reason in
plain words; cells that never ran get an error output saying why, so nbgrader scores them 0
instead of treating an empty output as a pass.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab.harness.grading._sandbox import SandboxSpec, find_bwrap, limited_kernel_cmd

#: Environment variables passed from the grader to a sandboxed kernel; nothing else (tokens,
#: credentials) crosses over.
ENV_PASSED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")


@dataclass
class ExecOutcome:
    status: str  # graded | timeout | kernel_died | error
    reason: str
    timed_out_cells: list[int] = field(default_factory=list)
    not_run: list[int] = field(default_factory=list)
    seconds: float = 0.0


def describe_cell(nb, index: int | None) -> str:
    if index is None or index >= len(nb.cells):
        return "before any cell ran"
    cell = nb.cells[index]
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    first = next((line for line in cell.source.splitlines() if line.strip()), "").strip()
    return f"cell {index}" + (f" ({gid})" if gid else f" ({first[:50]!r})")


def _kill_tree(pid: int | None) -> None:
    """SIGKILL a process, its process group and every descendant (none are left running)."""
    if not pid:
        return
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    try:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _make_executor(*, timeout, workdir: Path, runtime: Path, memory_bytes, sandbox_spec, env):
    from jupyter_client.manager import AsyncKernelManager, KernelManager
    from nbgrader.preprocessors import Execute

    bwrap = find_bwrap() if sandbox_spec is not None else None
    prefix = sandbox_spec.bwrap_args(bwrap) if sandbox_spec is not None else []

    class LimitedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return [*prefix, *limited_kernel_cmd(os.path.realpath(self.connection_file), memory_bytes,
                                                    sandboxed=bool(prefix))]

        async def _async_pre_start_kernel(self, **kw):
            kw["env"] = dict(env)
            kw["cwd"] = str(workdir)
            # The kernel's own chatter (connection banner) goes to a log, not the grader's terminal.
            log = open(runtime / "kernel.log", "ab")  # noqa: SIM115 (closed with the job folder)
            kw["stdout"] = log
            kw["stderr"] = log
            return await KernelManager._async_pre_start_kernel(self, **kw)

    class LimitedExecute(Execute):
        def create_kernel_manager(self):
            km = LimitedKernelManager(kernel_name="python3", config=self.config)
            # Unix sockets in the submission's runtime folder: the sandbox has no network.
            km.transport = "ipc"
            km.ip = str(runtime / "kernel")
            km.connection_file = str(runtime / "kernel.json")
            self.km = km
            self.tracker["km"] = km
            return km

        def preprocess_cell(self, cell, resources, index):
            self.tracker["index"] = index
            self.tracker["executed"].add(index)
            return super().preprocess_cell(cell, resources, index)

        async def _async_handle_timeout(self, timeout, cell=None):
            self.tracker["timed_out"].append(self.tracker["index"])
            return await super()._async_handle_timeout(timeout, cell)

    ex = LimitedExecute(timeout=int(timeout), interrupt_on_timeout=True, iopub_timeout=10,
                        shutdown_kernel="immediate")
    ex.tracker = {"index": None, "executed": set(), "timed_out": [], "km": None}
    return ex


def _not_run_output(reason: str):
    from nbformat.v4 import new_output

    return new_output("error", ename="NotRun", evalue=reason, traceback=[f"NotRun: {reason}"])


def execute_notebook(nb, *, workdir: Path, runtime: Path, timeout: float, budget: float,
                     memory_bytes: int | None, sandbox_spec: SandboxSpec | None,
                     extra_env: dict | None = None, inherit_env: bool = False) -> ExecOutcome:
    """Run ``nb`` in place (outputs added) and say how it went; never raises for the notebook's faults."""
    import time

    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if inherit_env:  # the learner's own check: their environment, their HOME
        env = dict(os.environ)
    else:  # a submission: nothing of the grader's environment but the basics
        env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
        env.update({"HOME": str(workdir), "MPLCONFIGDIR": str(runtime / "matplotlib"),
                    "IPYTHONDIR": str(runtime / "ipython")})
    env.update({"PYTHONHASHSEED": "0", "MLSCALE_HEADLESS": "1"})
    env.update(extra_env or {})
    ex = _make_executor(timeout=timeout, workdir=workdir, runtime=runtime,
                        memory_bytes=memory_bytes, sandbox_spec=sandbox_spec, env=env)
    over_budget = threading.Event()

    def kill_on_budget():
        over_budget.set()
        km = ex.tracker["km"]
        pid = getattr(getattr(km, "provisioner", None), "pid", None) if km else None
        _kill_tree(pid)

    watchdog = threading.Timer(budget, kill_on_budget)
    watchdog.daemon = True
    start = time.perf_counter()
    watchdog.start()
    status, reason, aborted = "graded", "ran to the end", True
    try:
        ex.preprocess(nb, {"metadata": {"path": str(workdir)}})
        aborted = False
    except DeadKernelError:
        status = "timeout" if over_budget.is_set() else "kernel_died"
    except CellTimeoutError:
        status = "timeout"
    except Exception as exc:  # kernel failed to start, a broken notebook...
        status = "timeout" if over_budget.is_set() else "error"
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        watchdog.cancel()
        km = ex.tracker["km"]
        pid = getattr(getattr(km, "provisioner", None), "pid", None) if km else None
        _kill_tree(pid)
    seconds = time.perf_counter() - start
    where = describe_cell(nb, ex.tracker["index"])
    timed_out = sorted(set(ex.tracker["timed_out"]))
    if status == "timeout" and over_budget.is_set():
        reason = (f"the notebook ran over its {budget:g} s budget in {where}; all its processes were "
                  "killed")
    elif status == "timeout":
        reason = (f"{where} ran over the {timeout:g} s per-cell timeout and did not stop when "
                  "interrupted; its kernel was killed")
    elif status == "kernel_died":
        reason = (f"the kernel died in {where}: the code ended the process (os._exit, a signal) "
                  "or crashed it (a library aborting when memory ran out under the cap); later "
                  "cells were not run")
    elif status == "error":
        reason = f"could not run the notebook ({where}): {reason}"
        log = runtime / "kernel.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        if tail:
            reason += " (kernel log: " + " | ".join(tail) + ")"
    elif timed_out:
        status = "timeout"
        cells = ", ".join(describe_cell(nb, i) for i in timed_out)
        reason = (f"{cells} ran over the {timeout:g} s per-cell timeout and {'was' if len(timed_out) == 1 else 'were'} "
                  "interrupted; the other cells were graded")
    not_run = []
    if aborted:
        # The cell that was running and every later one never finished: nbgrader would read an
        # empty output as a pass, so each gets an error output that says why.
        first = ex.tracker["index"] or 0
        for i in range(first, len(nb.cells)):
            if nb.cells[i].cell_type == "code":
                nb.cells[i].outputs.append(_not_run_output(f"not run to the end: {reason}"))
                not_run.append(i)
    return ExecOutcome(status, reason, timed_out, not_run, round(seconds, 2))
