"""Execute one notebook in a fresh kernel under budgets: the one executor of the runner and the grader.

:func:`execute` starts a kernel in a chosen working folder with a chosen environment (behind an
optional launch prefix: a confinement launcher, a sandbox), runs the cells in order with a
per-cell timeout (the cell is interrupted), and watches the whole notebook against a wall-clock
budget: past it, the kernel's whole process tree is killed
(:func:`mlscale_lab._core.processes.kill_process_tree`). It can sample the peak resident memory of
that tree (:class:`mlscale_lab.constraints.ResourceMonitor`). Whatever happens, no process the
kernel started outlives the call, and the caller gets an :class:`Execution` that says how the
run ended and in which cell (:func:`describe_cell`). Each kernel gets a temporary folder of its
own (``TMPDIR``, ``TEMP``, ``TMP``), removed with the kernel however it ends, so whatever the
notebook and its processes write there never outlives the call either.

The client that talks to the kernel is nbclient's ``NotebookClient`` or any subclass (nbgrader's
``Execute`` preprocessor is one): pass ``make_client`` to choose it and its options, such as
whether a cell's error stops the run (``allow_errors``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab._core.processes import (
    cpu_wait_seconds,
    descendant_pids,
    find_processes,
    kill_process_tree,
)
from mlscale_lab._core.sockets import (
    SOCKET_PATH_MAX,
    UNIX_SOCKETS,
    socket_folder,
    sockets_fit,
)
from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir
from mlscale_lab.constraints import ResourceMonitor
from mlscale_lab.harness._kernels import kernel_manager_class

__all__ = ["SOCKET_PATH_MAX", "STATUSES", "TMP_VARIABLES", "UNIX_SOCKETS", "Execution", "KernelLaunch",
           "describe_cell", "execute", "socket_folder", "sockets_fit"]

#: Where Python's ``tempfile`` (and most tools) look for the temporary folder, on every platform.
TMP_VARIABLES = ("TMPDIR", "TEMP", "TMP")

#: How an execution can end. ``completed``: every cell ran (cells may hold errors when the client
#: allows them; interrupted cells are in ``timed_out_cells``). ``cell_error``: a cell raised and
#: the client stops on errors. ``cell_timeout``: a cell ran over the per-cell timeout and the run
#: stopped there. ``over_budget``: the whole-notebook budget ran out and the kernel's process tree
#: was killed. ``kernel_died``: the kernel ended on its own (``os._exit``, a signal, the
#: out-of-memory killer). ``failed``: the kernel could not start or the client failed.
STATUSES = ("completed", "cell_error", "cell_timeout", "over_budget", "kernel_died", "failed")


@dataclass
class KernelLaunch:
    """Where and how the kernel starts.

    Parameters
    ----------
    cwd : path-like
        The kernel's working folder.
    env : dict of str to str
        The kernel's whole environment: nothing else of the caller's is passed.
    prefix : sequence of str
        Put in front of the kernel's command line (a confinement launcher, a sandbox); it must
        end by running the command that follows it.
    connection_dir : path-like, optional
        Talk to the kernel over Unix sockets in this folder (its connection file too) instead of
        TCP, so a kernel without network still reaches its client (see :data:`UNIX_SOCKETS`).
        Its path must be short enough for them (:func:`socket_folder` makes one).
    log : path-like, optional
        File that receives the kernel's own stdout and stderr (its banner, a crash message);
        by default they go where the caller's go.
    kernel_name : str
        The kernel spec to start.
    kernel_cmd : sequence of str, optional
        The kernel's command line instead of the kernel spec's, with ``{connection_file}``
        where the connection file goes (a grader starts its own Python, whatever kernel specs
        the machine has).
    tmp_parent : path-like, optional
        Where the kernel's own temporary folder is made (a folder a sandboxed kernel can
        write to); default the caller's temporary folder.
    spawner : callable, optional
        Starts the kernel instead of a new process: ``spawner(cmd, connection_file, **popen)``
        returns an object driven like a ``Popen`` (``pid``, ``poll``, ``wait``,
        ``send_signal``, ``kill``); ``cmd`` is the command line it would otherwise run (a
        grader forks its kernels from a pre-imported process, and falls back to ``cmd``).

    Examples
    --------
    >>> launch = KernelLaunch(cwd=".", env={"PATH": "/usr/bin"})
    >>> launch.prefix, launch.kernel_name
    ((), 'python3')
    """

    cwd: str | os.PathLike
    env: dict[str, str]
    prefix: Sequence[str] = ()
    connection_dir: str | os.PathLike | None = None
    log: str | os.PathLike | None = None
    kernel_name: str = "python3"
    kernel_cmd: Sequence[str] | None = None
    tmp_parent: str | os.PathLike | None = None
    spawner: Callable | None = None


@dataclass
class Execution:
    """How one execution went.

    Attributes
    ----------
    status : str
        One of :data:`STATUSES`.
    seconds : float
        Wall-clock seconds from the kernel's start to the end.
    peak_memory_bytes : int
        Peak resident memory of the kernel's process tree (0 when not monitored).
    cell : int or None
        Index of the cell that was running when the run stopped, or of the last cell started.
    where : str
        That cell in words (:func:`describe_cell`).
    error : str or None
        ``"ename: evalue"`` of a cell's error, or the exception that stopped the run.
    timed_out_cells : list of int
        Cells interrupted at the per-cell timeout.
    not_finished : list of int
        Code cells that did not run to their end: the stopping cell and every later one.
    kernel_log : str
        The last lines of the kernel's log when it failed to start or died (empty otherwise).
    cpu_wait_seconds : float or None
        Seconds the kernel's main thread, which runs the cells, was ready to run but waited for
        a CPU other threads held (:func:`mlscale_lab._core.processes.cpu_wait_seconds`): near
        zero on a quiet machine, so about how much a busy one stretched ``seconds`` (the
        notebook's own threads and processes count too). None where the platform does not say.
    """

    status: str
    seconds: float
    peak_memory_bytes: int = 0
    cell: int | None = None
    where: str = "before any cell ran"
    error: str | None = None
    timed_out_cells: list[int] = field(default_factory=list)
    not_finished: list[int] = field(default_factory=list)
    kernel_log: str = ""
    cpu_wait_seconds: float | None = None

    @property
    def completed(self) -> bool:
        """True when every cell ran (whatever their outputs)."""
        return self.status == "completed"


def describe_cell(nb, index: int | None) -> str:
    """A cell in words for an error message: its index, and its grade_id or first line.

    Examples
    --------
    >>> from nbformat.v4 import new_code_cell, new_notebook
    >>> nb = new_notebook(cells=[new_code_cell("x = 1\\nraise ValueError()")])
    >>> describe_cell(nb, 0)
    "cell 0 ('x = 1')"
    >>> describe_cell(nb, None)
    'before any cell ran'
    """
    if index is None or index >= len(nb.cells):
        return "before any cell ran"
    cell = nb.cells[index]
    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
    if gid:
        return f"cell {index} ({gid})"
    first = next((line for line in cell.source.splitlines() if line.strip()), "").strip()
    return f"cell {index} ({first[:60]!r})"


def _default_client(nb):
    from nbclient import NotebookClient

    return NotebookClient(nb)


def _tail(path, lines: int = 3) -> str:
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except (OSError, TypeError):
        return ""
    return " | ".join(text[-lines:])


def execute(
    nb,
    launch: KernelLaunch,
    *,
    budget: float,
    cell_timeout: float | None = None,
    make_client: Callable | None = None,
    monitor_interval: float | None = 0.1,
) -> Execution:
    """Run ``nb``'s cells in order in a fresh kernel (outputs are written into ``nb``).

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook; changed in place.
    launch : KernelLaunch
        Where and how the kernel starts.
    budget : float
        Wall-clock seconds for the whole notebook; past them every process of the kernel's tree
        is killed.
    cell_timeout : float, optional
        Seconds a cell may run before it is interrupted (default: the budget).
    make_client : callable, optional
        ``make_client(nb)`` returns the nbclient ``NotebookClient`` (or subclass, such as
        nbgrader's ``Execute``) to run with; its kernel manager class, kernel name and timeout
        are set here. Default: a ``NotebookClient`` that stops at the first error.
    monitor_interval : float or None
        Seconds between memory samples of the kernel's tree; None for no sampling.

    Returns
    -------
    Execution
        Never raises for the notebook's faults, a dead kernel or one that does not start.
    """
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    if UNIX_SOCKETS and launch.connection_dir is not None and not sockets_fit(launch.connection_dir):
        raise ValueError(
            f"execute(launch.connection_dir={str(launch.connection_dir)!r}): the kernel's Unix "
            f"sockets there would have paths over {SOCKET_PATH_MAX} bytes; use socket_folder()")
    if not (isinstance(budget, int | float) and budget > 0):
        raise ValueError(f"execute(budget={budget!r}): expected seconds > 0, got {budget!r}")
    if cell_timeout is None:
        cell_timeout = budget
    if not (isinstance(cell_timeout, int | float) and cell_timeout > 0):
        raise ValueError(f"execute(cell_timeout={cell_timeout!r}): expected seconds > 0, got {cell_timeout!r}")
    client = (make_client or _default_client)(nb)
    client.nb = nb
    client.kernel_name = launch.kernel_name
    client.kernel_manager_class = kernel_manager_class(launch)
    client.timeout = max(1, math.ceil(cell_timeout))
    client.interrupt_on_timeout = True
    client.resources = {"metadata": {"path": str(launch.cwd)}}

    over_budget = threading.Event()
    state = {"pid": None, "index": None, "waited": None}
    timed_out: list[int] = []
    leftovers = []

    def kill_on_budget():
        over_budget.set()
        kill_process_tree(state["pid"])

    watchdog = threading.Timer(budget, kill_on_budget)
    watchdog.daemon = True
    kernel_tmp = owned_tempdir("kernel-tmp", parent=launch.tmp_parent)  # removed below
    log = open(launch.log, "ab") if launch.log else None  # noqa: SIM115 (closed below)
    mon = None
    status, error = "completed", None
    start = time.perf_counter()
    watchdog.start()
    try:
        env = dict(launch.env)
        env.update(dict.fromkeys(TMP_VARIABLES, str(kernel_tmp)))
        spawn = {"env": env, "cwd": str(launch.cwd)}
        if log is not None:
            spawn.update(stdout=log, stderr=log)
        with client.setup_kernel(**spawn):
            state["pid"] = client.km.provisioner.pid
            kernel = find_processes([state["pid"]])
            waited_before = cpu_wait_seconds(state["pid"])
            if over_budget.is_set():  # the budget ran out while the kernel was starting
                kill_process_tree(state["pid"])
            if monitor_interval:
                mon = ResourceMonitor(interval=monitor_interval, include_children=True, pid=state["pid"])
                mon.__enter__()
            try:
                info = client.wait_for_reply(client.kc.kernel_info())
                nb.metadata["language_info"] = info["content"]["language_info"]
                for index, cell in enumerate(nb.cells):
                    state["index"] = index
                    began = time.monotonic()
                    try:
                        client.execute_cell(cell, index)
                    finally:
                        if cell.cell_type == "code" and time.monotonic() - began >= cell_timeout:
                            timed_out.append(index)  # interrupted at the per-cell timeout
                # The widgets' last state, as nbclient's own execute() keeps it: JupyterLab
                # draws a saved notebook's widgets from it.
                client.set_widgets_metadata()
            finally:
                if mon is not None:
                    mon.__exit__(None, None, None)
                waited_after = cpu_wait_seconds(state["pid"])
                if waited_before is not None and waited_after is not None:
                    state["waited"] = round(waited_after - waited_before, 3)
                # What the kernel started, before its shutdown orphans it (a Dask worker, a pool).
                leftovers = kernel + find_processes(descendant_pids(state["pid"]))
    except CellTimeoutError as exc:
        status, error = "cell_timeout", str(exc).strip().splitlines()[0] if str(exc).strip() else "CellTimeoutError"
    except DeadKernelError:
        status = "kernel_died"
    except CellExecutionError as exc:
        status, error = "cell_error", f"{exc.ename}: {exc.evalue}"
        if state["index"] in timed_out:
            status = "cell_timeout"
    except Exception as exc:  # the kernel did not start, the client failed
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        watchdog.cancel()
        for proc in leftovers:
            if proc.is_running():  # is_running checks the start time: never a reused pid
                kill_process_tree(proc.pid)
        remove_tempdir(kernel_tmp)
        if log is not None:
            log.close()
    if over_budget.is_set() and status != "completed":
        status = "over_budget"
    seconds = time.perf_counter() - start
    index = state["index"]
    not_finished = []
    if status != "completed":
        first = index or 0
        not_finished = [i for i in range(first, len(nb.cells)) if nb.cells[i].cell_type == "code"]
    return Execution(
        status=status,
        seconds=round(seconds, 2),
        peak_memory_bytes=int(mon.peak_rss_bytes) if mon is not None else 0,
        cell=index,
        where=describe_cell(nb, index),
        error=error,
        timed_out_cells=sorted(set(timed_out)),
        not_finished=not_finished,
        kernel_log=_tail(launch.log) if status in ("failed", "kernel_died") and launch.log else "",
        cpu_wait_seconds=state["waited"],
    )

