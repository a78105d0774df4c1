"""Model parallelism as a pipeline: one model cut into stages, one stage per process (GPipe).

Each process holds a contiguous slice of the layers. A global batch is cut into ``m``
micro-batches; every micro-batch flows forward through the stages (activations sent to the next
process with ``torch.distributed.isend``/``recv``), then backward (gradients sent back), and
the optimiser steps once all have passed: GPipe's schedule (Huang et al. 2019). With ``p``
equal stages a stage idles for ``p - 1`` of the ``m + p - 1`` slots of each phase: the
**bubble**, ``(p - 1) / (m + p - 1)``.

:func:`measure_pipeline` runs the schedule on a worker group and records when each stage
computed; the bubble is measured from those intervals (time the stages were not computing,
over stages times the step's span). :func:`gpipe_step_seconds` is the schedule's length for
stages of unequal speed; :func:`gpipe_bubble` its idle share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mlscale_lab.scaling.distributed._model import (
    TrainSetup,
    batch_rows,
    make_data,
    make_model,
    shard_bounds,
)
from mlscale_lab.validation import check_int

__all__ = ["PipelineResult", "gpipe_bubble", "gpipe_schedule_bubble", "gpipe_step_seconds",
           "measure_pipeline", "stage_bounds", "task_pipeline", "unpartitioned_memory"]


def gpipe_bubble(stages: int, micro_batches: int) -> float:
    """Idle share of a GPipe step with equal stages: ``(p - 1) / (m + p - 1)``.

    >>> gpipe_bubble(2, 1), gpipe_bubble(2, 4), gpipe_bubble(4, 4)
    (0.5, 0.2, 0.42857142857142855)
    """
    p = check_int("gpipe_bubble", "stages", stages, low=1)
    m = check_int("gpipe_bubble", "micro_batches", micro_batches, low=1)
    return (p - 1) / (m + p - 1)


def gpipe_step_seconds(forward_seconds, backward_seconds, micro_batches: int) -> float:
    """Length of a GPipe step whose stage ``i`` takes ``forward_seconds[i]`` and
    ``backward_seconds[i]`` per micro-batch (communication free).

    Each phase is a flow line: the first micro-batch crosses every stage, and each later one
    leaves the line one slowest-stage time after the one before, so a phase lasts
    ``sum(t) + (m - 1) * max(t)``.

    >>> gpipe_step_seconds([1.0, 1.0], [2.0, 2.0], 4)  # (m + p - 1) * (f + b)
    15.0
    >>> gpipe_step_seconds([1.0, 3.0], [2.0, 6.0], 2)  # the slow stage sets the pace
    21.0
    """
    m = check_int("gpipe_step_seconds", "micro_batches", micro_batches, low=1)
    f, b = [float(x) for x in forward_seconds], [float(x) for x in backward_seconds]
    if not f or len(f) != len(b):
        raise ValueError("gpipe_step_seconds: expected one forward and one backward time per stage")
    return sum(f) + (m - 1) * max(f) + sum(b) + (m - 1) * max(b)


def gpipe_schedule_bubble(forward_seconds, backward_seconds, micro_batches: int,
                          message_seconds: float = 0.0, overhead_seconds: float = 0.0) -> float:
    """Idle share of a GPipe step replayed with each stage's compute times *and* a cost per message.

    The schedule :func:`measure_pipeline` runs, as a flow line: stage ``s`` starts micro-batch
    ``j`` once it is free and the activation (forward) or gradient (backward) of ``j`` has
    arrived, ``message_seconds`` after the neighbouring stage finished it; after each operation a
    stage spends ``overhead_seconds`` issuing its message and setting up the next (time that is
    not compute); the last stage starts the backward pass right after its last forward. The idle
    share is one minus the compute over
    ``stages x`` the step's span, as the measured bubble is. With ``message_seconds=0`` and
    equal stages it is :func:`gpipe_bubble`'s ``(p - 1) / (m + p - 1)``; a message cost
    comparable to a micro-batch's compute makes it larger, however many micro-batches there are.

    >>> round(gpipe_schedule_bubble([1.0, 1.0], [2.0, 2.0], 4), 4) == round(gpipe_bubble(2, 4), 4)
    True
    >>> round(gpipe_schedule_bubble([1.0, 1.0], [2.0, 2.0], 4, message_seconds=1.0), 3)
    0.294
    """
    m = check_int("gpipe_schedule_bubble", "micro_batches", micro_batches, low=1)
    f, b = [float(x) for x in forward_seconds], [float(x) for x in backward_seconds]
    if not f or len(f) != len(b):
        raise ValueError("gpipe_schedule_bubble: expected one forward and one backward time per stage")
    d, o = float(message_seconds), float(overhead_seconds)
    if d < 0:
        raise ValueError(f"gpipe_schedule_bubble(message_seconds={d!r}): expected >= 0")
    if o < 0:
        raise ValueError(f"gpipe_schedule_bubble(overhead_seconds={o!r}): expected >= 0")
    p = len(f)
    free = [0.0] * p  # when each stage finishes its last operation
    fwd_end = [[0.0] * m for _ in range(p)]
    for j in range(m):
        for s in range(p):
            arrived = 0.0 if s == 0 else fwd_end[s - 1][j] + d
            fwd_end[s][j] = max(free[s], arrived) + f[s]
            free[s] = fwd_end[s][j] + o
    bwd_end = [[0.0] * m for _ in range(p)]
    for j in range(m):
        for s in reversed(range(p)):
            arrived = 0.0 if s == p - 1 else bwd_end[s + 1][j] + d
            bwd_end[s][j] = max(free[s], arrived) + b[s]
            free[s] = bwd_end[s][j] + o
    busy = m * (sum(f) + sum(b))
    return 1.0 - busy / (p * max(max(row) for row in bwd_end))


def stage_bounds(setup: TrainSetup, stages: int) -> list[tuple[int, int]]:
    """``(start, stop)`` module indices of each stage in ``make_model(setup)``, cut after a
    layer's activation where the running parameter count is closest to an equal share.

    >>> stage_bounds(TrainSetup(hidden=256, depth=4), 2)
    [(0, 6), (6, 11)]
    """
    p = check_int("stage_bounds", "stages", stages, low=1)
    w = setup.widths
    sizes = [a * b + b for a, b in zip(w, w[1:], strict=False)]
    if p > len(sizes):
        raise ValueError(f"stage_bounds(stages={p}): the model has only {len(sizes)} layers")
    total, cuts, running = sum(sizes), [], 0
    for i, s in enumerate(sizes[:-1]):
        running += s
        target = total * (len(cuts) + 1) / p
        left = len(sizes) - 1 - i  # layers after this one
        if len(cuts) < p - 1 and (running + sizes[i + 1] / 2 >= target or left == p - 1 - len(cuts)):
            cuts.append(i + 1)
    # layer i is module 2i (Linear), followed by its ReLU at 2i+1 except for the last layer
    starts = [0] + [2 * c for c in cuts]
    stops = [2 * c for c in cuts] + [2 * len(sizes) - 1]
    return list(zip(starts, stops, strict=True))


class _SavedBytes:
    """Bytes autograd keeps for the backward pass (parameters excluded), counted as saved."""

    def __init__(self, params):
        self.ptrs = {p.data_ptr() for p in params}
        self.bytes = 0

    def pack(self, t):
        if t.data_ptr() not in self.ptrs:
            self.bytes += t.numel() * t.element_size()
        return t


def unpartitioned_memory(setup: TrainSetup) -> dict:
    """The whole model in one process: parameter bytes, and activation bytes autograd saves for
    the backward pass of one global batch (measured with ``saved_tensors_hooks``)."""
    import torch

    X, y = make_data(setup)
    model = make_model(setup)
    counter = _SavedBytes(model.parameters())
    rows = batch_rows(setup, 0)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        loss = torch.nn.functional.cross_entropy(model(X[rows]), y[rows])
    loss.backward()
    return {"parameter_bytes": sum(p.numel() * 4 for p in model.parameters()),
            "activation_bytes": counter.bytes}


def _stage(setup, rank, world):
    import torch

    start, stop = stage_bounds(setup, world)[rank]
    return torch.nn.Sequential(*list(make_model(setup))[start:stop])


def _one_step(ctx, setup, stage, X, y, rows, m, counter, opt, want_grads):
    import torch
    import torch.distributed as dist

    rank, last = ctx.rank, ctx.rank == ctx.world_size - 1
    width_in = setup.widths[stage_bounds(setup, ctx.world_size)[rank][0] // 2]
    events, sends, kept = [], [], []
    bounds = shard_bounds(len(rows), m)
    opt.zero_grad()
    for j, (lo, hi) in enumerate(bounds):  # forward phase
        if rank == 0:
            inp = X[rows[lo:hi]]
        else:
            inp = torch.empty(hi - lo, width_in)
            dist.recv(inp, rank - 1)
            inp.requires_grad_()
        t0 = time.perf_counter()
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            out = stage(inp)
            if last:
                out = torch.nn.functional.cross_entropy(out, y[rows[lo:hi]]) * ((hi - lo) / len(rows))
        events.append(("F", j, t0, time.perf_counter()))
        if not last:
            sends.append(dist.isend(out.detach(), rank + 1))
        kept.append((inp, out))
    for j, (inp, out) in enumerate(kept):  # backward phase
        if last:
            t0 = time.perf_counter()
            out.backward()
        else:
            grad = torch.empty_like(out)
            dist.recv(grad, rank + 1)
            t0 = time.perf_counter()
            out.backward(grad)
        events.append(("B", j, t0, time.perf_counter()))
        if rank > 0:
            sends.append(dist.isend(inp.grad, rank - 1))
    for s in sends:
        s.wait()
    grads = ({n: p.grad.numpy().copy() for n, p in stage.named_parameters()} if want_grads else None)
    opt.step()
    return events, grads


def task_pipeline(ctx, setup: TrainSetup, micro_batches, rounds: int):
    """Run ``rounds`` GPipe steps for each micro-batch count, interleaved; return this stage's
    compute intervals per step, its first step's gradients, and its memory."""
    import psutil
    import torch
    import torch.distributed as dist

    X, y = make_data(setup)
    stage = _stage(setup, ctx.rank, ctx.world_size)
    opt = torch.optim.SGD(stage.parameters(), lr=setup.lr)
    counter = _SavedBytes(stage.parameters())
    ms = [int(m) for m in micro_batches]
    out = {"events": {m: [] for m in ms}, "grads": None, "saved_bytes": 0}
    # the very first step, at the initial weights and step 0's rows: the gradient check
    dist.barrier()
    _, out["grads"] = _one_step(ctx, setup, stage, X, y, batch_rows(setup, 0), ms[0], counter,
                                torch.optim.SGD(stage.parameters(), lr=0.0), True)
    out["saved_bytes"] = counter.bytes  # one whole batch in flight: GPipe keeps it all
    for r in range(rounds):
        shift = r % len(ms)
        for m in ms[shift:] + ms[:shift]:
            dist.barrier()
            events, _ = _one_step(ctx, setup, stage, X, y, batch_rows(setup, 1 + r), m,
                                  counter, opt, False)
            out["events"][m].append(events)
    out["parameter_bytes"] = sum(p.numel() * 4 for p in stage.parameters())
    out["rss_bytes"] = psutil.Process().memory_info().rss
    return out


