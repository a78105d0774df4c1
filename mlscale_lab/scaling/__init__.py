"""Scaling strategies: vertical (threads, Amdahl), horizontal (Dask), load balancing, auto-scaling.

Public names are re-exported here from private modules. Importing this package is light:
the simulators need only NumPy; dask and scikit-learn load inside the functions that use them.

- queueing theory, as lab 05 uses it: :func:`erlang_c`, :func:`mm1_mean_wait`,
  :func:`mmc_mean_wait`, ... (re-exported from :mod:`mlscale_lab.queueing`, where every
  queueing formula lives, response-time quantiles included)
- load balancing: :func:`simulate_balancer` with a policy from :data:`POLICY_TABLE` (each
  entry names its rule) or your own
- auto-scaling: :func:`hpa_desired_replicas`, :func:`make_request_trace`,
  :func:`request_trace_family`, :func:`simulate_autoscaler`
- vertical: :func:`measure_thread_scaling` (interleaved rounds, pools pinned by
  :func:`threads_limited`; its parts timed alone predict the pass), :func:`fit_amdahl_rounds`
  (with its interval and what it can test), :func:`holdout_ratio` (the law on a held-out
  count), :func:`vertical_cost_table` (example prices from :mod:`mlscale_lab.prices`),
  :class:`CsvMlpWorkload` (in one go or in chunks, its serial share)
- horizontal on Dask: :func:`local_cluster`, :func:`connect`, :func:`partitioned_predict`,
  :func:`measure_worker_speedup`, :func:`partition_overhead`, :func:`dask_grid_search`,
  :func:`survive_worker_death`, :func:`adapt_under_bursts`
- partitioning by key: :func:`partition_sizes` (hash, or range split at sampled quantiles by
  :func:`range_boundaries`), :func:`skewed_keys`, :func:`increasing_keys`
"""

from mlscale_lab.queueing import (
    erlang_c,
    mm1_latency_quantile,
    mm1_mean_wait,
    mmc_mean_wait,
    mmc_wait_exceeds,
)
from mlscale_lab.scaling._amdahl import (
    AmdahlFit,
    amdahl_ceiling,
    amdahl_speedup,
    fit_amdahl,
    fit_amdahl_rounds,
    holdout_ratio,
)
from mlscale_lab.scaling._autoscaler import (
    STRATEGIES,
    AutoscaleResult,
    hpa_desired_replicas,
    simulate_autoscaler,
)
from mlscale_lab.scaling._balancer import (
    POLICIES,
    BalancerResult,
    heterogeneous_means,
    simulate_balancer,
    utilisation_of,
)
from mlscale_lab.scaling._cluster import connect, local_cluster, worker_addresses
from mlscale_lab.scaling._dispatch import POLICY_TABLE, Policy
from mlscale_lab.scaling._elastic import AdaptTimeline, adapt_under_bursts, survive_worker_death
from mlscale_lab.scaling._horizontal import (
    WorkerSpeedup,
    local_predict,
    make_model,
    measure_worker_speedup,
    partition_overhead,
    partitioned_predict,
)
from mlscale_lab.scaling._partitioning import (
    SCHEMES,
    increasing_keys,
    partition_of,
    partition_sizes,
    range_boundaries,
    skewed_keys,
)
from mlscale_lab.scaling._search import dask_grid_search
from mlscale_lab.scaling._traces import RateTrace, make_request_trace, request_trace_family
from mlscale_lab.scaling._vertical import (
    ThreadScaling,
    measure_thread_scaling,
    threads_limited,
    vertical_cost_table,
)
from mlscale_lab.scaling._workload import BatchRun, CsvMlpWorkload

__all__ = [
    "AmdahlFit",
    "POLICIES",
    "POLICY_TABLE",
    "SCHEMES",
    "STRATEGIES",
    "AdaptTimeline",
    "AutoscaleResult",
    "BalancerResult",
    "BatchRun",
    "Policy",
    "CsvMlpWorkload",
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
    "fit_amdahl_rounds",
    "heterogeneous_means",
    "holdout_ratio",
    "hpa_desired_replicas",
    "increasing_keys",
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
    "range_boundaries",
    "request_trace_family",
    "simulate_autoscaler",
    "simulate_balancer",
    "skewed_keys",
    "survive_worker_death",
    "threads_limited",
    "utilisation_of",
    "vertical_cost_table",
    "worker_addresses",
]
