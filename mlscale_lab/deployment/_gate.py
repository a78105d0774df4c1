"""A model gate: the checks a candidate model must pass before it replaces production.

Each check is a plain function returning a :class:`CheckResult`; a check never raises because
the *model* is broken (a candidate that cannot predict on the input schema fails the check, with
the reason). :func:`write_gate` turns the checks into a pytest file in a folder of the learner's
workspace, and :func:`run_gate` runs it with the real test runner in a subprocess, as CI would,
and reads the outcome from pytest's JUnit XML report. :func:`write_ci_workflow` writes the
GitHub Actions workflow that runs the same gate on every push.

>>> import numpy as np
>>> from sklearn.dummy import DummyClassifier
>>> X, y = np.zeros((20, 3)), np.r_[np.zeros(15), np.ones(5)].astype(int)
>>> majority = DummyClassifier().fit(X, y)
>>> check_accuracy(majority, X, y, min_accuracy=0.8).passed
False
>>> check_schema(majority, np.zeros((4, 2)), classes=[0, 1]).reason
'model expects 3 features, the schema has 2'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class GateConfig:
    """The budgets a candidate must meet.

    Attributes
    ----------
    min_accuracy : float
        Accuracy on the held-out data, at least.
    max_regression : float
        The candidate may be at most this much less accurate than production (0.02 = 2 points).
    max_p95_ms : float
        95th-percentile latency of one prediction of ``latency_batch`` rows, in milliseconds.
    max_artifact_bytes : int
        Size of the serialised model (``model_footprint(model).serialized_bytes``).
    max_flip_rate : float
        Share of predictions allowed to change when the inputs get a small noise of
        ``noise_scale`` feature standard deviations (a change that should not matter).
    """

    min_accuracy: float = 0.8
    max_regression: float = 0.02
    max_p95_ms: float = 100.0
    max_artifact_bytes: int = 100_000
    max_flip_rate: float = 0.02
    noise_scale: float = 0.01
    latency_batch: int = 1
    latency_repeats: int = 50

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float))
                or not np.isfinite(v)
                or v < 0
            ):
                raise ValueError(
                    f"GateConfig({f.name}=...): must be a finite number >= 0, got {v!r}"
                )
        for name in ("min_accuracy", "max_flip_rate"):
            if getattr(self, name) > 1:
                raise ValueError(
                    f"GateConfig({name}=...): a share in [0, 1], got {getattr(self, name)!r}"
                )
        for name in ("latency_batch", "latency_repeats"):
            if int(getattr(self, name)) < 1:
                raise ValueError(
                    f"GateConfig({name}=...): must be >= 1, got {getattr(self, name)!r}"
                )

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> GateConfig:
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one gate check."""

    name: str
    passed: bool
    value: float | None  #: what was measured (None when the model could not be measured)
    limit: float | None
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def _predict(model, X):
    """``(predictions, None)`` or ``(None, reason)``: a broken model is a result, not a crash."""
    try:
        pred = np.asarray(model.predict(X))
    except Exception as exc:  # any failure of the candidate's own code fails the check
        return (
            None,
            f"predict failed on {len(X)} rows of {np.shape(X)[1]} features: {type(exc).__name__}: {exc}",
        )
    if pred.shape != (len(X),):
        return None, f"predict returned shape {pred.shape}; expected one label per row, ({len(X)},)"
    return pred, None


def check_schema(model, X, classes) -> CheckResult:
    """The model takes rows shaped like ``X`` and returns one known label per row."""
    X = np.asarray(X)
    expected = getattr(model, "n_features_in_", None)
    if expected is not None and expected != X.shape[1]:
        return CheckResult(
            "schema",
            False,
            float(expected),
            float(X.shape[1]),
            f"model expects {expected} features, the schema has {X.shape[1]}",
        )
    pred, why = _predict(model, X)
    if why:
        return CheckResult("schema", False, None, None, why)
    unknown = sorted(set(pred.tolist()) - set(np.asarray(classes).tolist()))
    if unknown:
        return CheckResult(
            "schema",
            False,
            None,
            None,
            f"predicted labels {unknown[:5]} not in the classes {list(classes)}",
        )
    return CheckResult(
        "schema",
        True,
        float(X.shape[1]),
        float(X.shape[1]),
        f"{X.shape[1]} features in, known labels out",
    )


def _accuracy(model, X, y):
    pred, why = _predict(model, np.asarray(X))
    return (None, why) if why else (float(np.mean(pred == np.asarray(y))), None)