@dataclass(frozen=True)
class PipelineResult:
    """A GPipe schedule measured on ``stages`` processes.

    Attributes
    ----------
    stages : int
    micro_batches : list of int
    events : dict
        ``events[m][step][stage]``: that stage's ``(kind, micro_batch, start, end)`` compute
        intervals ("F" forward, "B" backward), ``time.perf_counter`` seconds.
    bubbles : dict
        ``bubbles[m]``: measured idle share of each step.
    gradients : list of dict
        Each stage's gradients of the first step (at the initial weights).
    memory : list of dict
        Per stage: ``parameter_bytes``, ``activation_bytes`` (saved for backward with one
        global batch in flight) and ``rss_bytes`` (the whole process, torch included).
    """

    stages: int
    micro_batches: list
    events: dict
    bubbles: dict
    gradients: list
    memory: list

    def theory(self, m: int) -> float:
        """``(p - 1) / (m + p - 1)``."""
        return gpipe_bubble(self.stages, m)

    def message_seconds(self, m: int) -> float:
        """Mean cost of one message between stages at ``m``: from the end of a micro-batch on
        one stage to its start on the next (forward) or the one before (backward), over the
        messages whose receiving stage was idle, waiting for them (it had finished its previous
        operation before the sender finished): so the gap is the message, not a queue. The mean,
        not the median: message times have a long tail (a send queued behind another, a
        receiving process not scheduled at once), and every slow message lengthens the step."""
        import numpy as np

        gaps = []
        for step in self.events[m]:
            ops = [{(k, j): (a, b) for k, j, a, b in evs} for evs in step]
            for s in range(self.stages - 1):
                for j in range(m):
                    for kind, src, dst in (("F", s, s + 1), ("B", s + 1, s)):
                        sent = ops[src][(kind, j)][1]
                        before = (ops[dst].get((kind, j - 1)) if j else
                                  (None if kind == "F" else ops[dst].get(("F", m - 1))))
                        if before is None or before[1] <= sent:
                            gaps.append(ops[dst][(kind, j)][0] - sent)
        return float(max(0.0, np.mean(gaps))) if gaps else 0.0

    def overhead_seconds(self, m: int) -> float:
        """Mean time a stage spends between two operations when nothing keeps it waiting
        (issuing a send, setting up the next receive): the first stage between its forward
        passes, the last stage between its backward passes (their inputs are local)."""
        import numpy as np

        gaps = []
        for step in self.events[m]:
            for stage, kind in ((0, "F"), (self.stages - 1, "B")):
                ops = sorted((a, b) for k, _, a, b in step[stage] if k == kind)
                gaps += [nxt[0] - prev[1] for prev, nxt in zip(ops, ops[1:], strict=False)]
        return float(max(0.0, np.mean(gaps))) if gaps else 0.0

    def schedule_bubble(self, m: int) -> float:
        """The bubble :func:`gpipe_schedule_bubble` predicts from this run's own median compute
        times per stage, its message cost and its per-operation overhead at ``m``: the model
        of what was measured."""
        f, b = self.stage_seconds(m)
        return gpipe_schedule_bubble(f, b, m, self.message_seconds(m), self.overhead_seconds(m))

    def stage_seconds(self, m: int) -> tuple[list, list]:
        """Median forward and backward seconds per micro-batch of each stage, at ``m``."""
        import numpy as np

        fwd = [[] for _ in range(self.stages)]
        bwd = [[] for _ in range(self.stages)]
        for step in self.events[m]:
            for s, evs in enumerate(step):
                for kind, _, a, b in evs:
                    (fwd if kind == "F" else bwd)[s].append(b - a)
        return [float(np.median(x)) for x in fwd], [float(np.median(x)) for x in bwd]

    def bubble_error(self, level: float = 0.95, seed: int = 0, *, model: str = "ideal"):
        """Bootstrap interval (steps resampled) of the largest ``|measured - model|`` over m.

        ``model="ideal"``: ``(p - 1) / (m + p - 1)`` (equal stages, free messages);
        ``model="schedule"``: :meth:`schedule_bubble` (measured stage times and message cost).
        """
        import numpy as np

        from mlscale_lab.evidence import bootstrap_interval

        if model not in ("ideal", "schedule"):
            raise ValueError(f"PipelineResult.bubble_error(model={model!r}): expected 'ideal' or "
                             "'schedule'")
        b = {m: np.asarray(v) for m, v in self.bubbles.items()}
        n = min(len(v) for v in b.values())
        ref = {m: self.theory(m) if model == "ideal" else self.schedule_bubble(m) for m in b}

        def worst(idx):
            idx = np.asarray(idx).astype(int)
            return max(abs(float(b[m][idx].mean()) - ref[m]) for m in b)

        return bootstrap_interval(np.arange(n), worst, level, n_resamples=1000, seed=seed)

    def gradient_difference(self, setup: TrainSetup) -> float:
        """Largest absolute difference between the stages' first-step gradients and the
        unpartitioned model's gradient on the same rows (computed here, in one process)."""
        import numpy as np
        import torch

        X, y = make_data(setup)
        model = make_model(setup)
        rows = batch_rows(setup, 0)
        torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
        full = dict(model.named_parameters())
        worst = 0.0
        for (start, _), grads in zip(stage_bounds(setup, self.stages), self.gradients, strict=True):
            for name, g in grads.items():
                index, attr = name.split(".")
                ref = full[f"{start + int(index)}.{attr}"].grad.numpy()
                worst = max(worst, float(np.max(np.abs(ref - g))))
        return worst


