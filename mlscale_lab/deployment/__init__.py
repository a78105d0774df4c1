"""Section 3, velocity of deployments: streams that drift, online learning, and model gates.

Lab 04 imports from here; each idea has its private module, public names are re-exported.

- data that changes: :func:`make_stream` (``_streams``)
- noticing it: :class:`PageHinkley` (``_page_hinkley``), :class:`Adwin` (``_adwin``), and
  :func:`detect_drifts`, :func:`score_detections`, :func:`score_detector` over many streams
  (``_drift``); River's detectors plug in too
- keeping up: the strategies :class:`Static`, :class:`PeriodicRetrain`, :class:`Incremental`,
  :class:`DriftTriggered` (``_online``), evaluated by :func:`prequential` (``_prequential``)
- delivering a new model: :func:`full_retrain`, :func:`incremental_update` (``_delivery``)
- shipping safely: the checks (``_checks``), the gate's table of them, its budgets and
  :func:`run_checks` (``_gate_checks``), the gate file run in its own process (``_gate``,
  ``gate_suite/model_gate.py``), its CI workflow (``_ci``), and the :class:`ModelRegistry`
  (``_registry``)
"""

from mlscale_lab.deployment._adwin import Adwin
from mlscale_lab.deployment._checks import (
    CheckResult,
    check_accuracy,
    check_invariance,
    check_latency,
    check_no_regression,
    check_schema,
    check_size,
)
from mlscale_lab.deployment._ci import (
    TORCH_CPU_INDEX,
    TORCH_REQUIREMENT,
    validate_workflow,
    write_ci_workflow,
)
from mlscale_lab.deployment._delivery import full_retrain, incremental_update
from mlscale_lab.deployment._drift import (
    DetectionReport,
    DetectorScores,
    detect_drifts,
    score_detections,
    score_detector,
)
from mlscale_lab.deployment._gate import (
    ENV_CANDIDATE,
    ENV_DATA,
    ENV_PRODUCTION,
    ENV_RESULTS,
    RUNNERS,
    GateRun,
    gate_source,
    gate_verdict,
    parse_junit,
    run_gate,
    write_gate,
)
from mlscale_lab.deployment._gate_checks import (
    GATE_CHECKS,
    Budget,
    GateCase,
    GateCheck,
    GateConfig,
    run_checks,
)
from mlscale_lab.deployment._online import (
    DriftTriggered,
    Incremental,
    PeriodicRetrain,
    Static,
    Strategy,
    sgd_model,
    sgd_step_size,
)
from mlscale_lab.deployment._page_hinkley import PageHinkley, page_hinkley_trace
from mlscale_lab.deployment._prequential import (
    PrequentialResult,
    compare_strategies,
    prequential,
    results_table,
    strategy_cpu,
)
from mlscale_lab.deployment._registry import ModelRegistry, artifact_bytes, content_hash
from mlscale_lab.deployment._streams import KINDS, Stream, make_stream

__all__ = [
    "ENV_CANDIDATE",
    "ENV_DATA",
    "ENV_PRODUCTION",
    "ENV_RESULTS",
    "GATE_CHECKS",
    "KINDS",
    "RUNNERS",
    "TORCH_CPU_INDEX",
    "TORCH_REQUIREMENT",
    "Adwin",
    "Budget",
    "CheckResult",
    "DetectionReport",
    "DetectorScores",
    "DriftTriggered",
    "GateCase",
    "GateCheck",
    "GateConfig",
    "GateRun",
    "Incremental",
    "ModelRegistry",
    "PageHinkley",
    "PeriodicRetrain",
    "PrequentialResult",
    "Static",
    "Strategy",
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
    "detect_drifts",
    "full_retrain",
    "gate_source",
    "gate_verdict",
    "incremental_update",
    "make_stream",
    "page_hinkley_trace",
    "parse_junit",
    "prequential",
    "results_table",
    "run_checks",
    "run_gate",
    "score_detections",
    "score_detector",
    "sgd_model",
    "sgd_step_size",
    "strategy_cpu",
    "validate_workflow",
    "write_ci_workflow",
    "write_gate",
]
