"""The model server's ASGI app (FastAPI), as each uvicorn worker process runs it.

Configured by environment variables the launcher sets (see ``_server.py``):
``MLSCALE_SERVE_MODEL`` (the artifact), ``MLSCALE_SERVE_MAX_BATCH`` and
``MLSCALE_SERVE_MAX_WAIT_MS`` (the micro-batcher; 1 and 0 turn it off),
``MLSCALE_SERVE_READY_DIR`` (each worker writes ``<pid>.json`` there once its model answers).

Routes: ``GET /health`` (this worker's pid and model), ``POST /batching`` (change the
micro-batcher of the worker that answers), ``POST /predict`` with
``{"x": [f0, f1, ...]}`` returning ``{"label": k, "pid": worker, "service_s": s, "began": t,
"cpu0": c0, "cpu": c}``: ``s`` is the handler's own time (parse, predict, answer) on this
worker's ``time.perf_counter``, so the client's costs never count as the server's occupancy;
``t`` is when the handler began on ``time.monotonic`` (the clock the load generator reads);
``c0`` and ``c`` are the worker's CPU seconds so far at the handler's start and end, so the CPU
a worker used between one answer's end and the next handler's start is the HTTP and socket
work the handler does not see; with the micro-batcher also ``"batch"`` (rows predicted
together) and ``"queued_s"`` (time this row waited in the batcher).

The endpoint is ``async`` and calls the model without awaiting: one request at a time per
worker, first come first served. N workers do *not* share one queue in front of them: each
worker's event loop, back from a blocking predict, accepts every connection waiting on the
listening socket (asyncio accepts up to ``backlog`` per wake-up, uvicorn passes 2048) and serves
them in turn, so each worker has a queue of its own (greedy accept). A worker also watches its
parent (the uvicorn supervisor, or the launcher when there is one worker) and exits when it is
gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request, Response

from mlscale_lab._core.environment import (
    SERVE_FEATURES_ENV,
    SERVE_MAX_BATCH_ENV,
    SERVE_MAX_WAIT_MS_ENV,
    SERVE_MODEL_ENV,
    SERVE_READY_DIR_ENV,
    SERVE_WORKERS_ENV,
)
from mlscale_lab._core.lifeline import set_parent_death_signal, watch_parent
from mlscale_lab.scaling.serving._artifacts import load_predictor

_PROCESS_START = time.time()
#: The worker's CPU clock is fine enough to time one request (Linux, macOS: nanoseconds); where
#: it only ticks (Windows: 15.6 ms) its readings are left out and occupancy falls back to a
#: share of the run's CPU time.
_CPU_CLOCK_FINE = time.get_clock_info("process_time").resolution <= 1e-6


def _cpu() -> float:
    """This worker's CPU seconds so far (all its threads), or NaN where the clock is too coarse."""
    return time.process_time() if _CPU_CLOCK_FINE else float("nan")


