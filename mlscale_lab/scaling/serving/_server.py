"""Start a model server (uvicorn + FastAPI) as a subprocess, and always stop it.

``serve()`` binds a listening socket on 127.0.0.1 (a free port unless you name one), starts
``python -m mlscale_lab.scaling.serving._main`` on it with N uvicorn worker processes, and
waits until every worker has loaded the model and the server answers. Three layers make sure
no server outlives what started it:

1. the context manager (``with serve(...) as server:``) stops it when the block ends, even on
   an exception or a keyboard interrupt;
2. an ``atexit`` hook stops every server still running when the Python process exits (a
   kernel shut down or restarted normally);
3. the server watches its parent and exits when the parent is gone (a kernel killed with
   SIGKILL or by the out-of-memory killer runs no Python at all), see
   ``mlscale_lab._core.lifeline``; it then removes the server's temporary folder too, which its
   launcher can no longer do.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from mlscale_lab._core.environment import (
    SERVE_CPUS_ENV,
    SERVE_FEATURES_ENV,
    SERVE_MAX_BATCH_ENV,
    SERVE_MAX_WAIT_MS_ENV,
    SERVE_MODEL_ENV,
    SERVE_PARENT_ENV,
    SERVE_READY_DIR_ENV,
    SERVE_WORKERS_ENV,
)
from mlscale_lab._core.processes import descendant_pids, kill_process_tree
from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir
from mlscale_lab.scaling.serving._artifacts import artifact_kind
from mlscale_lab.validation import check_int, check_number

__all__ = ["HOST", "MAX_WORKERS", "ModelServer", "live_servers", "serve", "stop_all_servers"]

HOST = "127.0.0.1"
#: More workers than this on a teaching machine only thrash.
MAX_WORKERS = 8

_LIVE: dict[int, ModelServer] = {}
_LIVE_LOCK = threading.Lock()


def live_servers() -> list[ModelServer]:
    """The servers this process started that are still running."""
    with _LIVE_LOCK:
        return list(_LIVE.values())


def stop_all_servers() -> int:
    """Stop every server this process started; return how many were running."""
    servers = live_servers()
    for s in servers:
        s.stop()
    return len(servers)


atexit.register(stop_all_servers)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise ValueError(
            f"serve(port={port!r}): expected a free port on {HOST}, got {port!r}, which is in use "
            f"({exc.strerror}); pass port=None to take a free one") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class ModelServer:
    """A running model server; create it with :func:`serve`.

    Attributes
    ----------
    url : str
        ``http://127.0.0.1:<port>``.
    port, workers : int
    model_path : Path
    max_batch : int
    max_wait_ms : float
    cpus : list of int or None
        The CPUs the server was asked to run on (``worker_info()`` says where each worker runs).
    started_at, ready_at : float
        ``time.perf_counter()`` just before the process started and when it first answered
        (``ready_at - started_at`` is the cold start: process start to first answer).
    """

    def __init__(self, model_path, workers, port, max_batch, max_wait_ms, n_features, start_timeout,
                 cpus=None):
        self.cpus = cpus
        self.model_path = model_path
        self.workers = workers
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.n_features = n_features
        self.start_timeout = start_timeout
        self._requested_port = port
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self.started_at = self.ready_at = float("nan")
        self._dir = owned_tempdir("serve")  # ready files and the log; see stop()
        self._ready = self._dir / "ready"
        self._ready.mkdir()
        self._log = self._dir / "server.log"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ModelServer:
        """Bind the socket, start the process, and wait for every worker (use :func:`serve`)."""
        sock = _bind(self._requested_port)
        self.port = sock.getsockname()[1]
        env = dict(os.environ)
        env.update({
            SERVE_MODEL_ENV: str(self.model_path), SERVE_READY_DIR_ENV: str(self._ready),
            SERVE_MAX_BATCH_ENV: str(self.max_batch), SERVE_MAX_WAIT_MS_ENV: str(self.max_wait_ms),
            SERVE_FEATURES_ENV: str(self.n_features), SERVE_WORKERS_ENV: str(self.workers),
            SERVE_PARENT_ENV: str(os.getpid()),
            # one thread per worker: the workers are the parallelism
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        })
        env.pop(SERVE_CPUS_ENV, None)
        if self.cpus:
            env[SERVE_CPUS_ENV] = ",".join(str(c) for c in self.cpus)
        try:
            with open(self._log, "wb") as log:
                self.started_at = time.perf_counter()
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "mlscale_lab.scaling.serving._main", str(sock.fileno()),
                     str(self.workers)],
                    pass_fds=(sock.fileno(),), env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            sock.close()  # the server holds its own copy
        with _LIVE_LOCK:
            _LIVE[id(self)] = self
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = self.started_at + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve(model_path={str(self.model_path)!r}): the server exited with code "
                    f"{self.process.returncode} before answering; its log ends with:\n{self.log_tail()}")
            if len(list(self._ready.glob("*.json"))) >= self.workers:
                try:
                    self.health()
                    self.ready_at = time.perf_counter()
                    return
                except OSError:
                    pass
            if time.perf_counter() > deadline:
                raise TimeoutError(
                    f"serve(start_timeout={self.start_timeout!r}): the server did not answer within "
                    f"{self.start_timeout:g} s; its log ends with:\n{self.log_tail()}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill the server and all its workers (safe to call twice)."""
        if self.process is not None:
            # Only while it is unreaped is the pid still ours: once Popen has reaped it (poll()
            # returned), the number may belong to another process. Orphaned workers of a dead
            # supervisor end themselves (their lifeline watches the parent).
            if self.process.poll() is None:
                kill_process_tree(self.process.pid)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        with _LIVE_LOCK:
            _LIVE.pop(id(self), None)
        remove_tempdir(self._dir)

    @property
    def running(self) -> bool:
        """True while the server process lives and has not been stopped."""
        return self.process is not None and self.process.poll() is None and id(self) in _LIVE

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (f"ModelServer({self.url}, workers={self.workers}, model={self.model_path.name}, "
                f"max_batch={self.max_batch}, {state})")

    # -- talking to it ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base address, ``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    def _call(self, path: str, body: bytes | None = None, timeout: float = 5.0) -> dict:
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    def health(self) -> dict:
        """``GET /health`` from whichever worker answers."""
        return self._call("/health", timeout=2.0)

    def predict(self, row) -> int:
        """One prediction over HTTP (``POST /predict``)."""
        x = [float(v) for v in row]
        return int(self._call("/predict", json.dumps({"x": x}).encode())["label"])

    def set_batching(self, max_batch: int, max_wait_ms: float) -> None:
        """Change the micro-batcher while the server runs (one worker only: a request reaches one)."""
        max_batch = check_int("set_batching", "max_batch", max_batch, low=1, high=1024)
        max_wait_ms = check_number("set_batching", "max_wait_ms", max_wait_ms, low=0, high=1000)
        if self.workers != 1:
            raise ValueError(f"set_batching(): expected a server with one worker, got {self.workers}; "
                             "each worker has its own batcher and a request reaches only one of them")
        self._call("/batching", json.dumps({"max_batch": max_batch, "max_wait_ms": max_wait_ms}).encode())
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms

    def worker_cpu_seconds(self) -> float:
        """CPU seconds (user + system) the worker processes have used so far.

        Around a load run, its difference over the requests served is each request's full
        occupancy of a worker (the framework's HTTP and socket work included), which the
        handler's own timing leaves out.
        """
        import psutil

        total = 0.0
        for w in self.worker_info():
            try:
                t = psutil.Process(w["pid"]).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    # -- what it costs -----------------------------------------------------------------------
    def worker_info(self) -> list[dict]:
        """Per worker: pid, process start time and seconds spent loading the model."""
        return [json.loads(p.read_text()) for p in sorted(self._ready.glob("*.json"))]

    def pids(self) -> list[int]:
        """The server process and every process under it."""
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid, *descendant_pids(self.process.pid)]

    def memory(self) -> dict:
        """Resident (RSS) and unique (USS, where the OS reports it) bytes of each process.

        Returns
        -------
        dict
            ``{"supervisor": {"rss", "uss"} or None, "workers": [{"pid", "rss", "uss"}, ...],
            "total_rss": bytes}``; with one worker the server process is the worker.
        """
        import psutil

        worker_pids = {w["pid"] for w in self.worker_info()}
        out = {"supervisor": None, "workers": [], "total_rss": 0}
        for pid in self.pids():
            try:
                proc = psutil.Process(pid)
                try:
                    full = proc.memory_full_info()
                    rss, uss = full.rss, getattr(full, "uss", None)
                except (psutil.AccessDenied, AttributeError):
                    rss, uss = proc.memory_info().rss, None
            except psutil.Error:
                continue
            out["total_rss"] += rss
            entry = {"pid": pid, "rss": rss, "uss": uss}
            if pid in worker_pids:
                out["workers"].append(entry)
            elif pid == self.process.pid:
                out["supervisor"] = entry
        return out

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the server printed (uvicorn's warnings and errors)."""
        try:
            text = self._log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def serve(model_path, *, workers: int = 1, port: int | None = None, max_batch: int = 1,
          max_wait_ms: float = 0.0, n_features: int = 1, start_timeout: float = 60.0,
          cpus=None) -> ModelServer:
    """Start a model server on 127.0.0.1 and wait until every worker answers.

    Parameters
    ----------
    model_path : path-like
        The artifact (``.pt``, ``.onnx``, ``.joblib``/``.pkl``; see :func:`load_predictor`).
    workers : int
        uvicorn worker processes, 1 to ``MAX_WORKERS``; each loads its own copy of the model.
    port : int, optional
        A free port on 127.0.0.1; None (default) takes one the operating system hands out.
    max_batch, max_wait_ms : int, float
        The micro-batcher: up to ``max_batch`` requests, waiting at most ``max_wait_ms`` after the
        first; ``max_batch=1`` serves each request on its own.
    n_features : int
        Row width, for each worker's warm-up prediction.
    start_timeout : float
        Seconds to wait for every worker to answer.
    cpus : sequence of int, optional
        CPU ids to pin the server and its workers to, where the platform allows it (Linux,
        Windows; not macOS): keep them off the load generator's CPU (see :func:`cpu_split`).

    Returns
    -------
    ModelServer
        Running; use it as a context manager (or call ``stop()``) so it stops.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        Bad arguments (a busy port, no model file, zero workers), before any process starts.
    RuntimeError, TimeoutError
        The server died or did not answer in time; it is stopped, and the message holds its log.
    """
    path = artifact_kind("serve", model_path)
    workers = check_int("serve", "workers", workers, low=1, high=MAX_WORKERS,
                        hint="each worker is a process that loads its own copy of the model")
    if port is not None:
        port = check_int("serve", "port", port, low=1024, high=65535,
                         hint="pass port=None to take a free one")
    max_batch = check_int("serve", "max_batch", max_batch, low=1, high=1024)
    max_wait_ms = check_number("serve", "max_wait_ms", max_wait_ms, low=0, high=1000)
    n_features = check_int("serve", "n_features", n_features, low=1)
    start_timeout = check_number("serve", "start_timeout", start_timeout, low=0, low_open=True)
    if cpus is not None:
        cpus = [check_int("serve", "cpus", c, low=0, hint="CPU ids such as [1]") for c in cpus]
        if not cpus:
            raise ValueError("serve(cpus=[]): expected at least one CPU id, or None not to pin")
    server = ModelServer(path, workers, port or 0, max_batch, max_wait_ms, n_features, start_timeout,
                         cpus)
    try:
        return server.start()
    except BaseException:
        server.stop()
        raise