def _bubble(step_events) -> float:
    spans = [(a, b) for evs in step_events for _, _, a, b in evs]
    start, end = min(a for a, _ in spans), max(b for _, b in spans)
    busy = sum(b - a for a, b in spans)
    return 1.0 - busy / (len(step_events) * (end - start))


def measure_pipeline(group, setup: TrainSetup, micro_batches=(1, 2, 4, 8), *,
                     rounds: int = 8) -> PipelineResult:
    """Train ``setup``'s model split into ``group.world_size`` stages with GPipe's schedule.

    ``rounds`` steps for each count in ``micro_batches``, interleaved (one step of each count
    per round, in a rotating order), after one step at the initial weights whose gradients
    are kept (to compare with the unpartitioned model's).
    """
    ms = sorted({check_int("measure_pipeline", "micro_batches", m, low=1, high=setup.batch)
                 for m in micro_batches})
    rounds = check_int("measure_pipeline", "rounds", rounds, low=2)
    if group.world_size < 2:
        raise ValueError("measure_pipeline: a pipeline needs two or more processes (stages)")
    per_rank = group.run(task_pipeline, setup, ms, rounds)
    events = {m: [[r["events"][m][i] for r in per_rank] for i in range(rounds)] for m in ms}
    bubbles = {m: [_bubble(step) for step in events[m]] for m in ms}
    memory = [{"parameter_bytes": r["parameter_bytes"], "activation_bytes": r["saved_bytes"],
               "rss_bytes": r["rss_bytes"]} for r in per_rank]
    return PipelineResult(group.world_size, ms, events, bubbles, [r["grads"] for r in per_rank],
                          memory)
