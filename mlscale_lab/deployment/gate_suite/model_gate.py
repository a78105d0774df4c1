"""Model gate: a candidate ships only if every test here passes.

Copied next to its budgets (``gate_config.json``) and held-out data (``holdout.npz``) by
``mlscale_lab.deployment.write_gate``. Run it either way:

    python -m pytest test_model_gate.py            where pytest is installed (CI)
    python test_model_gate.py --junitxml=FILE      anywhere: pytest when it is installed,
                                                   otherwise the small runner below

The artifacts come from the environment variables MLSCALE_GATE_CANDIDATE,
MLSCALE_GATE_PRODUCTION and MLSCALE_GATE_DATA or, without them, from candidate.joblib,
production.joblib and holdout.npz next to this file. No production artifact: a first
deployment, nothing to beat.
"""

import functools
import os
import sys
import time
import traceback
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from mlscale_lab.deployment import (
    GateConfig,
    check_accuracy,
    check_invariance,
    check_latency,
    check_no_regression,
    check_schema,
    check_size,
)

HERE = Path(__file__).resolve().parent


class ArtifactError(Exception):
    """An artifact the gate cannot load: the candidate fails with the reason."""


def _path(variable, default):
    return Path(os.environ.get(variable) or HERE / default)


@functools.cache
def config():
    """The budgets, from ``gate_config.json`` next to this file."""
    return GateConfig.from_json(HERE / "gate_config.json")


@functools.cache
def holdout():
    """``(X, y)``: the held-out recent data the candidate is judged on."""
    data = np.load(_path("MLSCALE_GATE_DATA", "holdout.npz"))
    return data["X"], data["y"]


def _load(path):
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # a broken artifact is a failed gate with its reason
        raise ArtifactError(f"cannot load {path.name}: {type(exc).__name__}: {exc}") from None


@functools.cache
def candidate():
    """The model that wants to ship."""
    return _load(_path("MLSCALE_GATE_CANDIDATE", "candidate.joblib"))


@functools.cache
def production():
    """The model serving now, or None on a first deployment."""
    path = _path("MLSCALE_GATE_PRODUCTION", "production.joblib")
    return _load(path) if path.exists() else None


def test_schema():
    """Rows in production's schema go in, known labels come out."""
    X, y = holdout()
    result = check_schema(candidate(), X, classes=np.unique(y))
    assert result.passed, result.reason


def test_accuracy():
    """Accurate enough on recent data."""
    result = check_accuracy(candidate(), *holdout(), min_accuracy=config().min_accuracy)
    assert result.passed, result.reason


def test_no_regression():
    """Not worse than production beyond the allowed margin."""
    result = check_no_regression(
        candidate(), production(), *holdout(), max_regression=config().max_regression
    )
    assert result.passed, result.reason


def test_p95_latency():
    """Fast enough: the 95th-percentile latency within budget."""
    c = config()
    result = check_latency(candidate(), holdout()[0], max_p95_ms=c.max_p95_ms,
                           batch_size=c.latency_batch, repeats=c.latency_repeats)
    assert result.passed, result.reason


def test_artifact_size():
    """Small enough to ship."""
    result = check_size(candidate(), max_bytes=config().max_artifact_bytes)
    assert result.passed, result.reason


def test_invariance_to_noise():
    """A jitter that should not matter changes almost no prediction."""
    c = config()
    result = check_invariance(candidate(), holdout()[0], noise_scale=c.noise_scale,
                              max_flip_rate=c.max_flip_rate)
    assert result.passed, result.reason


# -- running without pytest ---------------------------------------------------------------
def run_builtin(junitxml=None):
    """Run every ``test_*`` function above in order, as ``pytest -q`` would, without pytest.

    Prints one character per test and pytest's summary line; writes a JUnit XML report in the
    shape pytest writes when ``junitxml`` is given. Returns the exit code: 0 when every test
    passed, 1 otherwise.
    """
    tests = [(name, fn) for name, fn in globals().items()
             if name.startswith("test_") and callable(fn)]
    suite = ET.Element("testsuite", name="model-gate")
    failed, t_all = 0, time.perf_counter()
    for name, fn in tests:
        case = ET.SubElement(suite, "testcase", classname=Path(__file__).stem, name=name)
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # any exception fails the test, as in pytest
            failed += 1
            message = f"{type(exc).__name__}: {exc}"
            node = ET.SubElement(case, "failure", message=message)
            node.text = "".join(traceback.format_exception(exc))
            print("F", end="", flush=True)
        else:
            print(".", end="", flush=True)
        case.set("time", f"{time.perf_counter() - t0:.3f}")
    seconds = time.perf_counter() - t_all
    suite.set("tests", str(len(tests)))
    suite.set("failures", str(failed))
    suite.set("errors", "0")
    suite.set("time", f"{seconds:.3f}")
    if junitxml:
        root = ET.Element("testsuites")
        root.append(suite)
        ET.ElementTree(root).write(junitxml, encoding="utf-8", xml_declaration=True)
    parts = [f"{failed} failed"] * bool(failed) + [f"{len(tests) - failed} passed"]
    print(f"\n{', '.join(parts)} in {seconds:.2f}s")
    return 1 if failed else 0


def main(argv=None):
    """``python test_model_gate.py [--junitxml=FILE] [--runner=auto|pytest|builtin]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    options = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
    runner = options.get("runner", "auto")
    if runner not in ("auto", "pytest", "builtin"):
        print(f"--runner={runner}: expected auto, pytest or builtin", file=sys.stderr)
        return 2
    if runner != "builtin":
        try:
            import pytest
        except ImportError:
            if runner == "pytest":
                print("--runner=pytest: pytest is not installed", file=sys.stderr)
                return 2
        else:
            cmd = [str(Path(__file__).resolve()), "-q", "--color=no", "--rootdir", str(HERE)]
            if (HERE / "pytest.ini").exists():
                cmd += ["-c", str(HERE / "pytest.ini")]
            if "junitxml" in options:
                cmd.append(f"--junitxml={options['junitxml']}")
            return int(pytest.main(cmd))
    return run_builtin(options.get("junitxml"))


if __name__ == "__main__":
    sys.exit(main())
