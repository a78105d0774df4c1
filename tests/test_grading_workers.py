"""The grader holds every grading worker to the submission's budget plus a grace: a worker that
hangs (a library's thread that never stops, a wedged kernel client) is killed with everything it
started, its submission gets 0 with the reason, and the rest of the class is graded. A worker
that dies or fails says so. These results are not saved, so a rerun grades them again."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest
from grading_kit import make_source_lab, solved, write_submission

from mlscale_lab.harness.grading import _run, generate_student_version, grade_submissions

KW = {"timeout": 5, "budget": 2, "memory": None, "progress": False, "no_sandbox": True}
real_grade_payload = _run.grade_payload


@pytest.fixture
def two_submissions(tmp_path):
    labs = tmp_path / "labs"
    student = generate_student_version(make_source_lab(labs))
    subs = tmp_path / "subs"
    for name in ("alice", "bob"):
        write_submission(subs, name, solved(student))
    return labs, subs


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
def test_a_hung_worker_is_killed_with_its_processes_and_the_class_still_graded(two_submissions, tmp_path,
                                                                               monkeypatch):
    labs, subs = two_submissions
    pids = tmp_path / "pids"

    def hang_for_bob(payload):
        if payload["student"] != "bob":
            return real_grade_payload(payload)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids.write_text(f"{os.getpid()} {child.pid}")
        time.sleep(600)

    monkeypatch.setattr(_run, "grade_payload", hang_for_bob)
    monkeypatch.setattr(_run, "WORKER_GRACE", 5.0)
    began = time.monotonic()
    results = {r.student: r for r in grade_submissions(subs, tmp_path / "out", workers=2,
                                                       labs_directory=labs, **{**KW, "budget": 10})}
    assert time.monotonic() - began < 15 + 30  # budget + grace, and slack for a loaded machine
    assert results["alice"].status == "graded" and results["alice"].points == results["alice"].max_points
    bob = results["bob"]
    assert bob.status == "error" and "not done within 15 s" in bob.reason, bob.reason
    assert bob.points == 0 and bob.max_points == 5.0
    assert all(_gone(int(p)) for p in pids.read_text().split())
    assert not (tmp_path / "out" / ".results" / "bob").exists()  # not saved: a rerun grades it again
    assert (tmp_path / "out" / ".results" / "alice").exists()


@pytest.mark.parametrize(("fault", "words"), [
    ("os._exit(3)", "ended without a result (exit code 3)"),
    ("raise RuntimeError('grader bug')", "the grader itself failed (RuntimeError: grader bug)"),
])
def test_a_worker_that_dies_or_fails_is_reported_not_lost(two_submissions, tmp_path, monkeypatch, fault, words):
    labs, subs = two_submissions

    def faulty(payload):
        exec(fault)  # noqa: S102 (the fault under test)

    monkeypatch.setattr(_run, "grade_payload", faulty)
    results = grade_submissions(subs, tmp_path / "out", workers=1, labs_directory=labs, **KW)
    assert [r.status for r in results] == ["error", "error"]
    assert all(words in r.reason and r.points == 0 for r in results), [r.reason for r in results]
