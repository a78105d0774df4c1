"""The child side of :func:`~mlscale_lab.constraints.run_limited`: load the job, run it, report.

This module runs in the fresh interpreter that :func:`run_measured` starts. It reads the job
from a work directory, writes ``ready`` (with its baseline memory) when the function is about to
start, which arms the parent's watchdog, and writes the outcome to ``result.pkl``.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path

import psutil

__all__ = ["child_main", "own_peak_rss", "write_atomic"]


def own_peak_rss() -> int:
    """This process's resident-memory high-water mark, or 0 where it cannot be read reliably.

    Not ``getrusage().ru_maxrss``: on Linux a fresh child inherits its parent's value across
    fork and exec, so a child of a big notebook kernel would report the kernel's size; and
    ``resource`` does not exist on Windows.

    Examples
    --------
    >>> own_peak_rss() >= 0
    True
    """
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0
    if os.name == "nt":
        return int(getattr(psutil.Process().memory_info(), "peak_wset", 0))
    return 0  # macOS and others: the parent's sampled peak is used


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees half of it.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_atomic(Path(d) / "ready", b"42")
    ...     (Path(d) / "ready").read_bytes()
    b'42'
    """
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def child_main(workdir: str) -> None:
    """Entry point of the child: load the job, report the baseline, run, write the outcome.

    Parameters
    ----------
    workdir : str
        The directory holding ``job.pkl`` (function, args, kwargs) and ``paths.pkl``
        (``sys.path`` and the memory cap), written by the parent.
    """
    import traceback

    work = Path(workdir)
    if sys.platform.startswith("linux"):
        try:  # be the OOM killer's first choice, not the notebook kernel
            Path("/proc/self/oom_score_adj").write_text("1000")
        except OSError:
            pass
    import cloudpickle

    sys_path, cap = pickle.loads((work / "paths.pkl").read_bytes())
    for entry in reversed(sys_path):  # modules the parent can import, the child can too
        if entry not in sys.path:
            sys.path.insert(0, entry)
    fn, args, kwargs = pickle.loads((work / "job.pkl").read_bytes())
    baseline = psutil.Process().memory_info().rss
    if cap is not None and baseline > cap:  # the result first: "ready" arms the watchdog
        write_atomic(work / "result.pkl", pickle.dumps(("baseline", baseline, None, 0.0)))
        write_atomic(work / "ready", str(baseline).encode())
        return
    write_atomic(work / "ready", str(baseline).encode())
    t0 = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        outcome = ("ok", value, own_peak_rss(), seconds)
        try:
            payload = cloudpickle.dumps(outcome)
        except Exception as exc:
            raise TypeError(
                f"run_limited: the function returned a {type(value).__name__}, which cannot be "
                f"sent back to the parent process ({exc}); return plain data (numbers, arrays, "
                "dicts, a fitted estimator)"
            ) from exc
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the caller
        seconds = time.perf_counter() - t0
        tb = traceback.format_exc()
        try:
            payload = cloudpickle.dumps(("err", exc, tb, seconds))
            pickle.loads(payload)  # some exceptions pickle but do not unpickle
        except Exception:
            payload = pickle.dumps(("err_text", f"{type(exc).__name__}: {exc}", tb, seconds))
    write_atomic(work / "result.pkl", payload)
