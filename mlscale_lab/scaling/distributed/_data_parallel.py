"""Data parallelism measured: the same model on 1 and on N processes, gradients all-reduced.

Worker tasks (``task_*``, run on every rank by :meth:`WorkerGroup.run`) and the kernel-side
functions a notebook calls:

- :func:`train_data_parallel`: train with ``DistributedDataParallel``; the parameters it ends
  at are compared with one process (:func:`~mlscale_lab.scaling.distributed.train_one_process`);
- :func:`local_gradients`: each rank's gradient on its slice of an uneven batch, and what DDP
  makes of them (an equal-weight average);
- :func:`time_data_parallel`: time per step of one process against N, interleaved, with the N
  process step split into compute and communication;
- :func:`time_buckets`: DDP's step time against its bucket size (``bucket_cap_mb``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlscale_lab.scaling.distributed._model import (
    TrainSetup,
    all_reduce_gradient,
    batch_rows,
    flat_gradient,
    make_data,
    make_model,
    parameter_arrays,
    rank_loss,
    set_gradient,
    shard_bounds,
)
from mlscale_lab.validation import check_int

__all__ = ["DataParallelTimings", "LocalGradients", "local_gradients", "task_local_gradients",
           "task_time_step", "task_train_ddp", "time_buckets", "time_data_parallel",
           "train_data_parallel"]

ONE = "1 process"


def _ddp(model, bucket_cap_mb=None):
    from torch.nn.parallel import DistributedDataParallel

    kw = {} if bucket_cap_mb is None else {"bucket_cap_mb": float(bucket_cap_mb)}
    return DistributedDataParallel(model, **kw)


# -- worker tasks ----------------------------------------------------------------------------
def task_train_ddp(ctx, setup: TrainSetup, steps: int, exact: bool = True):
    """Train ``steps`` steps with DDP on each rank's slice; rank 0 returns the parameters."""
    import torch

    X, y = make_data(setup)
    model = _ddp(make_model(setup))
    opt = torch.optim.SGD(model.parameters(), lr=setup.lr)
    for step in range(steps):
        opt.zero_grad()
        rank_loss(model, X, y, setup, step, ctx.rank, ctx.world_size, exact=exact).backward()
        opt.step()
    return parameter_arrays(model.module) if ctx.rank == 0 else None


def task_local_gradients(ctx, setup: TrainSetup, rows: int):
    """Each rank's mean-loss gradient on its slice of a ``rows``-row batch, and DDP's average."""
    import torch

    X, y = make_data(setup)
    idx = batch_rows(setup, 0, batch=rows)
    lo, hi = shard_bounds(rows, ctx.world_size)[ctx.rank]
    plain = make_model(setup)
    torch.nn.functional.cross_entropy(plain(X[idx[lo:hi]]), y[idx[lo:hi]]).backward()
    local = flat_gradient(plain.parameters()).numpy().copy()
    ddp = _ddp(make_model(setup))
    torch.nn.functional.cross_entropy(ddp(X[idx[lo:hi]]), y[idx[lo:hi]]).backward()
    averaged = flat_gradient(ddp.parameters()).numpy().copy()
    return {"gradient": local, "rows": hi - lo, "ddp": averaged if ctx.rank == 0 else None}


def _cached(ctx, key, build):
    if key not in ctx.state:
        ctx.state[key] = build()
    return ctx.state[key]