def check_accuracy(model, X, y, *, min_accuracy: float) -> CheckResult:
    """Accuracy on the held-out ``X, y`` is at least ``min_accuracy``."""
    acc, why = _accuracy(model, X, y)
    if why:
        return CheckResult("accuracy", False, None, min_accuracy, why)
    ok = acc >= min_accuracy
    return CheckResult(
        "accuracy",
        ok,
        acc,
        min_accuracy,
        f"accuracy {acc:.3f} {'>=' if ok else '<'} required {min_accuracy:.3f}",
    )


def check_no_regression(candidate, production, X, y, *, max_regression: float) -> CheckResult:
    """The candidate is not worse than production by more than ``max_regression`` (accuracy).

    Without a production model (the first deployment) the check passes.
    """
    cand, why = _accuracy(candidate, X, y)
    if why:
        return CheckResult("no_regression", False, None, max_regression, f"candidate: {why}")
    if production is None:
        return CheckResult("no_regression", True, 0.0, max_regression, "no production model yet")
    prod, why = _accuracy(production, X, y)
    if why:  # production cannot be scored on today's schema: anything that can beats it
        return CheckResult(
            "no_regression", True, None, max_regression, f"production cannot be scored ({why})"
        )
    drop = prod - cand
    ok = drop <= max_regression
    return CheckResult(
        "no_regression",
        ok,
        drop,
        max_regression,
        f"candidate {cand:.3f} vs production {prod:.3f}: drop {drop:+.3f} "
        f"({'within' if ok else 'beyond'} the allowed {max_regression:.3f})",
    )


def check_latency(
    model, X, *, max_p95_ms: float, batch_size: int = 1, repeats: int = 50
) -> CheckResult:
    """p95 latency of ``model.predict`` on ``batch_size`` rows is within ``max_p95_ms``."""
    from mlscale_lab.constraints._latency import measure_latency

    X = np.asarray(X)
    _, why = _predict(model, X[:batch_size])
    if why:
        return CheckResult("p95_latency", False, None, max_p95_ms, why)
    res = measure_latency(model.predict, X, (int(batch_size),), repeats=int(repeats))[0]
    ok = res.p95_ms <= max_p95_ms
    return CheckResult(
        "p95_latency",
        ok,
        res.p95_ms,
        max_p95_ms,
        f"p95 {res.p95_ms:.2f} ms for {batch_size} row(s) {'<=' if ok else '>'} {max_p95_ms:g} ms",
    )


def check_size(model, *, max_bytes: int) -> CheckResult:
    """The serialised artifact is at most ``max_bytes``."""
    from mlscale_lab.constraints._footprint import model_footprint

    try:
        size = model_footprint(model).serialized_bytes
    except Exception as exc:
        return CheckResult(
            "artifact_size",
            False,
            None,
            max_bytes,
            f"cannot measure the model: {type(exc).__name__}: {exc}",
        )
    ok = size <= max_bytes
    return CheckResult(
        "artifact_size",
        ok,
        float(size),
        float(max_bytes),
        f"{size:,} bytes {'<=' if ok else '>'} {int(max_bytes):,}",
    )


def check_invariance(
    model, X, *, noise_scale: float = 0.01, max_flip_rate: float = 0.02, seed: int = 0
) -> CheckResult:
    """Behaviour: a noise of ``noise_scale`` standard deviations per feature (a measurement
    jitter that should not matter) changes at most ``max_flip_rate`` of the predictions."""
    X = np.asarray(X, dtype=float)
    base, why = _predict(model, X)
    if why:
        return CheckResult("invariance", False, None, max_flip_rate, why)
    rng = np.random.default_rng(seed)
    noisy = X + rng.normal(size=X.shape) * X.std(axis=0) * noise_scale
    moved, why = _predict(model, noisy)
    if why:
        return CheckResult("invariance", False, None, max_flip_rate, why)
    rate = float(np.mean(moved != base))
    ok = rate <= max_flip_rate
    return CheckResult(
        "invariance",
        ok,
        rate,
        max_flip_rate,
        f"{rate:.1%} of predictions changed under {noise_scale:g}-sd noise "
        f"({'<=' if ok else '>'} {max_flip_rate:.1%})",
    )


def run_checks(candidate, production, X, y, config: GateConfig | None = None) -> list[CheckResult]:
    """All checks in this process (the same ones the pytest gate runs), in gate order."""
    c = config or GateConfig()
    X, y = np.asarray(X), np.asarray(y)
    return [
        check_schema(candidate, X, classes=np.unique(y)),
        check_accuracy(candidate, X, y, min_accuracy=c.min_accuracy),
        check_no_regression(candidate, production, X, y, max_regression=c.max_regression),
        check_latency(
            candidate,
            X,
            max_p95_ms=c.max_p95_ms,
            batch_size=c.latency_batch,
            repeats=c.latency_repeats,
        ),
        check_size(candidate, max_bytes=c.max_artifact_bytes),
        check_invariance(candidate, X, noise_scale=c.noise_scale, max_flip_rate=c.max_flip_rate),
    ]


