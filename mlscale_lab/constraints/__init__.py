"""Section 1, compute constraints: what a model needs to train and to serve, measured.

Labs 00 and 01 import from here. Each idea has its private module; public names are
re-exported, so ``from mlscale_lab.constraints import ResourceMonitor`` is all a notebook needs.

- the machine's budget (cgroup limits, Binder's ``MEM_LIMIT``): :func:`machine_budget`
- watching a run: :class:`ResourceMonitor`; capping one: :func:`run_limited`
- a model's bytes: :func:`model_footprint`; its training memory: :func:`estimate_training_memory`,
  held against :func:`measure_training_peak`; the interpreter and libraries measured by
  :func:`training_baseline_bytes` and :func:`library_baseline_bytes`
- serving latency and the machine that serves it, queueing and memory per worker included:
  :func:`measure_latency`, :func:`measure_serving`, :func:`choose_machine` (prices from
  :mod:`mlscale_lab.prices`)
- is this machine ready for the labs: :func:`doctor_report`

Importing this package is light: torch and scikit-learn load inside the functions that use them.
"""

from mlscale_lab.constraints._budget import (
    MachineBudget,
    cgroup_path,
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
from mlscale_lab.constraints._proctree import descendant_pids, kill_process_tree
from mlscale_lab.constraints._serving import (
    MachineFit,
    ServingRequirements,
    check_machine,
    choose_machine,
    measure_serving,
    wait_quantile_ms,
)
from mlscale_lab.constraints._training_memory import (
    TrainingMemoryEstimate,
    estimate_training_memory,
    optimizer_tensors_per_param,
)
from mlscale_lab.constraints._training_peak import (
    TrainingPeak,
    library_baseline_bytes,
    measure_training_peak,
    training_baseline_bytes,
)

__all__ = [
    "Footprint",
    "KEY_PACKAGES",
    "LABS_DISK_BYTES",
    "LABS_MEMORY_BYTES",
    "LatencyResult",
    "LimitedRun",
    "MachineBudget",
    "MachineFit",
    "MemoryLimitExceeded",
    "MonitorSummary",
    "ResourceLimitExceeded",
    "ResourceMonitor",
    "Sample",
    "ServingRequirements",
    "TimeLimitExceeded",
    "TrainingMemoryEstimate",
    "TrainingPeak",
    "cgroup_path",
    "check_machine",
    "choose_machine",
    "descendant_pids",
    "doctor_report",
    "estimate_training_memory",
    "format_doctor",
    "is_small_machine",
    "kill_process_tree",
    "library_baseline_bytes",
    "machine_budget",
    "measure_latency",
    "measure_serving",
    "measure_training_peak",
    "model_footprint",
    "optimizer_tensors_per_param",
    "package_versions",
    "run_limited",
    "run_measured",
    "training_baseline_bytes",
    "verdict",
    "wait_quantile_ms",
]
