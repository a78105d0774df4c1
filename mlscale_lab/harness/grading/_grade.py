"""Grade one submission: nbgrader's pipeline, a sandboxed kernel, and a pristine replay of the tests.

Per submission: a fresh gradebook copied from the lab's, nbgrader's sanitising preprocessors
(``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells`` with missing
cells added back, ``CheckCellMetadata``), the static scan of the learner's cells (:mod:`._scan`),
the notebook run in a sandboxed, capped kernel whose folder holds that submission alone, with
the grader's snapshot cell before each test (:mod:`._pristine`), then every test cell replayed in
a fresh process the submission's code never ran in, whose verdicts replace the test cells'
outputs; then ``LimitOutput``, nbgrader's scoring rule and feedback without hidden or
course-private tests. Classes of submissions are graded by :mod:`._class`.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir
from mlscale_lab.harness.budgets import GRADE_BUDGET_S, GRADE_MEMORY_BYTES, GRADE_TIMEOUT_S
from mlscale_lab.harness.executor import socket_folder
from mlscale_lab.harness.grading._execute import execute_notebook
from mlscale_lab.harness.grading._feedback import feedback_html, write_feedback
from mlscale_lab.harness.grading._forks import submission_spawner
from mlscale_lab.harness.grading._pristine import (
    inject_snapshots,
    lab_imports,
    plan_tests,
    remove_snapshots,
)
from mlscale_lab.harness.grading._release import (
    generate_student_version,
    hidden_test_lines,
    new_gradebook,
)
from mlscale_lab.harness.grading._sandbox import SandboxSpec
from mlscale_lab.harness.grading._scan import LabNames, lab_names, scan_submission
from mlscale_lab.harness.grading._verdict import Replayer, cell_reason

CSV_COLUMNS = ("student", "lab", "grade_id", "points", "max_points", "status", "reason")
#: ``flagged``: the submission did something a fair answer never needs (the reason names it);
#: its points are what the pristine replay gave, left for the instructor to confirm.
STATUSES = ("graded", "flagged", "timeout", "kernel_died", "error")
#: Seconds a cell may run, seconds a whole submission may run, and the address-space cap of each
#: kernel process (see :mod:`mlscale_lab.harness.budgets`).
DEFAULT_TIMEOUT = GRADE_TIMEOUT_S
DEFAULT_BUDGET = GRADE_BUDGET_S
DEFAULT_MEMORY = GRADE_MEMORY_BYTES
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")


@dataclass
class LabKit:
    """What grading one lab needs, prepared once: the gradebook template, the graded cells,
    what the lab's own cells define, and the course-private tests."""

    name: str
    source: Path
    db: Path
    grade_cells: list[tuple[str, float]]
    hidden: set[str]
    names: LabNames = field(default_factory=LabNames)
    pinned: dict = field(default_factory=dict)
    private: dict[str, str] = field(default_factory=dict)
    digest: str = ""

    def ungraded_cells(self) -> list[CellGrade]:
        """0 points on every graded cell: the cells of a submission that could not be graded."""
        return [CellGrade(gid, 0.0, pts, "not graded (0 points)") for gid, pts in self.grade_cells]


@dataclass
class CellGrade:
    """The grade of one test cell: points (None: waits for manual grading), maximum, reason."""

    grade_id: str
    points: float | None
    max_points: float
    reason: str


