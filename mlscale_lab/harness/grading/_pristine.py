"""Grade in a pristine context: the tests' verdicts come from a process the submission never runs in.

The submission's notebook still runs top to bottom in its own sandboxed kernel (that gives the
learner's outputs for feedback, and holds the learner's values). Before each test cell the
grader adds one cell of its own that connects to the grader and serves that test
(:mod:`._serve`); the grader hands the connection to :mod:`._replay`, which runs the test cell
in a fresh process in a sandbox of its own: builtins and libraries imported clean, the lab's
own imports bound afresh, the values the test reads (names computed here from the lab's
source, never from the submission) fetched as plain data, learner functions and objects as
proxies whose every call runs back in the kernel and answers in plain data (:mod:`._codec`,
:mod:`._proxy`), the lab's test code (plus course-private tests) executed. Its verdict, read
over the grader's own channel and matched against a nonce the kernel never sees, decides the
score; the test cell's output in the notebook is replaced by the replay's.

So nothing the submission does, at the top level or inside an answer a test calls, runs in the
test's process: a shadowed builtin, a patched ``np.isclose``, a thread, a signal handler or a
function that climbs the call stack act on the kernel only, and what comes back is data. If
the submission stops the grader's own cell from running, that test scores 0 and it is flagged.
"""

from __future__ import annotations

import ast
import contextlib
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab._core.environment import GRADING_SEED_ENV, HEADLESS_ENV
from mlscale_lab.harness.grading._scan import LabNames, free_names, top_level_bindings
from mlscale_lab.harness.grading._source import parse_cell, python_source

SNAPSHOT_ID = "mlscale-snapshot-"
#: The grader's cell before each test cell: it runs inside the submission's kernel, in a dict of
#: its own (nothing added to the learner's namespace), and serves that test's process (:mod:`._serve`)
#: until the test is done, so the test sees the files the notebook had written at that point.
_SERVE_CODE = ("from mlscale_lab.harness.grading._serve import serve_test\n"
               "serve_test(ns, path, ticket, wait)\n")


@dataclass
class TestPlan:
    """One test cell as the replay runs it."""

    grade_id: str
    source: str  # the lab's test code, course-private tests appended
    names: list[str]  # what the submission's kernel copies out before the test
    pinned: dict[str, list]  # the lab's own imports the test reads, bound afresh
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))  # never leaves the grader and the replay
    ticket: str = field(default_factory=lambda: secrets.token_hex(16))  # names the test to the kernel's side
    private_from: int | None = None  # first line of the private tests, 1-based


def lab_imports(source_nb) -> dict[str, list]:
    """``name -> [module, attribute or None]`` for the imports in the lab's own cells, except
    names its cells also bind otherwise (those are values, copied like any other)."""
    pinned: dict[str, list] = {}
    rebound: set[str] = set()
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("solution") or meta.get("grade"):
            continue
        tree = parse_cell(cell.source)
        if tree is None:
            continue
        imported = set()
        for node in tree.body:
            if isinstance(node, ast.Import):
                for a in node.names:
                    name = a.asname or a.name.split(".")[0]
                    pinned[name] = [a.name if a.asname else name, None]
                    imported.add(name)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        pinned[a.asname or a.name] = [node.module, a.name]
                        imported.add(a.asname or a.name)
        rebound |= top_level_bindings(ast.Module(body=[s for s in tree.body if not isinstance(
            s, ast.Import | ast.ImportFrom)], type_ignores=[]))
    return {k: v for k, v in pinned.items() if k not in rebound}


def lab_modules(source_nb) -> tuple[set[str], set[str]]:
    """The modules a lab's cells import: ``(in its own and answer cells, in its test cells)``:
    what its kernel and its tests' processes can import ahead (:mod:`._zygote`)."""
    cells, tests = set(), set()
    for cell in source_nb.cells:
        if cell.cell_type != "code":
            continue
        tree = parse_cell(cell.source)
        for node in ast.walk(tree) if tree is not None else ():
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            meta = cell.metadata.get("nbgrader", {})
            (tests if meta.get("grade") and not meta.get("solution") else cells).update(names)
    return cells, tests


def plan_tests(nb, names: LabNames, pinned: dict[str, list], private: dict[str, str]) -> dict[int, TestPlan]:
    """The replay plan of every autograded test cell of the restored notebook, by cell index."""
    import builtins

    plans = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        gid = meta["grade_id"]
        source, start = cell.source, None
        if gid in private:
            start = len(source.splitlines()) + 1
            source = f"{source}\n{private[gid]}"
        tree = parse_cell(source)
        reads = free_names(tree) if tree is not None else set()
        pins = {n: pinned[n] for n in sorted(reads & set(pinned))}
        ship = sorted(n for n in reads - set(pins) if not hasattr(builtins, n))
        plans[i] = TestPlan(gid, python_source(source), ship, pins, private_from=start)
    return plans


def inject_snapshots(nb, plans: dict[int, TestPlan], socket_path: Path, wait: float):
    """A copy of ``nb`` with the grader's serving cell before each planned test cell; each
    serves its test's process for up to ``wait`` seconds (at ``socket_path``, the grader's)."""
    import copy

    from nbformat.v4 import new_code_cell

    run = copy.deepcopy(nb)
    for i in sorted(plans, reverse=True):
        args = {"path": str(socket_path), "ticket": plans[i].ticket, "wait": wait}
        cell = new_code_cell(f"exec({_SERVE_CODE!r}, {{'ns': globals(), **{args!r}}})")
        cell.id = SNAPSHOT_ID + str(i)
        run.cells.insert(i, cell)
    return run


