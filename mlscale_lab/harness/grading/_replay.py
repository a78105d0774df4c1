"""The pristine replay driver: runs a submission's test cells in a process its code never runs in.

Started by the grader as a plain Python process (no IPython, no kernel, no shell: nothing to
hook) in a sandbox of its own beside the submission's kernel, with one end of a Unix socket::

    python -s -P _replay.py CONTROL_FD

The grader sends the job (the tests: lab code, course-private tests, nonces) over that socket,
never through a file. It imports the libraries the tests use; then, each time the grader names
a test (when the submission's kernel has reached it, so files the notebook wrote are as the
test expects), it receives with it the channel to the learner's side in that kernel and forks
a child that starts from this clean state. The child fetches the values the test reads as
plain data (:mod:`._codec`: learner functions and objects that plain data cannot carry become
proxies whose calls run in the learner's kernel, :mod:`._proxy`), binds the lab's own imports
afresh, runs the test code and reports through a pipe: passed or the error, its line, the
output, the nonce the grader gave this test, and whether builtins or library functions were
replaced while it ran. A test that hangs is killed with its process group.
"""

from __future__ import annotations

import builtins
import importlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import time
import traceback
import types

_MISSING = object()
_HOME = os.path.dirname(os.path.abspath(__file__))


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
              for f in tb if os.path.dirname(f.filename) != _HOME]
    frames += [str(note) for note in getattr(exc, "__notes__", ())][:3]
    return {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "line": line, "frames": frames}


def _namespace(test: dict, seed, endpoint, result: dict) -> dict:
    """The test's namespace: the answers and lab values it reads (fetched from the learner's
    side as plain data and proxies), the lab's imports bound afresh, the grading seed."""
    from mlscale_lab.harness.grading._endpoint import LearnerCallError
    from mlscale_lab.harness.grading._proxy import REMOTE_RUNNERS, where_learner_runs

    ns: dict = {"__name__": "__main__", "__builtins__": builtins}
    try:
        values = endpoint.request("fetch", None, list(test["names"]), what="fetching the answers")
        for name, value in values.items():
            if name not in test["pinned"] and not hasattr(builtins, name):
                ns[name] = value
    except (LearnerCallError, Exception) as exc:  # noqa: BLE001 (any failure is reported, never raised)
        result["load_error"] = f"{type(exc).__name__}: {exc}"[:300]
    for name, spec in test["pinned"].items():
        try:
            ns[name] = _bind(spec)
        except Exception:  # noqa: BLE001 (the test then fails with NameError, as in the lab)
            continue
        module = getattr(ns[name], "__module__", "") or ""
        for home, runner in REMOTE_RUNNERS:
            if spec[1] == runner and module.startswith(home):
                ns[name] = where_learner_runs(ns[name], home, runner, endpoint)
    if seed is not None:
        ns["GRADING_SEED"] = seed
    return ns


def _run_test(test: dict, seed, tops, out_fd: int, channel: socket.socket, deadline: float) -> None:
    """In the forked child: fetch the values, run the test, write one JSON result to ``out_fd``."""
    from mlscale_lab.harness.grading._endpoint import Endpoint
    from mlscale_lab.harness.grading._proxy import make_proxy

    os.setpgid(0, 0)
    cap = tempfile.TemporaryFile()  # noqa: SIM115 (the child exits right after)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(cap.fileno(), 1)
    os.dup2(cap.fileno(), 2)
    result = {"nonce": test["nonce"], "passed": False, "error": None, "changed": [], "load_error": None}
    state = _watched(tops)
    endpoint = Endpoint(channel, "test", make_proxy, deadline=deadline)
    ns = _namespace(test, seed, endpoint, result)
    result["changed"] += [f"loading the answer values replaced `{c}`" for c in _changes(state)]
    if result["load_error"] is None and not result["changed"]:
        try:
            exec(compile(test["source"], test["filename"], "exec"), ns)  # noqa: S102 (the lab's test)
            result["passed"] = True
        except BaseException as exc:  # noqa: BLE001
            result["error"] = _error(exc, test["filename"])
        result["changed"] += [f"while the test ran, `{c}` was replaced" for c in _changes(state)]
        if result["changed"]:
            result["passed"] = False
    endpoint.notify("done")
    channel.close()
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


def run_one(job: dict, index: int, channel: socket.socket, control: socket.socket | None = None) -> dict:
    """Run test ``index`` of ``job`` in a fresh fork, talking to the learner over ``channel``
    (the test's process does not keep the grader's ``control`` socket)."""
    test = job["tests"][index]
    sys.stdout.flush()
    r, w = os.pipe()
    deadline = time.monotonic() + job["timeout"]
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if control is not None:
            os.close(control.fileno())
        try:
            _run_test(test, job.get("seed"), set(job["watch"]) | {"builtins"}, w, channel, deadline - 0.5)
        except BaseException as exc:  # noqa: BLE001 (the driver's own fault, reported)
            os.write(w, json.dumps({"nonce": test["nonce"], "problem": "the replay driver failed: "
                                    + "".join(traceback.format_exception(exc))[-1500:]}).encode())
        finally:
            os._exit(0)
    os.close(w)
    channel.close()
    raw, problem = _collect(pid, r, deadline)
    os.close(r)
    try:
        return json.loads(raw) if problem is None else {"problem": problem}
    except ValueError:
        return {"problem": "the test's process wrote a garbled result"}


def preload(modules) -> None:
    """Import the libraries the tests use (so each test's fork starts with them loaded)."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 (a test that needs it fails on its own)
            pass


def serve(control: socket.socket) -> int:
    """Serve the grader on ``control``: the job first, then each test named, with its channel.

    Each message from the grader is one marker byte (carrying the channel's descriptor, for a
    ``run``) and then a frame."""
    from mlscale_lab.harness.grading._codec import PeerClosed, recv_frame, send_frame

    job = None
    while True:
        try:
            marker, fds, _, _ = socket.recv_fds(control, 1, 4)
            if not marker:
                return 0
            message, _ = recv_frame(control)
        except (PeerClosed, OSError, ValueError):
            return 0
        channels = [socket.socket(fileno=fd) for fd in fds]
        if message[0] == "job":
            job = message[1]
            preload(job["preload"])
            send_frame(control, ["ready"])
        elif message[0] == "run" and job is not None and len(channels) == 1:
            send_frame(control, ["result", message[1], run_one(job, int(message[1]), channels[0], control)])
        else:
            for channel in channels:
                channel.close()
            send_frame(control, ["result", message[1] if len(message) > 1 else None,
                                 {"problem": "the replay got a request it could not serve"}])


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p]  # never import from the working folder
    serve(socket.socket(fileno=int(sys.argv[1])))
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: the grader is waiting