@dataclass
class SubmissionResult:
    """How one submission was graded: status, reason, per-cell grades, flags, feedback page."""

    student: str
    lab: str
    status: str
    reason: str
    cells: list[CellGrade] = field(default_factory=list)
    feedback: str | None = None
    seconds: float = 0.0
    execute_seconds: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def points(self) -> float:
        """Points earned (manual grades not yet given count 0)."""
        return sum(c.points or 0 for c in self.cells)

    @property
    def max_points(self) -> float:
        """Points available."""
        return sum(c.max_points for c in self.cells)

    def rows(self) -> list[dict]:
        """grades.csv rows, one per test cell (one row for a submission with none)."""
        return [
            {"student": self.student, "lab": self.lab, "grade_id": c.grade_id,
             "points": "" if c.points is None else f"{c.points:g}", "max_points": f"{c.max_points:g}",
             "status": self.status,
             "reason": c.reason if self.status == "graded" else f"{self.reason}; {c.reason}"}
            for c in self.cells
        ] or [{"student": self.student, "lab": self.lab, "grade_id": "", "points": "0",
               "max_points": "0", "status": self.status, "reason": self.reason}]

    def as_dict(self) -> dict:
        """A JSON-ready dict (what ``--json`` prints and the result store keeps)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SubmissionResult:
        """The result :meth:`as_dict` described."""
        d = dict(d)
        d["cells"] = [CellGrade(**c) for c in d.get("cells", [])]
        return cls(**d)


def prepare_lab(source: str | os.PathLike, private_dir: str | os.PathLike,
                private_tests: dict[str, str] | None = None) -> LabKit:
    """Record a lab's source cells in a gradebook (as ``nbgrader generate_assignment`` does).

    ``private_tests`` maps a test cell's grade_id to course-private test code, run after the
    lab's own tests in the pristine replay only, never shown in feedback.
    """
    import nbformat

    source = Path(source)
    name = source.stem
    private_tests = dict(private_tests or {})
    db = Path(private_dir) / f"{name}.db"
    url = new_gradebook(db)
    student_nb = generate_student_version(source, url)
    source_nb = nbformat.read(str(source), as_version=4)
    cells = [(c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader.get("points", 0)))
             for c in source_nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    hidden = hidden_test_lines(source_nb, student_nb)
    for code in private_tests.values():
        hidden |= {s for s in (line.strip() for line in code.splitlines()) if len(s) >= 6}
    digest = hashlib.sha256(source.read_bytes() + repr(sorted(private_tests.items())).encode()).hexdigest()
    return LabKit(name, source, db, cells, hidden, lab_names(source_nb), lab_imports(source_nb),
                  private_tests, digest)


def _score(nb, resources: dict) -> dict[str, float | None]:
    """Score every graded cell with nbgrader's own rule (``determine_grade``: an error output
    scores 0), as ``SaveAutoGrades`` and ``GetGrades`` would, without a database; set the
    scores the feedback template shows. ``None``: the cell waits for manual grading.

    nbgrader scores a test cell with any stderr output as 0. The labs' test cells write to
    stdout only (``mlscale-lab lint`` checks), so stderr there comes from the learner's code:
    a UserWarning, a ConvergenceWarning, a progress bar. Only an error output fails a test.
    """
    from nbgrader import utils

    scores, total, maximum = {}, 0.0, 0.0
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if utils.is_solution(cell) or utils.is_task(cell):
            meta["comment"] = None
        if not utils.is_grade(cell):
            continue
        graded = copy.deepcopy(cell)
        for out in graded.get("outputs", []):
            if out.output_type == "stream" and out.name == "stderr":
                out.name = "stdout"
        auto, points = utils.determine_grade(graded)
        scores[meta["grade_id"]] = auto
        meta["score"], meta["points"] = (auto or 0.0), points
        total += auto or 0.0
        maximum += points
    resources["nbgrader"].update({"score": total, "max_score": maximum, "late_penalty": 0})
    return scores


def grade_submission(kit: LabKit, submission: str | os.PathLike, student: str, out_dir, *,
                     timeout: float = DEFAULT_TIMEOUT, budget: float = DEFAULT_BUDGET,
                     memory: int | None = DEFAULT_MEMORY, sandbox: bool = True,
                     hidden_dirs=(), work_root=None, seed: int | None = None) -> SubmissionResult:
    """Grade one submitted notebook; never raises for a fault of the submission.

    ``seed``, when given, reaches the test cells (``GRADING_SEED`` in their namespace and the
    ``MLSCALE_GRADING_SEED`` environment variable) in the pristine replay only.
    """
    import nbformat
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearOutput,
        DeduplicateIds,
        LimitOutput,
        OverwriteCells,
        OverwriteKernelspec,
    )

    start = time.perf_counter()
    adopting = become_subreaper()
    children_before = _child_pids()
    result = SubmissionResult(student, kit.name, "graded", "graded")
    zero = kit.ungraded_cells()
    job = owned_tempdir("job", parent=work_root)
    private, work, runtime, replay = job / "private", job / "work", job / "run", job / "replay"
    for d in (private, work, runtime, replay):
        d.mkdir()
    try:
        try:
            nb = nbformat.read(str(submission), as_version=4)
        except Exception as exc:
            result.status, result.cells = "error", zero
            result.reason = f"{Path(submission).name} is not a readable notebook ({type(exc).__name__}: {exc})"
            return result
        # The lab's gradebook is only read (OverwriteCells restores test cells from it); scores
        # are computed below with nbgrader's own rule, so no per-submission database is written.
        url = f"sqlite:///{kit.db}"
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
        result.flags = scan_submission(nb, kit.names)
        plans = plan_tests(nb, kit.names, kit.pinned, kit.private)
        # The kernel's folder holds this submission alone.
        shutil.copyfile(submission, work / Path(submission).name)
        spec = None
        hidden = [kit.source.parent, kit.db.parent, private, replay, *_installed_labs(), *map(Path, hidden_dirs)]
        # The kernel's connection file and sockets and the grader's socket: a folder whose paths
        # fit a socket's (under /tmp when the job's folder is too deep), bound in the kernel's sandbox.
        sockets = socket_folder("sockets")
        holder = replayer = None
        try:
            if sandbox:
                spec = SandboxSpec(writable=[work, runtime, sockets], workdir=work, hidden=hidden)
            replayer = Replayer(plans, sockets, job=job, work=work, hidden=hidden, sandbox=sandbox,
                                memory=memory, timeout=timeout, seed=seed)
            run = inject_snapshots(nb, plans, replayer.socket_path, wait=timeout)
            holder, spawner = submission_spawner(spec, memory)
            outcome = execute_notebook(run, workdir=work, runtime=runtime, timeout=timeout, budget=budget,
                                       memory_bytes=memory, sandbox_spec=spec, spawner=spawner, sockets=sockets)
            snapshot_errors = remove_snapshots(run)
            nb = run
            reasons = replayer.finish(nb, snapshot_errors, result)
        finally:
            if replayer is not None:
                replayer.close()
            if holder is not None:
                holder.close()
            remove_tempdir(sockets)
        result.status, result.reason, result.execute_seconds = outcome.status, outcome.reason, outcome.seconds
        nb, resources = LimitOutput().preprocess(nb, resources)
        scores = _score(nb, resources)
        by_id = {c.metadata.nbgrader["grade_id"]: c for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade")}
        for gid, points in kit.grade_cells:
            cell = by_id.get(gid)
            auto = scores.get(gid, 0.0) if cell is not None else 0.0
            if auto is None:
                reason = "needs manual grading"
            elif gid in reasons:
                reason = reasons[gid]
            else:
                reason = cell_reason(cell) if cell is not None else "missing (0 points)"
            result.cells.append(CellGrade(gid, auto, float(points), reason))
        if result.flags:
            flagged = "flagged for the instructor: " + "; ".join(result.flags)
            if result.status == "graded":
                result.status, result.reason = "flagged", flagged
            else:
                result.reason = f"{result.reason}; {flagged}"
        note = None if result.status == "graded" else f"{result.status}: {result.reason}"
        body = feedback_html(nb, resources, kit.hidden, note)
        if seed is not None and len(str(seed)) >= 4:
            body = body.replace(str(seed), "[grading seed]")
        result.feedback = str(write_feedback(Path(out_dir) / "feedback" / student / f"{kit.name}.html", body))
        return result
    except Exception as exc:  # a fault of the grader itself: say so, never a silent zero
        result.status, result.cells = "error", result.cells or zero
        result.reason = f"grading failed ({type(exc).__name__}: {exc})"
        return result
    finally:
        result.seconds = round(time.perf_counter() - start, 2)
        remove_tempdir(job)
        if adopting:
            # The caller's process is left as it was: orphans it adopted are reaped, and it
            # stops adopting (a test run or a notebook that called us keeps its own children).
            _reap_adopted(children_before)
            _set_subreaper(False)


def _set_subreaper(on: bool) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:  # PR_SET_CHILD_SUBREAPER
        return ctypes.CDLL(None, use_errno=True).prctl(36, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``) while it
    grades one submission; True if it now adopts them and did not before.

    A sandboxed kernel lives in its own PID namespace; when its process tree is killed, the
    processes inside are re-parented to the machine's init, and waiting for them to be gone
    lasts as long as init takes to reap them (about 2 s per submission under a container's
    init). As their subreaper, the grader reaps them itself, at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:  # PR_GET_CHILD_SUBREAPER: was it one already (a grading worker stays one)?
        flag = ctypes.c_int(0)
        if ctypes.CDLL(None, use_errno=True).prctl(37, ctypes.byref(flag), 0, 0, 0) == 0 and flag.value:
            return False
    except (OSError, AttributeError):
        return False
    return _set_subreaper(True)


def _child_pids() -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process().children()}
    except psutil.Error:
        return set()


def _reap_adopted(before: set[int]) -> None:
    """End and reap the children this process gained while grading (adopted orphans of the
    sandbox), so none outlives the submission and none lingers as a zombie of the caller."""
    import psutil

    adopted = []
    for pid in _child_pids() - before:
        try:
            adopted.append(psutil.Process(pid))
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(adopted, timeout=2)  # waits on (so reaps) our own children
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=2)


def _installed_labs() -> list[Path]:
    """The installed source labs (a checkout's labs/, or the copy inside the wheel)."""
    from mlscale_lab.harness.labs import labs_dir

    try:
        return [labs_dir().resolve()]
    except FileNotFoundError:
        return []


