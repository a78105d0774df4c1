"""The pristine replay driver: runs a submission's test cells where its own code never ran.

Started by the grader as a plain Python process (no IPython, no kernel, no shell: nothing to
hook) in a sandbox of its own beside the submission's kernel::

    python -s -P _replay.py JOB.json RESULTS.json

It imports the libraries the tests use, then, each time the grader names a test on stdin
(when the submission's kernel has reached that test and copied out its values, so files the
notebook wrote are as the test expects), forks a child that starts from
that clean state, loads the answer values the submission's kernel copied out before the test
(``cloudpickle``), binds the lab's own imports afresh, runs the test cell's code (the lab's,
plus any course-private tests) and reports through a pipe: passed or the error, its line, the
output, the nonce the grader gave this test, and whether builtins or library functions were
replaced while the values loaded or the test ran. A test that hangs is killed with its process
group. This file imports only the standard library and cloudpickle.
"""

from __future__ import annotations

import builtins
import importlib
import json
import linecache
import os
import select
import signal
import sys
import tempfile
import time
import traceback
import types

_MISSING = object()


def _bind(spec):
    """The value of one of the lab's imports: ``[module, attribute or None]``."""
    module, attr = spec
    mod = importlib.import_module(module)
    if attr is None:
        return mod
    try:
        return getattr(mod, attr)
    except AttributeError:
        return importlib.import_module(f"{module}.{attr}")


def _watched(tops) -> dict:
    """Identity of every builtin and of every function or class in the watched packages."""
    state = {"builtins": dict(vars(builtins))}
    for name, mod in list(sys.modules.items()):
        if mod is None or name == "builtins" or name.split(".")[0] not in tops:
            continue
        try:
            d = vars(mod)
        except TypeError:
            continue
        state[name] = (mod, {k: v for k, v in list(d.items())
                             if callable(v) and not isinstance(v, types.ModuleType)})
    return state


def _library_wrapper(new, old) -> bool:
    """A library wrapping its own function on a lazy import (``torch._dynamo`` wraps
    ``torch.manual_seed``): the wrapper comes from the same package and wraps the original."""
    module = getattr(new, "__module__", None) or ""
    home = getattr(old, "__module__", None) or ""
    return (getattr(new, "__wrapped__", None) is old and module.split(".")[0] == home.split(".")[0] != ""
            and module != "__main__")


def _changes(state) -> list[str]:
    out = []
    now = vars(builtins)
    for k, v in state["builtins"].items():
        if now.get(k, _MISSING) is not v:
            out.append(f"builtins.{k}")
    for name, entry in state.items():
        if name == "builtins":
            continue
        mod, attrs = entry
        if sys.modules.get(name, mod) is not mod:
            out.append(f"sys.modules[{name!r}]")
            continue
        d = vars(mod)
        out += [f"{name}.{k}" for k, v in attrs.items() if d.get(k, _MISSING) is not v
                and not _library_wrapper(d.get(k, _MISSING), v)]
    return out


def _error(exc: BaseException, filename: str) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    line = next((f.lineno for f in reversed(tb) if f.filename == filename), None)
    frames = [f"{'Cell' if f.filename == filename else f.filename}, line {f.lineno}, in {f.name}\n    {f.line or ''}"
              for f in tb if f.filename != __file__]
    return {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "line": line, "frames": frames}


def _run_test(test: dict, seed, tops, out_fd: int) -> None:
    """In the forked child: load the values, run the test, write one JSON result to ``out_fd``."""
    os.setpgid(0, 0)
    cap = tempfile.TemporaryFile()  # noqa: SIM115 (the child exits right after)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(cap.fileno(), 1)
    os.dup2(cap.fileno(), 2)
    result = {"nonce": test["nonce"], "passed": False, "error": None, "changed": [], "load_error": None}
    state = _watched(tops)
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    try:
        import cloudpickle

        with open(test["snapshot"], "rb") as fh:
            data = cloudpickle.load(fh)
        values = data["values"]
        for filename, entry in data.get("lines", {}).items():
            linecache.cache[filename] = (entry[0], None, list(entry[2]), filename)
        for name, value in values.items():
            if name not in test["pinned"] and not hasattr(builtins, name):
                ns[name] = value
    except BaseException as exc:  # noqa: BLE001 (any failure is reported, never raised)
        result["load_error"] = f"{type(exc).__name__}: {exc}"[:300]
    result["changed"] += [f"loading the answer values replaced `{c}`" for c in _changes(state)]
    for name, spec in test["pinned"].items():
        try:
            ns[name] = _bind(spec)
        except Exception:  # noqa: BLE001 (the test then fails with NameError, as in the lab)
            pass
    if seed is not None:
        ns["GRADING_SEED"] = seed
    if result["load_error"] is None and not result["changed"]:
        try:
            exec(compile(test["source"], test["filename"], "exec"), ns)  # noqa: S102 (the lab's test)
            result["passed"] = True
        except BaseException as exc:  # noqa: BLE001
            result["error"] = _error(exc, test["filename"])
        result["changed"] += [f"while the test ran, `{c}` was replaced" for c in _changes(state)]
        if result["changed"]:
            result["passed"] = False
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    cap.seek(0)
    result["output"] = cap.read(200_000).decode("utf-8", "replace")
    os.write(out_fd, json.dumps(result).encode())


def _collect(pid: int, fd: int, deadline: float) -> tuple[bytes, str | None]:
    chunks, problem = [], None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            problem = "timeout"
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    if problem:
        for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
            try:
                kill()
            except OSError:
                pass
    _, status = os.waitpid(pid, 0)
    try:  # whatever the test started in its process group goes too
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if problem is None and not chunks:
        code = os.waitstatus_to_exitcode(status)
        problem = f"the test's process ended without a result (exit status {code})"
    return b"".join(chunks), problem


def main(job_path: str, results_path: str) -> int:
    """Serve the job: for each test index read on stdin, run that test in a fresh fork, save
    the results by grade_id and answer ``done`` on stdout."""
    with open(job_path) as fh:
        job = json.load(fh)
    # The job holds hidden and course-private test code: off the disk before any test runs.
    os.unlink(job_path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    tops = set(job["watch"]) | {"builtins"}
    for module in job["preload"]:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 (a test that needs it fails on its own)
            pass
    results = {}
    for line in sys.stdin:
        test = job["tests"][int(line)]
        sys.stdout.flush()
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _run_test(test, job.get("seed"), tops, w)
            except BaseException as exc:  # noqa: BLE001 (the driver's own fault, reported)
                os.write(w, json.dumps({"nonce": test["nonce"], "problem": "the replay driver failed: "
                                        + "".join(traceback.format_exception(exc))[-1500:]}).encode())
            finally:
                os._exit(0)
        os.close(w)
        raw, problem = _collect(pid, r, time.monotonic() + job["timeout"])
        os.close(r)
        try:
            res = json.loads(raw) if problem is None else {"problem": problem}
        except ValueError:
            res = {"problem": "the test's process wrote a garbled result"}
        results[test["grade_id"]] = res
        with open(results_path, "w") as fh:
            json.dump(results, fh)
        print("done", flush=True)
    return 0


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: the grader is waiting
