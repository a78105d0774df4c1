"""The training script torchrun runs in each worker: data parallel with checkpoints, and a fault.

Run as ``torchrun ... -m mlscale_lab.scaling.distributed._elastic_train --workdir DIR ...``
(see :func:`~mlscale_lab.scaling.distributed.run_elastic`). It reads its rank, the world size
and the restart count from the variables torchrun sets (``RANK``, ``WORLD_SIZE``,
``TORCHELASTIC_RESTART_COUNT``), joins the group (``env://``), resumes from the last
checkpoint if there is one, and trains. Every few steps rank 0 writes a checkpoint (to a
temporary file, then renamed: a worker killed mid-write never leaves half a checkpoint) and all
ranks wait at a barrier, so a checkpoint is complete before anyone moves on. On the first
attempt, rank ``--kill-rank`` kills itself with SIGKILL at the start of step ``--kill-at``: no
clean-up, no exception, exactly what the out-of-memory killer does.

The gradients are all-reduced by hand, in one flat ``all_reduce`` after the backward pass (the
arithmetic DDP does, without its overlap): constructing ``DistributedDataParallel`` imports
torch's compiler stack, which would add about 80 MB and a second of start-up to every worker of
every attempt, and this job is about restarts, not overlap.

Each rank appends what it does to ``DIR/events-rank<r>.jsonl`` (one JSON object a line):
``start`` (with the step it resumed from), ``step``, ``checkpoint``, ``kill``, ``done``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _parse(argv):
    p = argparse.ArgumentParser(prog="_elastic_train")
    p.add_argument("--workdir", required=True)
    p.add_argument("--setup", required=True, help="TrainSetup fields as JSON")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--every", type=int, required=True, help="checkpoint interval in steps")
    p.add_argument("--kill-at", type=int, default=-1)
    p.add_argument("--kill-rank", type=int, default=1)
    return p.parse_args(argv)


def main(argv=None) -> None:
    """Train data-parallel under torchrun, checkpointing every ``--every`` steps."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    from mlscale_lab._core.lifeline import set_parent_death_signal

    set_parent_death_signal()  # the elastic agent is our parent: never outlive it
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    work = Path(args.workdir)
    log = (work / f"events-rank{rank}.jsonl").open("a", encoding="utf-8")

    def event(kind, **fields):
        log.write(json.dumps({"kind": kind, "rank": rank, "attempt": attempt, "t": time.time(),
                              "pid": os.getpid(), **fields}) + "\n")
        log.flush()

    import numpy as np
    import torch
    import torch.distributed as dist

    from mlscale_lab.scaling.distributed._model import (
        TrainSetup,
        all_reduce_gradient,
        make_data,
        make_model,
        parameter_arrays,
        rank_loss,
        set_gradient,
    )

    torch.set_num_threads(1)
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        # The agent's store outlives an attempt; gloo's addresses from the attempt before (a
        # dead process's port) would still be there. Each attempt keeps its keys apart.
        from datetime import timedelta

        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                              is_master=False, timeout=timedelta(seconds=60))
        dist.init_process_group("gloo", store=dist.PrefixStore(f"mlscale/attempt{attempt}", store),
                                rank=rank, world_size=world)
    else:
        dist.init_process_group("gloo")  # env://: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    setup = TrainSetup(**json.loads(args.setup))
    X, y = make_data(setup)
    model = make_model(setup)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=setup.lr)
    checkpoint = work / "checkpoint.pt"
    start = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
    event("start", step=start)
    for step in range(start, args.steps):
        if attempt == 0 and rank == args.kill_rank and step == args.kill_at:
            event("kill", step=step)
            os.kill(os.getpid(), signal.SIGKILL)
        opt.zero_grad()
        rank_loss(model, X, y, setup, step, rank, world).backward()
        set_gradient(params, all_reduce_gradient(params, world))  # DDP's average, in one piece
        opt.step()
        event("step", step=step)
        if (step + 1) % args.every == 0:
            if rank == 0:
                t0 = time.perf_counter()
                tmp = checkpoint.with_suffix(".tmp")
                torch.save({"step": step + 1, "model": model.state_dict(),
                            "optimizer": opt.state_dict()}, tmp)
                os.replace(tmp, checkpoint)
                event("checkpoint", step=step + 1, seconds=time.perf_counter() - t0)
            dist.barrier()  # the checkpoint is on disk before any rank goes on
    if rank == 0:
        np.savez(work / "final.npz", **parameter_arrays(model))
    event("done", step=args.steps)
    dist.barrier()  # every rank is done before any of them ends the group
    dist.destroy_process_group()
    log.close()


if __name__ == "__main__":
    main()
    # Leave without the interpreter's teardown: in the project's CI a rank that had finished
    # every step and written "done" was aborted there (SIGABRT, a C++ thread of the group still
    # joinable), and torchrun counted the finished attempt as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
