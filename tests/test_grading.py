"""Autograding a class safely: sandbox, limits, tampering, warnings, hidden tests, CSV, feedback.

One batch of synthetic submissions is graded once (module fixture, two workers) and each test
reads its part of the result; the budget test grades its own batch with a short budget.
"""

from __future__ import annotations

import csv
import re
import tempfile
import time

import nbformat
import psutil
import pytest
from grading_kit import (
    POINTS,
    SECRET,
    find_cell,
    make_source_lab,
    sandbox_kw,
    solved,
    variant,
    write_submission,
)

from mlscale_lab.harness.grading import (
    STATUSES,
    SandboxUnavailableError,
    generate_student_version,
    grade_submissions,
    hidden_test_lines,
)

pytestmark = pytest.mark.slow
GiB = 1024**3
TIMEOUT = 10  # per cell, for cells that take well under a second: room for a busy machine

# A submission that tries to read what it must not see; it prints what it finds.
SNOOP = """
import glob, os
for target in [{source!r}, {repo_lab!r}]:
    try:
        text = open(target).read()
        print("LEAK" + "ED", len(text), text[:2000])
    except OSError as exc:
        print("blocked:", type(exc).__name__)
dbs = glob.glob("/tmp/mlscale-*/**/*.db", recursive=True) + glob.glob("/tmp/mlscale-*/*.db")
print("gradebooks visible:", len(dbs))
for db in dbs:
    print("LEAK" + "ED", open(db, "rb").read()[:200])
others = glob.glob(os.path.join({subs!r}, "*"))
print("submissions visible:", len(others))
print("files here:", sorted(os.listdir(".")))
"""


def _tamper_pass(nb):
    nb.cells[find_cell(nb, "lab99-double-tests")].source = "pass"


def _tamper_delete(nb):
    del nb.cells[find_cell(nb, "lab99-double-tests")]


def _tamper_duplicate(nb):
    i = find_cell(nb, "lab99-double-tests")
    dup = nbformat.from_dict(nbformat.v4.new_code_cell(nb.cells[i].source))
    dup.metadata = dict(nb.cells[i].metadata)
    dup.id = "dup"
    nb.cells.insert(i + 1, dup)


