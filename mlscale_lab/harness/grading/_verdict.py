"""The replay's verdicts, put where nbgrader scores them: each test cell's outputs become what
the pristine replay saw (its output, and its error if it failed), and the grader's own checks
(a snapshot that never arrived, a result without the nonce, an environment changed while the
test ran) become a ``GradingCheck`` error worth 0 points plus a flag naming what happened.
"""

from __future__ import annotations

from pathlib import Path

from mlscale_lab.harness.grading._feedback import HIDDEN_FAILURE, hidden_line_numbers
from mlscale_lab.harness.grading._pristine import (
    SNAPSHOT_ID,
    read_snapshot_note,
    replay_env,
    run_replay,
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


def replay_tests(nb, plans, snaps: Path, snapshot_errors: dict, result: object, *, job, work,
                  runtime, hidden, sandbox, memory, timeout, budget, seed) -> dict[str, str]:
    """Replay every test whose snapshot arrived; put the verdicts in the test cells' outputs.

    Returns the CSV reason of each test whose verdict came from here (hidden messages
    included: grades.csv is the instructor's).
    """
    tests, fallback, reasons = [], {}, {}
    for i, plan in plans.items():
        cell = nb.cells[i]
        never_ran = any(o.output_type == "error" and o.ename == "NotRun" for o in cell.outputs)
        if never_ran:
            continue
        note = read_snapshot_note(snaps, plan)
        if note is None:
            why = snapshot_errors.get(SNAPSHOT_ID + str(i), "it left no snapshot")
            result.flags.append(f"{plan.grade_id}: the grader's own cell before this test did not run "
                                f"as written ({why}): the submission changed how its kernel runs code")
            _set_outputs(cell, "", _error_output("GradingCheck", "the grader could not copy your answers "
                                                 "out of your kernel: something in the notebook changed "
                                                 "how cells run", []))
            reasons[plan.grade_id] = "0 points: the grader's snapshot before this test did not run"
            continue
        if note["errors"]:
            # A value that cannot leave the kernel: the test keeps its kernel's verdict.
            names = ", ".join(f"`{n}` ({e})" for n, e in sorted(note["errors"].items()))[:300]
            fallback[plan.grade_id] = f"checked in the submission's kernel: {names} cannot be copied to a fresh process"
            continue
        tests.append({"grade_id": plan.grade_id, "source": plan.source, "filename": f"<test {plan.grade_id}>",
                      "snapshot": str(snaps / f"{plan.grade_id}.pkl"), "pinned": plan.pinned,
                      "nonce": plan.nonce, "index": i})
    results = {}
    if tests:
        prefix = []
        if sandbox:
            spec = SandboxSpec(writable=[work, runtime, job / "replay"], workdir=work,
                               hidden=[h for h in hidden if Path(h) != job / "replay"])
            prefix = spec.bwrap_args(find_bwrap() or "bwrap")
        pins = {spec[0] for t in tests for spec in t["pinned"].values()}
        watch = {m.split(".")[0] for m in pins} | {"mlscale_lab"}
        results = run_replay([{k: v for k, v in t.items() if k != "index"} for t in tests],
                             job_dir=job / "replay", workdir=work, env=replay_env(work, runtime, seed),
                             sandbox_prefix=prefix, memory_bytes=memory, timeout=timeout, budget=budget,
                             seed=seed, watch=watch, preload=pins)
    for t in tests:
        plan, cell = plans[t["index"]], nb.cells[t["index"]]
        res = results.get(plan.grade_id)
        reasons[plan.grade_id] = _apply_verdict(cell, plan, res, result)
    for i, plan in plans.items():
        why = fallback.get(plan.grade_id)
        if why is None:
            continue
        if result.flags:
            # Flagged code and a verdict only its own kernel gave: not counted.
            _set_outputs(nb.cells[i], "", _error_output(
                "GradingCheck", "this test could not be run away from your notebook's code, "
                "and that code was flagged (see the grading note)", []))
            reasons[plan.grade_id] = f"0 points: {why}, and the submission is flagged"
        else:
            reasons[plan.grade_id] = f"{cell_reason(nb.cells[i])} ({why})"
    return {k: v for k, v in reasons.items() if v is not None}


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
