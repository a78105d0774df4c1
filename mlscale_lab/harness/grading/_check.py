"""``mlscale-lab check``: the learner's self-check, in plain words.

It runs the learner's notebook top to bottom in a fresh kernel (their own code on their own
machine: no sandbox) and reports, for each exercise, whether its tests pass, are not answered
yet, or fail with the test's message. The learner's notebook on disk is not changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlscale_lab._core.tempdirs import temporary_folder
from mlscale_lab.harness.budgets import CHECK_BUDGET_S, CHECK_TIMEOUT_S
from mlscale_lab.harness.grading._execute import execute_notebook


@dataclass
class ExerciseCheck:
    """One exercise of the self-check: its test cell, points, status and message."""

    grade_id: str
    points: float
    status: str  # passed | failed | not answered | not run
    message: str

    @property
    def passed(self) -> bool:
        """Whether the exercise passes its tests."""
        return self.status == "passed"


def _error(cell):
    return next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)


def check_notebook(path: str | os.PathLike, *, timeout: float = CHECK_TIMEOUT_S,
                   budget: float = CHECK_BUDGET_S) -> tuple[list[ExerciseCheck], str]:
    """Run a notebook and check each exercise; return the checks and how the run went.

    Raises
    ------
    FileNotFoundError
        For a path that is not a notebook file.
    """
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NOTEBOOK {path} is not a file; give the path of your .ipynb")
    nb = nbformat.read(str(path), as_version=4)
    with temporary_folder("check") as runtime:
        outcome = execute_notebook(nb, workdir=path.resolve().parent, runtime=runtime,
                                   timeout=timeout, budget=budget, memory_bytes=None,
                                   sandbox_spec=None, inherit_env=True)
    checks, last_answer = [], None
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and not meta.get("grade"):
            last_answer = cell
        if not (meta.get("grade") and cell.cell_type == "code"):
            continue
        gid, points = meta.get("grade_id", "?"), float(meta.get("points", 0))
        err = _error(cell)
        answer_err = _error(last_answer) if last_answer is not None else None
        if err is None:
            checks.append(ExerciseCheck(gid, points, "passed", "passes its tests"))
        elif err.ename == "NotRun":
            checks.append(ExerciseCheck(gid, points, "not run", "did not run: " + err.evalue))
        elif err.ename == "NotImplementedError" or (answer_err is not None and answer_err.ename == "NotImplementedError"):
            checks.append(ExerciseCheck(gid, points, "not answered",
                                        "not answered yet: replace `raise NotImplementedError()` "
                                        "in the answer cell above its tests"))
        else:
            msg = f"{err.ename}: {err.evalue}" if err.evalue else err.ename
            checks.append(ExerciseCheck(gid, points, "failed", "fails: " + msg))
    return checks, ("" if outcome.status == "graded" else f"{outcome.status}: {outcome.reason}")


def format_check(name: str, checks: list[ExerciseCheck], problem: str = "") -> str:
    """The self-check as plain text: one line per exercise, then what to do next."""
    if not checks:
        return f"{name}: no graded exercises found (is this a lab notebook?)"
    ok = sum(c.passed for c in checks)
    lines = [f"{name}: {ok} of {len(checks)} exercises pass their tests"]
    for c in checks:
        mark = "PASS" if c.passed else "TODO" if c.status == "not answered" else "FAIL"
        lines.append(f"  [{mark}] {c.grade_id} ({c.points:g} points): {c.message}")
    if problem:
        lines.append(f"note: the run did not finish normally ({problem})")
    lines.append("Instructors also grade with hidden tests: solve the problem, not just the visible tests.")
    return "\n".join(lines)
