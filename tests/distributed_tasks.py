"""Tasks the distributed tests send to worker groups (module-level, so workers import them)."""

from __future__ import annotations

import os
import signal
import time


def whoami(ctx):
    """(rank, world size, pid)."""
    return ctx.rank, ctx.world_size, os.getpid()


def sleep(ctx, seconds):
    """Sleep on every rank (a cell the test interrupts)."""
    time.sleep(seconds)
    return ctx.rank


def fail_on(ctx, rank):
    """Raise on one rank while the others wait in a collective that never completes."""
    import torch.distributed as dist

    if ctx.rank == rank:
        raise ValueError(f"deliberate failure on rank {rank}")
    dist.barrier()


def die_on(ctx, rank):
    """SIGKILL one rank's process mid-task."""
    import torch.distributed as dist

    if ctx.rank == rank:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.barrier()


def remember(ctx, value):
    """Keep a value in the process's state for the next task."""
    ctx.state["kept"] = value
    return value


def recall(ctx):
    """The value kept by :func:`remember` in this process."""
    return ctx.state.get("kept")
