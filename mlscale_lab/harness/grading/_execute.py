"""Execute one submission with nbgrader's ``Execute`` preprocessor, under limits.

A thin use of :func:`mlscale_lab.harness.executor.execute`, the package's one executor: a
per-cell timeout (the cell is interrupted and the next cells still run), a wall-clock budget
for the whole notebook (then every process of the kernel is killed), an address-space cap
(:func:`mlscale_lab.harness.confine.launch_prefix`), and optionally the bubblewrap sandbox of
:mod:`._sandbox`. Whatever happens, the caller gets a status in {graded, timeout, kernel_died,
error} and a reason in plain words; cells that never ran get an error output saying why, so
nbgrader scores them 0 instead of treating an empty output as a pass.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab._core.environment import HEADLESS_ENV
from mlscale_lab._core.tempdirs import remove_tempdir
from mlscale_lab.harness.confine import can_cap_address_space, launch_prefix
from mlscale_lab.harness.executor import KernelLaunch, describe_cell, execute, socket_folder
from mlscale_lab.harness.grading._sandbox import SandboxSpec, find_bwrap, python_executable

__all__ = ["ENV_PASSED", "ExecOutcome", "describe_cell", "execute_notebook"]

#: Environment variables passed from the grader to a sandboxed kernel; nothing else (tokens,
#: credentials) crosses over.
ENV_PASSED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")


@dataclass
class ExecOutcome:
    """How a submission's execution went: status, reason in words, cells affected, seconds."""

    status: str  # graded | timeout | kernel_died | error
    reason: str
    timed_out_cells: list[int] = field(default_factory=list)
    not_run: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _nbgrader_client(iopub_timeout: float):
    def make(nb):
        from nbgrader.preprocessors import Execute

        client = Execute(iopub_timeout=iopub_timeout, shutdown_kernel="immediate")
        client.nb = nb
        return client

    return make


def _not_run_output(reason: str):
    from nbformat.v4 import new_output

    return new_output("error", ename="NotRun", evalue=reason, traceback=[f"NotRun: {reason}"])


def with_sockets(spec: SandboxSpec, sockets: Path) -> SandboxSpec:
    """``spec`` with the sockets' folder writable (it may sit outside the job, as under a deep TMPDIR)."""
    if Path(sockets) in map(Path, spec.writable):
        return spec
    return dataclasses.replace(spec, writable=[*spec.writable, Path(sockets)])


def _launch(workdir: Path, runtime: Path, sockets: Path, env: dict, memory_bytes: int | None,
            sandbox_spec: SandboxSpec | None, spawner=None) -> KernelLaunch:
    """The kernel's command: bubblewrap (if sandboxed), the limits, then the grader's own Python."""
    prefix = []
    if sandbox_spec is not None:
        sandbox_spec = with_sockets(sandbox_spec, sockets)
        prefix = sandbox_spec.bwrap_args(find_bwrap())
    if memory_bytes is not None and not can_cap_address_space():
        memory_bytes = None  # not enforceable here; the CLI says so once
    prefix += launch_prefix(
        as_bytes=memory_bytes,
        core_dumps=sandbox_spec is None and memory_bytes is None,
        # bubblewrap runs with SIGINT ignored (see SandboxSpec.bwrap_args); the kernel needs it back
        default_sigint=sandbox_spec is not None,
        unset_env=("JPY_PARENT_PID",) if sandbox_spec is not None else (),
    )
    kernel = [python_executable(), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    # The kernel's temporary folder inside runtime: a sandboxed kernel can write there.
    return KernelLaunch(cwd=workdir, env=env, prefix=prefix, connection_dir=sockets,
                        log=runtime / "kernel.log", kernel_cmd=kernel, tmp_parent=runtime, spawner=spawner)


def execute_notebook(nb, *, workdir: Path, runtime: Path, timeout: float, budget: float,
                     memory_bytes: int | None, sandbox_spec: SandboxSpec | None,
                     extra_env: dict | None = None, inherit_env: bool = False, spawner=None,
                     sockets: Path | None = None) -> ExecOutcome:
    """Run ``nb`` in place (outputs added) and say how it went; never raises for the notebook's faults.

    ``spawner`` starts the kernel in place of a new process (a fork of a pre-imported zygote
    inside the sandbox, :func:`mlscale_lab.harness.grading._forks.kernel_spawner`); that sandbox
    must bind ``sockets`` (:func:`with_sockets`). ``sockets`` is the folder (from
    :func:`mlscale_lab.harness.executor.socket_folder`) for the kernel's connection file and
    Unix sockets, which the caller removes; by default one is made and removed here."""
    if inherit_env:  # the learner's own check: their environment, their HOME
        env = dict(os.environ)
    else:  # a submission: nothing of the grader's environment but the basics
        env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
        env.update({"HOME": str(workdir), "MPLCONFIGDIR": str(runtime / "matplotlib"),
                    "IPYTHONDIR": str(runtime / "ipython")})
    env.update({"PYTHONHASHSEED": "0", HEADLESS_ENV: "1"})
    env.update(extra_env or {})
    own = sockets is None
    if own:
        sockets = socket_folder()
    try:
        done = execute(nb, _launch(workdir, runtime, sockets, env, memory_bytes, sandbox_spec, spawner),
                       budget=budget, cell_timeout=timeout, make_client=_nbgrader_client(10),
                       monitor_interval=None)
    finally:
        if own:
            remove_tempdir(sockets)
    where, timed_out = done.where, done.timed_out_cells
    status = {"completed": "graded", "cell_timeout": "timeout", "over_budget": "timeout",
              "kernel_died": "kernel_died"}.get(done.status, "error")
    if done.status == "over_budget":
        reason = (f"the notebook ran over its {budget:g} s budget in {where}; all its processes were "
                  "killed")
    elif done.status == "cell_timeout":
        reason = (f"{where} ran over the {timeout:g} s per-cell timeout and did not stop when "
                  "interrupted; its kernel was killed")
    elif done.status == "kernel_died":
        reason = (f"the kernel died in {where}: the code ended the process (os._exit, a signal) "
                  "or crashed it (a library aborting when memory ran out under the cap); later "
                  "cells were not run")
    elif status == "error":
        reason = f"could not run the notebook ({where}): {done.error}"
        if done.kernel_log:
            reason += f" (kernel log: {done.kernel_log})"
    elif timed_out:
        status = "timeout"
        cells = ", ".join(describe_cell(nb, i) for i in timed_out)
        reason = (f"{cells} ran over the {timeout:g} s per-cell timeout and {'was' if len(timed_out) == 1 else 'were'} "
                  "interrupted; the other cells were graded")
    else:
        reason = "ran to the end"
    # The cell that was running and every later one never finished: nbgrader would read an
    # empty output as a pass, so each gets an error output that says why.
    for i in done.not_finished:
        nb.cells[i].outputs.append(_not_run_output(f"not run to the end: {reason}"))
    return ExecOutcome(status, reason, timed_out, done.not_finished, done.seconds)
