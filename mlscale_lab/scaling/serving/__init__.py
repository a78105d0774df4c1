"""A real model server under load (lab 07): start it, load it, and see what serving costs.

Public names are re-exported here from small private modules. Importing this package is
light (no torch, FastAPI or uvicorn in the notebook's process: the server is a subprocess).

- the server: :func:`serve` starts uvicorn + FastAPI (``_app``) with N worker processes on a
  free 127.0.0.1 port and returns a :class:`ModelServer` (a context manager); it always stops:
  at the end of the block, at interpreter exit (atexit), and when its parent dies (``_lifeline``)
- model files: :func:`export_artifacts` (fp32, int8, ONNX), :func:`load_predictor`
- load: :func:`open_loop` (Poisson arrivals, latency from the scheduled send) and
  :func:`closed_loop` (users waiting for answers: coordinated omission), giving a :class:`LoadResult`
- capacity and cost: :func:`mmc_latency_quantile`, :func:`workers_that_fit`,
  :func:`evaluate_plan`, :func:`plan_capacity` (N+1 plans priced with :mod:`mlscale_lab.prices`)
"""

from mlscale_lab.scaling import (  # queueing theory, lab 05's
    mmc_latency_exceeds,
    mmc_latency_quantile,
)
from mlscale_lab.scaling.serving._artifacts import ARTIFACT_KINDS, export_artifacts, load_predictor
from mlscale_lab.scaling.serving._capacity import (
    ServingPlan,
    evaluate_plan,
    plan_capacity,
    workers_that_fit,
)
from mlscale_lab.scaling.serving._load import (
    MAX_DURATION,
    MAX_RATE,
    MAX_REQUESTS,
    LoadResult,
    closed_loop,
    open_loop,
    poisson_schedule,
)
from mlscale_lab.scaling.serving._server import (
    HOST,
    MAX_WORKERS,
    ModelServer,
    live_servers,
    serve,
    stop_all_servers,
)

__all__ = [
    "ARTIFACT_KINDS", "HOST", "MAX_DURATION", "MAX_RATE", "MAX_REQUESTS", "MAX_WORKERS",
    "LoadResult", "ModelServer", "ServingPlan", "closed_loop", "evaluate_plan", "export_artifacts",
    "live_servers", "load_predictor", "mmc_latency_exceeds", "mmc_latency_quantile", "open_loop",
    "plan_capacity", "poisson_schedule", "serve", "stop_all_servers", "workers_that_fit",
]
