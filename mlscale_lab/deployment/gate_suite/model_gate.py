"""Model gate: a candidate ships only if every test here passes.

Copied next to its budgets (``gate_config.json``) and held-out data (``holdout.npz``) by
``mlscale_lab.deployment.write_gate``. Run it either way:

    python -m pytest test_model_gate.py            where pytest is installed (CI)
    python test_model_gate.py --junitxml=FILE      anywhere: pytest when it is installed,
                                                   otherwise the small runner below

The artifacts come from the environment variables named by ENV_CANDIDATE, ENV_PRODUCTION and
ENV_DATA (mlscale_lab.deployment) or, without them, from candidate.joblib, production.joblib
and holdout.npz next to this file. No production artifact: a first deployment, nothing to beat.

The tests are the rows of the gate's table, mlscale_lab.deployment.GATE_CHECKS: one test,
test_<name>, per check, made below. Each writes what it measured (value, budget, verdict) as a
line of JSON to the file named by ENV_RESULTS, when it is set.
"""

import functools
import json
import os
import sys
import time
import traceback
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np

from mlscale_lab.deployment import (
    ENV_CANDIDATE,
    ENV_DATA,
    ENV_PRODUCTION,
    ENV_RESULTS,
    GATE_CHECKS,
    GateCase,
    GateConfig,
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
    data = np.load(_path(ENV_DATA, "holdout.npz"))
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
    return _load(_path(ENV_CANDIDATE, "candidate.joblib"))


@functools.cache
def production():
    """The model serving now, or None on a first deployment."""
    path = _path(ENV_PRODUCTION, "production.joblib")
    return _load(path) if path.exists() else None


def _save(result):
    """One line of JSON per check, for the caller that ran the gate (run_gate reads it)."""
    target = os.environ.get(ENV_RESULTS)
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(result.as_dict()) + "\n")


def _gate_test(check):
    def test():
        result = check.run(GateCase(candidate(), production(), *holdout()), config())
        _save(result)
        assert result.passed, result.reason

    test.__name__ = test.__qualname__ = f"test_{check.name}"
    test.__doc__ = check.doc
    return test


for _check in GATE_CHECKS:  # one test per row of the table, in its order
    globals()[f"test_{_check.name}"] = _gate_test(_check)
del _check


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
