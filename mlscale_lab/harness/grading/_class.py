"""Grade a whole class: find the submissions, grade what is new, on local processes or a Dask
cluster, and write ``grades.csv`` and the gradebook export.

Resumable: each submission's result is saved (``OUT/.results/<student>/<lab>.json``) as soon as
it is graded, keyed by a hash of the submission, the lab, the course-private tests and the
grading options; a rerun grades only what is new or changed (all with ``force``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mlscale_lab.harness.budgets import GRADE_WORKERS
from mlscale_lab.harness.grading._grade import (
    DEFAULT_BUDGET,
    DEFAULT_MEMORY,
    DEFAULT_TIMEOUT,
    SAFE_ID,
    SubmissionResult,
)
from mlscale_lab.harness.grading._results import ResultStore, write_gradebook_csv, write_grades_csv
from mlscale_lab.harness.grading._sandbox import require_sandbox
from mlscale_lab.validation import check_int, check_positive

#: Bump when a change to grading changes results: stored results then count as stale.
GRADER_VERSION = "3"


def find_submissions(root: str | os.PathLike) -> list[tuple[str, str, Path]]:
    """``(student, lab, path)`` for ``ROOT/<student>/<lab>.ipynb`` and nbgrader's
    ``ROOT/submitted/<student>/<lab>/<notebook>.ipynb`` layouts."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"SUBMISSIONS {root} is not a folder of <student>/<lab>.ipynb")
    if (root / "submitted").is_dir():
        root = root / "submitted"
    found = []
    for student_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        student = student_dir.name
        for item in sorted(student_dir.iterdir()):
            if item.name.startswith("."):
                continue
            if item.is_file() and item.suffix == ".ipynb":
                found.append((student, item.stem, item))
            elif item.is_dir():
                for nbfile in sorted(item.glob("*.ipynb")):
                    found.append((student, nbfile.stem, nbfile))
    return found


def _resolve_lab(name: str, labs: list[Path]) -> Path | None:
    matches = [p for p in labs if p.stem == name] or [
        p for p in labs if name.isdigit() and p.stem.split("_", 1)[0] == name.zfill(2)]
    return matches[0] if len(matches) == 1 else None


def load_private_tests(directory, labs: list[Path]) -> dict[str, dict[str, str]]:
    """Course-private tests: ``DIR/<grade_id>.py`` or ``DIR/<lab>/<grade_id>.py``, by lab stem.

    Raises
    ------
    ValueError
        For a file whose name is no test cell's grade_id in any lab.
    """
    import nbformat

    directory = Path(directory)
    if not directory.is_dir():
        raise NotADirectoryError(f"grade_submissions(tests={str(directory)!r}): expected a folder of "
                                 "<grade_id>.py files, got no such folder")
    owner = {}
    for lab in labs:
        for cell in nbformat.read(str(lab), as_version=4).cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and cell.cell_type == "code":
                owner[meta["grade_id"]] = lab.stem
    found: dict[str, dict[str, str]] = {}
    for f in sorted(directory.rglob("*.py")):
        gid = f.stem
        if gid not in owner:
            raise ValueError(f"grade_submissions(tests={str(directory)!r}): {f.name} names no test cell; "
                             f"expected <grade_id>.py, one of: {', '.join(sorted(owner)) or '(none)'}")
        found.setdefault(owner[gid], {})[gid] = f.read_text(encoding="utf-8")
    return found


def submission_key(path: Path, lab_digest: str, options: dict) -> str:
    """The hash a saved result is kept under: submission bytes, lab, private tests, options."""
    h = hashlib.sha256(Path(path).read_bytes())
    h.update(lab_digest.encode())
    h.update(json.dumps(options, sort_keys=True).encode())
    h.update(GRADER_VERSION.encode())
    return h.hexdigest()


