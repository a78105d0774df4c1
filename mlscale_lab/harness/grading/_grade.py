"""Grade a class's submissions with nbgrader's autograde preprocessors, safely.

Per submission: a fresh gradebook copied from the lab's, nbgrader's sanitising preprocessors
(``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells`` with missing
cells added back, ``CheckCellMetadata``), nbgrader's ``Execute`` in a sandboxed, capped kernel
whose folder holds that submission alone, ``LimitOutput``, ``SaveAutoGrades`` and ``GetGrades``,
then feedback without hidden tests. Submissions run in parallel worker processes.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlscale_lab.harness.grading._execute import execute_notebook
from mlscale_lab.harness.grading._feedback import feedback_html, write_feedback
from mlscale_lab.harness.grading._release import (
    generate_student_version,
    hidden_test_lines,
    new_gradebook,
)
from mlscale_lab.harness.grading._sandbox import SandboxSpec, require_sandbox

CSV_COLUMNS = ("student", "lab", "grade_id", "points", "max_points", "status", "reason")
STATUSES = ("graded", "timeout", "kernel_died", "error")
DEFAULT_TIMEOUT = 120.0
DEFAULT_BUDGET = 900.0
#: Address-space cap per kernel process. Address space is not resident memory: importing
#: torch alone maps about 0.9 GB, so the cap sits well above the labs' 2 GB resident budget.
DEFAULT_MEMORY = 4 * 1024**3
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


@dataclass
class LabKit:
    """What grading one lab needs, prepared once: the gradebook template, the graded cells."""

    name: str
    source: Path
    db: Path
    grade_cells: list[tuple[str, float]]
    hidden: set[str]


@dataclass
class CellGrade:
    grade_id: str
    points: float | None
    max_points: float
    reason: str


@dataclass
class SubmissionResult:
    student: str
    lab: str
    status: str
    reason: str
    cells: list[CellGrade] = field(default_factory=list)
    feedback: str | None = None
    seconds: float = 0.0
    execute_seconds: float = 0.0

    @property
    def points(self) -> float:
        return sum(c.points or 0 for c in self.cells)

    @property
    def max_points(self) -> float:
        return sum(c.max_points for c in self.cells)

    def rows(self) -> list[dict]:
        return [
            {"student": self.student, "lab": self.lab, "grade_id": c.grade_id,
             "points": "" if c.points is None else f"{c.points:g}", "max_points": f"{c.max_points:g}",
             "status": self.status,
             "reason": c.reason if self.status == "graded" else f"{self.reason}; {c.reason}"}
            for c in self.cells
        ] or [{"student": self.student, "lab": self.lab, "grade_id": "", "points": "0",
               "max_points": "0", "status": self.status, "reason": self.reason}]

    def as_dict(self) -> dict:
        return asdict(self)


def prepare_lab(source: str | os.PathLike, private_dir: str | os.PathLike) -> LabKit:
    """Record a lab's source cells in a gradebook (as ``nbgrader generate_assignment`` does)."""
    import nbformat

    source = Path(source)
    name = source.stem
    db = Path(private_dir) / f"{name}.db"
    url = new_gradebook(db)
    student_nb = generate_student_version(source, url)
    source_nb = nbformat.read(str(source), as_version=4)
    cells = [(c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader.get("points", 0)))
             for c in source_nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    return LabKit(name, source, db, cells, hidden_test_lines(source_nb, student_nb))


def _cell_reason(cell) -> str:
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            if out.ename == "NotRun":
                return "not run (0 points)"
            msg = f"{out.ename}: {out.evalue}".strip().rstrip(":")
            return f"failed: {msg[:200]}"
    return "passed"


def _grading_copy(nb):
    """A copy nbgrader scores: stderr in a test cell counts as output, not as failure.

    nbgrader scores a test cell with any stderr output as 0. The labs' test cells write to
    stdout only (``mlscale-lab lint`` checks), so stderr there comes from the learner's code:
    a UserWarning, a ConvergenceWarning, a progress bar. Only an error output fails a test.
    """
    graded = copy.deepcopy(nb)
    for cell in graded.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for out in cell.outputs:
                if out.output_type == "stream" and out.name == "stderr":
                    out.name = "stdout"
    return graded


