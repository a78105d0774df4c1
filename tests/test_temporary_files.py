"""Nothing is left in the temporary folder: by lab runs, by a grading, by a run killed part-way.

Each command runs in a fresh process with ``TMPDIR`` pointed at an empty folder, which must be
empty again once the command has ended (each temporary folder has one owner that removes it:
see ``mlscale_lab._core.tempdirs``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import psutil
import pytest
from grading_kit import make_source_lab, solved, write_submission

from conftest import ROOT, make_notebook

LABS = ROOT / "labs"

pytestmark = pytest.mark.slow


def _cli(args, tmp, *, env=None, timeout=900) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, "-m", "mlscale_lab", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def _left(tmp) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))


@pytest.fixture
def tmp(tmp_path):
    # Deep on purpose: too deep for a kernel's Unix sockets (a path over 103 bytes), as a
    # nested TMPDIR is, so the runs here also take the sockets' way out of it.
    folder = tmp_path / ("tmp-" + "d" * 60)
    folder.mkdir()
    from mlscale_lab.harness.executor import sockets_fit

    assert not sockets_fit(folder / "mlscale-kernel-abcdefgh")
    return folder


def test_running_labs_leaves_nothing_in_the_temporary_folder(tmp, tmp_path):
    # The command line's own way; every lab of labs/ is also run so, once, by the suite's shared
    # runs (tests/lab_runs.py, checked in tests/test_labs.py). Here lab 00 and a lab that saves
    # a model to its work folder and to a folder of its own, as lab 03 does to weigh its files.
    labs = tmp_path / "labs"
    labs.mkdir()
    shutil.copyfile(LABS / "00_start_here.ipynb", labs / "00_start_here.ipynb")
    make_notebook(labs / "03_saves.ipynb",
                  "import os, tempfile, torch\nfrom mlscale_lab import work_folder\n"
                  "torch.save(torch.nn.Linear(64, 10).state_dict(), work_folder('lab03') / 'model.pt')\n"
                  "torch.save({}, os.path.join(tempfile.mkdtemp(prefix='lab03-'), 'pruned.pt'))")
    out = _cli(["run", "00", "03", "--json"], tmp, env={"MLSCALE_LABS_DIR": str(labs)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert [lab["status"] for lab in json.loads(out.stdout)["labs"]] == ["ok", "ok"]
    assert _left(tmp) == [], "a lab run left files in the temporary folder"


@pytest.mark.parametrize("sandbox", [
    pytest.param(False, id="no sandbox"),
    pytest.param(True, id="sandbox", marks=pytest.mark.requires_bwrap),
])
def test_grading_leaves_nothing_in_the_temporary_folder(tmp, tmp_path, sandbox):
    from mlscale_lab.harness.grading import generate_student_version

    labs = make_source_lab(tmp_path / "labs")
    student = generate_student_version(labs)
    subs = tmp_path / "subs"
    write_submission(subs, "ann", solved(student))
    write_submission(subs, "bob", student)
    args = ["grade", str(subs), "--out", str(tmp_path / "grades"), "--workers", "2", "--json",
            "--timeout", "30", "--budget", "120"]
    out = _cli(args + ([] if sandbox else ["--no-sandbox"]), tmp, env={"MLSCALE_LABS_DIR": str(labs.parent)})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    points = {r["student"]: sum(c["points"] for c in r["cells"]) for r in json.loads(out.stdout)}
    assert points == {"ann": 5.0, "bob": 0.0}
    assert _left(tmp) == [], "a grading left files in the temporary folder"


def test_a_run_killed_part_way_leaves_nothing_once_the_next_one_has_run(tmp, tmp_path):
    # `mlscale-lab run` killed (SIGKILL: no finally, no atexit) while its kernel writes files.
    labs = tmp_path / "labs"
    labs.mkdir()
    marker = tmp_path / "kernel.pid"
    make_notebook(labs / "00_quick.ipynb", "x = 1")
    make_notebook(labs / "01_slow.ipynb",
                  "import os, tempfile\n"
                  "open(os.path.join(tempfile.mkdtemp(prefix='lab01-'), 'model.pt'), 'wb').write(b'x' * 10**6)\n"
                  f"open({str(marker)!r}, 'w').write(str(os.getpid()))",
                  "import time\ntime.sleep(120)")
    env = {**os.environ, "TMPDIR": str(tmp), "MLSCALE_LABS_DIR": str(labs)}
    runner = subprocess.Popen([sys.executable, "-m", "mlscale_lab", "run", "01"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (marker.exists() and marker.read_text()) and time.monotonic() < deadline:
            assert runner.poll() is None, "the run ended before its kernel wrote"
            time.sleep(0.1)
        kernel = psutil.Process(int(marker.read_text()))
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        assert _left(tmp), "the killed run's folders are there until someone sweeps them"
        kernel.wait(timeout=30)  # an orphaned kernel ends itself (it polls its parent)
    finally:
        runner.kill()
        runner.wait()
    out = _cli(["run", "00"], tmp, env={"MLSCALE_LABS_DIR": str(labs)}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert _left(tmp) == [], "the next run must sweep the folders of the killed one"


def test_a_kernel_started_by_hand_and_killed_leaves_its_work_folder_to_the_next_lab(tmp):
    # JupyterLab's kernel killed by the out-of-memory killer: no Python clean-up runs at all.
    code = ("from mlscale_lab import work_folder\n"
            "(work_folder('lab06') / 'model.onnx').write_bytes(b'x' * 10**6)\n"
            "print('ready', flush=True)\nimport time; time.sleep(120)")
    env = {**os.environ, "TMPDIR": str(tmp)}
    kernel = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert kernel.stdout.readline().strip() == "ready"
        kernel.send_signal(signal.SIGKILL)
        kernel.wait(timeout=10)
    finally:
        kernel.kill()
        kernel.wait()
    assert _left(tmp), "killed with SIGKILL: its folder stays until the next owner sweeps"
    nxt = subprocess.run([sys.executable, "-c", "from mlscale_lab import work_folder; work_folder('lab07')"],
                         env=env, timeout=60)
    assert nxt.returncode == 0
    assert _left(tmp) == [], "the next lab's folder sweeps the dead kernel's (and its own goes at exit)"