# -- the gate as a pytest suite ------------------------------------------------------------
ENV_CANDIDATE = "MLSCALE_GATE_CANDIDATE"
ENV_PRODUCTION = "MLSCALE_GATE_PRODUCTION"
ENV_DATA = "MLSCALE_GATE_DATA"

GATE_TESTS = '''\
"""Model gate: a candidate ships only if every test here passes.

Written by mlscale_lab.deployment._gate.write_gate. Artifacts come from environment variables
(MLSCALE_GATE_CANDIDATE, MLSCALE_GATE_PRODUCTION, MLSCALE_GATE_DATA) or, without them, from
candidate.joblib, production.joblib and holdout.npz next to this file. Budgets: gate_config.json.
"""

import os
from pathlib import Path

import joblib
import numpy as np
import pytest

from mlscale_lab.deployment import _gate as gate

HERE = Path(__file__).parent
CONFIG = gate.GateConfig.from_json(HERE / "gate_config.json")


def _path(variable, default):
    return Path(os.environ.get(variable) or HERE / default)


@pytest.fixture(scope="session")
def holdout():
    data = np.load(_path("MLSCALE_GATE_DATA", "holdout.npz"))
    return data["X"], data["y"]


def _load(path):
    try:
        return joblib.load(path)
    except Exception as exc:  # a broken artifact is a failed gate with its reason
        pytest.fail(f"cannot load {path.name}: {type(exc).__name__}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def candidate():
    return _load(_path("MLSCALE_GATE_CANDIDATE", "candidate.joblib"))


@pytest.fixture(scope="session")
def production():
    path = _path("MLSCALE_GATE_PRODUCTION", "production.joblib")
    return _load(path) if path.exists() else None  # first deployment: nothing to beat


def test_schema(candidate, holdout):
    X, y = holdout
    result = gate.check_schema(candidate, X, classes=np.unique(y))
    assert result.passed, result.reason


def test_accuracy(candidate, holdout):
    result = gate.check_accuracy(candidate, *holdout, min_accuracy=CONFIG.min_accuracy)
    assert result.passed, result.reason


def test_no_regression(candidate, production, holdout):
    result = gate.check_no_regression(candidate, production, *holdout, max_regression=CONFIG.max_regression)
    assert result.passed, result.reason


def test_p95_latency(candidate, holdout):
    result = gate.check_latency(candidate, holdout[0], max_p95_ms=CONFIG.max_p95_ms,
                                batch_size=CONFIG.latency_batch, repeats=CONFIG.latency_repeats)
    assert result.passed, result.reason


def test_artifact_size(candidate):
    result = gate.check_size(candidate, max_bytes=CONFIG.max_artifact_bytes)
    assert result.passed, result.reason


def test_invariance_to_noise(candidate, holdout):
    result = gate.check_invariance(candidate, holdout[0], noise_scale=CONFIG.noise_scale,
                                   max_flip_rate=CONFIG.max_flip_rate)
    assert result.passed, result.reason
'''


