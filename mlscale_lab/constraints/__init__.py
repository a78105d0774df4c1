"""Section 1, compute constraints: what a model needs to train and to serve, measured.

Labs 00 and 01 import from here. Each idea has its private module; public names are
re-exported, so ``from mlscale_lab.constraints import ResourceMonitor`` is all a notebook needs.

- the machine's budget (cgroup limits, Binder's ``MEM_LIMIT``): :func:`machine_budget`
- watching a run: :class:`ResourceMonitor`; capping one: :func:`run_limited`
- a model's bytes: :func:`model_footprint`; its training memory: :func:`estimate_training_memory`,
  held against :func:`measure_training_peak` by :func:`judge_training_estimate` (the training
  parts against the memory training added); the interpreter and libraries measured by
  :func:`training_baseline_bytes` and :func:`library_baseline_bytes`
- serving latency: :func:`measure_latency` in this process, and :func:`measure_serving_load`,
  worker processes under an open-loop load (memory per worker, service times, latency tails);
  which machine serves it is :mod:`mlscale_lab.capacity`'s job
- is this machine ready for the labs: :func:`doctor_report`

Importing this package is light: torch and scikit-learn load inside the functions that use them.
"""

from mlscale_lab.constraints._budget import (
    MachineBudget,
    is_small_machine,
    machine_budget,
)
from mlscale_lab.constraints._doctor import (
    KEY_PACKAGES,
    LABS_DISK_BYTES,
    LABS_MEMORY_BYTES,
    doctor_report,
    format_doctor,
    package_versions,
    verdict,
)
from mlscale_lab.constraints._footprint import (
    Footprint,
    model_footprint,
)
from mlscale_lab.constraints._latency import LatencyResult, measure_latency
from mlscale_lab.constraints._limits import (
    LimitedRun,
    MemoryLimitExceeded,
    ResourceLimitExceeded,
    TimeLimitExceeded,
    run_limited,
    run_measured,
)
from mlscale_lab.constraints._monitor import (
    MonitorSummary,
    ResourceMonitor,
    Sample,
)
from mlscale_lab.constraints._serving import ServingLoad, measure_serving_load
from mlscale_lab.constraints._training_check import ESTIMATE_WITHIN, judge_training_estimate
from mlscale_lab.constraints._training_memory import (
    TrainingMemoryEstimate,
    estimate_training_memory,
    optimizer_tensors_per_param,
)
from mlscale_lab.constraints._training_peak import (
    DEFAULT_ALLOCATOR,
    TIGHT_ALLOCATOR,
    TrainingPeak,
    library_baseline_bytes,
    measure_training_peak,
    training_baseline_bytes,
)

__all__ = [
    "DEFAULT_ALLOCATOR",
    "ESTIMATE_WITHIN",
    "Footprint",
    "KEY_PACKAGES",
    "LABS_DISK_BYTES",
    "LABS_MEMORY_BYTES",
    "LatencyResult",
    "LimitedRun",
    "MachineBudget",
    "MemoryLimitExceeded",
    "MonitorSummary",
    "ResourceLimitExceeded",
    "ResourceMonitor",
    "Sample",
    "ServingLoad",
    "TIGHT_ALLOCATOR",
    "TimeLimitExceeded",
    "TrainingMemoryEstimate",
    "TrainingPeak",
    "doctor_report",
    "estimate_training_memory",
    "format_doctor",
    "is_small_machine",
    "judge_training_estimate",
    "library_baseline_bytes",
    "machine_budget",
    "measure_latency",
    "measure_serving_load",
    "measure_training_peak",
    "model_footprint",
    "optimizer_tensors_per_param",
    "package_versions",
    "run_limited",
    "run_measured",
    "training_baseline_bytes",
    "verdict",
]
