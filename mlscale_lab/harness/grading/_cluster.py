"""Grading on a Dask cluster (``--scheduler``), each submission held to its deadline there.

Each submission travels as a payload (:func:`mlscale_lab.harness.grading._run.grade_payload`)
to a task, :func:`grade_held`, that runs on a Dask worker and grades it in a grading process of
that worker's own (started once, with its own zygotes, and kept warm), exactly as a local worker
does. The task holds that process to the submission's budget plus the grace: past it, the
process and everything it started (kernel, replay, sandboxes, zygotes) are killed on the worker,
the submission gets ``error`` with the reason (not saved: a rerun grades it again), and the next
task starts a fresh grading process. The class goes on.
"""

from __future__ import annotations

import contextlib

#: Seconds a Dask worker's grading process may take to prepare a lab it has not graded yet
#: (nbgrader's gradebook, its zygotes' imports) before the submission's own deadline starts.
PREPARE_LIMIT = 600.0
#: This Dask worker's grading process and its pipe (at most one: the worker runs one task at a
#: time in each of its threads, and a task waits for its submission).
_HELD: list = []


def _held():
    import multiprocessing

    from mlscale_lab.harness.grading._run import worker_main

    if _HELD and _HELD[0][0].is_alive():
        return _HELD[0]
    _end_held()
    # A fresh interpreter, never a fork of the Dask worker's threads.
    ctx = multiprocessing.get_context("spawn")
    conn, theirs = ctx.Pipe()
    proc = ctx.Process(target=worker_main, args=(theirs, True), daemon=True)
    proc.start()
    theirs.close()
    _HELD.append((proc, conn))
    return _HELD[0]


def _end_held() -> None:
    from mlscale_lab._core.processes import kill_process_tree

    while _HELD:
        proc, conn = _HELD.pop()
        if proc.is_alive():
            kill_process_tree(proc.pid)
            proc.join(timeout=10)
        with contextlib.suppress(OSError):
            conn.close()


def _ungraded(payload: dict) -> list:
    """0 points on every graded cell of the payload's lab (read from its bytes, no nbgrader)."""
    import json

    from mlscale_lab.harness.grading._grade import CellGrade

    cells = json.loads(payload["lab_bytes"]).get("cells", [])
    meta = [c.get("metadata", {}).get("nbgrader", {}) for c in cells]
    return [CellGrade(m["grade_id"], 0.0, float(m.get("points", 0)), "not graded (0 points)")
            for m in meta if m.get("grade")]


def _failed(payload: dict, reason: str) -> tuple[dict, None]:
    from mlscale_lab.harness.grading._grade import SubmissionResult

    return SubmissionResult(payload["student"], payload["lab_name"], "error", f"grading failed: {reason}",
                            _ungraded(payload)).as_dict(), None


def grade_held(payload: dict) -> tuple[dict, str | None]:
    """The Dask task: grade one payload in this worker's grading process, held to the
    submission's budget plus grace (past it, killed with everything it started)."""
    from mlscale_lab.harness.grading._run import WORKER_GRACE, overdue

    budget = float(payload["kw"]["budget"])
    grace = float(payload["kw"].get("grace", WORKER_GRACE))
    proc, conn = _held()
    try:
        conn.send(payload)
        ready = conn.poll(PREPARE_LIMIT) and conn.recv()[0] == "started" and conn.poll(budget + grace)
        kind, out = conn.recv() if ready else (None, None)
    except (EOFError, OSError):
        proc.join(timeout=10)
        _end_held()
        return _failed(payload, f"its grading worker ended without a result (exit code {proc.exitcode})")
    if not ready:
        _end_held()
        return _failed(payload, overdue(budget, grace))
    return out if kind == "ok" else _failed(payload, f"the grader itself failed ({out})")


def on_dask(jobs, address: str, done) -> None:
    """Grade ``(job, payload)`` pairs on the cluster at ``address``; ``done(job, outcome)`` each."""
    from distributed import Client, as_completed

    from mlscale_lab.harness.grading import _run

    try:
        client = Client(address, timeout=_run.SCHEDULER_TIMEOUT)
    except OSError as exc:
        raise ConnectionError(f"grade_submissions(scheduler={address!r}): no Dask scheduler answered "
                              f"there within {_run.SCHEDULER_TIMEOUT:g} s ({exc}); start one with `dask scheduler` "
                              "and workers with `dask worker ADDRESS`") from None
    with client:
        futures = {}
        for job, payload in jobs:
            fut = client.submit(grade_held, payload, pure=False,
                                key=f"grade-{job['student']}-{job['lab'].stem}-{job['key'][:12]}")
            futures[fut] = job
        for fut in as_completed(list(futures)):
            done(futures[fut], fut.result())
