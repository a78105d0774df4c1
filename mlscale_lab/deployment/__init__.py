"""Section 3, velocity of deployments: streams that drift, online learning, and CI/CD gates.

Lab 04 imports from here; each idea has its private module, public names are re-exported.

- data that changes: :func:`make_stream`
- noticing it: :class:`PageHinkley`, :class:`Adwin`, :func:`detect_drifts`
- keeping up: :func:`prequential` over :class:`Static`, :class:`PeriodicRetrain`,
  :class:`Incremental`, :class:`DriftTriggered`
- shipping safely: :class:`ModelRegistry`, the gate's checks and :func:`run_gate`
"""

from mlscale_lab.deployment._drift import (
    Adwin,
    DetectionReport,
    PageHinkley,
    detect_drifts,
    score_detections,
)
from mlscale_lab.deployment._gate import (
    CI_WORKFLOW,
    GATE_TESTS,
    CheckResult,
    GateConfig,
    GateRun,
    check_accuracy,
    check_invariance,
    check_latency,
    check_no_regression,
    check_schema,
    check_size,
    parse_junit,
    run_checks,
    run_gate,
    validate_workflow,
    write_ci_workflow,
    write_gate,
)
from mlscale_lab.deployment._online import (
    DriftTriggered,
    Incremental,
    PeriodicRetrain,
    PrequentialResult,
    Static,
    compare_strategies,
    cpu_seconds_per_call,
    full_retrain,
    incremental_update,
    prequential,
    results_table,
    sgd_model,
)
from mlscale_lab.deployment._registry import (
    ModelRegistry,
    artifact_bytes,
    content_hash,
)
from mlscale_lab.deployment._streams import (
    KINDS,
    Stream,
    make_stream,
)

__all__ = [
    "Adwin",
    "CI_WORKFLOW",
    "CheckResult",
    "DetectionReport",
    "DriftTriggered",
    "GATE_TESTS",
    "GateConfig",
    "GateRun",
    "Incremental",
    "KINDS",
    "ModelRegistry",
    "PageHinkley",
    "PeriodicRetrain",
    "PrequentialResult",
    "Static",
    "Stream",
    "artifact_bytes",
    "check_accuracy",
    "check_invariance",
    "check_latency",
    "check_no_regression",
    "check_schema",
    "check_size",
    "compare_strategies",
    "content_hash",
    "cpu_seconds_per_call",
    "detect_drifts",
    "full_retrain",
    "incremental_update",
    "make_stream",
    "parse_junit",
    "prequential",
    "results_table",
    "run_checks",
    "run_gate",
    "score_detections",
    "sgd_model",
    "validate_workflow",
    "write_ci_workflow",
    "write_gate",
]
