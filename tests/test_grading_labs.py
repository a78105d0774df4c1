"""Every lab, graded in the sandbox under the default limits (tests replayed in a pristine process,
static scan on): the reference solution gets full marks, unflagged. New labs in ``labs/`` are
covered automatically.

The blank student version is not graded here lab by lab. Grading it executes the whole lab a
second time (its cells other than the answers all run), beside the reference on the other CPU,
to learn again what the lab's one run already shows: each exercise's tests reject nbgrader's stub
in the lab's own executed kernel (``tests/exercise_trials.py``, the ``blank`` trial, held by
``tests/test_labs.py``). How the grader handles a blank submission (status ``graded``, every cell
0) is the grader's own behaviour, tested on a class in ``tests/test_grading.py``.
"""

from __future__ import annotations

import shutil

import nbformat
import pytest
from grading_kit import sandbox_kw
from lab_runs import machine_share

from mlscale_lab.harness.grading import DEFAULT_MEMORY, grade_submissions
from mlscale_lab.harness.labs import list_labs

# On the worker that runs the labs (tests/lab_runs.py): never beside a lab's timed run.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("labs")]


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_reference_gets_full_marks_unflagged(lab, tmp_path, request):
    subs = tmp_path / "subs"
    (subs / "reference").mkdir(parents=True)
    shutil.copyfile(lab, subs / "reference" / lab.name)
    budget = nbformat.read(str(lab), as_version=4).metadata.get("mlscale", {}).get("budget", {})
    seconds = float(budget.get("seconds", 120))
    with machine_share(request.config).heavy(f"grade {lab.stem}"):
        results = {r.student: r for r in grade_submissions(
            subs, tmp_path / "out", workers=1, timeout=max(120.0, 2 * seconds),
            budget=max(600.0, 6 * seconds), memory=DEFAULT_MEMORY, labs_directory=lab.parent,
            progress=False, **sandbox_kw())}
    ref = results["reference"]
    assert ref.status == "graded" and not ref.flags, ref.reason  # never flagged
    # written answers (markdown) wait for a human: points None, "needs manual grading"
    auto = [c for c in ref.cells if c.points is not None]
    assert auto, "the lab has autograded exercises"
    assert all(c.points == c.max_points for c in auto), [(c.grade_id, c.points, c.reason) for c in auto]
