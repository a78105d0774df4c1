"""Execute lab notebooks headless, one fresh kernel each, measuring time and peak memory.

This is what ``mlscale-lab run`` and the test suite use, so a lab that passes here passes in CI.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscale_lab._core.environment import HEADLESS_ENV, RECORD_ENV
from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir
from mlscale_lab.harness.budgets import LAB_BUDGET_S
from mlscale_lab.harness.confine import MIN_HEADROOM, BinderLimits, Confinement
from mlscale_lab.recording import read_records

_MB = 1024**2


@dataclass
class LabRun:
    """The outcome of executing one lab."""

    name: str
    status: str  # "ok" or "failed"
    seconds: float
    peak_memory_bytes: int
    results: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    failed_cell: int | None = None
    #: Seconds the kernel waited for a CPU other threads held (``Execution.cpu_wait_seconds``).
    cpu_wait_seconds: float | None = None

    def as_dict(self) -> dict:
        """The run as plain JSON-ready values."""
        return asdict(self)


def run_lab(
    path: str | os.PathLike,
    *,
    budget: float = LAB_BUDGET_S,
    executed_dir: str | os.PathLike | None = None,
    extra_env: dict[str, str] | None = None,
    monitor_interval: float = 0.1,
    confinement=None,
) -> LabRun:
    """Execute one notebook top to bottom in a fresh kernel, in a temporary working folder.

    Parameters
    ----------
    path : path-like
        The notebook.
    budget : float
        Wall-clock seconds for the whole lab; the kernel's process tree is killed when they run out.
    executed_dir : path-like, optional
        Where to save the executed notebook (outputs included), e.g. to render it as HTML.
    extra_env : dict, optional
        Variables added to the kernel's environment (``MEM_LIMIT`` for a Binder-sized run).
    monitor_interval : float
        Seconds between memory samples of the kernel's process tree.
    confinement : mlscale_lab.harness.confine.Confinement, optional
        An entered confinement: the kernel starts inside its memory and CPU limits and gets
        its ``MEM_LIMIT``/``CPU_LIMIT``. See :func:`run_lab_binder_sized`.

    Returns
    -------
    LabRun
        Status, seconds, the peak resident memory of the kernel's process tree, the numbers the
        lab recorded, and for a failure the failing cell and its error.
    """
    import nbformat

    from mlscale_lab.harness.executor import KernelLaunch, execute, socket_folder

    if not (isinstance(budget, int | float) and budget > 0):
        raise ValueError(f"run_lab(budget={budget!r}): expected seconds > 0, got {budget!r}")
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    workdir = owned_tempdir(path.stem)
    record_file = workdir / ".mlscale-records.jsonl"
    env = dict(os.environ)
    env.pop(RECORD_ENV, None)
    env.update({RECORD_ENV: str(record_file), HEADLESS_ENV: "1", "PYTHONHASHSEED": "0"})
    env.update(extra_env or {})
    prefix: list[str] = []
    if confinement is not None:
        env.update(confinement.env())
        prefix = confinement.launcher_prefix()
    # Unix sockets where there are any: no TCP port open to other users of the machine.
    sockets = socket_folder()
    try:
        launch = KernelLaunch(cwd=workdir, env=env, prefix=prefix, connection_dir=sockets)
        done = execute(nb, launch, budget=budget, monitor_interval=monitor_interval)
        results = read_records(record_file)
    finally:
        remove_tempdir(workdir)
        remove_tempdir(sockets)
    if executed_dir is not None:
        out = Path(executed_dir)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
    status = "ok" if done.completed else "failed"
    return LabRun(path.stem, status, done.seconds, done.peak_memory_bytes, results,
                  _error_text(done, budget), None if done.completed else done.cell, done.cpu_wait_seconds)


def _error_text(done, budget: float) -> str | None:
    """The failure of a lab run in words: which cell, and what happened there."""
    if done.status == "completed":
        return None
    if done.status == "cell_error":
        return f"{done.where}: {done.error}"
    if done.status == "cell_timeout":
        return f"{done.where} ran over the lab's {budget:g} s budget (one cell used all of it)"
    if done.status == "over_budget":
        return f"{done.where}: the lab ran over its {budget:g} s budget; all its processes were killed"
    if done.status == "kernel_died":
        return f"{done.where}: the kernel died (out of memory is the usual cause of a death)"
    log = f" (kernel log: {done.kernel_log})" if done.kernel_log else ""
    return f"{done.where}: {done.error}{log}"


def run_labs(paths, *, budget: float = LAB_BUDGET_S, executed_dir=None, extra_env=None,
             progress=None) -> list[LabRun]:
    """Run several labs one after another; a failing lab does not stop the others."""
    runs = []
    for path in paths:
        if progress:
            progress(f"running {Path(path).stem} ...")
        runs.append(run_lab(path, budget=budget, executed_dir=executed_dir, extra_env=extra_env))
    return runs


def report_dict(runs: list[LabRun]) -> dict:
    """The JSON report ``mlscale-lab run --report`` writes."""
    from mlscale_lab.constraints import machine_budget

    return {"labs": [r.as_dict() for r in runs], "machine": machine_budget().as_dict()}


@dataclass
class BinderRun:
    """One lab run inside Binder's limits."""

    name: str
    status: str
    seconds: float
    peak_memory_bytes: int  # resident peak of the kernel's process tree (the runner's figure)
    cgroup_peak_bytes: int | None  # what the cgroup charged, page cache included
    memory_limit_bytes: int
    cpus: float
    mechanism: str
    oom_kills: int | None
    error: str | None = None
    results: dict = field(default_factory=dict)  # what the lab recorded

    @property
    def headroom(self) -> float:
        """Share of the memory limit left free at the peak (0.25 = a quarter left)."""
        return 1.0 - self.peak_memory_bytes / self.memory_limit_bytes

    def as_dict(self) -> dict:
        """The run as plain JSON-ready values, headroom included."""
        return {**asdict(self), "headroom": round(self.headroom, 4)}


