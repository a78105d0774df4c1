"""The replay's verdicts, put where nbgrader scores them: each test cell's outputs become what
the pristine replay saw (its output, and its error if it failed), and the grader's own checks
(a snapshot that never arrived, a result without the nonce, an environment changed while the
test ran) become a ``GradingCheck`` error worth 0 points plus a flag naming what happened.
"""

from __future__ import annotations

import threading
from pathlib import Path

from mlscale_lab.harness.grading._feedback import HIDDEN_FAILURE, hidden_line_numbers
from mlscale_lab.harness.grading._pristine import (
    SNAPSHOT_ID,
    ReplayServer,
    read_snapshot_note,
    replay_env,
)
from mlscale_lab.harness.grading._sandbox import SandboxSpec, find_bwrap


def cell_reason(cell) -> str:
    """A test cell's verdict in words, read from its outputs."""
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            if out.ename == "NotRun":
                return "not run (0 points)"
            msg = f"{out.ename}: {out.evalue}".strip().rstrip(":")
            return f"failed: {msg[:200]}"
    return "passed"


class Replayer:
    """Runs each test in the replay as soon as the submission's kernel has copied out its values.

    Start it before the notebook runs; a thread watches for the grader's snapshot notes, asks
    the replay driver to run that test and then lets the kernel go on (``<test>.go``), so the
    test sees the files the notebook had written at that point. :meth:`finish` stops it and
    puts the verdicts into the test cells.
    """

    def __init__(self, plans: dict, snaps: Path, *, job: Path, work: Path, runtime: Path, hidden,
                 sandbox: bool, memory, timeout: float, seed) -> None:
        self.plans, self.snaps = plans, snaps
        self.order = sorted(plans)
        self.tests = [{"grade_id": plans[i].grade_id, "source": plans[i].source,
                       "filename": f"<test {plans[i].grade_id}>",
                       "snapshot": str(snaps / f"{plans[i].grade_id}.pkl"), "pinned": plans[i].pinned,
                       "nonce": plans[i].nonce} for i in self.order]
        self.notes: dict[int, dict] = {}
        self.server = None
        if self.tests:
            prefix = []
            if sandbox:
                spec = SandboxSpec(writable=[work, runtime, job / "replay"], workdir=work,
                                   hidden=[h for h in hidden if Path(h) != job / "replay"])
                prefix = spec.bwrap_args(find_bwrap() or "bwrap")
            pins = {spec[0] for t in self.tests for spec in t["pinned"].values()}
            self.server = ReplayServer(self.tests, job_dir=job / "replay", workdir=work,
                                       env=replay_env(work, runtime, seed), sandbox_prefix=prefix,
                                       memory_bytes=memory, timeout=timeout, seed=seed,
                                       watch={m.split(".")[0] for m in pins} | {"mlscale_lab"}, preload=pins)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        for k, i in enumerate(self.order):
            if i in self.notes:
                continue
            note = read_snapshot_note(self.snaps, self.plans[i])
            if note is None:
                continue
            self.notes[i] = note
            if not note["errors"] and self.server is not None:
                self.server.run(k)
            (self.snaps / f"{self.plans[i].grade_id}.go").touch()

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self._poll()

    def finish(self, nb, snapshot_errors: dict, result) -> dict[str, str]:
        """Stop, and put every verdict into its test cell; return the CSV reason by grade_id
        (hidden messages included: grades.csv is the instructor's)."""
        self._stop.set()
        self._thread.join()
        self._poll()
        results = {}
        if self.server is not None:
            results = self.server.results()
            self.server.close()
        reasons = {}
        for i, plan in self.plans.items():
            cell = nb.cells[i]
            if any(o.output_type == "error" and o.ename == "NotRun" for o in cell.outputs):
                continue  # the kernel never got there: nbgrader scores the NotRun error 0
            note = self.notes.get(i)
            if note is None:
                why = snapshot_errors.get(SNAPSHOT_ID + str(i), "it left no snapshot")
                result.flags.append(f"{plan.grade_id}: the grader's own cell before this test did not run "
                                    f"as written ({why}): the submission changed how its kernel runs code")
                _set_outputs(cell, "", _error_output("GradingCheck", "the grader could not copy your answers "
                                                     "out of your kernel: something in the notebook changed "
                                                     "how cells run", []))
                reasons[plan.grade_id] = "0 points: the grader's snapshot before this test did not run"
            elif note["errors"]:
                # A value that cannot leave the kernel: the kernel's verdict, unless flagged.
                names = ", ".join(f"`{n}` ({e})" for n, e in sorted(note["errors"].items()))[:300]
                why = f"checked in the submission's kernel: {names} cannot be copied to a fresh process"
                reasons[plan.grade_id] = (i, why)
            else:
                reasons[plan.grade_id] = _apply_verdict(cell, plan, results.get(plan.grade_id), result)
        for i, plan in self.plans.items():
            entry = reasons.get(plan.grade_id)
            if not isinstance(entry, tuple):
                continue
            if result.flags:
                _set_outputs(nb.cells[i], "", _error_output(
                    "GradingCheck", "this test could not be run away from your notebook's code, "
                    "and that code was flagged (see the grading note)", []))
                reasons[plan.grade_id] = f"0 points: {entry[1]}, and the submission is flagged"
            else:
                reasons[plan.grade_id] = f"{cell_reason(nb.cells[i])} ({entry[1]})"
        return reasons

    def close(self) -> None:
        """Stop everything (after an error of the grader)."""
        self._stop.set()
        if self.server is not None:
            self.server.close()


