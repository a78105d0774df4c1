"""The one process-tree module: find every descendant, and kill a whole tree (with or without
process groups), leaving no process behind."""

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlscale_lab._core.processes import (
    cpu_wait_seconds,
    descendant_pids,
    find_processes,
    kill_descendants,
    kill_process_tree,
)

# A child that starts a grandchild, prints its pid, and sleeps.
PARENT = """
import subprocess, sys, time
g = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(g.pid, flush=True)
time.sleep(60)
"""


def _spawn_tree(new_session=True):
    child = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                             start_new_session=new_session)
    grandchild = int(child.stdout.readline())
    return child, grandchild


def _gone(pid, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("fast_path", [True, False], ids=["proc", "psutil"])
def test_descendants_include_grandchildren(monkeypatch, fast_path):
    import mlscale_lab._core.processes as proctree

    if not fast_path:  # macOS, Windows: no /proc children lists
        monkeypatch.setattr(proctree, "_children_from_proc", lambda pid: None)
    child, grandchild = _spawn_tree()
    try:
        found = descendant_pids(os.getpid())
        assert child.pid in found and grandchild in found
        assert descendant_pids(child.pid) == [grandchild]
    finally:
        kill_process_tree(child.pid)
        child.wait()


@pytest.mark.parametrize("groups", [True, False], ids=["process groups", "no process groups"])
def test_kill_process_tree_leaves_nothing(monkeypatch, groups):
    if not groups:  # Windows has neither killpg nor getpgid
        monkeypatch.delattr(os, "killpg")
        monkeypatch.delattr(os, "getpgid")
    child, grandchild = _spawn_tree()
    assert kill_process_tree(child.pid) == 2
    child.wait(timeout=5)
    assert _gone(grandchild), "the grandchild outlived the kill"


def test_kill_never_signals_the_callers_own_group():
    # A child in our own process group: killing its "group" would kill this test run.
    child, grandchild = _spawn_tree(new_session=False)
    assert kill_process_tree(child.pid) == 2
    child.wait(timeout=5)
    assert _gone(grandchild) and psutil.Process().is_running()


def test_kill_of_nothing_is_safe():
    assert kill_process_tree(None) == 0
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert kill_process_tree(done.pid) == 0


def test_kill_descendants_ends_the_tree_below_a_process_and_spares_it():
    child, grandchild = _spawn_tree()
    try:
        assert kill_descendants(child.pid) == 1
        assert _gone(grandchild), "the grandchild outlived the kill"
        assert child.poll() is None, "the process itself must live on"
    finally:
        kill_process_tree(child.pid)
        child.wait()


def test_find_processes_skips_pids_that_ended():
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert [p.pid for p in find_processes([os.getpid(), done.pid])] == [os.getpid()]


# Spins for 0.6 s of its own CPU time, says so, then sleeps (so its statistics can be read).
SPIN_THEN_SLEEP = """
import time
t = time.process_time()
while time.process_time() - t < 0.6:
    pass
print("done", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="needs Linux's scheduler statistics")
def test_cpu_wait_counts_the_time_a_process_waited_for_a_cpu_another_one_held():
    def on_cpu0(code):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        os.sched_setaffinity(proc.pid, {0})
        return proc

    spinners = [on_cpu0("while True: pass") for _ in range(2)]
    try:
        time.sleep(0.2)  # spinning on CPU 0 before the measured process wants it
        began = time.monotonic()
        shared = on_cpu0(SPIN_THEN_SLEEP)
        try:
            assert shared.stdout.readline().strip() == "done"
            wall = time.monotonic() - began
            waited = cpu_wait_seconds(shared.pid)
        finally:
            kill_process_tree(shared.pid)
    finally:
        for spinner in spinners:
            kill_process_tree(spinner.pid)
    # a third of one CPU: about 1.2 s waiting for 0.6 s running (more than its CPU time, the
    # other number in the file), and never more than it lived
    assert 0.9 <= waited <= wall, (waited, wall)
    assert cpu_wait_seconds(shared.pid) is None  # gone: nothing to say
