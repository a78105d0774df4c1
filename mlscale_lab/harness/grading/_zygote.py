"""Pre-imported fork servers ("zygotes"): a submission's kernel, and its test replay, start as a
fork of a process that has already imported what they need, instead of a fresh interpreter.

A zygote is a fresh Python (started with a clean environment, never holding a submission, a
gradebook or a test) that imports its role's libraries (``kernel``: ipykernel, IPython and the
labs' own imports; ``replay``: the tests' libraries) and then waits on a Unix socket in a
folder only the grader can open. For each request it forks: the fork enters that submission's
waiting sandbox (:mod:`._holder`, :mod:`._enter`), forks once more into its PID namespace,
drops every capability, takes the descriptors, folder, environment and memory cap it was sent,
and becomes the kernel (``IPKernelApp``) or the replay driver (:func:`._replay.serve`). So the
sandbox is the same as a freshly started one's, one per submission, and its start costs a
fork. Where a sandbox cannot be entered (no user namespaces), the grader starts processes the
old way.

Run as ``python -s -P _zygote.py ROLE SOCKET PRELOAD_JSON``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys

#: Libraries never imported ahead: they read their settings (``MPLCONFIGDIR``, Dask's config
#: folders) from the environment when imported, and a kernel's environment is its own.
NOT_AHEAD = ("matplotlib", "mlscale_lab.views", "dask", "distributed", "ipywidgets", "pandas.plotting")
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython",
                  "mlscale_lab.harness.grading._serve", "mlscale_lab.harness.grading._enter")
REPLAY_MODULES = ("mlscale_lab.harness.grading._replay", "mlscale_lab.harness.grading._proxy",
                  "mlscale_lab.harness.grading._enter")


def _die_with_parent() -> None:
    """This process gets SIGKILL when its parent ends (so nothing of a grading outlives it)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def _preload(modules) -> None:
    import importlib

    for name in modules:
        if any(name == n or name.startswith(n + ".") for n in NOT_AHEAD):
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (the kernel imports it itself, and says why it fails)
            pass


def _place(fds: list[int]) -> None:
    """Make ``fds`` this process's descriptors 0, 1, 2, 3, ... and close every other one."""
    high = [os.dup(fd) for fd in fds]  # above every target first: no target overwrites a source
    for target, fd in enumerate(high):
        os.dup2(fd, target, inheritable=True)
    os.closerange(len(fds), os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 4096)


def _become(request: dict, fds: list[int]) -> None:
    """In the grandchild: take the request's place in the world, then run its role."""
    import random
    import resource

    if request.get("ns_pid"):
        from mlscale_lab.harness.grading._enter import drop_privileges

        drop_privileges()
    os.setpgid(0, 0)  # its own process group (its parent sets it too, before saying its pid)
    _place(fds)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if request.get("as_bytes"):
        resource.setrlimit(resource.RLIMIT_AS, (int(request["as_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    sys.path.insert(0, request["cwd"])  # as `python -m` puts the working folder first
    if request["role"] == "kernel":
        from ipykernel.kernelapp import IPKernelApp

        sys.argv = ["ipykernel_launcher", "-f", request["connection_file"], "--HistoryManager.hist_file=:memory:"]
        app = IPKernelApp.instance()
        app.initialize(sys.argv[1:])
        app.start()
    else:
        from mlscale_lab.harness.grading._replay import serve

        sys.path.pop(0)  # the replay never imports from its working folder
        serve(socket.socket(fileno=3))
    sys.stdout.flush()


def _spawn(conn: socket.socket, listener: socket.socket) -> None:
    from mlscale_lab.harness.grading._codec import recv_frame, send_frame

    _, fds, _, _ = socket.recv_fds(conn, 1, 8)
    request, _ = recv_frame(conn)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the intermediate: enters the sandbox, forks into its PID namespace, waits
        code = 70
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this process waits for its child
            _die_with_parent()
            os.close(r)
            conn.close()
            listener.close()
            if request.get("ns_pid"):
                from mlscale_lab.harness.grading._enter import enter_namespaces

                enter_namespaces(int(request["ns_pid"]))
            kid = os.fork()
            if kid == 0:
                _die_with_parent()
                os.close(w)
                try:
                    _become(request, fds)
                finally:
                    os._exit(0)
            with contextlib.suppress(OSError):  # whatever signals its group reaches it alone
                os.setpgid(kid, kid)
            os.write(w, f"ok {kid}".encode())
            os.close(w)
            status = os.waitpid(kid, 0)[1]
            if os.WIFSIGNALED(status) and len(fds) > 1:  # said in the process's own log
                os.write(fds[1], f"\n[the process ended by signal {os.WTERMSIG(status)}]\n".encode())
            for fd in fds:
                os.close(fd)
            code = os.waitstatus_to_exitcode(status) & 0xFF
        except BaseException as exc:  # noqa: BLE001 (reported to the grader)
            os.write(w, f"error {type(exc).__name__}: {exc}".encode()[:1000])
        finally:
            os._exit(code)
    os.close(w)
    for fd in fds:
        os.close(fd)
    reply = b""
    while chunk := os.read(r, 1024):
        reply += chunk
    os.close(r)
    word, _, rest = reply.decode(errors="replace").partition(" ")
    send_frame(conn, ["spawned", int(rest)] if word == "ok" else ["error", rest or "the fork ended at once"])


def main(argv) -> int:
    """The zygote: import the role's libraries, then fork one process per request on the socket."""
    role, path, preload = argv[1], argv[2], json.loads(argv[3])
    _die_with_parent()
    _preload([*(KERNEL_MODULES if role == "kernel" else REPLAY_MODULES), *preload])
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the intermediates are reaped as they end
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".part")
    listener.listen(16)
    os.rename(path + ".part", path)  # connectable once it is there
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                _spawn(conn, listener)
            except (OSError, ValueError, EOFError):
                continue


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if p]
    sys.exit(main(sys.argv))
