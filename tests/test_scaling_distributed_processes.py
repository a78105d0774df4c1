"""No training process outlives what started it: the end of a block, a failure, a dead worker,
an interrupt, a dead parent; and groups side by side never share a port."""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from distributed_tasks import die_on, fail_on, recall, remember, sleep, whoami
from nbformat.v4 import new_code_cell, new_notebook

from mlscale_lab.scaling import distributed as dd

pytestmark = pytest.mark.slow
TESTS = Path(__file__).resolve().parent


def _gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def test_a_group_runs_tasks_by_rank_keeps_state_and_ends_with_its_block():
    with dd.start_workers(2) as g:
        ranks = g.run(whoami)
        assert [r[:2] for r in ranks] == [(0, 2), (1, 2)]
        assert [r[2] for r in ranks] == g.pids()
        g.run(remember, "kept")
        assert g.run(recall) == ["kept", "kept"]
        assert g.alive and g in dd.live_groups()
        pids = g.pids()
    assert not g.alive and g not in dd.live_groups()
    assert _gone(pids)
    assert not dd.leftover_processes()
    with pytest.raises(dd.WorkerError, match="has ended"):
        g.run(whoami)


def test_forked_workers_run_tasks_share_the_parents_pages_and_end_with_their_block():
    from mlscale_lab._core.memory import tree_rss

    before = tree_rss()
    with dd.start_workers(2, start_method="fork") as g:
        assert [r[:2] for r in g.run(whoami)] == [(0, 2), (1, 2)]
        # each fork counts the pages it wrote, not a second copy of torch
        assert tree_rss() - before < 2 * psutil.Process().memory_info().rss
        pids = g.pids()
    assert _gone(pids) and not dd.leftover_processes()
    with pytest.raises(ValueError, match="start_method"):
        dd.start_workers(2, start_method="threads")


def test_a_failing_task_ends_the_group_with_its_traceback():
    with dd.start_workers(2) as g:
        pids = g.pids()
        with pytest.raises(dd.WorkerError, match="deliberate failure on rank 1") as err:
            g.run(fail_on, 1)
        assert "Traceback" in str(err.value)
        assert not g.alive
    assert _gone(pids) and not dd.leftover_processes()


def test_a_worker_killed_mid_task_is_reported_and_the_others_end():
    with dd.start_workers(2) as g:
        pids = g.pids()
        with pytest.raises(dd.WorkerError, match="signal 9"):
            g.run(die_on, 0)
    assert _gone(pids) and not dd.leftover_processes()


def test_a_keyboard_interrupt_while_waiting_ends_every_worker(request):
    g = dd.start_workers(2)
    pids = g.pids()
    # interrupt_main does nothing where SIGINT is ignored (a test before this one in the same
    # worker process may have left it so): the kernel's handler, as IPython has it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt), g:
            g.run(sleep, 60)
    finally:
        timer.cancel()
    assert _gone(pids) and not dd.leftover_processes()


def test_a_task_over_its_timeout_ends_the_group():
    with dd.start_workers(2) as g:
        pids = g.pids()
        with pytest.raises(TimeoutError, match="did not answer"):
            g.run(sleep, 60, timeout=1.0)
    assert _gone(pids)


def test_workers_ignore_the_notebooks_interrupt_signal_the_kernel_decides():
    with dd.start_workers(2) as g:
        for pid in g.pids():
            os.kill(pid, signal.SIGINT)
        time.sleep(0.5)
        assert g.alive and g.run(whoami)


def test_two_groups_side_by_side_take_their_own_ports():
    with dd.start_workers(2) as a, dd.start_workers(2) as b:
        assert a.port != b.port
        assert [r[0] for r in a.run(whoami)] == [0, 1] == [r[0] for r in b.run(whoami)]


def test_workers_die_with_a_parent_killed_outright():
    script = ("import sys, time\n"
              "from mlscale_lab.scaling import distributed as dd\n"
              "if __name__ == '__main__':\n"
              "    g = dd.start_workers(2)\n"
              "    print(*g.pids(), flush=True)\n"
              "    time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
        parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the lifeline is left
        parent.wait(10)
        assert _gone(pids, timeout=15), "workers outlived their parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_bad_arguments_are_refused_before_any_process_starts():
    with pytest.raises(ValueError, match="world_size"):
        dd.start_workers(0)
    with pytest.raises(TypeError):
        dd.start_workers(2.0)
    assert not dd.leftover_processes()


def test_a_notebook_cell_interrupted_or_failing_leaves_no_worker(tmp_path):
    """In a real kernel: a cell interrupted at its timeout and a cell whose task fails."""
    from nbclient import NotebookClient

    from mlscale_lab.harness.executor import KernelLaunch, execute

    cells = [
        "from mlscale_lab.scaling import distributed as dd\nfrom distributed_tasks import sleep, fail_on",
        "with dd.start_workers(2) as w:\n    w.run(sleep, 120)",  # interrupted by the executor
        "print('left after interrupt:', dd.leftover_processes())",
        "with dd.start_workers(2) as w:\n    w.run(fail_on, 0)",  # raises WorkerError
        "print('left after failure:', dd.leftover_processes())",
    ]
    nb = new_notebook(cells=[new_code_cell(s) for s in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = execute(nb, KernelLaunch(cwd=tmp_path, env=env), budget=300, cell_timeout=20,
                   make_client=lambda n: NotebookClient(n, allow_errors=True), monitor_interval=None)
    assert done.status == "completed", done
    assert 1 in done.timed_out_cells
    text = lambda i: "".join(o.get("text", "") for o in nb.cells[i].outputs)  # noqa: E731
    assert "left after interrupt: []" in text(2), text(2)
    assert any(o.get("ename") == "WorkerError" for o in nb.cells[3].outputs)
    assert "left after failure: []" in text(4), text(4)
    nbformat.validate(nb)
