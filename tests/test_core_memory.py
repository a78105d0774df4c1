"""The memory of a process tree: children count in full, a fork counts only the pages it owns."""

import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from mlscale_lab._core.memory import ProcessTree, tree_rss

MB = 1024**2

# A separate program that allocates and touches N MB, says "ready" and sleeps.
ALLOCATE = r"""
import sys, time
block = bytearray(int(sys.argv[1]) * 1024**2)
block[::4096] = b"x" * len(block[::4096])
print("ready", flush=True)
time.sleep(60)
"""


def _fork(then):
    """Fork this process; the child runs ``then(write_fd)`` (which writes b"x" once it has
    started) then waits to be killed. Returns the child's pid and the read end of its pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(r)
            then(w)
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"x"
    return pid, r


def _end(pid, r):
    os.close(r)
    try:
        os.kill(pid, 9)
    finally:
        os.waitpid(pid, 0)


def test_a_child_that_runs_its_own_program_counts_in_full():
    child = subprocess.Popen([sys.executable, "-c", ALLOCATE, "120"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        tree = ProcessTree()
        procs = {p.pid: p for p in tree.refresh()}
        assert child.pid in procs and next(iter(procs)) == os.getpid()
        own = tree.resident_bytes(procs[child.pid])
        assert own == procs[child.pid].memory_info().rss > 120 * MB
        assert tree.rss() >= psutil.Process().memory_info().rss + own
        alone = ProcessTree(include_children=False)
        assert [p.pid for p in alone.refresh()] == [os.getpid()]
    finally:
        child.kill()
        child.wait()


def test_a_fork_counts_its_own_pages_not_its_parents():
    ballast = np.ones(300 * MB // 8)  # shared with the fork, copy-on-write
    pid, r = _fork(lambda w: os.write(w, b"x"))
    try:
        tree = ProcessTree()
        fork = next(p for p in tree.refresh() if p.pid == pid)
        assert fork.memory_info().rss > 250 * MB  # RSS would count the parent again
        assert tree.resident_bytes(fork) < 30 * MB
        # The parent writes its pages: the fork now holds the only copy of the old ones.
        ballast[:] = 2.0
        tree.uss_refresh_s = 0.0
        assert tree.resident_bytes(fork) > 250 * MB
    finally:
        _end(pid, r)


def test_a_forks_new_pages_count_at_once_between_uss_reads():
    go_r, go_w = os.pipe()

    def allocate(w):
        os.write(w, b"x")
        os.read(go_r, 1)
        block = bytearray(100 * MB)
        block[::4096] = b"x" * len(block[::4096])
        os.write(w, b"x")
        time.sleep(60)

    pid, r = _fork(allocate)
    try:
        tree = ProcessTree(uss_refresh_s=3600)  # the first USS read is the only one
        fork = next(p for p in tree.refresh() if p.pid == pid)
        before = tree.resident_bytes(fork)
        os.write(go_w, b"x")
        assert os.read(r, 1) == b"x"  # the fork has touched its 100 MB
        assert tree.resident_bytes(fork) - before > 95 * MB
    finally:
        _end(pid, r)
        os.close(go_r)
        os.close(go_w)


def test_an_ended_child_is_dropped_and_a_gone_root_reads_zero():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    tree = ProcessTree()
    assert child.pid in {p.pid for p in tree.refresh()}
    child.kill()
    child.wait()
    tree.rss()
    assert child.pid not in {p.pid for p in tree.refresh()}
    assert tree_rss(child.pid) == 0
    with pytest.raises(psutil.NoSuchProcess):
        ProcessTree(child.pid)


def test_unreadable_memory_is_reported_not_hidden(monkeypatch):
    tree = ProcessTree()
    tree.refresh()

    def denied(self):
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "memory_info", denied)
    assert tree.rss() == 0
    assert tree.unreadable.startswith("AccessDenied")


def test_a_vfork_child_in_its_parents_memory_counts_nothing():
    """``subprocess`` starts a child with ``vfork``: until it execs, it runs in its parent's
    memory, shows the parent's own counters and a USS of the parent's whole private memory.
    Sampled in that moment (measured: 64 of 614,024 samples of a 529 MB process spawning
    children for 60 s read 1,057 MB), it counted the parent twice; a lab's peak did so in CI."""
    from collections import namedtuple

    Mem = namedtuple("Mem", "rss vms shared data")
    parents = Mem(500 * MB, 900 * MB, 40 * MB, 600 * MB)

    class Proc:
        def __init__(self, pid, ppid, mem):
            self.pid, self._ppid, self._mem = pid, ppid, mem

        def ppid(self):
            return self._ppid

        def cmdline(self):
            return ["python", "-m", "ipykernel"]  # not exec'd yet: the parent's program

        def memory_info(self):
            return self._mem

        def memory_full_info(self):
            return type("Full", (), {"uss": 480 * MB})()  # the shared memory's private pages

    tree = ProcessTree(os.getpid())
    parent = Proc(os.getpid(), 1, parents)
    tree._procs = {parent.pid: parent}
    vforked = Proc(10**7, parent.pid, parents)
    assert tree.resident_bytes(vforked) == 0
    forked = Proc(10**7 + 1, parent.pid, Mem(470 * MB, 900 * MB, 38 * MB, 600 * MB))
    assert tree.resident_bytes(forked) == 480 * MB  # a true fork: its USS, as before
    # Caught mid-exec: its kind is read before its memory, so the memory is its new program's
    # (the other order read the parent's counters, then a new command line, and counted them)

    class Execing(Proc):
        def cmdline(self):
            self._mem = Mem(5 * MB, 20 * MB, 2 * MB, 10 * MB)  # the exec lands meanwhile
            return ["python", "-c", "pass"]

    assert tree.resident_bytes(Execing(10**7 + 2, parent.pid, parents)) == 5 * MB
