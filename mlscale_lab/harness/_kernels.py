"""The kernel manager and client behind :func:`mlscale_lab.harness.executor.execute`.

jupyter_client's own pair is made for a notebook server, where a kernel lives for hours. Here a
kernel lives for one notebook, often a second or less (a lab-00 submission of a class of 200),
and three of its fixed waits were most of a grading's overhead (measured on lab 00, graded here:
0.41 s from the start to the first cell, of which 0.2 s was the client sitting idle and about
0.1 s a reconnection delay; 0.12 s from the last cell to the end, most of it one 0.1 s poll):

- after the kernel's ``kernel_info`` reply, jupyter_client's ``wait_for_ready`` drains the IOPub
  channel until it has been quiet for 0.2 s, an idle wait every kernel start pays in full. Here
  the check that IOPub is connected stays (the reply's status message must arrive there) and the
  drain only takes what is already queued: nbclient matches every output to the request it
  answers, so an old status message left queued is ignored anyway.
- the client's sockets connect while the kernel is still binding its own, and ZeroMQ tries a
  refused connection again only after 100 ms; here after 5 ms.
- after killing the kernel, the manager polls whether it lives every 0.1 s; here every 5 ms.

Both subclasses also keep what :func:`kernel_manager_class` documents: no heartbeat channel,
the launch prefix, Unix sockets in a folder of the caller's, a kernel started by a spawner.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from queue import Empty

from mlscale_lab._core.sockets import SOCKET_BASE, UNIX_SOCKETS

__all__ = ["IOPUB_CONNECT_S", "KILL_POLL_S", "RECONNECT_MS", "kernel_manager_class"]

#: How long the client waits for the status message that shows IOPub is connected.
IOPUB_CONNECT_S = 0.2
#: Milliseconds between the client's attempts to reach a kernel that is not listening yet.
RECONNECT_MS = 5
#: How often a killed kernel is asked whether it still runs.
KILL_POLL_S = 0.005


def kernel_manager_class(launch):
    """An async kernel manager that starts its kernel behind ``launch.prefix``
    (a :class:`mlscale_lab.harness.executor.KernelLaunch`).

    Async, like nbclient's default: a blocking client would wait forever on a kernel the
    out-of-memory killer ended, where the async one notices the death.

    Its clients start no heartbeat channel. Whether the kernel lives is asked of this manager
    (is its process running), never of the heartbeat; and jupyter_client's heartbeat thread can
    block for good in ``stop_channels`` after a submission killed its kernel (seen here, about
    one grading run in two of ``tests/test_grading_tamper.py``: a worker waiting in
    ``HBChannel.stop`` on a thread that never left its ping's ``send``).
    """
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner

    class QuickClient(AsyncKernelClient):
        def start_channels(self, shell=True, iopub=True, stdin=True, hb=False, control=True):
            import zmq

            # The kernel is still starting when these sockets connect (its Unix sockets do not
            # exist yet): try again every few milliseconds, not ZeroMQ's default 100 ms
            self.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
            super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False, control=control)

        async def wait_for_ready(self, timeout: float | None = None) -> None:
            """Return once the kernel answers ``kernel_info`` and IOPub is seen connected."""
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:  # the reply's status message shows IOPub is subscribed; else ask again
                        await self.iopub_channel.get_msg(timeout=IOPUB_CONNECT_S)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(reply)
                        break
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
            while True:  # what is queued already, without waiting for a quiet spell
                try:
                    await self.iopub_channel.get_msg(timeout=0)
                except Empty:
                    break

    prefix = list(launch.prefix)
    own_cmd = list(launch.kernel_cmd) if launch.kernel_cmd else None
    sockets = Path(os.path.realpath(launch.connection_dir)) if launch.connection_dir else None
    spawner = launch.spawner

    class SpawnedProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kwargs):
            kwargs = {k: v for k, v in kwargs.items() if k not in ("extra_arguments", "kernel_id")}
            self.process = spawner(cmd, connection_file=self.parent.connection_file, **kwargs)
            self.pid = self.process.pid
            getpgid = getattr(os, "getpgid", None)  # no process groups on Windows
            try:
                self.pgid = getpgid(self.pid) if getpgid is not None else None
            except OSError:
                self.pgid = None
            self.cwd = kwargs.get("cwd")
            return self.connection_info

    class LaunchedKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw):
            if spawner is not None and self.provisioner is None:
                import uuid

                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = SpawnedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec,
                                                      parent=self)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_wait(self, pollinterval: float = KILL_POLL_S) -> None:
            await super()._async_wait(pollinterval=min(pollinterval, KILL_POLL_S))

        def __init__(self, **kw):
            super().__init__(**kw)
            self.client_factory = QuickClient
            if sockets is not None:
                self.connection_file = str(sockets / "kernel.json")
                if UNIX_SOCKETS:
                    self.transport = "ipc"
                    self.ip = str(sockets / SOCKET_BASE)

        def format_kernel_cmd(self, extra_arguments=None):
            if own_cmd is None:
                return [*prefix, *super().format_kernel_cmd(extra_arguments)]
            connection = os.path.realpath(self.connection_file)
            cmd = [arg.replace("{connection_file}", connection) for arg in own_cmd]
            return [*prefix, *cmd, *(extra_arguments or [])]

    return LaunchedKernelManager