def grade_submission(kit: LabKit, submission: str | os.PathLike, student: str, out_dir, *,
                     timeout: float = DEFAULT_TIMEOUT, budget: float = DEFAULT_BUDGET,
                     memory: int | None = DEFAULT_MEMORY, sandbox: bool = True,
                     hidden_dirs=(), work_root=None) -> SubmissionResult:
    """Grade one submitted notebook; never raises for a fault of the submission."""
    import nbformat
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        GetGrades,
        LimitOutput,
        OverwriteCells,
        OverwriteKernelspec,
        SaveAutoGrades,
    )

    start = time.perf_counter()
    result = SubmissionResult(student, kit.name, "graded", "graded")
    zero = [CellGrade(gid, 0.0, pts, "not graded (0 points)") for gid, pts in kit.grade_cells]
    job = Path(tempfile.mkdtemp(prefix="mlscale-job-", dir=work_root))
    private, work, runtime = job / "private", job / "work", job / "run"
    for d in (private, work, runtime):
        d.mkdir()
    try:
        try:
            nb = nbformat.read(str(submission), as_version=4)
        except Exception as exc:
            result.status, result.cells = "error", zero
            result.reason = f"{Path(submission).name} is not a readable notebook ({type(exc).__name__}: {exc})"
            return result
        db = private / "gradebook.db"
        shutil.copyfile(kit.db, db)
        url = f"sqlite:///{db}"
        with Gradebook(url) as gb, warnings.catch_warnings():
            # nbgrader's add_submission trips SQLAlchemy's autoflush warnings; they are harmless.
            warnings.simplefilter("ignore")
            gb.update_or_create_student(student)
            gb.add_submission(kit.name, student)
        resources = {"nbgrader": {"notebook": kit.name, "assignment": kit.name, "student": student,
                                  "db_url": url}}
        try:
            for pp in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(),
                       OverwriteCells(add_missing_cells=True), CheckCellMetadata()):
                nb, resources = pp.preprocess(nb, resources)
                for cell in nb.cells:
                    # DeduplicateIds leaves duplicates with empty nbgrader metadata, which
                    # OverwriteCells' add_missing_task_cells then trips on (KeyError: grade_id).
                    if cell.metadata.get("nbgrader", None) == {}:
                        del cell.metadata["nbgrader"]
        except Exception as exc:
            result.status, result.cells = "error", zero
            result.reason = f"could not restore the lab's test cells ({type(exc).__name__}: {exc})"
            return result
        # The kernel's folder holds this submission alone.
        shutil.copyfile(submission, work / Path(submission).name)
        spec = None
        if sandbox:
            spec = SandboxSpec(writable=[work, runtime], workdir=work,
                               hidden=[kit.source.parent, private, *_installed_labs(),
                                       *map(Path, hidden_dirs)])
        outcome = execute_notebook(nb, workdir=work, runtime=runtime, timeout=timeout, budget=budget,
                                   memory_bytes=memory, sandbox_spec=spec)
        result.status, result.reason, result.execute_seconds = outcome.status, outcome.reason, outcome.seconds
        nb, resources = LimitOutput().preprocess(nb, resources)
        SaveAutoGrades().preprocess(_grading_copy(nb), copy.deepcopy(resources))
        nb, resources = GetGrades().preprocess(nb, resources)
        by_id = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade")}
        with Gradebook(url) as gb:
            for gid, _ in kit.grade_cells:
                grade = gb.find_grade(gid, kit.name, kit.name, student)
                cell = by_id.get(gid)
                if grade.auto_score is None:
                    reason = "needs manual grading"
                else:
                    reason = _cell_reason(cell) if cell is not None else "missing (0 points)"
                result.cells.append(CellGrade(gid, grade.score if grade.auto_score is not None else None,
                                              float(grade.max_score), reason))
        note = None if result.status == "graded" else f"{result.status}: {result.reason}"
        body = feedback_html(nb, resources, kit.hidden, note)
        result.feedback = str(write_feedback(Path(out_dir) / "feedback" / student / f"{kit.name}.html", body))
        return result
    except Exception as exc:  # a fault of the grader itself: say so, never a silent zero
        result.status, result.cells = "error", result.cells or zero
        result.reason = f"grading failed ({type(exc).__name__}: {exc})"
        return result
    finally:
        result.seconds = round(time.perf_counter() - start, 2)
        shutil.rmtree(job, ignore_errors=True)