def task_time_step(ctx, setup: TrainSetup, arm: str, steps: int, bucket_cap_mb=None):
    """Time ``steps`` optimiser steps of one arm; returns seconds and their split.

    Arms: ``"one"`` (rank 0 trains the whole global batch alone, the other ranks wait),
    ``"ddp"`` (DDP on each rank's slice), ``"sequential"`` (each rank's slice, a barrier, then
    one all-reduce of the whole flattened gradient after the backward pass: no overlap).
    """
    import torch
    import torch.distributed as dist

    X, y = _cached(ctx, ("data", setup), lambda: make_data(setup))
    dist.barrier()
    out = {"seconds": 0.0, "compute": [], "wait": [], "comm": []}
    if arm == "one":
        if ctx.rank != 0:
            return None
        model, opt = _cached(ctx, ("one", setup), lambda: _with_sgd(make_model(setup), setup))
        t0 = time.perf_counter()
        for step in range(steps):
            rows = batch_rows(setup, step)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
            opt.step()
        out["seconds"] = time.perf_counter() - t0
        return out
    if arm == "ddp":
        model, opt = _cached(ctx, ("ddp", setup, bucket_cap_mb),
                             lambda: _with_sgd(_ddp(make_model(setup), bucket_cap_mb), setup))
        t0 = time.perf_counter()
        for step in range(steps):
            opt.zero_grad()
            rank_loss(model, X, y, setup, step, ctx.rank, ctx.world_size).backward()
            opt.step()
        out["seconds"] = time.perf_counter() - t0
    elif arm == "sequential":
        model, opt = _cached(ctx, ("seq", setup), lambda: _with_sgd(make_model(setup), setup))
        params = list(model.parameters())
        t0 = time.perf_counter()
        for step in range(steps):
            a = time.perf_counter()
            opt.zero_grad()
            rank_loss(model, X, y, setup, step, ctx.rank, ctx.world_size).backward()
            b = time.perf_counter()
            dist.barrier()  # waiting for the slowest rank: not the network's fault
            c = time.perf_counter()
            flat = all_reduce_gradient(params, ctx.world_size)
            d = time.perf_counter()
            set_gradient(params, flat)
            opt.step()
            out["compute"].append(b - a)
            out["wait"].append(c - b)
            out["comm"].append(d - c)
        out["seconds"] = time.perf_counter() - t0
    else:
        raise ValueError(f"task_time_step(arm={arm!r}): expected 'one', 'ddp' or 'sequential'")
    dist.barrier()
    if arm == "ddp":
        info = model._get_ddp_logging_data()
        sizes = str(info.get("rebuilt_bucket_sizes") or info.get("bucket_sizes", ""))
        out["buckets"] = [int(s) for s in sizes.split(",") if s.strip()]
    return out


def _with_sgd(model, setup):
    import torch

    return model, torch.optim.SGD(model.parameters(), lr=setup.lr)


# -- kernel side -----------------------------------------------------------------------------
def train_data_parallel(group, setup: TrainSetup, steps: int, *, exact: bool = True) -> dict:
    """Train ``steps`` DDP steps on ``group``; the parameters it ends at (``{name: array}``).

    ``exact=False`` leaves each rank's loss unscaled, as a plain DDP script does: with shards
    of unequal size the result then differs from one process on the whole batch.
    """
    steps = check_int("train_data_parallel", "steps", steps, low=0)
    return group.run(task_train_ddp, setup, steps, bool(exact))[0]


@dataclass(frozen=True)
class LocalGradients:
    """Gradients of one uneven global batch, per rank and as DDP averages them.

    Attributes
    ----------
    gradients : list of ndarray
        Rank ``r``'s gradient of the *mean* loss over its own rows.
    rows : list of int
        Rows each rank had.
    ddp_average : ndarray
        What DDP leaves in every rank's ``.grad``: the equal-weight mean of ``gradients``.
    """

    gradients: list
    rows: list
    ddp_average: object


def local_gradients(group, setup: TrainSetup, rows: int) -> LocalGradients:
    """Each rank's gradient on its slice of the first ``rows`` rows (unequal when ``rows`` does
    not divide by the world size) at the initial weights, and DDP's all-reduced average."""
    rows = check_int("local_gradients", "rows", rows, low=group.world_size, high=setup.rows)
    out = group.run(task_local_gradients, setup, rows)
    return LocalGradients([o["gradient"] for o in out], [int(o["rows"]) for o in out], out[0]["ddp"])


