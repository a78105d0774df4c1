"""Run a function in a child process under a memory cap and a wall-time limit.

A training run that needs more memory than the machine has is killed by the operating system
without a Python traceback; in a notebook the kernel just dies. :func:`run_limited` moves the
risk to a child process: the parent watches the child's resident memory and kills it on a
breach, so the caller gets a :class:`MemoryLimitExceeded` and the kernel lives on.

How the cap is enforced, and why this way:

- A watchdog thread in the parent reads the resident memory (RSS) of the child and its own
  children every few milliseconds with psutil, and kills the whole tree when it passes the cap.
  This works on Linux, macOS and Windows, and counts memory the way the out-of-memory killer
  and container limits do (resident pages, not address space).
- ``RLIMIT_AS`` is *not* used: it caps virtual address space, which torch, NumPy and thread
  stacks reserve far beyond what they touch, so a sane cap would break ``import torch``.
- On Linux the child also raises its own ``oom_score_adj``, so that if the machine runs out of
  memory anyway, the kernel's OOM killer picks the child before the notebook.

The function and its arguments travel to the child with cloudpickle, so functions defined in a
notebook cell (and lambdas) work as well as functions from importable modules.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlscale_lab._core.processes import kill_process_tree
from mlscale_lab.constraints._limits_child import write_atomic
from mlscale_lab.constraints._limits_watchdog import STARTUP_TIMEOUT_S, Watchdog, pump
from mlscale_lab.validation import check_positive

__all__ = [
    "LimitedRun", "MemoryLimitExceeded", "ResourceLimitExceeded", "TimeLimitExceeded",
    "run_limited", "run_measured",
]

_MB = 1024**2
# Loading the job (the interpreter, the imports fn needs: torch is a few hundred MB) may pass
# a small cap by this much, so the child can report the minimum it really needs.
_STARTUP_ALLOWANCE_BYTES = 600 * _MB
_CHILD_CMD = ("import sys; from mlscale_lab.constraints._limits_child import child_main; "
              "child_main(sys.argv[1])")
_warned_unenforced = False  # the "cap not enforced" warning is given once per process


class ResourceLimitExceeded(RuntimeError):
    """A function run by :func:`run_limited` went over one of its limits.

    Attributes
    ----------
    limit : float
        The limit (bytes or seconds).
    reached : float
        What the child reached when it was stopped (bytes or seconds).
    """

    def __init__(self, message: str, *, limit: float, reached: float):
        super().__init__(message)
        self.limit = limit
        self.reached = reached


class MemoryLimitExceeded(ResourceLimitExceeded, MemoryError):
    """The child's resident memory went over ``memory_bytes``; it was killed."""


class TimeLimitExceeded(ResourceLimitExceeded, TimeoutError):
    """The function ran longer than ``timeout_s``; the child and its children were killed."""


@dataclass(frozen=True)
class LimitedRun:
    """What :func:`run_measured` returns: the value and what the child used.

    Attributes
    ----------
    value : object
        The function's return value.
    peak_rss_bytes : int
        Peak resident memory of the child process tree (interpreter included).
    baseline_rss_bytes : int
        Resident memory of the child after it loaded the function and its arguments, before
        calling it: what a fresh interpreter needs for this job before it starts.
    seconds : float
        Wall time of the function call itself.
    """

    value: Any
    peak_rss_bytes: int
    baseline_rss_bytes: int
    seconds: float

    @property
    def peak_rise_bytes(self) -> int:
        """Memory the function itself added on top of the baseline."""
        return max(0, self.peak_rss_bytes - self.baseline_rss_bytes)


# -- the parent side ---------------------------------------------------------------------------
def _describe(fn) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _check_limits(func: str, memory_bytes, timeout_s) -> tuple[int | None, float | None]:
    if memory_bytes is not None:
        memory_bytes = int(check_positive(
            func, "memory_bytes", memory_bytes,
            hint="a number of bytes or None, e.g. memory_bytes=300 * 1024**2 for 300 MB"))
    if timeout_s is not None:
        timeout_s = check_positive(func, "timeout_s", timeout_s, hint="seconds, or None")
    return memory_bytes, timeout_s


