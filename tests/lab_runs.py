"""Each lab executed once per test run, and shared by the tests that only read what it produced.

Executing the labs is most of the suite's time. ``tests/test_labs.py`` holds a run to the lab's
budget, records and exercise trials; ``tests/test_browser.py`` renders the same executed
notebook in JupyterLab. The first test that asks for a lab executes it (through the runner, as
``mlscale-lab run`` does, with the exercise trials appended: see ``exercise_trials.py``) and
every later one reads the saved run.

``make test`` runs the suite on two pytest-xdist workers. The runs are then shared through files
in a folder both workers see, under a lock per lab: whichever worker asks first executes the lab,
the other waits for it. Two CPU-heavy jobs side by side on two cores take each other's CPU, so:

- a lab whose metadata says ``"runs_alone": true`` (its checkpoints compare parallel speedups or
  latencies) executes with nothing of the suite beside it: :class:`MachineShare` keeps the other
  worker's tests from starting meanwhile (a test already running is waited for);
- every other test, lab runs included, shares the machine with at most one other test, and a
  lab run never has another heavy job beside it (:meth:`MachineShare.heavy`: the grading of a
  lab, which executes the whole lab again in the sandbox).

:func:`order` puts the tests of the ``labs`` xdist group (lab runs, then their gradings) first,
so one worker works through them while the other takes the other files one at a time (a file's
tests on one worker, so its module fixtures are made once). The browser's renderings of the
runs come last in the ``labs`` group: on their own group the scheduler gave them to the other
worker behind its queue, and the labs' worker sat idle for the browser's two minutes (CI run,
after every grading: 140 s idle on one worker while the other rendered).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from exercise_trials import with_trials

from mlscale_lab.harness.runner import LabRun, run_lab

try:  # POSIX; elsewhere the suite runs in one process and needs no lock
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None

TRIAL_CELL_ID = "mlscale-exercise-trials"


def runs_alone(nb) -> bool:
    """Whether the lab's metadata asks for the whole machine (``metadata.mlscale.runs_alone``)."""
    return bool(nb.metadata.get("mlscale", {}).get("runs_alone", False))


class MachineShare:
    """A readers-writer lock over the machine, shared by the pytest-xdist workers of one run.

    Every test holds it shared while it runs (two tests side by side, one a worker); a lab that
    runs alone holds it exclusively. A turnstile in front keeps a waiting exclusive holder from
    being starved by the other worker's stream of shared ones (the scheme of ``flock`` readers
    and writers). Outside xdist, or without ``fcntl``, every method does nothing: one process
    runs one test at a time anyway.
    """

    def __init__(self, folder: Path | None):
        self.active = folder is not None and fcntl is not None
        self.shared = False
        self.folder = folder
        if self.active:
            folder.mkdir(parents=True, exist_ok=True)
            self._turnstile = open(folder / "turnstile.lock", "a+")  # noqa: SIM115 (process lifetime)
            self._machine = open(folder / "machine.lock", "a+")  # noqa: SIM115
            self._heavy = open(folder / "heavy.lock", "a+")  # noqa: SIM115

    def share(self) -> None:
        """Take the machine shared (waits while a lab runs alone)."""
        if not self.active or self.shared:
            return
        fcntl.flock(self._turnstile, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._machine, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._turnstile, fcntl.LOCK_UN)
        self.shared = True

    def release(self) -> None:
        """Let go of a shared hold."""
        if self.active and self.shared:
            fcntl.flock(self._machine, fcntl.LOCK_UN)
            self.shared = False

    @contextlib.contextmanager
    def heavy(self, label: str = "heavy job"):
        """One heavy job at a time (a lab run, the grading of a lab): a lab's timed run never has
        the grading of another lab beside it. How long each waited and ran goes to the run's
        timeline (:func:`timeline_report`)."""
        if not self.active:
            yield
            return
        asked = time.time()
        fcntl.flock(self._heavy, fcntl.LOCK_EX)
        got = time.time()
        try:
            yield
        finally:
            fcntl.flock(self._heavy, fcntl.LOCK_UN)
            self._note(label, asked, got)

    def _note(self, label: str, asked: float, got: float) -> None:
        line = {"what": label, "asked": asked, "waited": got - asked, "held": time.time() - got}
        with open(self.folder / TIMELINE, "a") as fh:  # one short line: appends stay whole
            fh.write(json.dumps(line) + "\n")

    @contextlib.contextmanager
    def holding(self):
        """Shared, for the block (a lab run that shares the machine with one other test)."""
        self.share()
        try:
            yield
        finally:
            self.release()

    @contextlib.contextmanager
    def stepped_aside(self):
        """Not holding the machine meanwhile (while waiting for the other worker's lab run)."""
        was = self.shared
        self.release()
        try:
            yield
        finally:
            if was:
                self.share()

    @contextlib.contextmanager
    def alone(self, label: str = "alone"):
        """The whole machine: waits for the other worker's running test, holds off its next."""
        if not self.active:
            yield
            return
        with self.stepped_aside():
            asked = time.time()
            fcntl.flock(self._turnstile, fcntl.LOCK_EX)
            try:
                fcntl.flock(self._machine, fcntl.LOCK_EX)
                got = time.time()
                try:
                    yield
                finally:
                    fcntl.flock(self._machine, fcntl.LOCK_UN)
                    self._note(label, asked, got)
            finally:
                fcntl.flock(self._turnstile, fcntl.LOCK_UN)


