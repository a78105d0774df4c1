"""A class graded on a real Dask cluster (``dask scheduler`` and ``dask worker`` processes on
loopback): a submission whose called answer hangs is ended by its limits on the worker, a
grading that wedges past the budget plus grace is killed there with everything it started, the
rest of the class is graded, and no process is left once the cluster is gone."""

from __future__ import annotations

import contextlib
import os
import time

import psutil
import pytest
from grading_kit import dask_cluster, make_source_lab, sandbox_kw, solved, write_submission

from mlscale_lab.harness.grading import generate_student_version, grade_submissions

pytestmark = pytest.mark.slow

HANG = ("import time\ndef double(x):\n    while True:\n        try:\n            time.sleep(1)\n"
        "        except BaseException:\n            pass\n")
# A grading that wedges (as jupyter_client's heartbeat thread once wedged one): loaded into the
# workers' processes through PYTHONPATH, it makes grading the student "wedge" hang, with a child
# process of its own, so only the worker-level deadline can end it.
WEDGE = '''
import importlib.util, os, subprocess, sys, time

class _Wedge:
    def find_spec(self, name, path=None, target=None):
        if name != "mlscale_lab.harness.grading._grade":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            real = module.grade_submission

            def wedged(kit, submission, student, *args, **kwargs):
                if student == "wedge":
                    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
                    with open(os.environ["WEDGE_PIDS"], "a") as fh:
                        fh.write(f"{os.getpid()} {child.pid}\\n")
                    time.sleep(600)
                return real(kit, submission, student, *args, **kwargs)

            module.grade_submission = wedged

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Wedge())
'''


def _tree(procs) -> list[psutil.Process]:
    found = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(p.pid).children(recursive=True)
    return found


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_a_hanging_answer_and_a_wedged_grading_end_on_the_worker_and_the_class_goes_on(tmp_path):
    labs = make_source_lab(tmp_path / "labs")
    student = generate_student_version(labs)
    subs = tmp_path / "subs"
    write_submission(subs, "ann", solved(student))
    write_submission(subs, "hangs", solved(student, answers={"lab99-double": HANG}))
    write_submission(subs, "wedge", solved(student))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(WEDGE)
    pids = tmp_path / "wedge-pids"
    # the scheduler's and workers' scratch space in the test's folder (Dask's default leaves
    # dask-scratch-space with its lock files in the temporary folder)
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False", "PYTHONPATH": str(tmp_path / "site"),
           "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask"),
           "WEDGE_PIDS": str(pids)}
    with dask_cluster(2, env) as (address, procs):
        began = time.monotonic()
        results = {r.student: r for r in grade_submissions(
            subs, tmp_path / "out", labs_directory=labs.parent, scheduler=address, timeout=6, budget=15,
            grace=5, memory=2 * 1024**3, progress=False, **sandbox_kw())}
        took = time.monotonic() - began
        started = _tree(procs)  # the workers' grading processes, zygotes and what is left of them
        wedged = [psutil.Process(int(p)) for p in pids.read_text().split() if psutil.pid_exists(int(p))]
        assert not any(_alive(p) for p in wedged), "the wedged grading and its child were killed on the worker"
    assert took < 15 + 5 + 60, took
    ann, hangs, wedge = results["ann"], results["hangs"], results["wedge"]
    assert ann.status == "graded" and ann.points == ann.max_points == 5.0, ann.reason
    assert hangs.status == "timeout" and hangs.points == 0, (hangs.status, hangs.reason)
    assert wedge.status == "error" and "not done within 20 s" in wedge.reason and wedge.points == 0, wedge.reason
    assert not (tmp_path / "out" / ".results" / "wedge").exists(), "not saved: a rerun grades it again"
    time.sleep(1)
    assert not [p for p in started if _alive(p)], "no process of the grading outlives the cluster"
    assert all(p.poll() is not None for p in procs)
