"""Grading a class: resumable results, the gradebook export, course-private tests and a grading
seed that feedback never shows, and a class graded on a Dask cluster of separate processes."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import nbformat
import pytest
from grading_kit import (
    SECRET,
    dask_cluster,
    make_source_lab,
    sandbox_kw,
    solved,
    write_submission,
)

from mlscale_lab.harness.grading import generate_student_version, grade_submissions

pytestmark = pytest.mark.slow
GiB = 1024**3
KW = {"timeout": 30, "budget": 120, "memory": 2 * GiB, "progress": False}

PRIVATE_TEST = f'assert float(double(1000)) == 2000.0, "{SECRET}-private-thousand"\n'
# The seed reaches the tests only: a test cell that builds its data from it.
SEED_TEST = """_seed = globals().get("GRADING_SEED", SEED)
import numpy as _np
_xs = _np.random.default_rng(_seed).integers(1, 100, size=5)
print("seed-derived data checked", len(_xs))
assert all(float(double(x)) == 2.0 * x for x in _xs)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    labs = make_source_lab(root / "labs")
    return {"root": root, "labs": labs, "student": generate_student_version(labs)}


def _rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _class(lab, where: Path) -> Path:
    subs = where / "subs"
    write_submission(subs, "ann", solved(lab["student"]))
    write_submission(subs, "bob", solved(lab["student"], answers={"lab99-double": "def double(x):\n    return 3 * x"}))
    write_submission(subs, "cyd", lab["student"])
    return subs