@dataclass
class ExecutedLab:
    """One lab's run: the runner's outcome and the executed notebook (outputs, widget state)."""

    source: Path  # the lab in labs/
    run: LabRun
    notebook: Path  # the executed lab without the trial cell: what a learner's run shows
    left: list[str]  # what the run left in the temporary folder it was given (nothing, we hope)


class LabRuns:
    """The session's lab runs: :meth:`get` executes a lab the first time and reads it after.

    Parameters
    ----------
    folder : Path
        Where runs are saved (``<stem>.json`` and the executed ``<stem>.ipynb``); under xdist a
        folder every worker of the run sees.
    machine : MachineShare
        The run's machine lock (see the module docstring).
    """

    def __init__(self, folder: Path, machine: MachineShare):
        self.folder = folder
        self.machine = machine
        folder.mkdir(parents=True, exist_ok=True)
        self._done: dict[str, ExecutedLab] = {}

    def get(self, path: Path) -> ExecutedLab:
        """The run of the lab at ``path``, executing it if no test of this run has yet."""
        path = Path(path)
        if path.stem in self._done:
            return self._done[path.stem]
        with self.machine.stepped_aside(), self._lab_lock(path.stem):
            found = self._read(path)
            if found is None:
                found = self._execute(path)
        self._done[path.stem] = found
        return found

    @contextlib.contextmanager
    def _lab_lock(self, stem: str):
        if fcntl is None:
            yield
            return
        with open(self.folder / f"{stem}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _read(self, path: Path) -> ExecutedLab | None:
        saved = self.folder / f"{path.stem}.json"
        if not saved.exists():
            return None
        run = LabRun(**json.loads(saved.read_text()))
        left = json.loads((self.folder / f"{path.stem}.left.json").read_text())
        return ExecutedLab(path, run, self.folder / path.name, left)

    def _execute(self, path: Path) -> ExecutedLab:
        nb = nbformat.read(path, as_version=4)
        budget = nb.metadata["mlscale"]["budget"]
        trial = self.folder / "trials" / path.name
        trial.parent.mkdir(exist_ok=True)
        nbformat.write(with_trials(nb, path.stem), str(trial))
        executed = self.folder / "executed"
        # Inline plots, as a kernel has them when MPLBACKEND is unset (ipykernel sets this), so
        # the saved notebook holds its images whatever MPLBACKEND the caller's shell has.
        env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        # get() stepped aside: hold the machine again, alone if the lab needs it to itself
        alone = runs_alone(nb)
        label = f"run {path.stem}" + (" (alone)" if alone else "")
        with self.machine.alone(label) if alone else self.machine.holding(), \
                contextlib.nullcontext() if alone else self.machine.heavy(label):
            # The kill switch sits well above the budget, so an overrun is reported, not hidden.
            # The runner, its kernel and everything the lab starts get an empty temporary
            # folder of their own, which must be empty again after the run.
            scratch = self.folder / "tmp" / path.stem
            scratch.mkdir(parents=True)
            with _temporary_folder(scratch):
                run = run_lab(trial, budget=max(120, 3 * budget["seconds"]),
                              executed_dir=executed, extra_env=env)
        left = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
        out = nbformat.read(executed / path.name, as_version=4)
        out.cells = [c for c in out.cells if c.get("id") != TRIAL_CELL_ID]
        nbformat.write(out, str(self.folder / path.name))
        (self.folder / f"{path.stem}.left.json").write_text(json.dumps(left))
        (self.folder / f"{path.stem}.json").write_text(json.dumps(run.as_dict()))
        return ExecutedLab(path, run, self.folder / path.name, left)


@contextlib.contextmanager
def _temporary_folder(folder: Path):
    """``tempfile``'s folder and ``TMPDIR`` set to ``folder`` while the block runs (a test
    process runs one test at a time: nothing else of it makes temporary files meanwhile)."""
    saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    try:
        yield
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved_env


def _lab_of(item) -> Path | None:
    spec = getattr(item, "callspec", None)
    for value in (spec.params.values() if spec else ()):
        if isinstance(value, Path) and value.suffix == ".ipynb":
            return value
    return None


def _group(item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return (mark.args[0] if mark.args else mark.kwargs.get("name")) if mark else None


def order(items) -> None:
    """Reorder ``items`` in place: the ``labs`` group first (lab runs, labs that run alone first,
    then the longest; then their gradings; then the browser's renderings, in lab order), the
    other tests as collected."""
    budgets: dict[Path, float] = {}

    def budget(lab: Path) -> float:
        if lab not in budgets:
            nb = nbformat.read(lab, as_version=4)
            budgets[lab] = -1e9 if runs_alone(nb) else -nb.metadata["mlscale"]["budget"]["seconds"]
        return budgets[lab]

    stages = {"test_labs": 0, "test_browser": 2}  # and the gradings between them

    def key(indexed):
        index, item = indexed
        if _group(item) == "labs":
            lab = _lab_of(item)
            stage = stages.get(item.module.__name__, 1)
            return (0, stage, budget(lab) if lab and stage < 2 else 0, index)
        return (1, 0, 0, index)

    items[:] = [item for _, item in sorted(enumerate(items), key=key)]
    # Every other test goes with its file (``--dist loadgroup``), as ``--dist loadscope`` would:
    # a module's fixtures (a class graded once for many tests) are then made on one worker only.
    for item in items:
        if _group(item) is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


# The run's folder: made by the process that runs pytest (xdist's controller, or pytest alone),
# handed to each xdist worker, and removed by its maker when the run ends.
_FOLDER_KEY = "mlscale_shared_folder"
#: Workers of ``-n auto`` at most: each may hold a kernel or a server of up to 1.5 GB.
MAX_WORKERS = 4


class XdistHooks:
    """Registered only where pytest-xdist is installed (its hook is unknown to pytest without it)."""

    @pytest.hookimpl
    def pytest_configure_node(self, node):
        node.workerinput[_FOLDER_KEY] = str(node.config.stash[_folder])

    @pytest.hookimpl
    def pytest_xdist_auto_num_workers(self, config):
        """``-n auto``: one worker per CPU this run may use (container limits included, where
        xdist would count the host's cores), at most :data:`MAX_WORKERS`."""
        from mlscale_lab.constraints import machine_budget

        return max(1, min(MAX_WORKERS, machine_budget().usable_cpus))


_folder = pytest.StashKey[Path]()
_share = pytest.StashKey[MachineShare]()
_runs = pytest.StashKey["LabRuns"]()


def configure(config) -> None:
    """Set up the run's shared folder, machine lock and lab runs (from ``pytest_configure``)."""
    worker = getattr(config, "workerinput", None)
    if worker is None:
        config.stash[_folder] = Path(tempfile.mkdtemp(prefix="mlscale-tests-"))
        if config.pluginmanager.hasplugin("xdist"):
            config.pluginmanager.register(XdistHooks(), "mlscale-xdist-hooks")
    else:
        config.stash[_folder] = Path(worker[_FOLDER_KEY])
    folder = config.stash[_folder]
    config.stash[_share] = MachineShare(folder / "machine" if worker is not None else None)
    config.stash[_runs] = LabRuns(folder / "lab-runs", config.stash[_share])


#: Where the heavy jobs note how long they waited for the machine and held it.
TIMELINE = "timeline.jsonl"


def timeline_report(config) -> list[str]:
    """The heavy jobs of the run in the order they asked, with their waits: where the labs
    group's minutes went (printed at the end of the run, for the CI log)."""
    if getattr(config, "workerinput", None) is not None or _folder not in config.stash:
        return []
    return format_timeline(config.stash[_folder] / "machine" / TIMELINE)


def format_timeline(path: Path) -> list[str]:
    """The lines of :func:`timeline_report` from a timeline file (none if there is no file)."""
    if not path.exists():
        return []
    jobs = sorted((json.loads(line) for line in path.read_text().splitlines()),
                  key=lambda j: j["asked"])
    start = jobs[0]["asked"]
    lines = [f"{'asked at':>9} {'waited':>7} {'held':>7}  job"]
    lines += [f"{j['asked'] - start:8.0f}s {j['waited']:6.1f}s {j['held']:6.1f}s  {j['what']}"
              for j in jobs]
    held = sum(j["held"] for j in jobs)
    lines.append(f"{len(jobs)} heavy jobs held the machine {held:.0f} s in all")
    return lines


def unconfigure(config) -> None:
    """Remove the shared folder (its maker does, after every worker has ended)."""
    if getattr(config, "workerinput", None) is None and _folder in config.stash:
        shutil.rmtree(config.stash[_folder], ignore_errors=True)


def machine_share(config) -> MachineShare:
    """The run's machine lock."""
    return config.stash[_share]


def lab_runs(config) -> LabRuns:
    """The run's lab runs."""
    return config.stash[_runs]
