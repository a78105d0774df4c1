"""The worker side of :func:`~mlscale_lab.scaling.distributed.start_workers`: one training process.

Started by ``torch.multiprocessing.spawn`` as ``worker_main(rank, ...)``. It ties its life to the
kernel (lifeline), joins the gloo process group through the kernel's rendezvous store, and
then runs the tasks the kernel sends until told to stop or until the kernel's end of the pipe
closes. Every task gets a :class:`WorkerContext`, whose ``state`` dict lives as long as the
process, so a model built by one task can be timed by the next.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from dataclasses import dataclass, field

__all__ = ["WorkerContext", "worker_main"]


@dataclass
class WorkerContext:
    """What a task knows about the process it runs in.

    Attributes
    ----------
    rank, world_size : int
    state : dict
        Kept between tasks in this process (models, optimizers, buffers).
    """

    rank: int
    world_size: int
    state: dict = field(default_factory=dict)


def worker_main(rank: int, world_size: int, port: int, conns: list, threads: int,
                parent_pid: int, env: dict, timeout: float) -> None:
    """Join the group as ``rank`` and serve the kernel's tasks (the body of each spawned process)."""
    # The notebook's interrupt goes to the kernel's whole process group; the kernel decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked worker inherits the kernel's sys.stdout/stderr, which send through the kernel's
    # own threads (gone in the copy): a warning written there could hang. The process's real
    # streams are safe in either start method.
    sys.stdout = sys.__stdout__ or sys.stdout
    sys.stderr = sys.__stderr__ or sys.stderr
    from mlscale_lab._core.lifeline import set_parent_death_signal, watch_parent

    set_parent_death_signal()
    watch_parent(parent_pid)
    conn = conns[rank]
    for i, other in enumerate(conns):
        if i != rank:
            other.close()  # only our own pipe: a dead sibling must not keep another's pipe open
    os.environ.update(env)
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    store = dist.TCPStore(env.get("MASTER_ADDR", "127.0.0.1"), port, world_size, is_master=False,
                          timeout=timedelta(seconds=timeout))
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                            timeout=timedelta(seconds=max(timeout, 60.0)))
    conn.send(("ok", os.getpid()))
    ctx = WorkerContext(rank, world_size)
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the kernel is gone or closed the group
            if message[0] == "stop":
                break
            _, task, args = message
            try:
                reply = ("ok", task(ctx, *args))
            except BaseException:
                reply = ("error", traceback.format_exc())
            conn.send(reply)
    finally:
        ctx.state.clear()
        dist.destroy_process_group()
