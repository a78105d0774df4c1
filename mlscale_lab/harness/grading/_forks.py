"""The grader's side of the zygotes (:mod:`._zygote`): start them, ask them for a kernel or a
replay driver inside a waiting sandbox, and follow what they started.

:class:`Zygotes` is one pair (a kernel zygote and a replay zygote) for a grading run, started
by whoever runs the submissions (the class's main process, or a Dask worker) and reached by
its grading workers through sockets in a folder only the grader can open. A process started
this way is a :class:`ForkedProcess`, which ``jupyter_client`` drives as it drives a
``Popen`` (poll, signals, kill). Where a zygote cannot start or cannot enter a sandbox, the
callers start processes the old way (:func:`usable`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlscale_lab._core.environment import HEADLESS_ENV
from mlscale_lab._core.tempdirs import remove_tempdir


class ZygoteError(RuntimeError):
    """A zygote is not there or could not start the process asked for."""


class ForkedProcess:
    """A process a zygote forked (not this process's child), driven like a ``Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        import psutil

        self.pid = pid
        self.returncode = None
        try:
            self._proc = psutil.Process(pid)
        except psutil.Error:
            self._proc = None

    def poll(self):
        """None while it runs, else an exit code (-1: it is gone, its code unknown here)."""
        import psutil

        if self.returncode is None:
            try:
                alive = self._proc is not None and self._proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            if not alive:
                self.returncode = -1
        return self.returncode

    def wait(self, timeout: float | None = None):
        """Wait for it to end; raise ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to it (if it still runs)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)


def _clean_env() -> dict:
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ") if k in os.environ}
    env.update({"PYTHONHASHSEED": "0", HEADLESS_ENV: "1", "HOME": "/nonexistent"})
    return env


class Zygotes:
    """A kernel zygote and a replay zygote, preloaded with ``kernel_modules`` / ``replay_modules``.

    They start in the background at once (their imports overlap whatever the caller does
    next); :meth:`spawn` waits for the one it needs. :meth:`close` ends them and everything
    they started.
    """

    def __init__(self, kernel_modules=(), replay_modules=()) -> None:
        from mlscale_lab.harness.executor import socket_folder
        from mlscale_lab.harness.grading._sandbox import python_executable

        # Their sockets' paths must fit a sun_path: under /tmp when the temporary folder is deep.
        self.dir = socket_folder("zygote")
        os.chmod(self.dir, 0o700)
        self.procs: dict[str, subprocess.Popen] = {}
        self.broken: dict[str, str] = {}
        self._log = open(self.dir / "zygotes.log", "wb")  # noqa: SIM115 (closed in close())
        main = str(Path(__file__).with_name("_zygote.py"))
        for role, modules in (("kernel", kernel_modules), ("replay", replay_modules)):
            self.procs[role] = subprocess.Popen(
                [python_executable(), "-s", "-P", main, role, str(self.dir / role), json.dumps(sorted(set(modules)))],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=_clean_env(),
                cwd=str(self.dir), start_new_session=True)
        self.owner = os.getpid()

    def _ready(self, role: str, timeout: float) -> Path:
        path = self.dir / role
        end = time.monotonic() + timeout
        while not path.exists():
            if self.procs[role].poll() is not None or time.monotonic() > end:
                raise ZygoteError(f"the {role} zygote did not start")
            time.sleep(0.01)
        return path

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Wait until both zygotes take requests; False if one did not start."""
        try:
            for role in self.procs:
                self._ready(role, timeout)
        except ZygoteError:
            return False
        return True

    def spawn(self, role: str, request: dict, fds: list[int], timeout: float = 60.0) -> ForkedProcess:
        """Fork a ``role`` process for ``request`` (descriptors ``fds`` become its 0, 1, 2, 3...)."""
        from mlscale_lab.harness.grading._codec import recv_frame, send_frame

        if role in self.broken:
            raise ZygoteError(self.broken[role])
        path = self._ready(role, timeout)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            try:
                conn.connect(str(path))
                socket.send_fds(conn, [b"m"], fds)
                send_frame(conn, {**request, "role": role})
                reply, _ = recv_frame(conn)
            except (OSError, ValueError, EOFError) as exc:
                raise ZygoteError(f"the {role} zygote did not answer ({exc})") from None
        if reply[0] != "spawned":
            if request.get("ns_pid"):
                self.broken[role] = f"the {role} zygote cannot enter a sandbox here ({reply[1]})"
            raise ZygoteError(f"the {role} zygote could not start it ({reply[1]})")
        return ForkedProcess(int(reply[1]))

    def close(self) -> None:
        """End both zygotes and every process they started."""
        from mlscale_lab._core.processes import kill_process_tree

        if os.getpid() != self.owner:
            return  # a forked grading worker: its parent ends them
        for proc in self.procs.values():
            if proc.poll() is None:
                kill_process_tree(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        self._log.close()
        remove_tempdir(self.dir)


#: The zygotes of this process's grading run (set by :func:`start`), inherited by forked workers.
_CURRENT: list[Zygotes] = []


def start(kernel_modules=(), replay_modules=()) -> Zygotes | None:
    """Start this process's zygotes (None where forking servers are not used: not Linux)."""
    stop()
    if not sys.platform.startswith("linux"):
        return None
    _CURRENT.append(Zygotes(kernel_modules, replay_modules))
    return _CURRENT[0]


def current() -> Zygotes | None:
    """The zygotes of this grading run, if any."""
    return _CURRENT[0] if _CURRENT else None


def stop() -> None:
    """End this process's zygotes."""
    while _CURRENT:
        _CURRENT.pop().close()


def start_process(role: str, request: dict, fds: list[int], fallback, holder=None):
    """A ``role`` process forked from this run's zygote into ``holder``'s sandbox (or none for
    ``holder=None``), or, where that cannot be done, ``fallback()`` (the old way: a fresh
    process behind its own sandbox command)."""
    zygotes = current()
    if zygotes is not None:
        try:
            return zygotes.spawn(role, {**request, "ns_pid": holder.pid if holder is not None else None}, fds)
        except ZygoteError:
            pass
    return fallback()


def kernel_spawner(memory_bytes: int | None, holder=None):
    """An :class:`~mlscale_lab.harness.executor.KernelLaunch` ``spawner``: the kernel forked
    from this run's kernel zygote into ``holder`` (falling back to the launch command)."""
    def spawn(cmd, connection_file, env=None, cwd=None, stdout=None, stderr=None, **kw):
        from jupyter_client.launcher import launch_kernel

        env = {k: v for k, v in (env or {}).items() if k != "JPY_PARENT_PID"}
        out = stdout.fileno() if hasattr(stdout, "fileno") else os.open(os.devnull, os.O_WRONLY)
        err = stderr.fileno() if hasattr(stderr, "fileno") else out
        with open(os.devnull, "rb") as null:
            return start_process(
                "kernel", {"connection_file": os.path.realpath(connection_file), "cwd": os.path.realpath(cwd),
                           "env": env, "as_bytes": memory_bytes},
                [null.fileno(), out, err],
                lambda: launch_kernel(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr, **kw), holder)

    return spawn


def submission_spawner(spec, memory: int | None):
    """``(holder, spawner)``: the submission's kernel forked from this run's kernel zygote into a
    waiting sandbox of its own; ``(None, None)`` where that cannot be done (then it starts the
    old way, a fresh interpreter behind bubblewrap)."""
    from mlscale_lab.harness.confine import can_cap_address_space
    from mlscale_lab.harness.grading._holder import HolderError, SandboxHolder

    if current() is None:
        return None, None
    holder = None
    if spec is not None:
        try:
            holder = SandboxHolder(spec)
        except HolderError:
            return None, None
    capped = memory if memory is not None and can_cap_address_space() else None
    return holder, kernel_spawner(capped, holder)
