"""Start a group of training processes from a notebook, run work on all of them, always end them.

:func:`start_workers` starts ``world_size`` processes with ``torch.multiprocessing.spawn`` (as a
user would from a notebook), each joining one gloo process group on the loopback interface.
The group then runs *tasks*: a module-level function sent to every process, called as
``task(ctx, *args)`` on each rank (``ctx.rank``, ``ctx.world_size``, ``ctx.state``), whose
return values come back as a list by rank. One group serves many measurements, so the cost of
starting processes (importing torch in each) is paid once per cell, not once per number.

No process outlives the cell that started it:

1. the group is a context manager: the block's end, an exception or a KeyboardInterrupt ends it;
2. an ``atexit`` hook ends every group still alive when the kernel exits;
3. each worker holds a lifeline to the kernel (:mod:`mlscale_lab._core.lifeline`), so a kernel
   killed outright (out of memory, ``kill -9``) takes its workers along;
4. workers ignore SIGINT: the notebook's interrupt reaches the kernel, which ends the group.

Ports: the rendezvous store is opened by this process on a port the operating system picks
(port 0 on 127.0.0.1), and gloo's own connections use ephemeral loopback ports, so groups and
test runs side by side never collide.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field

from mlscale_lab._core.processes import descendant_pids, find_processes, kill_process_tree
from mlscale_lab.validation import check_int, check_positive

__all__ = ["HOST", "MAX_WORKERS", "WorkerError", "WorkerGroup", "leftover_processes",
           "live_groups", "loopback_interface", "start_workers", "stop_all_groups"]

HOST = "127.0.0.1"
#: More processes than this on a teaching machine only take turns on its cores.
MAX_WORKERS = 8

_LIVE: dict[int, WorkerGroup] = {}
_LIVE_LOCK = threading.Lock()


class WorkerError(RuntimeError):
    """A worker failed or died while running a task; the message holds its traceback or exit code."""


def loopback_interface() -> str | None:
    """The name of the network interface holding 127.0.0.1 (``lo`` on Linux, ``lo0`` on macOS).

    gloo picks the interface its connections use from the machine's host name, which in a
    container or sandbox may resolve to an address no interface has; naming the loopback
    interface (``GLOO_SOCKET_IFNAME``) keeps every connection on this machine.

    >>> loopback_interface() in (None, "lo", "lo0") or isinstance(loopback_interface(), str)
    True
    """
    import socket

    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == HOST for a in addresses):
            return name
    return None


def worker_environment() -> dict[str, str]:
    """Variables every training process needs to keep its traffic on the loopback interface."""
    env = {"MASTER_ADDR": HOST}
    name = loopback_interface()
    if name and "GLOO_SOCKET_IFNAME" not in os.environ:
        env["GLOO_SOCKET_IFNAME"] = name
    return env


def live_groups() -> list[WorkerGroup]:
    """The worker groups this process started that are still running."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


def stop_all_groups() -> int:
    """End every worker group this process started; return how many were running."""
    groups = live_groups()
    for g in groups:
        g.close()
    return len(groups)


atexit.register(stop_all_groups)


def _is_resource_tracker(proc) -> bool:
    try:
        return any("resource_tracker" in part for part in proc.cmdline())
    except Exception:
        return False


def leftover_processes(pid: int | None = None) -> list[dict]:
    """Child processes of ``pid`` (default: this process) still alive, except the standard
    library's multiprocessing resource tracker (one per interpreter, started at the first use of
    multiprocessing and ending with it: it holds no work).

    Returns
    -------
    list of dict
        ``{"pid", "name", "cmdline"}`` for each; empty when nothing is left.
    """
    import psutil

    out = []
    for c in find_processes(descendant_pids(pid or os.getpid())):
        try:
            if c.status() == psutil.STATUS_ZOMBIE or _is_resource_tracker(c):
                continue
            out.append({"pid": c.pid, "name": c.name(), "cmdline": " ".join(c.cmdline())[:200]})
        except psutil.Error:
            continue
    return out


