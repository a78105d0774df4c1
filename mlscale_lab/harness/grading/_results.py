"""Where grading results go: one saved result per submission (what makes grading resumable),
``grades.csv`` (one row a test cell) and ``gradebook.csv`` (one row a student, one column a lab).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from mlscale_lab.harness.grading._grade import CSV_COLUMNS, SubmissionResult

#: Results not kept for a rerun: the grader itself failed, so grading again may succeed.
_RETRY_PREFIX = "grading failed"


class ResultStore:
    """Saved results under ``OUT/.results/<student>/<lab>.json``, each with the key it was graded
    under (a hash of the submission, the lab, private tests and options)."""

    def __init__(self, out_dir) -> None:
        self.root = Path(out_dir) / ".results"

    def _path(self, student: str, lab: str) -> Path:
        return self.root / student / f"{lab}.json"

    def load(self, student: str, lab: str, key: str) -> SubmissionResult | None:
        """The saved result if it was graded under ``key`` (and its feedback is there)."""
        try:
            data = json.loads(self._path(student, lab).read_text(encoding="utf-8"))
            if data.get("key") != key:
                return None
            result = SubmissionResult.from_dict(data["result"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if result.feedback and not Path(result.feedback).is_file():
            return None
        return result

    def save(self, result: SubmissionResult, key: str) -> None:
        """Save a result atomically (not one the grader itself failed on)."""
        if result.reason.startswith(_RETRY_PREFIX):
            return
        path = self._path(result.student, result.lab)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.part")
        tmp.write_text(json.dumps({"key": key, "result": result.as_dict()}), encoding="utf-8")
        os.replace(tmp, path)


def write_grades_csv(results, path) -> Path:
    """One row per test cell: ``student, lab, grade_id, points, max_points, status, reason``."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerows(r.rows())
    return path


def write_gradebook_csv(results, path) -> Path:
    """Per-student totals in the layout LMS gradebooks import: a ``student`` column, then one
    column per lab headed ``<lab> (<max points>)``, one row per student.

    A lab the student did not submit is empty; so is a submission whose status is ``flagged``
    or ``error`` (left for the instructor to enter after reading the reason in grades.csv).
    Manually graded points are not in the totals (they wait for a human).
    """
    path = Path(path)
    labs: dict[str, float] = {}
    table: dict[str, dict[str, str]] = {}
    for r in results:
        if r.cells:
            labs[r.lab] = max(labs.get(r.lab, 0.0), r.max_points)
        else:
            labs.setdefault(r.lab, 0.0)
        row = table.setdefault(r.student, {})
        row[r.lab] = "" if r.status in ("flagged", "error") else f"{r.points:g}"
    header = {lab: f"{lab} ({pts:g})" for lab, pts in sorted(labs.items())}
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", *header.values()])
        for student in sorted(table):
            writer.writerow([student, *(table[student].get(lab, "") for lab in header)])
    return path