def remove_snapshots(run) -> dict[str, str]:
    """Take the grader's cells out of the executed notebook; return errors they raised, by test."""
    failed = {}
    kept = []
    for cell in run.cells:
        if str(cell.get("id", "")).startswith(SNAPSHOT_ID):
            err = next((o for o in cell.get("outputs", []) if o.output_type == "error"), None)
            if err is not None and err.ename != "NotRun":
                failed[cell.id] = f"{err.ename}: {err.evalue}"[:200]
        else:
            kept.append(cell)
    run.cells = kept
    return failed


def replay_cmd(control_fd: int, memory_bytes: int | None) -> list[str]:
    """The replay driver's command line, its memory capped as the kernel's is (where the
    platform can cap it: :func:`mlscale_lab.harness.confine.launch_prefix`, the one place that
    knows how), and no core dumps."""
    from mlscale_lab.harness.confine import can_cap_address_space, launch_prefix
    from mlscale_lab.harness.grading._sandbox import python_executable

    capped = memory_bytes if memory_bytes is not None and can_cap_address_space() else None
    driver = str(Path(__file__).with_name("_replay.py"))
    return [*launch_prefix(as_bytes=capped, core_dumps=False),
            python_executable(), "-s", "-P", driver, str(control_fd)]


class ReplayServer:
    """The replay driver (:mod:`._replay`) in its own sandboxed process, running tests on request.

    It gets the job over a Unix socket (the tests never touch a disk), then, for each test, the
    channel to the submission's kernel; its verdicts come back on the same socket.
    """

    def __init__(self, tests: list[dict], *, workdir: Path, env: dict, sandbox_prefix: list[str],
                 memory_bytes, timeout: float, seed, watch, preload, log: Path, holder=None,
                 forked: bool = False) -> None:
        from mlscale_lab.harness.confine import can_cap_address_space
        from mlscale_lab.harness.grading._forks import start_process

        self.timeout = timeout
        self._results: dict = {}
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._log = open(log, "wb")  # noqa: SIM115 (closed in close())

        def fresh():
            return subprocess.Popen(
                [*sandbox_prefix, *replay_cmd(theirs.fileno(), memory_bytes)], cwd=workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, pass_fds=(theirs.fileno(),),
                start_new_session=True)

        capped = memory_bytes if memory_bytes is not None and can_cap_address_space() else None
        try:
            with open(os.devnull, "rb") as null:
                self.proc = start_process("replay", {"cwd": str(os.path.realpath(workdir)), "env": env,
                                                     "as_bytes": capped},
                                          [null.fileno(), self._log.fileno(), self._log.fileno(), theirs.fileno()],
                                          fresh, holder) if forked else fresh()
        finally:
            theirs.close()
        self._tell(["job", {"tests": tests, "seed": seed, "timeout": timeout, "watch": sorted(watch),
                            "preload": sorted(preload)}])
        self._ready: bool | None = None
        self._ready_by = time.monotonic() + timeout + 60

    @property
    def ready(self) -> bool:
        """Whether the driver has its job and its imports: waited for when first asked (before
        the first test), so the driver starts while the submission's kernel does."""
        if self._ready is None:
            left = max(1.0, self._ready_by - time.monotonic())  # a ready long queued is still read
            self._ready = self._wait(lambda m: m == ["ready"], left) is not None
        return self._ready

    def _tell(self, message, fds=()) -> bool:
        from mlscale_lab.harness.grading._codec import send_frame

        try:
            socket.send_fds(self.control, [b"m"], list(fds))
            send_frame(self.control, message)
            return True
        except OSError:
            return False

    def _wait(self, match, seconds: float):
        from mlscale_lab.harness.grading._codec import recv_frame

        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.control.settimeout(left)
            try:
                message, _ = recv_frame(self.control)
            except (OSError, ValueError, EOFError):
                return None
            if match(message):
                return message
        return None

    def run(self, index: int, channel: socket.socket) -> bool:
        """Run test ``index`` against ``channel`` (the kernel's side of it); False if the driver
        did not answer in time (then it is stopped)."""
        if not self.ready or not self._tell(["run", index], [channel.fileno()]):
            return False
        message = self._wait(lambda m: m[0] == "result" and m[1] == index, self.timeout + 30)
        if message is None:  # the driver kills a test at its timeout: it is wedged or gone
            self.close()
            return False
        self._results[index] = message[2]
        return True

    def results(self) -> dict:
        """The driver's results by test index."""
        return dict(self._results)

    def close(self) -> None:
        """End the driver and every process it started."""
        from mlscale_lab._core.processes import descendant_pids, kill_process_tree

        inside = descendant_pids(self.proc.pid) if self.proc.poll() is None else []
        with contextlib.suppress(OSError):
            self.control.close()
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            kill_process_tree(self.proc.pid)
            self.proc.wait()
        for pid in inside:  # re-parented to the grader when it is their subreaper: reap them
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not self._log.closed:
            self._log.close()


def replay_env(workdir: Path, private: Path, seed) -> dict:
    """The replay's environment: the basics, its own ``HOME`` and settings folder (never one the
    submission's kernel can write), no grader secrets, the grading seed if any."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ") if k in os.environ}
    env.update({"HOME": str(private), "MPLCONFIGDIR": str(private / "matplotlib"), "MPLBACKEND": "Agg",
                "PYTHONHASHSEED": "0", HEADLESS_ENV: "1"})
    if seed is not None:
        env[GRADING_SEED_ENV] = str(seed)
    return env