def _installed_labs() -> list[Path]:
    """The installed source labs (a checkout's labs/, or the copy inside the wheel)."""
    from mlscale_lab.harness.labs import labs_dir

    try:
        return [labs_dir().resolve()]
    except FileNotFoundError:
        return []


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


def _grade_job(args):
    kit, path, student, out, kw = args
    return grade_submission(kit, path, student, out, **kw)


def grade_submissions(submissions, out_dir, *, workers: int = 1, timeout: float = DEFAULT_TIMEOUT,
                      budget: float = DEFAULT_BUDGET, memory: int | None = DEFAULT_MEMORY,
                      no_sandbox: bool = False, labs_directory=None, progress: bool = True
                      ) -> list[SubmissionResult]:
    """Grade every submission under ``submissions``; write ``grades.csv`` and feedback to ``out_dir``.

    Parameters
    ----------
    submissions : path-like
        ``<student>/<lab>.ipynb`` files, or nbgrader's ``submitted/<student>/<lab>/`` layout.
    out_dir : path-like
        Receives ``grades.csv`` and ``feedback/<student>/<lab>.html``.
    workers : int
        Submissions graded at the same time, each in its own process and kernel.
    timeout : float
        Seconds a cell may run before it is interrupted.
    budget : float
        Seconds a whole submission may run before all its processes are killed.
    memory : int or None
        Address-space cap in bytes of each kernel process (None: no cap).
    no_sandbox : bool
        Run submissions with your own permissions when no sandbox exists (see
        :data:`NO_SANDBOX_RISK`).
    """
    from mlscale_lab.harness.labs import list_labs

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    for pname, value in (("timeout", timeout), ("budget", budget)):
        if not value > 0:
            raise ValueError(f"{pname} must be > 0 seconds, got {value!r}")
    if memory is not None and memory < 64 * 1024**2:
        raise ValueError(f"memory must be at least 64 MiB (67108864 bytes) or None, got {memory!r}")
    sandbox = require_sandbox(no_sandbox) is not None
    jobs = find_submissions(submissions)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labs = list_labs(labs_directory)
    private = Path(tempfile.mkdtemp(prefix="mlscale-grade-"))
    results: list[SubmissionResult] = []
    try:
        kits: dict[str, LabKit] = {}
        tasks = []
        kw = {"timeout": timeout, "budget": budget, "memory": memory, "sandbox": sandbox,
              "hidden_dirs": [str(Path(submissions).resolve()), str(out.resolve()), str(private)]}
        for student, lab, path in jobs:
            source = _resolve_lab(lab, labs)
            if not _SAFE_ID.match(student):
                results.append(SubmissionResult(student, lab, "error", f"student folder name {student!r} is not a "
                                                "plain id (letters, digits, . _ @ + -); rename it"))
            elif source is None:
                known = ", ".join(p.stem for p in labs) or "(none)"
                results.append(SubmissionResult(student, lab, "error", f"{path.name} matches no lab; the labs are: {known}"))
            else:
                if source.stem not in kits:
                    kits[source.stem] = prepare_lab(source, private)
                tasks.append((kits[source.stem], path, student, str(out), kw))
        results += _run_tasks(tasks, workers, progress)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    results.sort(key=lambda r: (r.student, r.lab))
    write_grades_csv(results, out / "grades.csv")
    return results


def _warm_worker() -> None:
    """Import what grading needs and build the feedback exporter before the first task."""
    from mlscale_lab.harness.grading._feedback import _exporter

    _exporter()


def _run_tasks(tasks, workers: int, progress: bool) -> list[SubmissionResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    pool = None
    if workers > 1 and len(tasks) > 1:
        # Workers fork from this process, which has already imported nbgrader and run no
        # kernel yet (no threads, no ZeroMQ sockets to inherit), so they start warm; the pool
        # exists before the progress bar's monitor thread does.
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        _warm_worker()
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                   mp_context=multiprocessing.get_context(method))
    bar = tqdm(total=len(tasks), desc="grading", unit="submission", disable=not progress, file=sys.stderr)
    results = []
    try:
        if pool is None:
            for t in tasks:
                results.append(_grade_job(t))
                bar.update()
        else:
            with pool:
                futures = [pool.submit(_grade_job, t) for t in tasks]
                for fut in as_completed(futures):
                    results.append(fut.result())
                    bar.update()
    finally:
        bar.close()
    return results


def write_grades_csv(results, path) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerows(r.rows())
    return path