def write_gate(directory: str | os.PathLike, X, y, config: GateConfig | None = None) -> Path:
    """Write the gate into ``directory``: ``test_model_gate.py``, ``gate_config.json``, the
    held-out data ``holdout.npz`` and a ``pytest.ini`` that keeps the run self-contained.
    Returns the path of the test file."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise ValueError(
            f"X, y: need a 2-D X with one label per row, got X {X.shape} and y {y.shape}"
        )
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "gate_config.json").write_text(
        json.dumps((config or GateConfig()).as_dict(), indent=1) + "\n"
    )
    np.savez(d / "holdout.npz", X=X, y=y)
    # Self-contained: no cache folder, and no unrelated plugins slowing the start (anyio's).
    (d / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -p no:anyio\n")
    test_file = d / "test_model_gate.py"
    test_file.write_text(GATE_TESTS)
    return test_file


@dataclass
class GateRun:
    """The outcome of one pytest run of the gate."""

    passed: bool  #: pytest exited with 0: every check passed
    returncode: int
    checks: dict[str, dict] = field(default_factory=dict)  #: test name -> {"outcome", "message"}
    seconds: float = 0.0
    summary: str = ""  #: pytest's last line, e.g. "2 failed, 4 passed in 1.9s"
    junit_xml: str = ""

    @property
    def failed(self) -> list[str]:
        return [name for name, c in self.checks.items() if c["outcome"] != "passed"]


def parse_junit(path: str | os.PathLike) -> dict[str, dict]:
    """``{test name: {"outcome": "passed"|"failed"|"error"|"skipped", "message": str}}``."""
    import xml.etree.ElementTree as ET

    checks = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                text = (node.get("message") or node.text or "").strip()
                message = text.splitlines()[0] if text else ""  # the reason, not the traceback
                break
        checks[case.get("name")] = {"outcome": outcome, "message": message}
    return checks


def run_gate(
    test_file: str | os.PathLike,
    candidate: str | os.PathLike,
    production: str | os.PathLike | None = None,
    *,
    timeout: float = 300.0,
) -> GateRun:
    """Run the gate under pytest in a subprocess, with the artifacts passed by environment.

    Parameters
    ----------
    test_file : path
        The file :func:`write_gate` wrote.
    candidate, production : path
        Joblib artifacts (e.g. ``ModelRegistry.path(version)``); no production on a first deploy.
    timeout : float
        Seconds before the run is stopped; a run that times out is a failed gate.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    test_file = Path(test_file)
    if not test_file.exists():
        raise FileNotFoundError(
            f"test_file={str(test_file)!r} does not exist; create it with write_gate()"
        )
    if not Path(candidate).exists():
        raise FileNotFoundError(f"candidate={str(candidate)!r} does not exist")
    if production is not None and not Path(production).exists():
        raise FileNotFoundError(f"production={str(production)!r} does not exist")
    d = test_file.parent
    xml = d / "gate-report.xml"
    xml.unlink(missing_ok=True)
    env = dict(os.environ)
    env[ENV_CANDIDATE] = str(Path(candidate).resolve())
    env[ENV_PRODUCTION] = (
        str(Path(production).resolve()) if production else str(d / "no-production.joblib")
    )
    env[ENV_DATA] = str((d / "holdout.npz").resolve())
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(test_file),
        "-q",
        "--color=no",
        "-c",
        str(d / "pytest.ini"),
        "--rootdir",
        str(d),
        f"--junitxml={xml}",
    ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=d)
    except subprocess.TimeoutExpired:  # a gate that hangs blocks the candidate, with the reason
        seconds = time.perf_counter() - t0
        why = f"the gate did not finish within timeout={timeout:g} s"
        return GateRun(False, -1, {"gate": {"outcome": "error", "message": why}}, seconds, why)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    checks = parse_junit(xml) if xml.exists() else {}
    if not checks:
        raise RuntimeError(
            f"pytest did not run the gate (exit code {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    return GateRun(
        proc.returncode == 0, proc.returncode, checks, seconds, lines[-1] if lines else "", str(xml)
    )


# -- continuous integration ----------------------------------------------------------------
CI_WORKFLOW = """\
# Runs the model gate on every push: the candidate ships only when every check passes.
# Written by mlscale_lab.deployment._gate.write_ci_workflow.
name: model-gate
"on":
  push:
  pull_request:
jobs:
  gate:
    runs-on: ubuntu-latest
    timeout-minutes: 15
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Install
        run: pip install mlscale-lab
      - name: Model gate
        env:
          MLSCALE_GATE_CANDIDATE: {candidate}
          MLSCALE_GATE_PRODUCTION: {production}
        run: python -m pytest {test_file} -c {ini} --junitxml=gate-report.xml
      - name: Keep the gate report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: gate-report
          path: gate-report.xml
"""


def write_ci_workflow(
    workspace: str | os.PathLike,
    test_file: str | os.PathLike,
    *,
    candidate: str = "gate/candidate.joblib",
    production: str = "gate/production.joblib",
) -> Path:
    """Write ``.github/workflows/model-gate.yml`` under ``workspace``: GitHub Actions runs the
    same pytest gate on every push. Returns the workflow's path."""
    ws = Path(workspace).resolve()
    test_file = Path(test_file).resolve()
    try:
        rel = test_file.relative_to(ws)
    except ValueError:
        raise ValueError(
            f"test_file={str(test_file)!r} must be inside workspace={str(ws)!r}"
        ) from None
    path = ws / ".github" / "workflows" / "model-gate.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        CI_WORKFLOW.format(
            candidate=candidate,
            production=production,
            test_file=rel.as_posix(),
            ini=(rel.parent / "pytest.ini").as_posix(),
        )
    )
    return path


def validate_workflow(path: str | os.PathLike) -> dict:
    """Parse a workflow with PyYAML and check the keys GitHub needs (``on``, ``jobs`` with
    ``runs-on`` and ``steps``). Returns the parsed document; raises ``ValueError`` if wrong."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    # YAML 1.1 reads a bare `on:` as the boolean True; the workflow quotes it to stay a string.
    if "on" not in doc:
        raise ValueError(
            f"{path}: no 'on' trigger (write it quoted, \"on\":, so YAML keeps it a string)"
        )
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise ValueError(f"{path}: no jobs")
    for name, job in jobs.items():
        if "runs-on" not in job or not job.get("steps"):
            raise ValueError(f"{path}: job {name!r} needs runs-on and steps")
    return doc
