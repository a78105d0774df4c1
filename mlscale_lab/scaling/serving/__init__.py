"""A real model server under load (lab 07): start it, load it, and hold it to queueing theory.

Public names are re-exported here from small private modules. Importing this package is
light (no torch, FastAPI or uvicorn in the notebook's process: the server is a subprocess).

- the server: :func:`serve` starts uvicorn + FastAPI (``_app``) with N worker processes on a
  free 127.0.0.1 port and returns a :class:`ModelServer` (a context manager); it always stops:
  at the end of the block, at interpreter exit (atexit), and when its parent dies (``mlscale_lab._core.lifeline``).
  Each answer carries the worker's own service time; ``cpus=`` pins it (:func:`cpu_split`)
- model files: :func:`export_artifacts` (fp32, int8, ONNX), :func:`load_predictor`
- load: :func:`open_loop` (Poisson arrivals, latency from the scheduled send) and
  :func:`closed_loop` (users waiting for answers: coordinated omission), giving a
  :class:`LoadResult`; ``stall=`` pauses the workers for a real stall
- cost per request: :func:`measure_service` (occupancy inside the worker, the client's delay),
  :func:`occupancy`, :func:`flag_late_sends` (a late generator makes a measurement untrusted)
- steady state against theory: :func:`measure_load_point`, :class:`LoadPoint`, :func:`run_length`
- batching: :func:`fit_batch_cost`, :func:`simulate_batcher`

Queueing formulas live in :mod:`mlscale_lab.queueing`, capacity plans in
:mod:`mlscale_lab.capacity`.
"""

from mlscale_lab.scaling.serving._affinity import AFFINITY, cpu_split
from mlscale_lab.scaling.serving._artifacts import ARTIFACT_KINDS, export_artifacts, load_predictor
from mlscale_lab.scaling.serving._batching import fit_batch_cost, simulate_batcher
from mlscale_lab.scaling.serving._load import (
    MAX_DURATION,
    MAX_RATE,
    MAX_REQUESTS,
    closed_loop,
    open_loop,
)
from mlscale_lab.scaling.serving._result import LoadResult, poisson_schedule
from mlscale_lab.scaling.serving._server import (
    HOST,
    MAX_WORKERS,
    ModelServer,
    live_servers,
    serve,
    stop_all_servers,
)
from mlscale_lab.scaling.serving._service import (
    ServiceProfile,
    flag_late_sends,
    measure_service,
    occupancy,
)
from mlscale_lab.scaling.serving._steady import LoadPoint, measure_load_point, run_length

__all__ = [
    "AFFINITY", "ARTIFACT_KINDS", "HOST", "MAX_DURATION", "MAX_RATE", "MAX_REQUESTS", "MAX_WORKERS",
    "LoadPoint", "LoadResult", "ModelServer", "ServiceProfile", "closed_loop", "cpu_split",
    "export_artifacts", "fit_batch_cost", "flag_late_sends", "live_servers", "load_predictor",
    "measure_load_point", "measure_service", "occupancy", "open_loop", "poisson_schedule",
    "run_length", "serve", "simulate_batcher", "stop_all_servers",
]
