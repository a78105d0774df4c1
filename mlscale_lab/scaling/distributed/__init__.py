"""Training across processes with torch.distributed (gloo on CPU): lab 08's measurements.

Public names are re-exported here from private modules; importing this package is light
(torch loads inside the functions that use it). Measurement only: the plots are in
:mod:`mlscale_lab.views.distributed`.

- processes: :func:`start_workers` (``torch.multiprocessing``, spawned or forked, one gloo group on
  127.0.0.1, a context manager that always ends them), :class:`WorkerGroup`,
  :func:`leftover_processes`, :func:`stop_all_groups`
- the training problem, the same in every process: :class:`TrainSetup`, :func:`make_model`,
  :func:`make_data`, :func:`batch_rows`, :func:`shard_bounds`, :func:`shard_loss_scale`, and
  the one-process reference :func:`train_one_process` (gradient accumulation included)
- data parallelism: :func:`train_data_parallel`, :func:`local_gradients`,
  :func:`time_data_parallel` (1 process against N, compute and communication),
  :func:`time_buckets` (DDP's ``bucket_cap_mb``)
- communication: :func:`measure_allreduce`, :class:`AllReduceSweep` (fit, prediction interval,
  held-out error), :class:`AlphaBeta`, :func:`ring_bytes`, :func:`predict_step_seconds`
- pipelines: :func:`measure_pipeline`, :class:`PipelineResult`, :func:`gpipe_bubble`,
  :func:`gpipe_step_seconds`, :func:`stage_bounds`, :func:`unpartitioned_memory`
- faults: :func:`run_elastic` (torchrun with ``--max-restarts``, a worker killed mid-training,
  resumed from its checkpoint), :class:`ElasticRun`
"""

from mlscale_lab.scaling.distributed._collectives import (
    AllReduceSweep,
    AlphaBeta,
    measure_allreduce,
    predict_step_seconds,
    ring_bytes,
)
from mlscale_lab.scaling.distributed._data_parallel import (
    DataParallelTimings,
    LocalGradients,
    local_gradients,
    time_buckets,
    time_data_parallel,
    train_data_parallel,
)
from mlscale_lab.scaling.distributed._elastic import ElasticRun, run_elastic
from mlscale_lab.scaling.distributed._launch import (
    HOST,
    MAX_WORKERS,
    WorkerError,
    WorkerGroup,
    leftover_processes,
    live_groups,
    loopback_interface,
    start_workers,
    stop_all_groups,
)
from mlscale_lab.scaling.distributed._model import (
    TrainSetup,
    batch_rows,
    full_batch_gradient,
    make_data,
    make_model,
    max_abs_difference,
    parameter_arrays,
    shard_bounds,
    shard_loss_scale,
    train_one_process,
)
from mlscale_lab.scaling.distributed._pipeline import (
    PipelineResult,
    gpipe_bubble,
    gpipe_schedule_bubble,
    gpipe_step_seconds,
    measure_pipeline,
    stage_bounds,
    unpartitioned_memory,
)

__all__ = [
    "HOST",
    "MAX_WORKERS",
    "AllReduceSweep",
    "AlphaBeta",
    "DataParallelTimings",
    "ElasticRun",
    "LocalGradients",
    "PipelineResult",
    "TrainSetup",
    "WorkerError",
    "WorkerGroup",
    "batch_rows",
    "full_batch_gradient",
    "gpipe_bubble",
    "gpipe_schedule_bubble",
    "gpipe_step_seconds",
    "leftover_processes",
    "live_groups",
    "local_gradients",
    "loopback_interface",
    "make_data",
    "make_model",
    "max_abs_difference",
    "measure_allreduce",
    "measure_pipeline",
    "parameter_arrays",
    "predict_step_seconds",
    "ring_bytes",
    "run_elastic",
    "shard_bounds",
    "shard_loss_scale",
    "stage_bounds",
    "start_workers",
    "stop_all_groups",
    "time_buckets",
    "time_data_parallel",
    "train_data_parallel",
    "train_one_process",
    "unpartitioned_memory",
]