WRONG_DOUBLE = {"lab99-double": "def double(x):\n    return 3 * x if x != 2 else 4"}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade a batch of synthetic submissions once; return (results by student, out dir, ...)."""
    from pathlib import Path

    root = tmp_path_factory.mktemp("grading")
    labs = make_source_lab(root / "labs")
    student = generate_student_version(labs)
    subs = root / "submitted"
    repo_lab = str(Path(__file__).resolve().parents[1] / "labs" / "00_start_here.ipynb")
    cases = {
        "correct": solved(student),
        "blank": student,
        "wrong": variant(student, WRONG_DOUBLE),
        "userwarning": solved(student, answers={"lab99-double": (
            "import warnings\ndef double(x):\n    warnings.warn('x may be large', UserWarning)\n    return 2 * x")}),
        "convergence": solved(student, answers={"lab99-mean": (
            "from sklearn.linear_model import LogisticRegression\n"
            "def mean_of(xs):\n"
            "    X = np.arange(20, dtype=float).reshape(10, 2); y = np.arange(10) % 2\n"
            "    LogisticRegression(max_iter=1).fit(X, y)  # warns: ConvergenceWarning\n"
            "    return float(np.mean(np.asarray(xs, dtype=float)))")}),
        "alwaystrue": solved(student, answers={"lab99-double": (
            "class Anything:\n    def __eq__(self, other):\n        return True\n"
            "    __ne__ = lambda self, other: False\n"
            "def double(x):\n    return Anything()")}),
        "loop": solved(student, insert_before={"lab99-double": "while True:\n    pass"}),
        "exits": solved(student, insert_before={"lab99-mean": "import os\nos._exit(1)"}),
        "hog": solved(student, insert_before={"lab99-double": "big = np.ones(3 * 1024**3 // 8)\nprint(big.sum())"}),
        "snoop": solved(student, insert_before={"lab99-double": SNOOP.format(
            source=str(labs), repo_lab=repo_lab, subs=str(subs))}),
        "leaky": solved(student, answers={"lab99-double": (
            "def double(x):\n    print('HISTORY', get_ipython().user_ns['In'][-1])\n    return 3 * x if x != 2 else 4")}),
        "tamperpass": variant(student, WRONG_DOUBLE, edit=_tamper_pass),
        "tamperdelete": variant(student, WRONG_DOUBLE, edit=_tamper_delete),
        "duplicate": solved(student, edit=_tamper_duplicate),
    }
    for name, nb in cases.items():
        write_submission(subs, name, nb)
    # nbgrader's own layout: submitted/<student>/<lab>/<lab>.ipynb
    nested = subs / "nested" / "99_synthetic" / "99_synthetic.ipynb"
    nested.parent.mkdir(parents=True)
    nbformat.write(solved(student), str(nested))
    (subs / "broken").mkdir()
    (subs / "broken" / "99_synthetic.ipynb").write_text("{not json")
    out = root / "out"
    t0 = time.perf_counter()
    results = grade_submissions(root, out, workers=2, timeout=TIMEOUT, budget=120, memory=2 * GiB,
                                labs_directory=labs.parent, progress=False, **sandbox_kw())
    wall = time.perf_counter() - t0
    by_student = {r.student: r for r in results}
    return {"results": by_student, "out": out, "labs": labs, "student_nb": student, "wall": wall,
            "subs": subs}


def _html(graded, student):
    return open(graded["results"][student].feedback, encoding="utf-8").read()


def _points(graded, student):
    return {c.grade_id: c.points for c in graded["results"][student].cells}


def test_reference_answers_get_full_marks_and_blank_gets_zero(graded):
    assert _points(graded, "correct") == POINTS
    assert graded["results"]["correct"].status == "graded"
    blank = graded["results"]["blank"]
    assert blank.status == "graded" and blank.points == 0
    assert all("NotImplementedError" in c.reason for c in blank.cells)


def test_both_submission_layouts_are_found(graded):
    assert _points(graded, "nested") == POINTS


def test_unreadable_notebook_is_an_error_with_a_reason_not_a_silent_zero(graded):
    r = graded["results"]["broken"]
    assert r.status == "error" and "not a readable notebook" in r.reason
    assert len(r.cells) == len(POINTS)


def test_grades_csv_has_every_row_and_the_columns(graded):
    with open(graded["out"] / "grades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["student", "lab", "grade_id", "points", "max_points", "status", "reason"]
    assert len(rows) == len(graded["results"]) * len(POINTS)
    assert {r["status"] for r in rows} <= set(STATUSES)
    assert not graded["results"]["correct"].flags and not graded["results"]["userwarning"].flags
    assert all(r["reason"] for r in rows)
    correct = {r["grade_id"]: float(r["points"]) for r in rows if r["student"] == "correct"}
    assert correct == POINTS


def test_warnings_from_a_correct_answer_keep_its_marks(graded):
    for student in ("userwarning", "convergence"):
        r = graded["results"][student]
        assert _points(graded, student) == POINTS, (student, r.status, r.reason, r.cells)
    # the warning really was printed where the tests ran (stderr of the test cell)
    assert "UserWarning" in _html(graded, "userwarning")
    assert "ConvergenceWarning" in _html(graded, "convergence")


def test_an_object_equal_to_everything_scores_zero(graded):
    pts = _points(graded, "alwaystrue")
    assert pts["lab99-double-tests"] == 0 and pts["lab99-mean-tests"] == 3


def test_infinite_loop_is_interrupted_and_the_rest_is_graded(graded):
    r = graded["results"]["loop"]
    assert r.status == "timeout" and "per-cell timeout" in r.reason
    assert _points(graded, "loop") == POINTS  # the answers after the loop still count
    # the loop was stopped within the per-cell timeout plus 15 s
    assert r.execute_seconds < graded["results"]["correct"].execute_seconds + TIMEOUT + 15


def test_os_exit_is_kernel_died_and_later_cells_score_zero(graded):
    r = graded["results"]["exits"]
    assert r.status == "kernel_died" and "died" in r.reason
    pts = _points(graded, "exits")
    assert pts["lab99-double-tests"] == 2 and pts["lab99-mean-tests"] == 0
    assert "not run" in {c.grade_id: c.reason for c in r.cells}["lab99-mean-tests"]


def test_allocation_over_the_memory_cap_raises_memoryerror_and_grading_goes_on(graded):
    r = graded["results"]["hog"]
    assert r.status == "graded"
    assert "MemoryError" in _html(graded, "hog")
    assert _points(graded, "hog") == POINTS


@pytest.mark.requires_bwrap
def test_submission_cannot_read_sources_gradebook_or_other_work(graded):
    html = _html(graded, "snoop")
    assert "LEAKED" not in html
    assert html.count("blocked: FileNotFoundError") == 2
    assert "gradebooks visible: 0" in html and "submissions visible: 0" in html
    quote = r"(?:'|&#x27;|&#39;)"
    assert re.search(rf"files here: \[{quote}99_synthetic.ipynb{quote}\]", html), "only its own notebook is there"
    assert _points(graded, "snoop") == POINTS


def test_changed_deleted_or_duplicated_test_cells_are_restored(graded):
    wrong = _points(graded, "wrong")
    assert wrong["lab99-double-tests"] == 0
    assert _points(graded, "tamperpass") == wrong
    assert _points(graded, "tamperdelete") == wrong
    assert _points(graded, "duplicate") == _points(graded, "correct")


def test_feedback_never_shows_hidden_tests(graded):
    source = nbformat.read(str(graded["labs"]), as_version=4)
    secret_lines = hidden_test_lines(source, graded["student_nb"])
    assert secret_lines, "the synthetic lab has hidden tests"
    for student, r in graded["results"].items():
        if r.feedback is None or (student == "snoop" and sandbox_kw()["no_sandbox"]):
            continue  # without a sandbox a submission can read the source notebook (documented)
        html = _html(graded, student)
        assert SECRET not in html, student
        for line in secret_lines:
            assert line not in html, (student, line)
    # the hidden failure is reported, without its text
    assert "A hidden test failed" in _html(graded, "wrong")
    # printing In[-1] from the answer reaches the IPython shell: flagged, and 0 for that test
    leaky = graded["results"]["leaky"]
    assert leaky.status == "flagged" and "get_ipython" in leaky.reason
    assert _points(graded, "leaky")["lab99-double-tests"] == 0


def test_feedback_shows_scores_and_public_test_output(graded):
    html = _html(graded, "correct")
    assert "public tests passed" in html
    assert "5.0" in html  # nbgrader's feedback header: total score


def test_grading_twice_gives_the_same_scores(graded, tmp_path):
    # Re-grade a subset to keep the suite fast: the correct, wrong and warning submissions.
    sub = tmp_path / "subs"
    for s in ("correct", "wrong", "userwarning"):
        src = graded["subs"] / s / "99_synthetic.ipynb"
        (sub / s).mkdir(parents=True)
        (sub / s / "99_synthetic.ipynb").write_bytes(src.read_bytes())
    again = grade_submissions(sub, tmp_path / "out", workers=2, timeout=TIMEOUT, budget=120,
                              memory=2 * GiB, labs_directory=graded["labs"].parent, progress=False,
                              **sandbox_kw())
    for r in again:
        assert _points(graded, r.student) == {c.grade_id: c.points for c in r.cells}


def _kernels_of_jobs(root):
    """Processes running in a grading job folder under ``root`` (this test's only: the machine
    may be grading other classes meanwhile)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "mlscale-job-" in cmd and str(root) in cmd:
            found.append(p)
    return found


