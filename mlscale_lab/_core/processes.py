"""A process and everything it started: finding the tree, and ending all of it.

Every place that watches or stops a process tree (the resource monitor, limited runs, the
notebook executor, the model server) uses these two functions, so "no process outlives the
cell that started it" is implemented once. Portable: psutil everywhere, with a fast path on
Linux and process groups only where the platform has them.
"""

from __future__ import annotations

import os
import signal

import psutil

__all__ = ["cpu_wait_seconds", "descendant_pids", "find_processes", "kill_descendants", "kill_process_tree"]


def _children_from_proc(pid: int) -> list[int] | None:
    """Descendants from ``/proc/<pid>/task/<tid>/children`` (Linux), or None where unavailable.

    psutil finds children by reading the parent of *every* process on the machine; on a busy
    host that takes milliseconds per call, and a sampling thread holds the GIL meanwhile. The
    kernel's per-thread children lists cost microseconds.
    """
    found: list[int] = []
    todo = [pid]
    try:
        while todo:
            current = todo.pop()
            for tid in os.listdir(f"/proc/{current}/task"):
                try:
                    with open(f"/proc/{current}/task/{tid}/children") as fh:
                        kids = [int(k) for k in fh.read().split()]
                except FileNotFoundError:
                    if current == pid and tid == str(pid):
                        return None  # kernel built without CONFIG_PROC_CHILDREN
                    continue  # the thread or process just exited
                found.extend(kids)
                todo.extend(kids)
    except FileNotFoundError:
        if not found and not os.path.exists(f"/proc/{pid}"):
            return [] if os.path.exists("/proc/self/task") else None
    except (OSError, ValueError):
        return None
    return found


def descendant_pids(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (children, grandchildren, ...); [] if gone.

    Examples
    --------
    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> child.pid in descendant_pids(os.getpid())
    True
    >>> kill_process_tree(child.pid)
    1
    """
    fast = _children_from_proc(pid)
    if fast is not None:
        return fast
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def kill_process_tree(pid: int | None, *, timeout: float = 5.0) -> int:
    """SIGKILL ``pid``, its process group where it leads one, and every descendant; wait for them.

    Safe to call on a process that already exited (returns 0). On platforms without process
    groups (Windows) the descendants found by psutil are killed one by one.

    Returns
    -------
    int
        How many processes were signalled.
    """
    if not pid:
        return 0
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return 0
    killpg, getpgid = getattr(os, "killpg", None), getattr(os, "getpgid", None)
    procs = [root, *find_processes(descendant_pids(pid))]
    if killpg is not None and getpgid is not None:
        try:
            group = getpgid(pid)
            if group == pid:  # only a group the process leads: never the caller's own
                killpg(group, signal.SIGKILL)
        except OSError:
            pass
    _kill(procs, timeout)
    # reap a direct child so it does not linger as a zombie
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError, AttributeError):
        pass
    return len(procs)


def kill_descendants(pid: int | None = None, *, timeout: float = 5.0) -> int:
    """SIGKILL every descendant of ``pid`` (default: this process), never ``pid`` itself; wait.

    For a process that ends its own tree before it exits (a server whose parent is gone).

    Returns
    -------
    int
        How many processes were signalled.
    """
    procs = find_processes(descendant_pids(os.getpid() if pid is None else pid))
    _kill(procs, timeout)
    return len(procs)


def find_processes(pids) -> list[psutil.Process]:
    """psutil objects of the ``pids`` that still run (taken before a kill, so that
    ``is_running()`` later tells the same process from a new one with its reused pid)."""
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.Error:
            continue
    return found


def _kill(procs: list[psutil.Process], timeout: float) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)


def cpu_wait_seconds(pid: int) -> float | None:
    """Seconds the process's main thread has spent ready to run but waiting for a CPU, since it
    started (the run delay in Linux's ``/proc/<pid>/schedstat``); None where the platform does
    not say (macOS, Windows, a kernel without scheduler statistics) or the process is gone.

    On a quiet machine this stays near zero; each second another process holds the CPU this
    thread wants adds a second, so it tells how much longer a run took because of the rest of
    the machine (a thread waiting on its own children or on I/O is not waiting for a CPU).

    >>> wait = cpu_wait_seconds(os.getpid())
    >>> wait is None or wait >= 0
    True
    """
    try:
        with open(f"/proc/{int(pid)}/schedstat") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None