def grade_submissions(submissions, out_dir, *, workers: int = GRADE_WORKERS, timeout: float = DEFAULT_TIMEOUT,
                      budget: float = DEFAULT_BUDGET, memory: int | None = DEFAULT_MEMORY,
                      no_sandbox: bool = False, labs_directory=None, progress: bool = True,
                      tests=None, seed: int | None = None, scheduler: str | None = None,
                      force: bool = False, grace: float | None = None) -> list[SubmissionResult]:
    """Grade every submission under ``submissions``; write ``grades.csv``, ``gradebook.csv`` and
    feedback to ``out_dir``.

    Parameters
    ----------
    submissions : path-like
        ``<student>/<lab>.ipynb`` files, or nbgrader's ``submitted/<student>/<lab>/`` layout.
    out_dir : path-like
        Receives ``grades.csv`` (one row a test cell), ``gradebook.csv`` (one row a student, one
        column a lab: the LMS import) and ``feedback/<student>/<lab>.html``.
    workers : int
        Submissions graded at the same time on this machine, each in its own process and kernel.
    timeout, budget : float
        Seconds a cell may run before it is interrupted; seconds a whole submission may run.
    memory : int or None
        Address-space cap in bytes of each kernel process (None: no cap).
    no_sandbox : bool
        Run submissions with your own permissions when no sandbox exists (see
        :data:`NO_SANDBOX_RISK`).
    tests : path-like, optional
        Course-private tests, ``<grade_id>.py`` files run after that test cell's own tests.
    seed : int, optional
        Grading seed the test cells see (``GRADING_SEED``); never shown in feedback.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) whose workers grade.
    force : bool
        Grade everything again, even submissions already graded unchanged.
    grace : float, optional
        Seconds a grading worker may run past ``budget`` before it is killed with everything it
        started, here or on a cluster's worker (default
        :data:`mlscale_lab.harness.grading._run.WORKER_GRACE`, 120 s).
    """
    from mlscale_lab.harness.grading._run import run_jobs
    from mlscale_lab.harness.labs import list_labs

    check_int("grade_submissions", "workers", workers, low=1)
    check_positive("grade_submissions", "timeout", timeout)
    check_positive("grade_submissions", "budget", budget)
    if grace is not None:
        check_positive("grade_submissions", "grace", grace)
    if memory is not None and memory < 64 * 1024**2:
        raise ValueError(f"grade_submissions(memory={memory!r}): expected at least 64 MiB "
                         "(67108864 bytes) or None")
    if seed is not None:
        check_int("grade_submissions", "seed", seed, low=0)
    sandbox = require_sandbox(no_sandbox) is not None
    jobs = find_submissions(submissions)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labs = list_labs(labs_directory)
    private = load_private_tests(tests, labs) if tests is not None else {}
    store = ResultStore(out)
    options = {"timeout": timeout, "budget": budget, "memory": memory, "sandbox": sandbox, "seed": seed}
    results: list[SubmissionResult] = []
    pending = []
    digests: dict[str, str] = {}
    for student, lab, path in jobs:
        source = _resolve_lab(lab, labs)
        if not SAFE_ID.match(student):
            results.append(SubmissionResult(student, lab, "error", f"student folder name {student!r} is not a "
                                            "plain id (letters, digits, . _ @ + -); rename it"))
            continue
        if source is None:
            known = ", ".join(p.stem for p in labs) or "(none)"
            results.append(SubmissionResult(student, lab, "error", f"{path.name} matches no lab; the labs are: {known}"))
            continue
        if source.stem not in digests:
            digests[source.stem] = hashlib.sha256(
                source.read_bytes() + repr(sorted(private.get(source.stem, {}).items())).encode()).hexdigest()
        key = submission_key(path, digests[source.stem], options)
        old = None if force else store.load(student, source.stem, key)
        if old is not None:
            results.append(old)
        else:
            pending.append({"student": student, "lab": source, "path": path, "key": key})
    hidden = [str(Path(submissions).resolve()), str(out.resolve())]
    kw = {"timeout": timeout, "budget": budget, "memory": memory, "sandbox": sandbox,
          "seed": seed, "hidden_dirs": hidden}
    if grace is not None:
        kw["grace"] = float(grace)
    results += run_jobs(pending, private, kw, store, workers=workers, scheduler=scheduler,
                        progress=progress, reused=len(results))
    results.sort(key=lambda r: (r.student, r.lab))
    write_grades_csv(results, out / "grades.csv")
    write_gradebook_csv(results, out / "gradebook.csv")
    return results