def test_loop_ignoring_sigint_is_ended_by_the_budget_and_no_kernel_is_left(tmp_path, monkeypatch):
    jobs = tmp_path / "tmp"  # the grading's temporary folders, its job folders among them
    jobs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(jobs))
    labs = make_source_lab(tmp_path / "labs")
    student = generate_student_version(labs)
    write_submission(tmp_path / "subs", "stubborn", solved(student, insert_before={
        "lab99-double": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"}))
    t0 = time.perf_counter()
    (r,) = grade_submissions(tmp_path / "subs", tmp_path / "out", workers=1, timeout=300, budget=12,
                             labs_directory=labs.parent, progress=False, **sandbox_kw())
    assert time.perf_counter() - t0 < 120
    assert r.status == "timeout" and "budget" in r.reason, (r.status, r.reason)
    assert r.points == 0 and all("not run" in c.reason for c in r.cells)
    assert _kernels_of_jobs(jobs) == []
    # (the lab's prepared kit and gradebook stay cached for this process's next grading)
    assert [d.name for d in jobs.iterdir() if d.name.startswith("mlscale-job-")] == [], "a job folder stayed"


def test_without_a_sandbox_grading_refuses_unless_asked(tmp_path, monkeypatch):
    import mlscale_lab.harness.grading._sandbox as sandbox

    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    labs = make_source_lab(tmp_path / "labs")
    write_submission(tmp_path / "subs", "a", generate_student_version(labs))
    with pytest.raises(SandboxUnavailableError, match="--no-sandbox") as exc:
        grade_submissions(tmp_path / "subs", tmp_path / "out", labs_directory=labs.parent, progress=False)
    assert "read the source notebooks" in str(exc.value)
    (r,) = grade_submissions(tmp_path / "subs", tmp_path / "out", no_sandbox=True,
                             labs_directory=labs.parent, progress=False)
    assert r.status == "graded" and r.points == 0


@pytest.mark.parametrize("kw, word", [({"workers": 0}, "workers"), ({"timeout": -1}, "timeout"),
                                      ({"memory": 10}, "memory")])
def test_bad_parameters_are_named(tmp_path, kw, word):
    with pytest.raises(ValueError, match=word):
        grade_submissions(tmp_path, tmp_path / "out", **kw)