def run_lab_binder_sized(
    path,
    limits: BinderLimits | None = None,
    *,
    budget: float = LAB_BUDGET_S,
    mechanism: str = "auto",
    executed_dir=None,
) -> BinderRun:
    """Execute one lab with :func:`run_lab` inside a Binder pod's limits (:mod:`.confine`).

    Parameters
    ----------
    path : path-like
        The notebook.
    limits : mlscale_lab.harness.confine.BinderLimits, optional
        Memory and CPU limits; Binder's 2 GiB and one CPU by default.
    budget : float
        Wall-clock seconds for the whole lab.
    mechanism : {"auto", "cgroup", "rlimit"}
        How the limits are enforced (see :class:`~mlscale_lab.harness.confine.Confinement`).
    executed_dir : path-like, optional
        Where to save the executed notebook.

    Raises
    ------
    mlscale_lab.harness.confine.ConfinementUnavailableError
        On a machine that cannot hold a kernel to the limits (no cgroup, no rlimits).
    """
    limits = limits or BinderLimits()
    with Confinement(limits, mechanism=mechanism) as box:
        run = run_lab(path, budget=budget, executed_dir=executed_dir, confinement=box)
        cgroup_peak, kills = box.cgroup_peak_bytes(), box.oom_kills()
        used = box.mechanism
    status, error = run.status, run.error
    if status == "ok" and run.peak_memory_bytes > limits.memory_bytes:
        status = "failed"
        error = (
            f"resident peak {run.peak_memory_bytes / _MB:.0f} MB is over the "
            f"{limits.memory_bytes / _MB:.0f} MB limit"
        )
    if kills:
        status = "failed"
        error = f"{error or ''} (the out-of-memory killer ended {kills} process(es))".strip()
    return BinderRun(
        run.name,
        status,
        run.seconds,
        run.peak_memory_bytes,
        cgroup_peak,
        limits.memory_bytes,
        limits.cpus,
        used or "?",
        kills,
        error,
        run.results,
    )


def format_binder_table(runs: list[BinderRun]) -> str:
    """lab, status, seconds, peak MB, headroom to the limit (and the cgroup's own peak)."""
    if not runs:
        return "(no labs)"
    r0 = runs[0]
    head = (
        f"Binder-sized run: {r0.memory_limit_bytes / _MB:.0f} MB, {r0.cpus:g} CPU "
        f"({r0.mechanism}); headroom = share of the limit left at the resident peak"
    )
    rows = [("lab", "status", "seconds", "peak MB", "headroom", "cgroup peak MB")]
    for r in runs:
        cg = "-" if r.cgroup_peak_bytes is None else f"{r.cgroup_peak_bytes / _MB:.0f}"
        rows.append(
            (
                r.name,
                r.status,
                f"{r.seconds:.1f}",
                f"{r.peak_memory_bytes / _MB:.0f}",
                f"{r.headroom:.0%}",
                cg,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [head] + [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(2, "  ".join("-" * w for w in widths))
    for r in runs:
        if r.error:
            lines.append(f"\n{r.name} FAILED: {r.error}")
        elif r.headroom < MIN_HEADROOM:
            lines.append(
                f"\n{r.name}: only {r.headroom:.0%} headroom, under the {MIN_HEADROOM:.0%} wanted"
            )
    return "\n".join(lines)


def binder_report_dict(runs: list[BinderRun], limits: BinderLimits) -> dict:
    """The JSON report of ``mlscale-lab run --binder``: the limits, then each lab's run."""
    return {"binder": {**asdict(limits), "min_headroom": MIN_HEADROOM}, "labs": [r.as_dict() for r in runs]}


def write_report(runs: list[LabRun], path: str | os.PathLike) -> None:
    """Write :func:`report_dict` of ``runs`` as JSON to ``path``."""
    Path(path).write_text(json.dumps(report_dict(runs), indent=2) + "\n", encoding="utf-8")


def format_table(runs: list[LabRun]) -> str:
    """A plain-text table: lab, status, seconds, peak MB, then each lab's recorded results."""
    rows = [("lab", "status", "seconds", "peak MB")]
    for r in runs:
        rows.append((r.name, r.status, f"{r.seconds:.1f}", f"{r.peak_memory_bytes / 1024**2:.0f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for r in runs:
        if r.results:
            lines.append(f"\n{r.name} results:")
            for k, v in r.results.items():
                shown = f"{v:.4g}" if isinstance(v, float) else json.dumps(v)
                lines.append(f"  {k} = {shown}")
        if r.error:
            lines.append(f"\n{r.name} FAILED at {r.error}")
    return "\n".join(lines)
