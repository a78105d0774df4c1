"""The environment variables the package sets and reads, each named once.

A variable is how one process tells another (a kernel, a server, a gate run in CI) something
before any of its code runs; both sides import the name from here, so a renamed variable cannot
leave one side behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = [
    "CPU_LIMIT_ENV", "GATE_CANDIDATE_ENV", "GATE_DATA_ENV", "GATE_PRODUCTION_ENV", "GATE_RESULTS_ENV",
    "GRADING_SEED_ENV", "HEADLESS_ENV", "LABS_ENV", "MEM_LIMIT_ENV", "RECORD_ENV",
    "SERVE_CPUS_ENV", "SERVE_FEATURES_ENV", "SERVE_MAX_BATCH_ENV", "SERVE_MAX_WAIT_MS_ENV", "SERVE_MODEL_ENV",
    "SERVE_PARENT_ENV", "SERVE_READY_DIR_ENV", "SERVE_WORKERS_ENV", "TRAIN_PARENT_ENV", "headless",
]

#: Set (to 1) by the runner and the grader: a notebook runs with no one watching, so live
#: views draw nothing.
HEADLESS_ENV = "MLSCALE_HEADLESS"
#: The file :func:`mlscale_lab.record` appends a lab's headline numbers to, set by the runner.
RECORD_ENV = "MLSCALE_RECORD_FILE"
#: A folder of lab notebooks to use instead of the installed ones.
LABS_ENV = "MLSCALE_LABS_DIR"
#: The grading seed a pristine test replay sees (never shown in feedback).
GRADING_SEED_ENV = "MLSCALE_GRADING_SEED"
#: Binder's and repo2docker's limits (CPUs, bytes); also set for a kernel confined like Binder.
CPU_LIMIT_ENV = "CPU_LIMIT"
MEM_LIMIT_ENV = "MEM_LIMIT"
#: The artifacts a model gate judges (joblib files, held-out data), set by ``run_gate`` and CI.
GATE_CANDIDATE_ENV = "MLSCALE_GATE_CANDIDATE"
GATE_PRODUCTION_ENV = "MLSCALE_GATE_PRODUCTION"
GATE_DATA_ENV = "MLSCALE_GATE_DATA"
#: Where the gate writes each check's value and verdict, beside its JUnit report.
GATE_RESULTS_ENV = "MLSCALE_GATE_RESULTS"
#: What the model server's launcher tells the server process and its workers.
SERVE_MODEL_ENV = "MLSCALE_SERVE_MODEL"
SERVE_READY_DIR_ENV = "MLSCALE_SERVE_READY_DIR"
SERVE_MAX_BATCH_ENV = "MLSCALE_SERVE_MAX_BATCH"
SERVE_MAX_WAIT_MS_ENV = "MLSCALE_SERVE_MAX_WAIT_MS"
SERVE_FEATURES_ENV = "MLSCALE_SERVE_FEATURES"
SERVE_WORKERS_ENV = "MLSCALE_SERVE_WORKERS"
SERVE_PARENT_ENV = "MLSCALE_SERVE_PARENT"
#: The process a torchrun job started from a notebook must not outlive (the kernel).
TRAIN_PARENT_ENV = "MLSCALE_PARENT_PID"
#: The CPUs (ids, comma separated) the server and its workers are pinned to, where allowed.
SERVE_CPUS_ENV = "MLSCALE_SERVE_CPUS"


def headless(env: Mapping[str, str] | None = None) -> bool:
    """True in a run with no one watching (``MLSCALE_HEADLESS`` set, and not to 0).

    Examples
    --------
    >>> headless({"MLSCALE_HEADLESS": "1"}), headless({"MLSCALE_HEADLESS": "0"}), headless({})
    (True, False, False)
    """
    env = os.environ if env is None else env
    return env.get(HEADLESS_ENV, "") not in ("", "0")
