"""Grade in a pristine context: the tests' verdicts come from a process the submission never ran in.

The submission's notebook still runs top to bottom in its own sandboxed kernel (that gives the
learner's outputs for feedback and the names the tests read). Before each test cell the grader
adds one cell of its own that copies out the values that test reads (``cloudpickle``, names
computed here from the lab's source, never from the submission) with a fresh nonce. After the
kernel is gone, :mod:`._replay` runs each test cell in a fresh process in the same sandbox:
builtins and libraries imported clean, the lab's own imports bound afresh, the answer values
loaded, the lab's test code (plus course-private tests) executed. Its verdict, read over the
grader's own channel and matched against the nonce, decides the score; the test cell's output
in the notebook is replaced by the replay's.

So an answer cell that installs an input transformer, wraps ``do_execute``, shadows a builtin,
patches ``np.isclose`` or edits ``sys.modules`` changes nothing where the tests run; if it stops
the grader's own cell from running, that test scores 0 and the submission is flagged.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab.harness.grading._scan import LabNames, free_names, parse_cell, top_level_bindings

SNAPSHOT_ID = "mlscale-snapshot-"
#: Runs inside the submission's kernel, in a dict of its own (nothing added to the learner's
#: namespace). Values go to a pickle only the replay loads; a JSON note says what could not be
#: pickled, so the grader never unpickles anything the submission produced.
_SNAPSHOT_CODE = '''
import json, linecache, cloudpickle
vals = {n: ns[n] for n in names if n in ns}
# The sources of the notebook's cells, so inspect.getsource works on answers in the replay.
lines = {k: v for k, v in list(linecache.cache.items()) if "ipykernel_" in k or k.startswith("<ipython-input")}
errors = {}
try:
    blob = cloudpickle.dumps({"values": vals, "lines": lines})
except Exception:
    kept = {}
    for n, v in vals.items():
        try:
            cloudpickle.dumps(v)
            kept[n] = v
        except Exception as exc:
            errors[n] = (type(exc).__name__ + ": " + str(exc))[:200]
    blob = cloudpickle.dumps({"values": kept, "lines": lines})
with open(path + ".pkl", "wb") as fh:
    fh.write(blob)
with open(path + ".json", "w") as fh:
    json.dump({"nonce": nonce, "errors": errors}, fh)
import os, time
end = time.monotonic() + wait
while not os.path.exists(path + ".go") and time.monotonic() < end:
    time.sleep(0.005)
'''


@dataclass
class TestPlan:
    """One test cell as the replay runs it."""

    grade_id: str
    source: str  # the lab's test code, course-private tests appended
    names: list[str]  # what the submission's kernel copies out before the test
    pinned: dict[str, list]  # the lab's own imports the test reads, bound afresh
    nonce: str = field(default_factory=lambda: secrets.token_hex(16))
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
        from mlscale_lab.harness.grading._scan import python_source

        plans[i] = TestPlan(gid, python_source(source), ship, pins, private_from=start)
    return plans


def inject_snapshots(nb, plans: dict[int, TestPlan], snap_dir: Path, wait: float):
    """A copy of ``nb`` with the grader's snapshot cell before each planned test cell; each
    waits up to ``wait`` seconds for the replay of its test (so files are as the test expects)."""
    import copy

    from nbformat.v4 import new_code_cell

    run = copy.deepcopy(nb)
    for i in sorted(plans, reverse=True):
        plan = plans[i]
        args = {"names": plan.names, "path": str(snap_dir / plan.grade_id), "nonce": plan.nonce,
                "wait": wait}
        cell = new_code_cell(f"exec({_SNAPSHOT_CODE!r}, {{'ns': globals(), **{args!r}}})")
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


def read_snapshot_note(snap_dir: Path, plan: TestPlan) -> dict | None:
    """The snapshot's JSON note if the grader's cell really wrote it (nonce matches)."""
    note = snap_dir / f"{plan.grade_id}.json"
    pkl = snap_dir / f"{plan.grade_id}.pkl"
    try:
        if note.stat().st_size > 1_000_000 or not pkl.is_file():
            return None
        data = json.loads(note.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("nonce") != plan.nonce or not isinstance(data.get("errors"), dict):
        return None
    return data


def replay_cmd(job: Path, results: Path, memory_bytes: int | None) -> list[str]:
    """The replay driver's command line, its memory capped as the kernel's is (where the
    platform can cap it: :func:`mlscale_lab.harness.confine.launch_prefix`, the one place that
    knows how), and no core dumps."""
    from mlscale_lab.harness.confine import can_cap_address_space, launch_prefix
    from mlscale_lab.harness.grading._sandbox import python_executable

    capped = memory_bytes if memory_bytes is not None and can_cap_address_space() else None
    driver = str(Path(__file__).with_name("_replay.py"))
    return [*launch_prefix(as_bytes=capped, core_dumps=False),
            python_executable(), "-s", "-P", driver, str(job), str(results)]


class ReplayServer:
    """The replay driver (:mod:`._replay`) in its own sandboxed process, running tests on request."""

    def __init__(self, tests: list[dict], *, job_dir: Path, workdir: Path, env: dict,
                 sandbox_prefix: list[str], memory_bytes, timeout: float, seed, watch, preload) -> None:
        self.job_dir, self.timeout = job_dir, timeout
        (job_dir / "job.json").write_text(json.dumps({
            "tests": tests, "seed": seed, "timeout": timeout, "watch": sorted(watch),
            "preload": sorted(preload)}))
        self._log = open(job_dir / "replay.log", "wb")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [*sandbox_prefix, *replay_cmd(job_dir / "job.json", job_dir / "results.json", memory_bytes)],
            cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True)

    def run(self, index: int) -> bool:
        """Run test ``index``; False if the driver did not answer in time (then it is stopped)."""
        import select

        try:
            self.proc.stdin.write(f"{index}\n".encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return False
        deadline = time.monotonic() + self.timeout + 30  # the driver kills a test at timeout
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.close()
                return False
            chunk = os.read(fd, 64)
            if not chunk:
                return False
            line += chunk
        return True

    def results(self) -> dict:
        """The driver's results by grade_id ({} if it wrote none)."""
        try:
            return json.loads((self.job_dir / "results.json").read_text())
        except (OSError, ValueError):
            return {}

    def close(self) -> None:
        """End the driver and every process it started."""
        from mlscale_lab.constraints import descendant_pids, kill_process_tree

        inside = descendant_pids(self.proc.pid) if self.proc.poll() is None else []
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            kill_process_tree(self.proc.pid)
            self.proc.wait()
        for pid in inside:  # re-parented to the grader when it is their subreaper: reap them
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        self._log.close()


def replay_env(workdir: Path, runtime: Path, seed) -> dict:
    """The replay's environment: the basics, no grader secrets, the grading seed if any."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ") if k in os.environ}
    env.update({"HOME": str(workdir), "MPLCONFIGDIR": str(runtime / "matplotlib"), "MPLBACKEND": "Agg",
                "PYTHONHASHSEED": "0", "MLSCALE_HEADLESS": "1"})
    if seed is not None:
        env["MLSCALE_GRADING_SEED"] = str(seed)
    return env
