"""Every lab, graded in the sandbox under the default limits (tests replayed in a pristine process,
static scan on): the reference solution gets full marks, unflagged, and the blank student version
scores 0 with status ``graded``.

One grading run per lab, two submissions on two workers, so the run costs about one execution
of the lab. New labs in ``labs/`` are covered automatically.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from grading_kit import sandbox_kw
from lab_runs import machine_share

from mlscale_lab.harness.grading import DEFAULT_MEMORY, generate_student_version, grade_submissions
from mlscale_lab.harness.labs import list_labs

# On the worker that runs the labs (tests/lab_runs.py): never beside a lab's timed run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("labs")]


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_reference_gets_full_marks_and_blank_scores_zero(lab, tmp_path, request):
    subs = tmp_path / "subs"
    (subs / "reference").mkdir(parents=True)
    (subs / "blank").mkdir()
    shutil.copyfile(lab, subs / "reference" / lab.name)
    nbformat.write(generate_student_version(lab), str(subs / "blank" / lab.name))
    budget = nbformat.read(str(lab), as_version=4).metadata.get("mlscale", {}).get("budget", {})
    seconds = float(budget.get("seconds", 120))
    with machine_share(request.config).heavy(f"grade {lab.stem}"):
        results = {r.student: r for r in grade_submissions(
            subs, tmp_path / "out", workers=2, timeout=max(120.0, 2 * seconds),
            budget=max(600.0, 6 * seconds), memory=DEFAULT_MEMORY, labs_directory=lab.parent,
            progress=False, **sandbox_kw())}
    ref, blank = results["reference"], results["blank"]
    assert ref.status == "graded" and not ref.flags, ref.reason  # never flagged
    # written answers (markdown) wait for a human: points None, "needs manual grading"
    auto = [c for c in ref.cells if c.points is not None]
    assert auto, "the lab has autograded exercises"
    assert all(c.points == c.max_points for c in auto), [(c.grade_id, c.points, c.reason) for c in auto]
    assert blank.status == "graded", blank.reason
    assert all(not c.points for c in blank.cells), [(c.grade_id, c.points, c.reason) for c in blank.cells]
