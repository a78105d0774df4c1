"""Instructor grading on top of nbgrader: student versions, the learner's self-check, safe
autograding of a class (sandboxed kernels, tests replayed where the submission cannot reach,
a static scan for tampering, resumable, on local processes or a Dask cluster), and a check of
the labs' exercise format.

Each idea has its private module; the public names are re-exported here. Importing this package
is cheap: nbgrader and nbclient are imported inside the functions that use them.
"""

from mlscale_lab.harness.grading._check import ExerciseCheck, check_notebook, format_check
from mlscale_lab.harness.grading._class import (
    find_submissions,
    grade_submissions,
    load_private_tests,
)
from mlscale_lab.harness.grading._grade import (
    CSV_COLUMNS,
    DEFAULT_BUDGET,
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    STATUSES,
    CellGrade,
    SubmissionResult,
    grade_submission,
    prepare_lab,
)
from mlscale_lab.harness.grading._lint import lint_labs, lint_notebook
from mlscale_lab.harness.grading._release import (
    generate_student_version,
    hidden_test_lines,
    release_labs,
)
from mlscale_lab.harness.grading._results import write_gradebook_csv, write_grades_csv
from mlscale_lab.harness.grading._sandbox import (
    NO_SANDBOX_RISK,
    SandboxUnavailableError,
    require_sandbox,
)
from mlscale_lab.harness.grading._scan import scan_submission

__all__ = [
    "CSV_COLUMNS", "DEFAULT_BUDGET", "DEFAULT_MEMORY", "DEFAULT_TIMEOUT", "NO_SANDBOX_RISK",
    "STATUSES", "CellGrade", "ExerciseCheck", "SandboxUnavailableError", "SubmissionResult",
    "check_notebook", "find_submissions", "format_check", "generate_student_version",
    "grade_submission", "grade_submissions", "hidden_test_lines", "lint_labs", "lint_notebook",
    "load_private_tests", "prepare_lab", "release_labs", "require_sandbox", "scan_submission",
    "write_gradebook_csv", "write_grades_csv",
]
