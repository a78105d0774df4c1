"""The one executor: budgets, interrupts, a killed process tree, the failing cell named."""

from __future__ import annotations

import os
import sys
from pathlib import Path

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
    # the time its cells' thread waited for a CPU is part of the run's time (Linux says it)
    assert done.cpu_wait_seconds is None or 0 <= done.cpu_wait_seconds <= done.seconds


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


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets are POSIX's")
def test_a_temporary_folder_too_deep_for_unix_sockets_moves_them_and_a_deep_folder_is_refused(
        tmp_path, monkeypatch):
    import tempfile

    from mlscale_lab._core.tempdirs import remove_tempdir
    from mlscale_lab.harness.executor import socket_folder, sockets_fit

    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    assert not sockets_fit(deep)
    with pytest.raises(ValueError, match="over 103 bytes; use socket_folder"):
        execute(_nb("x = 1"), _launch(tmp_path, connection_dir=deep), budget=60)
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    sockets = socket_folder()
    try:
        assert sockets_fit(sockets) and not sockets.is_relative_to(deep)
        nb = _nb("import json\nfrom ipykernel.connect import get_connection_file\n"
                 "info = json.load(open(get_connection_file()))\n"
                 "print(get_connection_file(), info['transport'], info['ip'], sep='\\n')")
        done = execute(nb, _launch(tmp_path, connection_dir=sockets), budget=120, monitor_interval=None)
        assert done.completed, done
        connection, transport, ip = nb.cells[0].outputs[0]["text"].split()
        assert Path(connection).parent == sockets.resolve()
        assert transport == "ipc" and Path(ip).parent == sockets.resolve()
    finally:
        remove_tempdir(sockets)
    assert not sockets.exists()


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


def test_a_run_keeps_the_widgets_last_state_for_jupyterlab_to_draw(tmp_path):
    nb = _nb("import ipywidgets\nslider = ipywidgets.IntSlider(value=3, max=10)\nslider",
             "slider.value = 7")
    done = execute(nb, _launch(tmp_path), budget=120)
    assert done.completed, done
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    sliders = [w["state"] for w in state.values() if w["model_name"] == "IntSliderModel"]
    assert [s["value"] for s in sliders] == [7]  # the value after the last cell, not the first
    shown = nb.cells[0].outputs[0]["data"]["application/vnd.jupyter.widget-view+json"]
    assert shown["model_id"] in state


# A notebook that writes temporary files the usual ways, and a child process that writes too.
WRITES_TEMP_FILES = (
    "import os, subprocess, sys, tempfile\n"
    "scratch = tempfile.mkdtemp(prefix='lab99-')\n"
    "open(os.path.join(scratch, 'model.pt'), 'wb').write(b'x' * 1_000_000)\n"
    "kept = tempfile.NamedTemporaryFile(delete=False)\n"
    "subprocess.run([sys.executable, '-c', 'import tempfile; tempfile.mkdtemp()'], check=True)\n"
    "print(tempfile.gettempdir(), os.environ['TMPDIR'])"
)


@pytest.mark.parametrize("ending, status", [
    ("x = 1", "completed"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "kernel_died"),
    ("while True:\n    pass", "over_budget"),
], ids=["completed", "kernel killed", "over budget"])
def test_the_kernels_temporary_folder_is_its_own_and_goes_with_it(tmp_path, ending, status):
    parent = tmp_path / "tmp"
    parent.mkdir()
    nb = _nb(WRITES_TEMP_FILES, ending)
    done = execute(nb, _launch(tmp_path, tmp_parent=parent), budget=10, monitor_interval=None,
                   make_client=_errors_allowed)
    assert done.status == status, done
    seen, env = nb.cells[0].outputs[-1]["text"].split()
    assert seen == env and os.path.dirname(seen) == str(parent), "the kernel writes in its own folder"
    assert list(parent.iterdir()) == [], "the kernel's temporary folder outlived it"
