"""Helpers for authoring a new lab notebook from a Python script (optional; see CONTRIBUTING).

Lab notebooks in labs/ are the source of truth; these helpers only make writing them less
error-prone: every cell gets a stable id and the right nbgrader metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def _cell_id(grade_id_or_text: str, index: int) -> str:
    base = re.sub(r"[^A-Za-z0-9-]", "-", grade_id_or_text)[:40].strip("-") or "cell"
    return f"{base}-{index}"


class LabBuilder:
    """Collects cells for one lab; ``save()`` writes a stripped, valid nbformat-4 notebook."""

    def __init__(self, lab: str):
        self.lab = lab  # the grade_id prefix, e.g. "lab00"
        self.cells = []

    def md(self, text: str, **meta):
        cell = new_markdown_cell(text.strip("\n"))
        cell.metadata.update(meta)
        self.cells.append(cell)
        return cell

    def code(self, source: str, tags=None, **meta):
        cell = new_code_cell(source.strip("\n"))
        if tags:
            cell.metadata["tags"] = list(tags)
        cell.metadata.update(meta)
        self.cells.append(cell)
        return cell

    def checkpoint(self, source: str):
        """A cell of asserts that checks a claim the prose makes (tagged ``checkpoint``)."""
        return self.code(source, tags=["checkpoint"])

    def answer(self, name: str, source: str):
        """An nbgrader answer cell; ``source`` holds ### BEGIN/END SOLUTION."""
        cell = self.code(source)
        cell.metadata["nbgrader"] = {
            "grade": False, "solution": True, "locked": False,
            "grade_id": f"{self.lab}-{name}", "schema_version": 3,
        }
        return cell

    def tests(self, name: str, source: str, points: int):
        """An nbgrader autograded test cell (public tests, then ### BEGIN/END HIDDEN TESTS)."""
        cell = self.code(source)
        cell.metadata["nbgrader"] = {
            "grade": True, "solution": False, "locked": True, "points": points,
            "grade_id": f"{self.lab}-{name}-tests", "schema_version": 3,
        }
        return cell

    def written(self, name: str, text: str, points: int):
        """A manually graded written answer (markdown)."""
        cell = self.md(text)
        cell.metadata["nbgrader"] = {
            "grade": True, "solution": True, "locked": False, "points": points,
            "grade_id": f"{self.lab}-{name}", "schema_version": 3,
        }
        return cell

    def save(self, path: str | Path, mlscale: dict | None = None):
        """Write the notebook; ``mlscale`` is the lab's own metadata (see tests/test_labs.py):
        ``{"topic", "minutes", "measures", "budget": {"seconds", "peak_memory_mb"},
        "records": {name: {"min": x, "max": y} | {"equals": v}}}``."""
        nb = new_notebook(cells=self.cells)
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        if mlscale:
            nb.metadata["mlscale"] = mlscale
        for i, cell in enumerate(nb.cells):
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            cell.id = _cell_id(gid or f"{self.lab}", i)
        nbformat.validate(nb)
        nbformat.write(nb, str(path))
        return path
