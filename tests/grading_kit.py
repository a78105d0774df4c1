"""Helpers for the grading tests (no tests here): a synthetic lab and submissions made from it."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SECRET = "SECRET-HIDDEN"

DOUBLE_SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
MEAN_SOLUTION = (
    "def mean_of(xs):\n    ### BEGIN SOLUTION\n    return float(np.mean(np.asarray(xs, dtype=float)))\n"
    "    ### END SOLUTION"
)
DOUBLE_TESTS = f"""# Public tests
assert float(double(2)) == 4.0, "double(2) should be 4"
print("public tests passed")
### BEGIN HIDDEN TESTS
assert float(double(21)) == 42.0, "{SECRET}-double-21"
assert float(double(-1.5)) == -3.0, "{SECRET}-double-negative"
### END HIDDEN TESTS"""
MEAN_TESTS = f"""assert float(mean_of([1, 2, 3])) == 2.0, "the mean of 1, 2, 3 is 2"
print("public tests passed")
### BEGIN HIDDEN TESTS
assert abs(float(mean_of([0.5, 1.5, 7.0])) - 3.0) < 1e-9, "{SECRET}-mean-odd"
### END HIDDEN TESTS"""
POINTS = {"lab99-double-tests": 2.0, "lab99-mean-tests": 3.0}


def _answer(gid, source):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False,
                                 "grade_id": gid, "schema_version": 3}
    return cell


def _tests(gid, source, points):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": points,
                                 "grade_id": gid, "schema_version": 3}
    return cell


def make_source_lab(labs_dir: Path) -> Path:
    """Write ``99_synthetic.ipynb`` (two exercises, public and hidden tests) into ``labs_dir``."""
    labs_dir.mkdir(parents=True, exist_ok=True)
    cells = [
        new_markdown_cell("# Lab 99: synthetic"),
        new_code_cell("import numpy as np\nSEED = 0"),
        _answer("lab99-double", DOUBLE_SOLUTION),
        _tests("lab99-double-tests", DOUBLE_TESTS, 2),
        new_markdown_cell("Now the mean."),
        _answer("lab99-mean", MEAN_SOLUTION),
        _tests("lab99-mean-tests", MEAN_TESTS, 3),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    for i, cell in enumerate(nb.cells):
        cell.id = f"c{i}"
    path = labs_dir / "99_synthetic.ipynb"
    nbformat.write(nb, str(path))
    return path


def find_cell(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def variant(student_nb, answers: dict[str, str] | None = None, *, insert_before: dict | None = None,
            edit=None):
    """A submission: the student version with answer cells replaced, cells inserted, or an edit."""
    nb = copy.deepcopy(student_nb)
    for gid, src in (answers or {}).items():
        nb.cells[find_cell(nb, gid)].source = src
    for gid, src in (insert_before or {}).items():
        cell = new_code_cell(src)
        cell.id = f"extra-{gid}"
        nb.cells.insert(find_cell(nb, gid), cell)
    if edit:
        edit(nb)
    return nb


def solved(student_nb, **kw):
    answers = {"lab99-double": "def double(x):\n    return 2 * x",
               "lab99-mean": "def mean_of(xs):\n    return float(np.mean(np.asarray(xs, dtype=float)))"}
    answers.update(kw.pop("answers", {}))
    return variant(student_nb, answers, **kw)


def write_submission(root: Path, student: str, nb, lab: str = "99_synthetic") -> Path:
    path = root / student / f"{lab}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def sandbox_kw() -> dict:
    """Grade in the sandbox where bubblewrap works, without it elsewhere (scores, statuses,
    restored tests and feedback are still tested on a machine without bubblewrap)."""
    from conftest import bwrap_works

    return {"no_sandbox": not bwrap_works()}


def free_port() -> int:
    """A free localhost TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dask_cluster(workers: int, env: dict):
    """A scheduler and ``workers`` single-threaded workers; yields (address, their processes)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True, "env": env}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], **quiet)]
    try:
        for _ in range(workers):
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                           "--host", "127.0.0.1", "--dashboard-address", ":0", "--no-nanny"],
                                          **quiet))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=90)
        yield address, procs
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        # One deadline for all: a worker whose task thread is still wedged (the test's wedge
        # sleeps in it) never finishes its graceful close, and waiting 20 s a worker added 40 s.
        deadline = time.monotonic() + 5
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