@dataclass
class WorkerGroup:
    """Processes in one gloo process group, started by :func:`start_workers`.

    Attributes
    ----------
    world_size : int
    threads : int
        Intra-op threads each process uses (1: the processes are the parallelism).
    start_method : str
        ``"spawn"`` (fresh interpreters) or ``"fork"`` (copies of this process).
    port : int
        The rendezvous store's port on 127.0.0.1.
    startup_seconds : float
        From the call to every process having joined the group.
    tasks_run : int
    """

    world_size: int
    threads: int
    start_method: str = "spawn"
    port: int = 0
    startup_seconds: float = float("nan")
    tasks_run: int = 0
    _context: object = field(default=None, repr=False)
    _conns: list = field(default_factory=list, repr=False)
    _store: object = field(default=None, repr=False)
    _pids: list = field(default_factory=list, repr=False)
    _broken: str | None = field(default=None, repr=False)

    # -- lifecycle ---------------------------------------------------------------------------
    def _start(self, timeout: float) -> None:
        import multiprocessing as mp
        from datetime import timedelta

        import torch.distributed as dist
        import torch.multiprocessing as tmp

        from mlscale_lab.scaling.distributed._worker import worker_main

        t0 = time.perf_counter()
        # The rendezvous: a key-value store every process meets at (torchrun keeps it in its
        # agent; here the notebook does). Port 0: the operating system hands out a free one.
        self._store = dist.TCPStore(HOST, 0, self.world_size, is_master=True,
                                    timeout=timedelta(seconds=timeout), wait_for_workers=False)
        self.port = self._store.port
        ctx = mp.get_context("spawn")
        pipes = [ctx.Pipe() for _ in range(self.world_size)]
        self._conns = [parent for parent, _ in pipes]
        with _LIVE_LOCK:
            _LIVE[id(self)] = self
        args = (self.world_size, self.port, [child for _, child in pipes], self.threads,
                os.getpid(), worker_environment(), timeout)
        self._context = tmp.start_processes(worker_main, args=args, nprocs=self.world_size,
                                            join=False, start_method=self.start_method)
        for _, child in pipes:
            child.close()  # the workers hold their ends; ours close so a dead worker reads as EOF
        self._pids = list(self._context.pids())
        ready = self._collect("start", timeout)
        self._pids = [int(r) for r in ready]
        self.startup_seconds = time.perf_counter() - t0

    def close(self) -> None:
        """Ask every process to leave the group and exit; kill what is still there after 5 s."""
        with _LIVE_LOCK:
            _LIVE.pop(id(self), None)
        for conn in self._conns:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        procs = list(getattr(self._context, "processes", []))
        deadline = time.monotonic() + (5.0 if self._broken is None else 0.5)
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.is_alive():
                kill_process_tree(p.pid)
            p.join(1.0)
        for conn in self._conns:
            conn.close()
        self._conns = []
        self._store = None  # closes the rendezvous port

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """Every process runs and the group can take a task."""
        procs = list(getattr(self._context, "processes", []))
        return (self._broken is None and id(self) in _LIVE and bool(procs)
                and all(p.is_alive() for p in procs))

    def pids(self) -> list[int]:
        """Process ids of the workers, by rank."""
        return list(self._pids)

    def __repr__(self) -> str:
        state = "running" if self.alive else "ended"
        return (f"WorkerGroup({self.world_size} processes {self._pids}, gloo on {HOST}, "
                f"{self.threads} thread(s) each, {state})")

    # -- running tasks -----------------------------------------------------------------------
    def run(self, task, *args, timeout: float = 300.0) -> list:
        """Run ``task(ctx, *args)`` on every rank; return the results, by rank.

        ``task`` must be a module-level function (sent by reference) and its arguments and
        results plain, picklable values. A failure on any rank, a dead worker or a timeout ends
        the whole group (the others may be waiting in a collective that will never complete)
        and raises :class:`WorkerError` (or ``TimeoutError``).
        """
        if not self.alive:
            raise WorkerError(f"{self!r} cannot run {getattr(task, '__name__', task)}: "
                              + (self._broken or "the group has ended"))
        try:
            for conn in self._conns:
                conn.send(("run", task, args))
            results = self._collect(getattr(task, "__name__", "task"), timeout)
        except BaseException as exc:
            self._broken = f"{type(exc).__name__} during {getattr(task, '__name__', task)}"
            self.close()
            raise
        self.tasks_run += 1
        return results

    def _collect(self, what: str, timeout: float) -> list:
        from multiprocessing.connection import wait

        results: dict[int, object] = {}
        sentinels = {p.sentinel: rank for rank, p in enumerate(self._context.processes)}
        pending = {conn: rank for rank, conn in enumerate(self._conns)}
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}: ranks {sorted(pending.values())} did not answer "
                                   f"within {timeout:g} s")
            for ready in wait([*pending, *sentinels], timeout=min(left, 0.5)):
                if ready in pending:
                    rank = pending.pop(ready)
                    try:
                        kind, value = ready.recv()
                    except EOFError:
                        raise WorkerError(self._death(rank, what)) from None
                    if kind == "error":
                        raise WorkerError(f"{what} failed on rank {rank}:\n{value}")
                    results[rank] = value
                elif ready in sentinels and sentinels[ready] in pending.values():
                    raise WorkerError(self._death(sentinels[ready], what))
        return [results[r] for r in range(self.world_size)]

    def _death(self, rank: int, what: str) -> str:
        proc = self._context.processes[rank]
        proc.join(1.0)
        code = proc.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        return f"{what}: rank {rank} (pid {proc.pid}) {how}"


