"""Scaling strategies: vertical (threads, Amdahl), horizontal (Dask), load balancing, auto-scaling.

Public names are re-exported here from private modules. Importing this package is light:
the simulators need only NumPy; dask and scikit-learn load inside the functions that use them.

- queueing theory: :func:`erlang_c`, :func:`mm1_mean_wait`, :func:`mmc_mean_wait`, ...
- load balancing: :func:`simulate_balancer` (round robin, random, least connections,
  power of two choices, central queue, or your own policy)
- auto-scaling: :func:`hpa_desired_replicas`, :func:`make_request_trace`,
  :func:`simulate_autoscaler`
- vertical: :func:`measure_thread_scaling`, :func:`fit_amdahl`, :func:`vertical_cost_table`
- horizontal on Dask: :func:`local_cluster`, :func:`connect`, :func:`partitioned_predict`,
  :func:`measure_worker_speedup`, :func:`partition_overhead`, :func:`dask_grid_search`,
  :func:`partition_sizes`, :func:`survive_worker_death`, :func:`adapt_under_bursts`
"""

from mlscale_lab.scaling._autoscaler import (
    STRATEGIES,
    AutoscaleResult,
    RateTrace,
    hpa_desired_replicas,
    make_request_trace,
    simulate_autoscaler,
)
from mlscale_lab.scaling._balancer import (
    POLICIES,
    BalancerResult,
    heterogeneous_means,
    simulate_balancer,
    utilisation_of,
)
from mlscale_lab.scaling._horizontal import (
    AdaptTimeline,
    WorkerSpeedup,
    adapt_under_bursts,
    connect,
    dask_grid_search,
    local_cluster,
    local_predict,
    make_model,
    measure_worker_speedup,
    partition_of,
    partition_overhead,
    partition_sizes,
    partitioned_predict,
    skewed_keys,
    survive_worker_death,
    worker_addresses,
)
from mlscale_lab.scaling._queueing import (
    erlang_c,
    mm1_latency_quantile,
    mm1_mean_wait,
    mmc_mean_wait,
    mmc_wait_exceeds,
)
from mlscale_lab.scaling._vertical import (
    DEFAULT_MACHINES,
    CsvMlpWorkload,
    Machine,
    ThreadScaling,
    amdahl_ceiling,
    amdahl_speedup,
    fit_amdahl,
    measure_thread_scaling,
    vertical_cost_table,
)

__all__ = [
    "DEFAULT_MACHINES",
    "POLICIES",
    "STRATEGIES",
    "AdaptTimeline",
    "AutoscaleResult",
    "BalancerResult",
    "CsvMlpWorkload",
    "Machine",
    "RateTrace",
    "ThreadScaling",
    "WorkerSpeedup",
    "adapt_under_bursts",
    "amdahl_ceiling",
    "amdahl_speedup",
    "connect",
    "dask_grid_search",
    "erlang_c",
    "fit_amdahl",
    "heterogeneous_means",
    "hpa_desired_replicas",
    "local_cluster",
    "local_predict",
    "make_model",
    "make_request_trace",
    "measure_thread_scaling",
    "measure_worker_speedup",
    "mm1_latency_quantile",
    "mm1_mean_wait",
    "mmc_mean_wait",
    "mmc_wait_exceeds",
    "partition_of",
    "partition_overhead",
    "partition_sizes",
    "partitioned_predict",
    "simulate_autoscaler",
    "simulate_balancer",
    "skewed_keys",
    "survive_worker_death",
    "utilisation_of",
    "vertical_cost_table",
    "worker_addresses",
]