class MicroBatcher:
    """Collect requests for up to ``max_wait`` seconds or ``max_batch`` rows; predict them at once."""

    def __init__(self, predict, max_batch: int, max_wait: float):
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0
        self.rows = 0

    async def submit(self, x: np.ndarray) -> tuple[int, int, float, float]:
        """Queue one row; once its batch has run: (label, batch rows, seconds queued, batch seconds)."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((x, future, time.perf_counter()))
        return await future

    async def run(self):
        """Forever: take the first waiting row, gather more until full or ``max_wait``, predict."""
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(items) < self.max_batch:
                try:
                    items.append(self.queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), left))
                except TimeoutError:
                    break
            start = time.perf_counter()
            try:
                labels = self.predict(np.stack([x for x, _, _ in items]))
            except Exception as exc:  # answer every waiting request, keep serving
                for _, fut, _ in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            took = time.perf_counter() - start
            self.batches += 1
            self.rows += len(items)
            for (_, fut, queued), label in zip(items, labels, strict=True):
                if not fut.done():
                    fut.set_result((int(label), len(items), start - queued, took))


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Per worker: watch the parent, load and warm the model, start the batcher, say ready."""
    if int(os.environ.get(SERVE_WORKERS_ENV, "1")) > 1:
        # Our parent is uvicorn's supervisor, whose main thread started us and lives as long
        # as it does. (A single worker is the server process itself: _main watches the
        # launcher, and removes the server's folder when it goes.)
        set_parent_death_signal()
        watch_parent(os.getppid())
    model_path = os.environ[SERVE_MODEL_ENV]
    t0 = time.time()
    predict = load_predictor(model_path, threads=1)
    predict(np.zeros((1, int(os.environ.get(SERVE_FEATURES_ENV, "1"))), np.float32))
    app.state.predict = predict
    app.state.model = Path(model_path).name
    max_batch = int(os.environ.get(SERVE_MAX_BATCH_ENV, "1"))
    max_wait = float(os.environ.get(SERVE_MAX_WAIT_MS_ENV, "0")) / 1000.0
    app.state.tasks = []
    app.state.batcher = None
    if max_batch > 1:
        app.state.batcher = MicroBatcher(predict, max_batch, max_wait)
        app.state.tasks.append(asyncio.create_task(app.state.batcher.run()))
    ready = os.environ.get(SERVE_READY_DIR_ENV)
    if ready:
        from mlscale_lab.scaling.serving._affinity import usable_cpus

        info = {"pid": os.getpid(), "process_start": _PROCESS_START, "load_seconds": time.time() - t0,
                "ready": time.time(), "cpus": usable_cpus()}
        tmp = Path(ready) / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info))
        tmp.rename(Path(ready) / f"{os.getpid()}.json")  # atomic: the launcher never reads half
    yield
    for task in app.state.tasks:
        task.cancel()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health(request: Request):
    """This worker's pid and model, and its batcher's counts (batches, rows) when it has one."""
    state = request.app.state
    batcher = state.batcher
    return {"pid": os.getpid(), "model": state.model,
            "batches": batcher.batches if batcher else None, "rows": batcher.rows if batcher else None}


@app.post("/batching")
async def batching(request: Request):
    """``{"max_batch": b, "max_wait_ms": w}``: change this worker's micro-batcher while it runs."""
    try:
        body = json.loads(await request.body())
        max_batch, max_wait = int(body["max_batch"]), float(body["max_wait_ms"]) / 1000.0
        if not (1 <= max_batch <= 1024 and 0 <= max_wait <= 1.0):
            raise ValueError("max_batch in 1..1024 and max_wait_ms in 0..1000")
    except (ValueError, KeyError, TypeError) as exc:
        return Response(json.dumps({"error": str(exc)}), status_code=422, media_type="application/json")
    state = request.app.state
    if max_batch == 1:
        state.batcher = None  # inline predict; an old batcher's task just waits, empty
    elif state.batcher is None:
        state.batcher = MicroBatcher(state.predict, max_batch, max_wait)
        state.tasks.append(asyncio.create_task(state.batcher.run()))
    else:
        state.batcher.max_batch, state.batcher.max_wait = max_batch, max_wait
    return {"pid": os.getpid(), "max_batch": max_batch, "max_wait_ms": max_wait * 1000}


@app.post("/predict")
async def predict(request: Request):
    """``{"x": [...]}`` -> ``{"label": k, "pid": worker, "service_s": s}``; 422 when ``x`` is not one row."""
    # The body is parsed by hand: pydantic validation would cost more than the model on a row.
    start = time.perf_counter()
    began = time.monotonic()  # the clock the load generator's event loop reads (same host)
    cpu0 = _cpu()
    try:
        x = np.asarray(json.loads(await request.body())["x"], dtype=np.float32)
        if x.ndim != 1:
            raise ValueError("x must be one row of features")
    except (ValueError, KeyError, TypeError) as exc:
        return Response(json.dumps({"error": str(exc)}), status_code=422, media_type="application/json")
    state = request.app.state
    if state.batcher is not None:
        label, rows, queued, took = await state.batcher.submit(x)
        body = b'{"label":%d,"pid":%d,"service_s":%.9f,"batch":%d,"queued_s":%.9f,"began":%.9f,"cpu0":%.9f,"cpu":%.9f}' % (
            label, os.getpid(), took, rows, queued, began, cpu0, _cpu())
    else:
        label = int(state.predict(x[None, :])[0])
        took = time.perf_counter() - start
        body = b'{"label":%d,"pid":%d,"service_s":%.9f,"began":%.9f,"cpu0":%.9f,"cpu":%.9f}' % (
            label, os.getpid(), took, began, cpu0, _cpu())
    return Response(body, media_type="application/json")
