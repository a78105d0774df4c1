"""Student versions (`mlscale-lab release`) and the learner's workspace (`mlscale-lab start`)."""

from __future__ import annotations

import nbformat
import pytest
from grading_kit import SECRET, make_source_lab
from nbgrader.utils import compute_checksum

from mlscale_lab.harness.cli import main
from mlscale_lab.harness.grading import generate_student_version, release_labs
from mlscale_lab.harness.labs import list_labs
from mlscale_lab.harness.workspace import prepare_workspace


def _graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader")]


def test_student_version_has_no_solutions_no_hidden_tests_and_checksums(tmp_path):
    source = make_source_lab(tmp_path / "labs")
    nb = generate_student_version(source)
    text = nbformat.writes(nb)
    assert SECRET not in text and "BEGIN HIDDEN TESTS" not in text
    assert "return 2 * x" not in text and "### BEGIN SOLUTION" not in text
    assert text.count("raise NotImplementedError()") == 2
    assert "public tests passed" in text  # public tests stay
    for cell in _graded_cells(nb):
        meta = cell.metadata.nbgrader
        assert meta["checksum"] == compute_checksum(cell), meta["grade_id"]
        if meta["grade"]:
            assert meta["locked"] and cell.metadata.get("editable") is False
    # the source notebook itself is untouched
    assert SECRET in source.read_text()


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_every_lab_releases_without_its_solutions_or_hidden_tests(lab, tmp_path):
    (out,) = release_labs([lab], tmp_path)
    text = out.read_text()
    assert "### BEGIN SOLUTION" not in text and "### BEGIN HIDDEN TESTS" not in text
    source = nbformat.read(str(lab), as_version=4)
    n_answers = sum(1 for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")
                    and c.cell_type == "code")
    student = nbformat.read(str(out), as_version=4)
    stubs = sum("raise NotImplementedError()" in c.source for c in student.cells if c.cell_type == "code")
    assert stubs == n_answers


def test_release_command_writes_student_versions(tmp_path, capsys):
    assert main(["release", "00", "--out", str(tmp_path / "release")]) == 0
    (written,) = (tmp_path / "release").glob("*.ipynb")
    assert written.name == list_labs()[0].name
    assert "BEGIN HIDDEN TESTS" not in written.read_text()
    assert "wrote 1 student version" in capsys.readouterr().out
    assert main(["release", "nope", "--out", str(tmp_path / "x")]) == 2


def test_workspace_gets_student_versions_and_keeps_the_learners_own(tmp_path):
    labs = make_source_lab(tmp_path / "labs")
    ws = tmp_path / "ws"
    first = prepare_workspace(ws, labs_directory=labs.parent)
    assert first.added == [labs.name]
    added = (ws / labs.name).read_text()
    assert SECRET not in added and "raise NotImplementedError()" in added
    (ws / labs.name).write_text(added.replace("# YOUR CODE HERE", "# my work"))
    again = prepare_workspace(ws, labs_directory=labs.parent)
    assert again.kept == [labs.name] and again.added == []
    assert "# my work" in (ws / labs.name).read_text()