def _serialise(fn, args, kwargs) -> bytes:
    import cloudpickle

    if not callable(fn):
        raise TypeError(f"run_limited(fn={fn!r}): expected a callable, got {type(fn).__name__}")
    try:
        return cloudpickle.dumps((fn, args, kwargs))
    except Exception as exc:
        raise TypeError(
            f"run_limited: cannot send {_describe(fn)} and its arguments to a child process: "
            f"{type(exc).__name__}: {exc}. Everything the function uses (its arguments and the "
            "globals it refers to) must be picklable: pass data (arrays, numbers, paths) rather "
            "than open files, locks, threads, generators or live clients, and create those "
            "inside the function instead"
        ) from exc


def _warn_unenforced(caller: str, reason: str) -> None:
    global _warned_unenforced
    if _warned_unenforced:
        return
    _warned_unenforced = True
    warnings.warn(
        f"{caller}: the memory cap is NOT enforced on this machine ({reason}): the child's "
        "memory could not be read, so it ran uncapped. The time limit still holds. (Said once.)",
        RuntimeWarning, stacklevel=4)


def run_measured(fn, *args, memory_bytes=None, timeout_s=None, **kwargs) -> LimitedRun:
    """Like :func:`run_limited`, but also return the child's peak and baseline memory.

    Parameters
    ----------
    fn, *args, memory_bytes, timeout_s, **kwargs
        As in :func:`run_limited`.

    Returns
    -------
    LimitedRun
        ``value`` (what ``fn`` returned), ``peak_rss_bytes``, ``baseline_rss_bytes``,
        ``seconds``.

    Examples
    --------
    >>> run = run_measured(sum, [1, 2, 3], memory_bytes=500 * 1024**2)
    >>> run.value, run.peak_rss_bytes >= run.baseline_rss_bytes > 0
    (6, True)
    """
    return _run_in_child("run_measured", fn, args, kwargs, memory_bytes, timeout_s)


