"""Where submissions are graded: in local worker processes (one a submission, held to its
budget and killed past it), or on the workers of a Dask cluster. Both run :func:`grade_payload`,
the same sandboxed grading, on a payload that carries the lab and the submission as bytes (so it
travels to a remote worker) and brings back the result and the feedback page. The grader saves
each result as it arrives.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from mlscale_lab._core.tempdirs import owned_tempdir, temporary_folder

#: Labs prepared in this process (gradebook template, lab names), by content digest.
_KITS: dict[str, object] = {}
_KIT_DIRS: list[Path] = []


def _kit(lab_name: str, lab_bytes: bytes, private: dict):
    import hashlib

    from mlscale_lab.harness.grading._grade import prepare_lab

    digest = hashlib.sha256(lab_name.encode() + b"\0" + lab_bytes + repr(sorted(private.items())).encode()).hexdigest()
    if digest not in _KITS:
        if not _KIT_DIRS:
            _KIT_DIRS.append(owned_tempdir("grade"))  # removed when this process exits
        where = _KIT_DIRS[0] / digest[:16]
        (where / "labs").mkdir(parents=True, exist_ok=True)
        src = where / "labs" / f"{lab_name}.ipynb"
        src.write_bytes(lab_bytes)
        _KITS[digest] = prepare_lab(src, where, private)
    return _KITS[digest]


def grade_payload(payload: dict) -> tuple[dict, str | None]:
    """Grade one submission sent as bytes; return the result (a dict) and its feedback HTML."""
    from mlscale_lab.harness.grading._grade import grade_submission

    kit = _kit(payload["lab_name"], payload["lab_bytes"], payload["private"])
    with temporary_folder("payload") as tmp:
        sub = tmp / "in" / payload["filename"]
        sub.parent.mkdir()
        sub.write_bytes(payload["sub_bytes"])
        kw = {k: v for k, v in payload["kw"].items() if k != "grace"}
        result = grade_submission(kit, sub, payload["student"], tmp / "out", **kw)
        html = None
        if result.feedback:
            html = Path(result.feedback).read_text(encoding="utf-8")
        return result.as_dict(), html


def _payload(job: dict, private: dict, kw: dict) -> dict:
    lab: Path = job["lab"]
    return {"student": job["student"], "lab_name": lab.stem, "lab_bytes": lab.read_bytes(),
            "private": private.get(lab.stem, {}), "filename": f"{lab.stem}.ipynb",
            "sub_bytes": Path(job["path"]).read_bytes(), "kw": kw}


def run_jobs(pending: list[dict], private: dict, kw: dict, store, *, workers: int, scheduler, progress: bool,
             reused: int = 0) -> list:
    """Grade ``pending`` jobs; save and return each result as it finishes."""
    from tqdm.auto import tqdm

    from mlscale_lab.harness.grading._grade import SubmissionResult

    results = []
    counts: Counter = Counter()
    if not pending:
        return results
    bar = tqdm(total=len(pending), desc="grading", unit="submission", disable=not progress, file=sys.stderr)
    if reused:
        bar.write(f"{reused} submission(s) already graded and unchanged: kept (pass force to regrade)")

    def done(job, out):
        data, html = out
        result = SubmissionResult.from_dict(data)
        if html is not None:
            page = store.root.parent / "feedback" / result.student / f"{result.lab}.html"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(html, encoding="utf-8")
            result.feedback = str(page)
        store.save(result, job["key"])
        results.append(result)
        counts[result.status] += 1
        bar.set_postfix(dict(sorted(counts.items())), refresh=False)
        bar.update()

    try:
        if scheduler:
            from mlscale_lab.harness.grading._cluster import on_dask

            on_dask([(job, _payload(job, private, kw)) for job in pending], scheduler, done)
        else:
            _on_processes(pending, private, kw, workers, done)
    finally:
        bar.close()
    return results


#: Seconds a grading worker may run past the submission's budget (its kernel's start, the
#: replays, the feedback page) before the grader kills it and every process it started.
WORKER_GRACE = 120.0
#: Seconds to wait for a Dask scheduler (``--scheduler``) to answer before giving up.
SCHEDULER_TIMEOUT = 30.0


def worker_main(conn, own_zygotes: bool = False) -> None:
    """A grading worker: grade each payload the grader sends, send back the outcome; stop on None.

    It stays warm between submissions (imports, templates); it never runs a submission's code
    itself (kernels and replays are processes of their own). With ``own_zygotes`` (a Dask
    worker's grading process) it starts zygotes of its own and dies with its parent."""
    from mlscale_lab._core.imports import skip_slow_optional_imports

    skip_slow_optional_imports()  # a Dask worker's grading process starts afresh
    if own_zygotes:
        _die_with_parent()
    while True:
        payload = conn.recv()
        if payload is None:
            break
        if own_zygotes:  # prepared before the submission's deadline starts, as a local run's are
            from mlscale_lab.harness.grading._forks import current

            kit = _kit(payload["lab_name"], payload["lab_bytes"], payload["private"])
            if current() is None:
                start_zygotes([kit.source])
                current().wait_ready()
            conn.send(("started", None))
        try:
            outcome = ("ok", grade_payload(payload))
        except BaseException as exc:  # noqa: BLE001 (reported to the grader, never lost)
            outcome = ("error", f"{type(exc).__name__}: {exc}"[:500])
        conn.send(outcome)
    conn.close()


def _die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its parent ends (a Dask worker that is killed)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _failed(job: dict, reason: str) -> tuple[dict, None]:
    """The result of a submission whose worker failed: 0 on every test cell, never saved (so a
    rerun grades it again), the reason in words."""
    from mlscale_lab.harness.grading._grade import SubmissionResult

    kit = next((k for k in _KITS.values() if k.name == job["lab"].stem), None)
    cells = kit.ungraded_cells() if kit is not None else []
    return SubmissionResult(job["student"], job["lab"].stem, "error", f"grading failed: {reason}", cells).as_dict(), None


def _on_processes(pending, private, kw, workers: int, done) -> None:
    """Grade the submissions on at most ``workers`` worker processes, one submission at a time each.

    The grader holds every worker to the submission's budget plus :data:`WORKER_GRACE`: past it,
    the worker and every process it started are killed (a fresh worker takes the next submission)
    and the submission is reported as not graded. Whatever stops this function (an error,
    Ctrl-C), no worker outlives it.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    from mlscale_lab._core.processes import kill_process_tree
    from mlscale_lab.harness.grading._feedback import exporter

    # The zygotes start first (their imports overlap the preparation below); workers fork from
    # this process after it has prepared every lab and built the feedback exporter: warm.
    start_zygotes([job["lab"] for job in pending])
    for job in pending:
        _kit(job["lab"].stem, job["lab"].read_bytes(), private.get(job["lab"].stem, {}))
    exporter()
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    grace = kw.get("grace", WORKER_GRACE)
    limit = kw["budget"] + grace
    queue = list(pending)
    idle: list = []  # (process, connection) of workers waiting for a submission
    busy: dict = {}  # connection -> (process, job, deadline)

    def start_worker():
        conn, theirs = ctx.Pipe()
        proc = ctx.Process(target=worker_main, args=(theirs,), daemon=True)
        proc.start()
        theirs.close()
        idle.append((proc, conn))

    def end_worker(proc, conn, patience: float = 0.0) -> None:
        proc.join(timeout=patience)
        if proc.is_alive():
            kill_process_tree(proc.pid)
            proc.join(timeout=10)
        conn.close()

    def retire(proc, conn, job, reason: str, patience: float = 0.0) -> None:
        """End a worker that failed its submission, report the submission, and replace the
        worker if submissions are left."""
        end_worker(proc, conn, patience)
        done(job, _failed(job, reason))
        if queue:
            start_worker()

    try:
        for _ in range(min(workers, len(queue))):
            start_worker()
        while queue or busy:
            while queue and idle:
                proc, conn = idle.pop()
                job = queue.pop(0)
                try:
                    conn.send(_payload(job, private, kw))
                except OSError:  # the worker is gone: a fresh one takes this submission
                    queue.insert(0, job)
                    end_worker(proc, conn)
                    start_worker()
                    continue
                busy[conn] = (proc, job, time.monotonic() + limit)
            left = min(deadline for _, _, deadline in busy.values()) - time.monotonic()
            for conn in wait(list(busy), timeout=max(0.0, left)):
                proc, job, _ = busy.pop(conn)
                try:
                    kind, out = conn.recv()
                except (EOFError, OSError):
                    proc.join(timeout=10)  # for its exit code
                    retire(proc, conn, job, f"its grading worker ended without a result (exit code {proc.exitcode})")
                    continue
                idle.append((proc, conn))
                done(job, out if kind == "ok" else _failed(job, f"the grader itself failed ({out})"))
            now = time.monotonic()
            for conn in [c for c, (_, _, deadline) in busy.items() if now >= deadline]:
                proc, job, _ = busy.pop(conn)
                retire(proc, conn, job, overdue(kw["budget"], grace))
    finally:
        for _proc, conn in idle:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, conn in idle:
            end_worker(proc, conn, patience=10)
        for conn, (proc, _, _) in busy.items():
            end_worker(proc, conn)
        from mlscale_lab.harness.grading._forks import stop

        stop()


def overdue(budget: float, grace: float) -> str:
    """The reason of a submission whose grading worker was killed past its deadline."""
    return (f"not done within {budget + grace:g} s (the {budget:g} s budget and {grace:g} s for the grader); "
            "every process it started was killed. Grade it again (only it is regraded)")


def start_zygotes(labs) -> None:
    """Start this process's kernel and replay zygotes, preloaded with what ``labs`` import."""
    import nbformat

    from mlscale_lab.harness.grading._forks import start
    from mlscale_lab.harness.grading._pristine import lab_modules

    kernel, replay = {"numpy"}, {"numpy"}
    for lab in {Path(p) for p in labs}:
        cells, tests = lab_modules(nbformat.read(str(lab), as_version=4))
        kernel |= cells
        replay |= cells | tests
    start(sorted(kernel), sorted(replay))
