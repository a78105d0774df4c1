"""A sandbox that waits for its process: a fresh bubblewrap sandbox (the view of a
:class:`~mlscale_lab.harness.grading._sandbox.SandboxSpec`) around a process that only sleeps.

A fork of a pre-imported zygote (:mod:`._zygote`) then enters its namespaces (user, mount, PID,
network, IPC, UTS, cgroup) and drops every capability, and so runs exactly where a process
bubblewrap started would, without paying for a fresh interpreter and its imports. One holder
is made per submission (and per replay), after that submission's folders exist: before its
submission is known a holder sees only empty folders. Closing it ends its PID namespace, and
with it every process inside, whatever became of them.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time

from mlscale_lab.harness.grading._sandbox import SandboxSpec, find_bwrap


class HolderError(RuntimeError):
    """The sandbox could not be made (bubblewrap failed or did not report its process)."""


class SandboxHolder:
    """A bubblewrap sandbox with ``spec``'s view, held open by a sleeping process.

    Attributes
    ----------
    pid : int
        The sleeping process inside, as this machine sees it (its ``/proc/PID/ns`` are the
        sandbox's namespaces).
    """

    def __init__(self, spec: SandboxSpec, timeout: float = 30.0) -> None:
        bwrap, sh = find_bwrap(), shutil.which("sh")
        if bwrap is None or sh is None:
            raise HolderError("bubblewrap or sh is missing")
        args = spec.bwrap_args(bwrap)
        r, w = os.pipe()
        ready_r, ready_w = os.pipe()
        try:
            # The sandbox is whole once its command runs: it says so on its stdout, then sleeps.
            self.proc = subprocess.Popen([*args[:-1], "--info-fd", str(w), "--", sh, "-c", "echo ready; exec sleep infinity"],
                                         pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=ready_w,
                                         stderr=subprocess.PIPE, start_new_session=True)
        finally:
            os.close(w)
            os.close(ready_w)
        try:
            end = time.monotonic() + timeout
            info = _read_all(r, end)
            ready = _read_all(ready_r, end, until=b"ready")
        finally:
            os.close(r)
            os.close(ready_r)
        try:
            if not ready.startswith(b"ready"):
                raise ValueError("not ready")
            self.pid = int(json.loads(info)["child-pid"])
        except (ValueError, KeyError, TypeError):
            err = self.proc.stderr.read(2000).decode(errors="replace") if self.proc.poll() is not None else ""
            self.close()
            raise HolderError(f"bubblewrap did not start the sandbox ({err.strip() or 'no report'})") from None

    def alive(self) -> bool:
        """Whether the sandbox still stands."""
        return self.proc.poll() is None

    def close(self) -> None:
        """End the sandbox: its PID namespace and every process in it."""
        from mlscale_lab._core.processes import kill_process_tree

        if self.proc.poll() is None:
            kill_process_tree(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _read_all(fd: int, deadline: float, until: bytes | None = None) -> bytes:
    data = b""
    while (left := deadline - time.monotonic()) > 0 and not (until and data.startswith(until)):
        if not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return data