def start_workers(world_size: int = 2, *, threads: int = 1, timeout: float = 120.0,
                  start_method: str = "spawn") -> WorkerGroup:
    """Start ``world_size`` processes in one gloo process group on 127.0.0.1; return the group.

    Use it as a context manager, so that the processes end with the block::

        with start_workers(2) as workers:
            results = workers.run(task, arg)

    Parameters
    ----------
    world_size : int
        Processes, 1 to ``MAX_WORKERS``.
    threads : int, default 1
        Intra-op threads per process (``torch.set_num_threads``): one, so that processes, not
        threads, share the cores.
    timeout : float
        Seconds for the processes to start and join the group.
    start_method : {"spawn", "fork"}, default "spawn"
        ``"spawn"`` starts fresh interpreters, each importing torch (about 350 MB resident each
        on Linux; every platform). ``"fork"`` copies this process, which has already imported
        torch: the copies share its pages until they write them, so a worker adds only the
        memory it uses (tens of MB) and starts in well under a second. POSIX only; it suits a
        notebook kernel that has imported torch and holds no process group of its own.

    Returns
    -------
    WorkerGroup
        Running; each process has imported torch and joined the group.

    Raises
    ------
    RuntimeError
        torch.distributed is not available in this build of torch.
    WorkerError, TimeoutError
        A process failed to start or join; every process started is ended first.
    """
    world_size = check_int("start_workers", "world_size", world_size, low=1, high=MAX_WORKERS,
                           hint="each worker is a process with its own copy of the model")
    threads = check_int("start_workers", "threads", threads, low=1, high=64)
    timeout = check_positive("start_workers", "timeout", timeout)
    import multiprocessing as mp

    methods = [m for m in ("spawn", "fork") if m in mp.get_all_start_methods()]
    if start_method not in methods:
        raise ValueError(f"start_workers(start_method={start_method!r}): expected one of "
                         f"{methods} on this platform")
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("start_workers: this build of torch has no torch.distributed; install "
                           "the CPU wheel from https://download.pytorch.org/whl/cpu (Linux, macOS)")
    if start_method == "fork":
        # imported before the fork, so the workers share these pages instead of each importing
        # them again (DistributedDataParallel pulls in torch's compiler stack, ~80 MB)
        import torch.nn.parallel  # noqa: F401
    group = WorkerGroup(world_size, threads, start_method)
    try:
        group._start(timeout)
    except BaseException:
        group._broken = group._broken or "failed to start"
        group.close()
        raise
    return group
