"""Measure what a model needs: the machine's budget, a resource monitor, limited runs.

Public names are re-exported here; the modules behind them are private.
"""

from mlscale_lab.resources._budget import MachineBudget, is_small_machine, machine_budget
from mlscale_lab.resources._monitor import MonitorSummary, ResourceMonitor, Sample

__all__ = [
    "MachineBudget",
    "MonitorSummary",
    "ResourceMonitor",
    "Sample",
    "is_small_machine",
    "machine_budget",
]