def _run_in_child(caller: str, fn, args, kwargs, memory_bytes, timeout_s) -> LimitedRun:
    """Run ``fn`` in a child under the limits; ``caller`` names the public function in errors."""
    # Imported here: `import mlscale_lab.constraints` should stay quick.
    import subprocess

    from mlscale_lab._core.tempdirs import temporary_folder

    cap, timeout_s = _check_limits(caller, memory_bytes, timeout_s)
    payload = _serialise(fn, args, kwargs)
    name = _describe(fn)
    with temporary_folder("limited") as work:
        write_atomic(work / "job.pkl", payload)
        write_atomic(work / "paths.pkl", pickle.dumps(([p for p in sys.path if p], cap)))
        cmd = [sys.executable, "-c", _CHILD_CMD, str(work)]
        popen_kw: dict[str, Any] = {}
        if hasattr(os, "setsid"):  # its own session: killing its group never reaches ours
            popen_kw["start_new_session"] = True
        else:
            popen_kw["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        # The parent's package must be importable in the child even when run from a checkout.
        env = dict(os.environ)
        pkg_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, env.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            **popen_kw,
        )
        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        for t in pumps:
            t.start()
        # Loading the job takes the interpreter, the imports fn needs (torch: a few hundred MB)
        # and a copy or two of the arguments.
        allowance = 3 * len(payload) + _STARTUP_ALLOWANCE_BYTES
        del payload
        dog = Watchdog(proc, cap, timeout_s, work / "ready", allowance)
        try:
            dog.run()
            proc.wait()
        except BaseException:  # KeyboardInterrupt in a notebook: do not leave the child running
            kill_process_tree(proc.pid)
            proc.wait()
            raise
        finally:
            for t in pumps:
                t.join(timeout=5)
            proc.stdout.close()
            proc.stderr.close()
        ready = work / "ready"
        baseline = int(ready.read_bytes()) if ready.exists() else None
        result_file = work / "result.pkl"
        outcome = pickle.loads(result_file.read_bytes()) if result_file.exists() else None

    if dog.unreadable and cap is not None:
        _warn_unenforced(caller, dog.unreadable)
    mb = lambda b: f"{b / _MB:,.0f} MB"  # noqa: E731
    if dog.verdict == "memory" and not (outcome and outcome[0] == "baseline"):
        raise MemoryLimitExceeded(
            f"{name} used {mb(dog.peak)} of resident memory, over the cap of memory_bytes="
            f"{cap} ({mb(cap)}); the child process was killed. It needed {mb(baseline or 0)} "
            "before the function started (interpreter and imports)",
            limit=cap,
            reached=dog.peak,
        )
    if dog.verdict == "memory-before-start" or (outcome and outcome[0] == "baseline"):
        need = max(dog.peak, baseline or 0, outcome[1] if outcome else 0)
        raise ValueError(
            f"{caller}(memory_bytes={cap}): the cap of {mb(cap)} is below what the child "
            f"interpreter needs before {name} even starts: at least {mb(need)} (Python, the "
            f"imports {name} uses, and its arguments). Set memory_bytes above {need} plus what "
            "the function itself allocates"
        )
    if dog.verdict == "time":
        raise TimeLimitExceeded(
            f"{name} ran for more than timeout_s={timeout_s:g} s; the child process and its "
            "children were killed",
            limit=timeout_s,
            reached=timeout_s,
        )
    if dog.verdict == "startup":
        raise RuntimeError(
            f"the child process did not start {name} within {STARTUP_TIMEOUT_S:.0f} s; it was killed"
        )
    if outcome is None:
        code = proc.returncode
        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        hint = (
            " (SIGKILL: usually the operating system's out-of-memory killer)" if code == -9 else ""
        )
        raise RuntimeError(f"the child process running {name} died without a result: {why}{hint}")
    kind = outcome[0]
    if kind == "ok":
        _, value, child_peak, seconds = outcome
        return LimitedRun(value, int(max(dog.peak, child_peak)), int(baseline or 0), float(seconds))
    _, exc, tb, _seconds = outcome
    if kind == "err_text":
        raise RuntimeError(f"{name} raised in the child process: {exc}\n{tb}")
    exc.add_note(f"(raised inside {caller}'s child process)\n{tb}")
    raise exc


def run_limited(fn, *args, memory_bytes=None, timeout_s=None, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a child process under a memory cap and a time limit.

    Parameters
    ----------
    fn : callable
        The function to run. It and its arguments are sent to the child with cloudpickle: a
        function from a module or one defined in a notebook cell both work.
    *args, **kwargs
        Passed to ``fn`` (``memory_bytes`` and ``timeout_s`` are taken by this function).
    memory_bytes : int, optional
        Cap on the resident memory of the child process tree, interpreter included. A fresh
        Python needs some tens of MB before ``fn`` starts (more when it imports torch); a
        cap below that raises a ``ValueError`` giving the minimum.
    timeout_s : float, optional
        Wall-time limit for the call of ``fn`` (the child's start-up is not counted).

    Returns
    -------
    Whatever ``fn`` returns (it travels back pickled).

    Raises
    ------
    MemoryLimitExceeded
        The child went over ``memory_bytes``; the message gives the cap and what was reached.
    TimeLimitExceeded
        ``fn`` ran longer than ``timeout_s``; the child and its children were killed.
    Exception
        Whatever ``fn`` raised, with its type and message, and the child's traceback in a note.

    Examples
    --------
    >>> import math
    >>> run_limited(math.factorial, 10, memory_bytes=500 * 1024**2, timeout_s=30)
    3628800
    """
    return _run_in_child("run_limited", fn, args, kwargs, memory_bytes, timeout_s).value
