"""`mlscale-lab check`: the learner's self-check says, per exercise, pass / not answered / fails."""

from __future__ import annotations

import json

import nbformat
import pytest
from grading_kit import make_source_lab, solved, variant, write_submission

from mlscale_lab.harness.cli import main
from mlscale_lab.harness.grading import check_notebook, generate_student_version

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def student_nb(tmp_path_factory):
    return generate_student_version(make_source_lab(tmp_path_factory.mktemp("labs")))


def test_check_reports_each_exercise_in_plain_words(student_nb, tmp_path, capsys):
    nb = variant(student_nb, {"lab99-double": "def double(x):\n    return x + 1"})
    path = write_submission(tmp_path, "me", nb)
    before = path.read_text()
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "0 of 2 exercises pass" in out
    assert "[FAIL] lab99-double-tests (2 points): fails: AssertionError: double(2) should be 4" in out
    assert "[TODO] lab99-mean-tests (3 points): not answered yet" in out
    assert path.read_text() == before, "the learner's file is not changed"


def test_check_passes_a_solved_notebook(student_nb, tmp_path, capsys):
    path = write_submission(tmp_path, "me", solved(student_nb))
    assert main(["check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [e["status"] for e in report["exercises"]] == ["passed", "passed"]
    assert report["problem"] == ""


def test_check_runs_in_the_notebooks_folder(student_nb, tmp_path):
    (tmp_path / "me").mkdir()
    (tmp_path / "me" / "factor.txt").write_text("2")
    nb = solved(student_nb, answers={"lab99-double": "def double(x):\n    return int(open('factor.txt').read()) * x"})
    path = write_submission(tmp_path, "me", nb)
    checks, problem = check_notebook(path)
    assert [c.status for c in checks] == ["passed", "passed"] and problem == ""


def test_check_of_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.ipynb")]) == 2
    assert "nope.ipynb is not a file" in capsys.readouterr().err


def test_check_counts_a_blank_notebook_as_not_answered(student_nb, tmp_path):
    path = tmp_path / "blank.ipynb"
    nbformat.write(student_nb, str(path))
    checks, _ = check_notebook(path)
    assert [c.status for c in checks] == ["not answered", "not answered"]
