"""Where submissions are graded: in this process, in local worker processes, or on the workers
of a Dask cluster. All three run :func:`grade_payload`, the same sandboxed grading, on a payload
that carries the lab and the submission as bytes (so it travels to a remote worker) and brings
back the result and the feedback page. The grader saves each result as it arrives.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

#: Labs prepared in this process (gradebook template, lab names), by content digest.
_KITS: dict[str, object] = {}
_KIT_DIRS: list[Path] = []


def _kit(lab_name: str, lab_bytes: bytes, private: dict):
    import hashlib

    from mlscale_lab.harness.grading._grade import prepare_lab

    digest = hashlib.sha256(lab_name.encode() + b"\0" + lab_bytes + repr(sorted(private.items())).encode()).hexdigest()
    if digest not in _KITS:
        if not _KIT_DIRS:
            _KIT_DIRS.append(Path(tempfile.mkdtemp(prefix="mlscale-grade-")))
            atexit.register(shutil.rmtree, _KIT_DIRS[0], True)
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
    tmp = Path(tempfile.mkdtemp(prefix="mlscale-payload-"))
    try:
        sub = tmp / "in" / payload["filename"]
        sub.parent.mkdir()
        sub.write_bytes(payload["sub_bytes"])
        result = grade_submission(kit, sub, payload["student"], tmp / "out", **payload["kw"])
        html = None
        if result.feedback:
            html = Path(result.feedback).read_text(encoding="utf-8")
        return result.as_dict(), html
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
            _on_dask(pending, private, kw, scheduler, done)
        elif workers > 1 and len(pending) > 1:
            _on_processes(pending, private, kw, workers, done)
        else:
            for job in pending:
                done(job, grade_payload(_payload(job, private, kw)))
    finally:
        bar.close()
    return results


def _on_processes(pending, private, kw, workers: int, done) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from mlscale_lab.harness.grading._feedback import exporter

    # Workers fork from this process after it has prepared every lab and built the feedback
    # exporter, and before it ran any kernel (no threads, no ZeroMQ sockets to inherit): they
    # start warm.
    for job in pending:
        _kit(job["lab"].stem, job["lab"].read_bytes(), private.get(job["lab"].stem, {}))
    exporter()
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                             mp_context=multiprocessing.get_context(method)) as pool:
        futures = {pool.submit(grade_payload, _payload(job, private, kw)): job for job in pending}
        for fut in as_completed(futures):
            done(futures[fut], fut.result())


def _on_dask(pending, private, kw, address: str, done) -> None:
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=30)
    except OSError as exc:
        raise ConnectionError(f"grade_submissions(scheduler={address!r}): no Dask scheduler answered "
                              f"there within 30 s ({exc}); start one with `dask scheduler` and workers "
                              "with `dask worker ADDRESS`") from None
    with client:
        futures = {}
        for job in pending:
            fut = client.submit(grade_payload, _payload(job, private, kw), pure=False,
                                key=f"grade-{job['student']}-{job['lab'].stem}-{job['key'][:12]}")
            futures[fut] = job
        for fut in as_completed(list(futures)):
            done(futures[fut], fut.result())
