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

import math
import numbers
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from mlscale_lab.constraints._monitor import _children_fast

_MB = 1024**2
_POLL_S = 0.004  # watchdog period; at ~5 GB/s of page touching this bounds overshoot to ~20 MB
_TREE_SCAN_S = 0.05  # how often to look for grandchildren (a full /proc scan is costlier)
_STARTUP_TIMEOUT_S = 120.0
_STARTUP_ALLOWANCE_BYTES = (
    600 * _MB
)  # loading may pass a small cap by this much, to measure it  # a child that cannot even load the function within this is stuck


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


# -- the child side ----------------------------------------------------------------------------
def _own_peak_rss() -> int:
    """This process's resident-memory high-water mark, or 0 where it cannot be read reliably.

    Not ``getrusage().ru_maxrss``: on Linux a fresh child inherits its parent's value across
    fork and exec, so a child of a big notebook kernel would report the kernel's size.
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


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _child_main(workdir: str) -> None:
    """Entry point of the child: load the job, report the baseline, run, write the outcome."""
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
        _write_atomic(work / "result.pkl", pickle.dumps(("baseline", baseline, None, 0.0)))
        _write_atomic(work / "ready", str(baseline).encode())
        return
    _write_atomic(work / "ready", str(baseline).encode())
    t0 = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        outcome = ("ok", value, _own_peak_rss(), seconds)
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
    _write_atomic(work / "result.pkl", payload)


# -- the parent side ---------------------------------------------------------------------------
def _describe(fn) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def _check_limits(memory_bytes, timeout_s) -> tuple[int | None, float | None]:
    if memory_bytes is not None:
        if (
            isinstance(memory_bytes, bool)
            or not isinstance(memory_bytes, numbers.Real)
            or not (math.isfinite(memory_bytes) and memory_bytes > 0)
        ):
            raise ValueError(
                f"run_limited(memory_bytes=...): expected a number of bytes > 0 or None, got "
                f"{memory_bytes!r} (e.g. memory_bytes=300 * 1024**2 for 300 MB)"
            )
        memory_bytes = int(memory_bytes)
    if timeout_s is not None:
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, numbers.Real)
            or not (math.isfinite(timeout_s) and timeout_s > 0)
        ):
            raise ValueError(
                f"run_limited(timeout_s=...): expected seconds > 0 or None, got {timeout_s!r}"
            )
        timeout_s = float(timeout_s)
    return memory_bytes, timeout_s


def _serialise(fn, args, kwargs, cap) -> bytes:
    import cloudpickle

    if not callable(fn):
        raise TypeError(f"run_limited(fn=...): expected a callable, got {type(fn).__name__}")
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


def _kill_tree(proc) -> None:
    import signal
    import subprocess

    try:
        parent = psutil.Process(proc.pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.Error:
        procs = []
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    psutil.wait_procs(procs, timeout=2)


def _pump(stream, sink_name: str) -> None:
    """Copy a child's output to this process's sys.stdout/sys.stderr (the notebook cell)."""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        sink = getattr(sys, sink_name)
        try:
            sink.write(chunk.decode("utf-8", errors="replace"))
            sink.flush()
        except Exception:
            pass


class _Watchdog:
    """Polls the RSS of a child process tree; kills it over the cap or over time."""

    def __init__(self, proc, cap, timeout_s, ready_file: Path, startup_allowance: int = 0):
        self.proc, self.cap, self.timeout_s, self.ready_file = proc, cap, timeout_s, ready_file
        self.startup_allowance = max(cap or 0, startup_allowance)
        self.peak = 0
        self.last_rss = 0
        self.verdict: str | None = None  # "memory", "memory-before-start", "time", "startup"
        self.started_at: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        t_spawn = time.perf_counter()
        try:
            root = psutil.Process(self.proc.pid)
        except psutil.Error:
            return
        tree = {root.pid: root}
        last_scan = 0.0
        while self.proc.poll() is None:
            now = time.perf_counter()
            if now - last_scan > _TREE_SCAN_S:
                last_scan = now
                pids = _children_fast(root.pid)  # microseconds on Linux; psutil scans all of /proc
                try:
                    if pids is None:
                        pids = [c.pid for c in root.children(recursive=True)]
                    for pid in pids:
                        if pid not in tree:
                            tree[pid] = psutil.Process(pid)
                except psutil.Error:
                    pass
            rss = 0
            for pid, p in list(tree.items()):
                try:
                    rss += p.memory_info().rss
                except psutil.NoSuchProcess:
                    del tree[pid]
                except psutil.AccessDenied:
                    self.error = "cannot read the child's memory (access denied)"
            self.last_rss = rss
            self.peak = max(self.peak, rss)
            if self.started_at is None and self.ready_file.exists():
                self.started_at = time.perf_counter()
            if self.cap is not None and rss > self.cap:
                if self.started_at is not None:
                    self.verdict = "memory"
                    _kill_tree(self.proc)
                    return
                # Still loading: let it finish so the child can report the real minimum,
                # unless loading alone runs away (then kill it and report what it reached).
                if rss > self.startup_allowance:
                    self.verdict = "memory-before-start"
                    _kill_tree(self.proc)
                    return
            if self.started_at is None:
                if now - t_spawn > _STARTUP_TIMEOUT_S + (self.timeout_s or 0):
                    self.verdict = "startup"
                    _kill_tree(self.proc)
                    return
            elif self.timeout_s is not None and now - self.started_at > self.timeout_s:
                self.verdict = "time"
                _kill_tree(self.proc)
                return
            time.sleep(_POLL_S)


def run_measured(fn, *args, memory_bytes=None, timeout_s=None, **kwargs) -> LimitedRun:
    """Like :func:`run_limited`, but also return the child's peak and baseline memory.

    Returns
    -------
    LimitedRun
        ``value`` (what ``fn`` returned), ``peak_rss_bytes``, ``baseline_rss_bytes``,
        ``seconds``.
    """
    # Imported here: `import mlscale_lab.constraints` should stay quick.
    import subprocess
    import tempfile

    cap, timeout_s = _check_limits(memory_bytes, timeout_s)
    payload = _serialise(fn, args, kwargs, cap)
    name = _describe(fn)
    with tempfile.TemporaryDirectory(prefix="mlscale-limited-") as tmp:
        work = Path(tmp)
        _write_atomic(work / "job.pkl", payload)
        _write_atomic(work / "paths.pkl", pickle.dumps(([p for p in sys.path if p], cap)))
        cmd = [
            sys.executable,
            "-c",
            "import sys; from mlscale_lab.constraints._limits import _child_main; _child_main(sys.argv[1])",
            str(work),
        ]
        popen_kw: dict[str, Any] = {}
        if os.name == "posix":
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
            threading.Thread(target=_pump, args=(proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, "stderr"), daemon=True),
        ]
        for t in pumps:
            t.start()
        # Loading the job takes the interpreter, the imports fn needs (torch: a few hundred MB)
        # and a copy or two of the arguments.
        allowance = 3 * len(payload) + _STARTUP_ALLOWANCE_BYTES
        del payload
        dog = _Watchdog(proc, cap, timeout_s, work / "ready", allowance)
        try:
            dog.run()
            proc.wait()
        except BaseException:  # KeyboardInterrupt in a notebook: do not leave the child running
            _kill_tree(proc)
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

    if dog.error and cap is not None:
        import warnings

        warnings.warn(
            f"run_limited: the memory cap could not be enforced ({dog.error}); the run was not "
            "capped. On macOS this happens for processes of another user.",
            RuntimeWarning,
            stacklevel=3,
        )
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
            f"run_limited(memory_bytes={cap}): the cap of {mb(cap)} is below what the child "
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
            f"the child process did not start {name} within {_STARTUP_TIMEOUT_S:.0f} s; it was killed"
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
    exc.add_note(f"(raised inside run_limited's child process)\n{tb}")
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
    return run_measured(fn, *args, memory_bytes=memory_bytes, timeout_s=timeout_s, **kwargs).value
