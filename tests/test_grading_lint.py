"""`mlscale-lab lint`: every lab's exercise format, and the problems the lint must catch."""

from __future__ import annotations

import nbformat
import pytest
from grading_kit import find_cell, make_source_lab

from mlscale_lab.harness.cli import main
from mlscale_lab.harness.grading import lint_labs, lint_notebook
from mlscale_lab.harness.labs import list_labs


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_every_lab_passes_the_exercise_lint(lab):
    assert lint_notebook(lab) == []


def test_grade_ids_are_unique_across_labs():
    report = lint_labs(list_labs())
    assert not [p for problems in report.values() for p in problems if "also used in" in p]


def test_synthetic_lab_is_clean(tmp_path):
    assert lint_notebook(make_source_lab(tmp_path)) == []


def _broken(tmp_path, edit):
    path = make_source_lab(tmp_path)
    nb = nbformat.read(str(path), as_version=4)
    edit(nb)
    nbformat.write(nb, str(path))
    return lint_notebook(path)


def _tests_cell(nb):
    return nb.cells[find_cell(nb, "lab99-double-tests")]


@pytest.mark.parametrize("edit, expected", [
    (lambda nb: _tests_cell(nb).metadata.nbgrader.update(grade_id="lab99-mean-tests"), "unique"),
    (lambda nb: _tests_cell(nb).metadata.nbgrader.pop("points"), "points"),
    (lambda nb: _tests_cell(nb).metadata.nbgrader.update(points=0), "points > 0"),
    (lambda nb: nb.cells.pop(find_cell(nb, "lab99-double-tests")), "not followed by its test cell"),
    (lambda nb: setattr(_tests_cell(nb), "source", _tests_cell(nb).source + "\nimport sys\nprint('x', file=sys.stderr)"),
     "stdout only"),
    (lambda nb: setattr(_tests_cell(nb), "source", "import warnings\nwarnings.warn('careful')\n" + _tests_cell(nb).source),
     "warnings.warn"),
    (lambda nb: setattr(_tests_cell(nb), "source", "for i in tqdm(range(3)):\n    pass\n" + _tests_cell(nb).source),
     "tqdm"),
    (lambda nb: _tests_cell(nb).metadata.nbgrader.update(grade_id="lab07-double-tests"), "lab99-"),
])
def test_lint_catches_format_problems(tmp_path, edit, expected):
    problems = _broken(tmp_path, edit)
    assert any(expected in p for p in problems), problems


def test_lint_command_exit_status(tmp_path, capsys, monkeypatch):
    path = make_source_lab(tmp_path)
    monkeypatch.setenv("MLSCALE_LABS_DIR", str(tmp_path))
    assert main(["lint"]) == 0
    nb = nbformat.read(str(path), as_version=4)
    _tests_cell(nb).metadata.nbgrader.pop("points")
    nbformat.write(nb, str(path))
    assert main(["lint", "99"]) == 1
    assert "points" in capsys.readouterr().out


def test_lint_catches_a_written_answer_that_would_lose_its_question(tmp_path):
    from nbformat.v4 import new_markdown_cell

    def add_written(nb, text):
        cell = new_markdown_cell(text)
        cell.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "points": 1,
                                     "grade_id": "lab99-essay", "schema_version": 3}
        nb.cells.append(cell)

    problems = _broken(tmp_path, lambda nb: add_written(nb, "Why? Explain.\n\nYOUR ANSWER HERE"))
    assert any("lab99-essay" in p and "BEGIN SOLUTION" in p for p in problems), problems
    ok = _broken(tmp_path, lambda nb: add_written(nb, "### BEGIN SOLUTION\nBecause.\n### END SOLUTION"))
    assert not [p for p in ok if "lab99-essay" in p], ok
