"""Measure what a model needs: the machine's budget, a resource monitor, limited runs.

Public names are re-exported here; the modules behind them are private.
"""

from mlscale_lab.resources._budget import MachineBudget, is_small_machine, machine_budget
from mlscale_lab.resources._limits import (
    LimitedRun,
    MemoryLimitExceeded,
    ResourceLimitExceeded,
    TimeLimitExceeded,
    run_limited,
    run_measured,
)
from mlscale_lab.resources._monitor import MonitorSummary, ResourceMonitor, Sample

__all__ = [
    "LimitedRun",
    "MachineBudget",
    "MemoryLimitExceeded",
    "MonitorSummary",
    "ResourceLimitExceeded",
    "ResourceMonitor",
    "Sample",
    "TimeLimitExceeded",
    "is_small_machine",
    "machine_budget",
    "run_limited",
    "run_measured",
]
