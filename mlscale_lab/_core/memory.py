"""What a process tree holds in memory: each process's resident bytes, shared pages counted once.

Summing the resident set size (RSS) of every process in a tree counts a page once per process
that maps it. For processes that each ran their own program (a kernel, a server, a Dask worker)
the pages they share are the libraries' code, and the sum is what containers and the labs have
always reported. A child that was forked and has not replaced its program (``exec``) is
different: it shares *every* page of its parent copy-on-write, so its RSS is the parent's size
over again, whatever its age. For such a fork this module counts its unique set size (USS): the
pages no other process maps, which is what the fork really adds (the pages it wrote, and those
its parent wrote since the fork). USS costs a walk of the fork's page tables (a few ms a GB),
so a fork's USS is read again at most every ``uss_refresh_s`` and its RSS growth (new pages of
its own) is added in between. A child made by ``vfork`` (what ``subprocess`` uses on Linux) runs
in its parent's memory until it execs, a few milliseconds: it shows the parent's own counters,
and its USS is the parent's whole private memory, so it counts nothing.
"""

from __future__ import annotations

import os
import time

import psutil

from mlscale_lab._core.processes import descendant_pids

__all__ = ["ProcessTree", "tree_rss"]


class ProcessTree:
    """A process and its descendants, whose memory is read again and again.

    psutil objects are kept from one :meth:`refresh` to the next (psutil caches state per object,
    and CPU times are only comparable on the same object); processes that ended are dropped.

    Parameters
    ----------
    pid : int, optional
        The root process; default this one.
    include_children : bool, default True
        Whether the tree holds the root's descendants or only the root.
    uss_refresh_s : float, default 0.05
        Seconds a fork's unique set size is reused before it is read again.

    Raises
    ------
    psutil.NoSuchProcess
        When ``pid`` names no running process.

    Examples
    --------
    >>> tree = ProcessTree()
    >>> [p.pid for p in tree.refresh()][0] == os.getpid()
    True
    >>> tree.rss() > 0
    True
    """

    def __init__(self, pid: int | None = None, *, include_children: bool = True,
                 uss_refresh_s: float = 0.05):
        self.pid = os.getpid() if pid is None else int(pid)
        self.root = psutil.Process(self.pid)
        self.include_children = bool(include_children)
        self.uss_refresh_s = float(uss_refresh_s)
        #: Why a process's memory could not be read at the last :meth:`rss`, or None.
        self.unreadable: str | None = None
        self._procs: dict[int, psutil.Process] = {self.pid: self.root}
        self._execed: set[int] = {self.pid}  # ran a program of their own: RSS counts in full
        self._uss: dict[int, tuple[float, int, int]] = {}  # fork pid -> (read at, uss, rss then)

    def refresh(self) -> list[psutil.Process]:
        """Find the tree again and return its processes, the root first."""
        pids = [self.pid]
        if self.include_children:
            pids += descendant_pids(self.pid)
        for pid in pids:
            if pid not in self._procs:
                try:
                    self._procs[pid] = psutil.Process(pid)
                except psutil.Error:
                    continue
        for pid in set(self._procs) - set(pids):
            self.forget(pid)
        return self.processes()

    def processes(self) -> list[psutil.Process]:
        """The processes found by the last :meth:`refresh`, the root first."""
        return list(self._procs.values())

    def forget(self, pid: int) -> None:
        """Drop a process that ended (its pid may be reused by an unrelated process)."""
        if pid != self.pid:
            self._procs.pop(pid, None)
            self._execed.discard(pid)
            self._uss.pop(pid, None)

    def resident_bytes(self, proc: psutil.Process) -> int:
        """The memory ``proc`` adds to the tree: its RSS, or a fork's USS (see the module).

        Raises psutil's errors (the process ended, access denied) for the caller to handle.
        """
        # Which kind first, its memory after: a child that execs in between shows its new
        # program's memory, where the other order could count its parent's as its own
        if proc.pid in self._execed or not self._is_unexeced_fork(proc):
            return proc.memory_info().rss
        mem = proc.memory_info()
        if self._shares_parents_memory(proc, mem):
            return 0
        rss = mem.rss
        now = time.monotonic()
        seen = self._uss.get(proc.pid)
        if seen is None or now - seen[0] >= self.uss_refresh_s:
            try:
                seen = (now, proc.memory_full_info().uss, rss)
            except psutil.AccessDenied:  # smaps unreadable: fall back to RSS, never to nothing
                return rss
            self._uss[proc.pid] = seen
        _, uss, rss_then = seen
        return uss + max(0, rss - rss_then)

    def _shares_parents_memory(self, proc: psutil.Process, mem) -> bool:
        """Whether ``proc`` runs in its parent's memory (a ``vfork`` child before its exec): the
        same memory, so the same counters, read a moment apart. A true fork's differ (its
        page tables are its own), and one that matched by chance would hold almost nothing of
        its own anyway."""
        parent = self._procs.get(proc.ppid())
        try:
            theirs = parent.memory_info() if parent is not None else None
        except psutil.Error:
            return False
        return theirs is not None and (theirs.rss, theirs.vms, theirs.shared, theirs.data) == (
            mem.rss, mem.vms, mem.shared, mem.data)

    def _is_unexeced_fork(self, proc: psutil.Process) -> bool:
        parent = self._procs.get(proc.ppid())
        if parent is None:  # re-parented: its pages are its own now
            self._execed.add(proc.pid)
            return False
        if proc.cmdline() != parent.cmdline():
            self._execed.add(proc.pid)  # exec is for good: never asked again
            return False
        return True

    def rss(self) -> int:
        """Resident bytes of the whole tree as found by the last :meth:`refresh` (see the module).

        A process that ended meanwhile is dropped; one whose memory cannot be read counts 0 and
        :attr:`unreadable` says why.
        """
        total = 0
        self.unreadable = None
        for proc in self.processes():
            try:
                total += self.resident_bytes(proc)
            except psutil.NoSuchProcess:
                self.forget(proc.pid)
            except (psutil.Error, AttributeError, OSError) as exc:
                self.unreadable = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return total


def tree_rss(pid: int | None = None) -> int:
    """Resident bytes of ``pid`` (default this process) and its descendants, forks counted once.

    Returns 0 when ``pid`` names no running process.

    Examples
    --------
    >>> tree_rss() >= psutil.Process().memory_info().rss
    True
    """
    try:
        tree = ProcessTree(pid)
    except psutil.Error:
        return 0
    tree.refresh()
    return tree.rss()
