"""The model server's ASGI app (FastAPI), as each uvicorn worker process runs it.

Configured by environment variables the launcher sets (see ``_server.py``):
``MLSCALE_SERVE_MODEL`` (the artifact), ``MLSCALE_SERVE_MAX_BATCH`` and
``MLSCALE_SERVE_MAX_WAIT_MS`` (the micro-batcher; 1 and 0 turn it off),
``MLSCALE_SERVE_READY_DIR`` (each worker writes ``<pid>.json`` there once its model answers).

Routes: ``GET /health`` (this worker's pid and model), ``POST /predict`` with
``{"x": [f0, f1, ...]}`` returning ``{"label": k, "pid": worker}``.

The endpoint is ``async`` and calls the model without awaiting: one request at a time per
worker, first come first served, so each worker is one server of a queue, and N workers share
the operating system's accept queue. A worker also watches its parent (the uvicorn
supervisor, or the launcher when there is one worker) and exits when it is gone.
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

from mlscale_lab.scaling.serving._artifacts import load_predictor
from mlscale_lab.scaling.serving._lifeline import set_parent_death_signal, watch_parent

_PROCESS_START = time.time()


class MicroBatcher:
    """Collect requests for up to ``max_wait`` seconds or ``max_batch`` rows; predict them at once."""

    def __init__(self, predict, max_batch: int, max_wait: float):
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.queue: asyncio.Queue = asyncio.Queue()
        self.batches = 0
        self.rows = 0

    async def submit(self, x: np.ndarray) -> int:
        """Queue one row; return its label once its batch has run."""
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((x, future))
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
            try:
                labels = self.predict(np.stack([x for x, _ in items]))
            except Exception as exc:  # answer every waiting request, keep serving
                for _, fut in items:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.batches += 1
            self.rows += len(items)
            for (_, fut), label in zip(items, labels, strict=True):
                if not fut.done():
                    fut.set_result(int(label))


@asynccontextmanager
async def lifespan(app: FastAPI):
    """Per worker: watch the parent, load and warm the model, start the batcher, say ready."""
    if int(os.environ.get("MLSCALE_SERVE_WORKERS", "1")) > 1:
        # Our parent is uvicorn's supervisor, whose main thread started us and lives as long
        # as it does (a single worker is the launcher's child: the poll below covers it).
        set_parent_death_signal()
    watch_parent(os.getppid())
    model_path = os.environ["MLSCALE_SERVE_MODEL"]
    t0 = time.time()
    predict = load_predictor(model_path, threads=1)
    predict(np.zeros((1, int(os.environ.get("MLSCALE_SERVE_FEATURES", "1"))), np.float32))
    app.state.predict = predict
    app.state.model = Path(model_path).name
    max_batch = int(os.environ.get("MLSCALE_SERVE_MAX_BATCH", "1"))
    max_wait = float(os.environ.get("MLSCALE_SERVE_MAX_WAIT_MS", "0")) / 1000.0
    task = None
    app.state.batcher = None
    if max_batch > 1:
        app.state.batcher = MicroBatcher(predict, max_batch, max_wait)
        task = asyncio.create_task(app.state.batcher.run())
    ready = os.environ.get("MLSCALE_SERVE_READY_DIR")
    if ready:
        info = {"pid": os.getpid(), "process_start": _PROCESS_START, "load_seconds": time.time() - t0,
                "ready": time.time()}
        tmp = Path(ready) / f".{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info))
        tmp.rename(Path(ready) / f"{os.getpid()}.json")  # atomic: the launcher never reads half
    yield
    if task is not None:
        task.cancel()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health(request: Request):
    """This worker's pid and model, and its batcher's counts (batches, rows) when it has one."""
    state = request.app.state
    batcher = state.batcher
    return {"pid": os.getpid(), "model": state.model,
            "batches": batcher.batches if batcher else None, "rows": batcher.rows if batcher else None}


@app.post("/predict")
async def predict(request: Request):
    """``{"x": [...]}`` -> ``{"label": k, "pid": worker}``; 422 when ``x`` is not one row."""
    # The body is parsed by hand: pydantic validation would cost more than the model on a row.
    try:
        x = np.asarray(json.loads(await request.body())["x"], dtype=np.float32)
        if x.ndim != 1:
            raise ValueError("x must be one row of features")
    except (ValueError, KeyError, TypeError) as exc:
        return Response(json.dumps({"error": str(exc)}), status_code=422, media_type="application/json")
    state = request.app.state
    if state.batcher is not None:
        label = await state.batcher.submit(x)
    else:
        label = int(state.predict(x[None, :])[0])
    return Response(b'{"label":%d,"pid":%d}' % (label, os.getpid()), media_type="application/json")