def _apply_verdict(cell, plan, res, result: object) -> str:
    if not isinstance(res, dict) or "problem" in res or res.get("nonce") != plan.nonce:
        why = (res or {}).get("problem", "it gave no result") if isinstance(res, dict) else "it gave no result"
        if isinstance(res, dict) and "problem" not in res and res.get("nonce") != plan.nonce:
            why = "its result did not carry the grader's nonce"
            result.flags.append(f"{plan.grade_id}: the replay's result was forged")
        _set_outputs(cell, "", _error_output("GradingCheck", f"the test did not finish: {why}", []))
        return f"failed: the test did not finish in a fresh process ({why})"
    output = res.get("output", "")
    if res.get("changed"):
        result.flags.append(f"{plan.grade_id}: " + "; ".join(res["changed"][:5]))
        _set_outputs(cell, output, _error_output("GradingCheck", "the test's environment was changed "
                                                 "while it ran (see the grading note)", []))
        return "0 points: " + "; ".join(res["changed"][:5])
    if res.get("load_error"):
        _set_outputs(cell, output, _error_output("GradingCheck", "your answers could not be loaded in a "
                                                 f"fresh process: {res['load_error']}", []))
        return f"failed: the answers could not be loaded in a fresh process ({res['load_error']})"
    if res.get("passed"):
        _set_outputs(cell, output, None)
        return "passed"
    err = res.get("error") or {"ename": "Error", "evalue": "", "line": None, "frames": []}
    line = err.get("line")
    hidden_line = line is not None and (line in hidden_line_numbers(cell.source) or (
        plan.private_from is not None and line >= plan.private_from))
    msg = f"{err['ename']}: {err['evalue']}".strip().rstrip(":")
    if hidden_line:
        out = _error_output(err["ename"], "", [HIDDEN_FAILURE.format(ename=err["ename"])])
    else:
        ec = cell.get("execution_count") or 0
        frames = [f.replace("Cell, line", f"Cell In[{ec}], line", 1) for f in err.get("frames", [])]
        out = _error_output(err["ename"], err["evalue"], ["Traceback (most recent call last):", *frames,
                                                           f"{err['ename']}: {err['evalue']}"])
    _set_outputs(cell, output, out)
    return f"failed: {msg[:200]}" + (" (a hidden test)" if hidden_line else "")


def _error_output(ename: str, evalue: str, traceback: list[str]):
    from nbformat.v4 import new_output

    return new_output("error", ename=ename, evalue=evalue, traceback=traceback or [f"{ename}: {evalue}"])


def _set_outputs(cell, text: str, error) -> None:
    """The test cell's outputs as the replay saw them (the kernel's own are discarded)."""
    from nbformat.v4 import new_output

    cell.outputs = ([new_output("stream", name="stdout", text=text)] if text else []) + (
        [error] if error is not None else [])
