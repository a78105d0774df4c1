"""Execute lab notebooks headless, one fresh kernel each, measuring time and peak memory.

This is what ``mlscale-lab run`` and the test suite use, so a lab that passes here passes in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscale_lab.recording import RECORD_ENV, read_records

HEADLESS_ENV = "MLSCALE_HEADLESS"


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

    def as_dict(self) -> dict:
        return asdict(self)


def _describe_cell(nb, index: int | None) -> str:
    if index is None or index >= len(nb.cells):
        return "before any cell ran"
    cell = nb.cells[index]
    first = next((line for line in cell.source.splitlines() if line.strip()), "").strip()
    cid = getattr(cell, "id", None) or "?"
    return f"cell {index} (id {cid}: {first[:60]!r})"


def run_lab(
    path: str | os.PathLike,
    *,
    timeout: float = 600.0,
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
    timeout : float
        Wall-clock seconds for the whole lab; the kernel is killed when they run out.
    executed_dir : path-like, optional
        Where to save the executed notebook (outputs included), e.g. to render it as HTML.
    extra_env : dict, optional
        Variables added to the kernel's environment (``MEM_LIMIT`` for a Binder-sized run).
    confinement : mlscale_lab.harness.confine.Confinement, optional
        An entered confinement: the kernel starts inside its memory and CPU limits and gets
        its ``MEM_LIMIT``/``CPU_LIMIT``. See :func:`mlscale_lab.harness.confine.run_lab_binder_sized`.

    Returns
    -------
    LabRun
        Status, seconds, the peak resident memory of the kernel's process tree, the numbers the
        lab recorded, and for a failure the failing cell and its error.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    from mlscale_lab.constraints import ResourceMonitor

    if timeout <= 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    workdir = Path(tempfile.mkdtemp(prefix=f"mlscale-{path.stem}-"))
    record_file = workdir / ".mlscale-records.jsonl"
    env = dict(os.environ)
    env.pop(RECORD_ENV, None)
    env.update({RECORD_ENV: str(record_file), HEADLESS_ENV: "1", "PYTHONHASHSEED": "0"})
    env.update(extra_env or {})
    if confinement is not None:
        env.update(confinement.env())

    current = {"index": None}

    def on_cell_start(cell, cell_index, **_):
        current["index"] = cell_index

    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        on_cell_start=on_cell_start,
        **({"kernel_manager_class": confinement.kernel_manager_class()} if confinement is not None else {}),
    )
    status, error, failed_cell, peak = "ok", None, None, 0
    start = time.perf_counter()
    timed_out = threading.Event()
    try:
        with client.setup_kernel(env=env, cwd=str(workdir)):
            kernel_pid = client.km.provisioner.pid
            km = client.km

            def kill_on_timeout():
                timed_out.set()
                try:
                    km.provisioner.process.kill()
                except Exception:
                    pass

            watchdog = threading.Timer(timeout, kill_on_timeout)
            watchdog.daemon = True
            watchdog.start()
            mon = ResourceMonitor(interval=monitor_interval, include_children=True, pid=kernel_pid)
            try:
                with mon:
                    for index, cell in enumerate(nb.cells):
                        client.execute_cell(cell, index)
            finally:
                watchdog.cancel()
                peak = mon.peak_rss_bytes
    except CellTimeoutError as exc:
        status, failed_cell = "failed", current["index"]
        error = f"{_describe_cell(nb, failed_cell)} ran over the timeout of {timeout:.0f} s ({exc})"
    except DeadKernelError:
        status, failed_cell = "failed", current["index"]
        why = f"the lab ran over its {timeout:.0f} s budget" if timed_out.is_set() else "the kernel died"
        error = f"{_describe_cell(nb, failed_cell)}: {why} (out of memory is the usual cause of a death)"
    except CellExecutionError as exc:
        status, failed_cell = "failed", current["index"]
        error = f"{_describe_cell(nb, failed_cell)}: {exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel failed to start, unreadable notebook...
        status, failed_cell = "failed", current["index"]
        if timed_out.is_set():
            error = f"{_describe_cell(nb, failed_cell)}: the lab ran over its {timeout:.0f} s budget"
        else:
            error = f"{_describe_cell(nb, failed_cell)}: {type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    results = read_records(record_file)
    if executed_dir is not None:
        out = Path(executed_dir)
        out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out / path.name)
    shutil.rmtree(workdir, ignore_errors=True)
    return LabRun(path.stem, status, round(seconds, 2), int(peak), results, error, failed_cell)


def run_labs(paths, *, timeout: float = 600.0, executed_dir=None, extra_env=None, progress=None) -> list[LabRun]:
    """Run several labs one after another; a failing lab does not stop the others."""
    runs = []
    for path in paths:
        if progress:
            progress(f"running {Path(path).stem} ...")
        runs.append(run_lab(path, timeout=timeout, executed_dir=executed_dir, extra_env=extra_env))
    return runs


def report_dict(runs: list[LabRun]) -> dict:
    """The JSON report ``mlscale-lab run --report`` writes."""
    from mlscale_lab.constraints import machine_budget

    return {"labs": [r.as_dict() for r in runs], "machine": machine_budget().as_dict()}


def write_report(runs: list[LabRun], path: str | os.PathLike) -> None:
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
