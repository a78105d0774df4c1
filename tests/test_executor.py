"""The one executor: budgets, interrupts, a killed process tree, the failing cell named."""

from __future__ import annotations

import os
import sys

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from mlscale_lab.harness.executor import KernelLaunch, describe_cell, execute


def _nb(*sources):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _launch(tmp_path, **kw):
    return KernelLaunch(cwd=tmp_path, env=dict(os.environ), **kw)


def _errors_allowed(nb):
    from nbclient import NotebookClient

    return NotebookClient(nb, allow_errors=True)


def test_completed_run_measures_the_kernels_tree_and_runs_in_its_folder(tmp_path):
    nb = _nb("import os\nprint(os.getcwd())", "import numpy as np\nx = np.ones(120 * 1024**2 // 8)\n"
             "import time; time.sleep(0.4)")
    done = execute(nb, _launch(tmp_path), budget=120)
    assert done.status == "completed" and done.completed, done
    assert nb.cells[0].outputs[0]["text"].strip() == str(tmp_path)
    assert done.peak_memory_bytes > 120 * 1024**2
    assert done.not_finished == [] and done.timed_out_cells == []


def test_a_cell_error_stops_the_default_client_and_names_the_cell(tmp_path):
    nb = _nb("x = 1", "raise ValueError('deliberate')", "y = 2")
    done = execute(nb, _launch(tmp_path), budget=120, monitor_interval=None)
    assert done.status == "cell_error"
    assert done.cell == 1 and done.where.startswith("cell 1")
    assert done.error == "ValueError: deliberate"
    assert done.not_finished == [1, 2]


def test_a_cell_over_its_timeout_is_interrupted_and_later_cells_still_run(tmp_path):
    nb = _nb("import time\ntime.sleep(60)", "print('after')")
    done = execute(nb, _launch(tmp_path), budget=120, cell_timeout=2, make_client=_errors_allowed,
                   monitor_interval=None)
    assert done.status == "completed", done
    assert done.timed_out_cells == [0]
    assert done.seconds < 30
    assert "after" in nb.cells[1].outputs[0]["text"]


def test_over_budget_kills_every_process_the_kernel_started(tmp_path):
    # A child process that outlives its parent's SIGINT, and a cell that ignores interrupts.
    nb = _nb(
        "import subprocess, sys, signal\n"
        f"child = subprocess.Popen([{sys.executable!r}, '-c', 'import time; time.sleep(300)'])\n"
        "print(child.pid, flush=True)",
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
    )
    done = execute(nb, _launch(tmp_path), budget=8, cell_timeout=2, make_client=_errors_allowed,
                   monitor_interval=None)
    assert done.status == "over_budget", done
    assert done.cell == 1 and done.not_finished == [1]
    child = int(nb.cells[0].outputs[0]["text"].split()[0])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE


def test_a_kernel_that_exits_is_kernel_died(tmp_path):
    nb = _nb("import os\nos._exit(3)", "x = 1")
    done = execute(nb, _launch(tmp_path), budget=120, make_client=_errors_allowed, monitor_interval=None)
    assert done.status == "kernel_died"
    assert done.not_finished == [0, 1]


def test_a_kernel_that_cannot_start_is_failed_with_its_log(tmp_path):
    log = tmp_path / "kernel.log"
    launch = _launch(tmp_path, log=log, kernel_cmd=[sys.executable, "-c", "import sys; "
                                                     "sys.exit('no kernel here: {connection_file}')"])
    nb = _nb("x = 1")
    done = execute(nb, launch, budget=60, monitor_interval=None)
    assert done.status in ("failed", "kernel_died"), done
    assert done.cell is None and done.where == "before any cell ran"
    assert "no kernel here" in done.kernel_log


def test_the_launch_prefix_runs_in_front_of_the_kernel(tmp_path):
    from mlscale_lab.harness.confine import can_cap_address_space, launch_prefix

    if not can_cap_address_space():
        pytest.skip("no RLIMIT_AS on this platform")
    prefix = launch_prefix(as_bytes=3 * 1024**3)
    nb = _nb("import resource\nprint(resource.getrlimit(resource.RLIMIT_AS)[0])")
    done = execute(nb, _launch(tmp_path, prefix=prefix, connection_dir=tmp_path), budget=120)
    assert done.completed, done
    assert int(nb.cells[0].outputs[0]["text"]) == 3 * 1024**3


def test_bad_budget_is_refused_at_the_door(tmp_path):
    with pytest.raises(ValueError, match=r"execute\(budget=0\)"):
        execute(_nb("x = 1"), _launch(tmp_path), budget=0)


def test_describe_cell_prefers_the_grade_id():
    nb = _nb("assert True")
    nb.cells[0].metadata["nbgrader"] = {"grade_id": "lab00-tests"}
    assert describe_cell(nb, 0) == "cell 0 (lab00-tests)"
    assert describe_cell(nbformat.v4.new_notebook(), 3) == "before any cell ran"


def test_a_kernel_that_ends_itself_is_told_by_its_process_with_no_heartbeat_thread(tmp_path):
    # jupyter_client's heartbeat thread could hang `stop_channels` for good after a submission
    # ended its kernel (a grading worker waited there until CI's time ran out): none is started.
    from nbclient import NotebookClient

    clients = []

    class Recording(NotebookClient):
        def start_new_kernel_client(self):
            kc = super().start_new_kernel_client()
            clients.append(kc)
            return kc

    nb = _nb("x = 1", "import os\nos._exit(0)", "y = 2")
    done = execute(nb, _launch(tmp_path), budget=120, make_client=lambda nb: Recording(nb),
                   monitor_interval=None)
    assert done.status == "kernel_died" and done.cell == 1, done
    assert done.seconds < 30
    kc = clients[0]
    assert kc.shell_channel is not None and kc.iopub_channel is not None
    assert kc.hb_channel.ident is None  # the heartbeat thread never started
