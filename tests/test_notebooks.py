"""Lab notebooks in git: valid, stripped of outputs, and carrying the metadata the suite uses."""

import nbformat
import pytest

from mlscale_lab.harness.labs import list_labs

LABS = list_labs()
NBGRADER_KEYS = {"grade", "solution", "locked", "points", "grade_id", "schema_version",
                 "task", "cell_type", "checksum"}


def test_there_are_labs():
    assert LABS and LABS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_is_valid_and_stripped(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        assert cell.get("id"), f"{path.name} cell {i} has no id"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: strip them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_metadata(path):
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("mlscale")
    assert meta, f"{path.name}: metadata.mlscale is missing (see CONTRIBUTING.md)"
    for key in ("topic", "minutes", "measures", "budget", "records"):
        assert key in meta, f"{path.name}: metadata.mlscale.{key} is missing"
    assert {"seconds", "peak_memory_mb"} <= set(meta["budget"])
    for cell in nb.cells:
        extra = set(cell.metadata.get("nbgrader", {})) - NBGRADER_KEYS
        assert not extra, f"{path.name}: keys {extra} do not belong in metadata.nbgrader; use metadata.mlscale"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_records_what_its_metadata_expects(path):
    """Every record the metadata checks is recorded somewhere in the lab's code."""
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for name in nb.metadata["mlscale"]["records"]:
        assert f'record("{name}"' in code or f"record('{name}'" in code, f"{path.name} never records {name}"


def test_readme_lists_every_lab():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for path in LABS:
        assert f"labs/{path.name}" in readme, f"README.md's lab table has no row for {path.name}"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_readme_row_matches_lab_metadata(path):
    """The README's table is the lab's metadata: topic, minutes and measures, word for word."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    meta = nbformat.read(path, as_version=4).metadata["mlscale"]
    row = f"| [{path.stem[:2]}](labs/{path.name}) | {meta['topic']} | {meta['minutes']} min | {meta['measures']} |"
    assert row in readme, f"README.md's row for {path.name} should read:\n{row}"
