"""Model answers for self-study: shown for a written question only after the learner tried it,
read from the installed labs, never written into the learner's notebook."""

import hashlib

import nbformat
import pytest

from mlscale_lab.harness.answers import PLACEHOLDER, format_answers, model_answers
from mlscale_lab.harness.grading import generate_student_version
from mlscale_lab.harness.labs import UnknownLabError, list_labs


def _lab_with_written_question():
    for lab in list_labs():
        nb = nbformat.read(lab, as_version=4)
        if any(c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")
               for c in nb.cells):
            return lab
    pytest.skip("no lab has a written question")


def test_model_answer_appears_only_after_an_attempt_and_the_notebook_is_untouched(tmp_path):
    lab = _lab_with_written_question()
    mine = tmp_path / lab.name
    nbformat.write(generate_student_version(lab), str(mine))

    closed = model_answers(mine)
    assert closed and all(not a.attempted and a.model_answer is None for a in closed)
    assert "write your own answer" in format_answers(closed)

    nb = nbformat.read(mine, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown"
                 and c.metadata.get("nbgrader", {}).get("solution"))
    assert PLACEHOLDER in first.source
    first.source = first.source.replace(PLACEHOLDER, "Smaller models cost less to serve.")
    nbformat.write(nb, str(mine))
    before = hashlib.sha256(mine.read_bytes()).hexdigest()

    opened = model_answers(mine)
    answered = [a for a in opened if a.attempted]
    assert [a.grade_id for a in answered] == [first.metadata["nbgrader"]["grade_id"]]
    text = answered[0].model_answer
    assert text and "BEGIN SOLUTION" not in text and PLACEHOLDER not in text
    source = nbformat.read(lab, as_version=4)
    ref_cell = next(c for c in source.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == answered[0].grade_id)
    assert text in ref_cell.source  # the reference answer, from the source lab
    assert text in format_answers(opened)
    assert hashlib.sha256(mine.read_bytes()).hexdigest() == before


def test_bad_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        model_answers(tmp_path / "02_missing.ipynb")
    other = tmp_path / "99_not_a_lab.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(other))
    with pytest.raises(UnknownLabError, match="99_not_a_lab"):
        model_answers(other)


def test_cli_answers_prints_model_answers_and_rejects_a_missing_notebook(tmp_path, capsys):
    from mlscale_lab.harness.cli import main

    lab = _lab_with_written_question()
    mine = tmp_path / lab.name
    nbformat.write(generate_student_version(lab), str(mine))
    assert main(["answers", str(mine)]) == 0
    assert "write your own answer" in capsys.readouterr().out
    assert main(["answers", str(tmp_path / "nope.ipynb")]) == 2
    assert "no notebook" in capsys.readouterr().err