def _saved(out: Path) -> dict[str, int]:
    """When each student's result was last written (ns): it changes only when they are graded."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / ".results").rglob("*.json")}


def test_rerun_grades_only_what_is_new_or_changed_and_force_regrades(lab, tmp_path):
    subs, out = _class(lab, tmp_path), tmp_path / "out"
    first = grade_submissions(subs, out, labs_directory=lab["labs"].parent, **KW, **sandbox_kw())
    assert {r.student: r.points for r in first} == {"ann": 5.0, "bob": 3.0, "cyd": 0.0}
    saved = sorted(p.relative_to(out / ".results").as_posix() for p in (out / ".results").rglob("*.json"))
    assert saved == ["ann/99_synthetic.json", "bob/99_synthetic.json", "cyd/99_synthetic.json"]
    rows, written = _rows(out), _saved(out)

    t0 = time.perf_counter()
    again = grade_submissions(subs, out, labs_directory=lab["labs"].parent, **KW, **sandbox_kw())
    assert time.perf_counter() - t0 < 5, "nothing new: no kernel starts"
    assert [r.as_dict() for r in again] == [r.as_dict() for r in first], "results reused"
    assert _saved(out) == written and _rows(out) == rows

    # bob fixes his answer: only bob is graded again
    write_submission(subs, "bob", solved(lab["student"]))
    changed = {r.student: r for r in grade_submissions(subs, out, labs_directory=lab["labs"].parent,
                                                       **KW, **sandbox_kw())}
    assert changed["bob"].points == 5.0
    now = _saved(out)
    assert now["bob"] != written["bob"] and now["ann"] == written["ann"] and now["cyd"] == written["cyd"]

    forced = grade_submissions(subs, out, labs_directory=lab["labs"].parent, force=True, **KW, **sandbox_kw())
    assert all(_saved(out)[student] != now[student] for student in ("ann", "bob", "cyd"))
    assert [r.points for r in forced] == [5.0, 5.0, 0.0]


def test_gradebook_has_one_row_a_student_and_one_column_a_lab(lab, tmp_path):
    subs = _class(lab, tmp_path)
    # a second lab, so the export has two columns; dan did not submit it
    other = lab["labs"].parent / "98_other.ipynb"
    nb = nbformat.read(str(lab["labs"]), as_version=4)
    nbformat.write(nb, str(other))
    try:
        for s in ("ann", "bob"):
            write_submission(subs, s, solved(generate_student_version(other)), lab="98_other")
        write_submission(subs, "dan", solved(lab["student"]))
        grade_submissions(subs, tmp_path / "out", labs_directory=lab["labs"].parent, workers=2,
                          **KW, **sandbox_kw())
    finally:
        other.unlink()
    with open(tmp_path / "out" / "gradebook.csv", newline="") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["student", "98_other (5)", "99_synthetic (5)"]
    assert table[1:] == [["ann", "5", "5"], ["bob", "5", "3"], ["cyd", "", "0"], ["dan", "", "5"]]


def test_private_tests_and_grading_seed_count_but_never_show(lab, tmp_path):
    subs = tmp_path / "subs"
    # passes the lab's public and hidden tests, fails the course's private one
    write_submission(subs, "gamer", solved(lab["student"], answers={
        "lab99-double": "def double(x):\n    return 2 * x if x < 1000 else 0"}))
    write_submission(subs, "honest", solved(lab["student"]))
    # tries to print the grading seed from inside its answer
    write_submission(subs, "peek", solved(lab["student"], answers={
        "lab99-double": "import os\ndef double(x):\n    print('SEED IS', os.environ.get('MLSCALE_GRADING_SEED'))\n"
                        "    return 2 * x"}))
    private = tmp_path / "private"
    private.mkdir()
    (private / "lab99-double-tests.py").write_text(PRIVATE_TEST + SEED_TEST)
    seed = 918273645
    results = {r.student: r for r in grade_submissions(
        subs, tmp_path / "out", labs_directory=lab["labs"].parent, tests=private, seed=seed, workers=2,
        **KW, **sandbox_kw())}
    points = {s: {c.grade_id: c.points for c in r.cells} for s, r in results.items()}
    assert points["honest"]["lab99-double-tests"] == 2 and points["peek"]["lab99-double-tests"] == 2
    assert points["gamer"]["lab99-double-tests"] == 0
    assert "private-thousand" in next(c.reason for c in results["gamer"].cells
                                      if c.grade_id == "lab99-double-tests"), "the instructor sees why"
    for r in results.values():
        html = Path(r.feedback).read_text(encoding="utf-8")
        assert SECRET not in html and "double(1000)" not in html and "default_rng(_seed)" not in html
        assert str(seed) not in html
    assert "A hidden test failed" in Path(results["gamer"].feedback).read_text(encoding="utf-8")
    assert "seed-derived data checked" in Path(results["honest"].feedback).read_text(encoding="utf-8")


def test_private_test_for_an_unknown_exercise_is_refused(lab, tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    (private / "lab99-nope.py").write_text("assert True\n")
    with pytest.raises(ValueError, match="lab99-nope.py names no test cell"):
        grade_submissions(_class(lab, tmp_path), tmp_path / "out", labs_directory=lab["labs"].parent,
                          tests=private, **KW, **sandbox_kw())


def test_a_class_graded_on_a_dask_cluster_gets_the_same_rows_as_a_local_run(lab, tmp_path):
    subs = _class(lab, tmp_path)
    write_submission(subs, "dee", solved(lab["student"], answers={
        "lab99-double": "int = lambda *a: 4\ndef double(x):\n    return 3 * x"}))
    local = grade_submissions(subs, tmp_path / "local", labs_directory=lab["labs"].parent, **KW, **sandbox_kw())
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False",
           "DASK_TEMPORARY_DIRECTORY": str(tmp_path / "dask")}  # not dask-scratch-space in /tmp
    with dask_cluster(2, env) as (address, procs):
        remote = grade_submissions(subs, tmp_path / "remote", labs_directory=lab["labs"].parent,
                                   scheduler=address, **KW, **sandbox_kw())
    assert all(p.poll() is not None for p in procs), "no scheduler or worker is left running"
    assert [(r.student, r.status, r.points) for r in remote] == [(r.student, r.status, r.points) for r in local]
    assert _rows(tmp_path / "remote") == _rows(tmp_path / "local")
    assert {r.student: r.status for r in remote}["dee"] == "flagged"
    assert all(Path(r.feedback).is_file() and str(tmp_path / "remote") in r.feedback for r in remote)