@dataclass(frozen=True)
class DataParallelTimings:
    """Seconds per optimiser step, one value per interleaved round.

    Attributes
    ----------
    timings : mlscale_lab.evidence.Timings
        Arms ``"1 process"``, ``"N processes, DDP"`` and ``"N processes, all-reduce after
        backward"``; seconds per step (the call's time over its steps).
    compute, waiting, communication : ndarray
        Per step of the sequential arm on rank 0: the forward and backward pass, the wait at a
        barrier for the slowest rank to finish its own, and the one all-reduce of the whole
        gradient after that.
    world_size, steps_per_round : int
    """

    timings: object
    compute: object
    waiting: object
    communication: object
    world_size: int
    steps_per_round: int

    @property
    def ddp(self) -> str:
        """The DDP arm's name."""
        return f"{self.world_size} processes, DDP"

    @property
    def sequential(self) -> str:
        """The no-overlap arm's name."""
        return f"{self.world_size} processes, all-reduce after backward"

    def speedup(self, level: float = 0.95):
        """Paired interval of (one process's step time) / (DDP's step time)."""
        return self.timings.ratio(ONE, self.ddp, level)


def time_data_parallel(group, setup: TrainSetup, *, rounds: int = 10, steps_per_round: int = 3,
                       warmup: int = 1) -> DataParallelTimings:
    """Time one process against ``group``'s DDP, and DDP against an all-reduce after backward.

    The arms run interleaved (A B C, B C A, ...) with :func:`mlscale_lab.evidence.interleave`;
    the one-process arm runs on rank 0 while the other ranks wait (idle, not computing), with
    the whole global batch and one thread, as the N-process arms have one thread each.
    """
    import numpy as np

    from mlscale_lab.evidence import Timings, interleave

    rounds = check_int("time_data_parallel", "rounds", rounds, low=2)
    steps = check_int("time_data_parallel", "steps_per_round", steps_per_round, low=1)
    split: list = []

    def arm(name):
        def call():
            out = group.run(task_time_step, setup, name, steps)
            if name == "sequential":
                split.append(out[0])
        return call

    n = group.world_size
    raw = interleave({ONE: arm("one"), f"{n} processes, DDP": arm("ddp"),
                      f"{n} processes, all-reduce after backward": arm("sequential")},
                     rounds=rounds, warmup=warmup)
    per_step = Timings({k: v / steps for k, v in raw.samples.items()}, raw.rounds, raw.number)
    kept = split[warmup:]
    compute = np.asarray([t for s in kept for t in s["compute"]])
    wait = np.asarray([t for s in kept for t in s["wait"]])
    comm = np.asarray([t for s in kept for t in s["comm"]])
    return DataParallelTimings(per_step, compute, wait, comm, n, steps)


def time_buckets(group, setup: TrainSetup, caps_mb, *, rounds: int = 8, steps_per_round: int = 2,
                 warmup: int = 1):
    """DDP's seconds per step for each bucket size in ``caps_mb``, interleaved.

    Returns
    -------
    (Timings, dict)
        Seconds per step by arm ``"<cap> MB"``, and the bucket sizes (bytes) DDP settled on for
        each arm after its first steps.
    """
    from mlscale_lab.evidence import Timings, interleave

    caps = [float(c) for c in caps_mb]
    if not caps or any(c <= 0 for c in caps):
        raise ValueError(f"time_buckets(caps_mb={caps_mb!r}): expected positive sizes in MB")
    steps = check_int("time_buckets", "steps_per_round", steps_per_round, low=1)
    buckets: dict = {}

    def arm(cap):
        def call():
            out = group.run(task_time_step, setup, "ddp", steps, cap)
            buckets[f"{cap:g} MB"] = out[0].get("buckets", [])
        return call

    raw = interleave({f"{c:g} MB": arm(c) for c in caps}, rounds=rounds, warmup=warmup)
    return Timings({k: v / steps for k, v in raw.samples.items()}, raw.rounds, raw.number), buckets
