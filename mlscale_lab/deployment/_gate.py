"""The model gate as a test file, run in its own process as CI runs it.

:func:`write_gate` copies the gate's test file (``gate_suite/model_gate.py``, shipped with the
package) into a folder of the learner's workspace, next to its budgets and held-out data.
:func:`run_gate` runs it in a subprocess, with the candidate and production artifacts passed by
path, and reads the outcome from the JUnit XML report every CI server understands (and each
check's measurement and verdict from a JSON-lines file the gate writes beside it). The file runs
under pytest where pytest is installed (a developer's machine, CI) and with its own small runner
where it is not (``pip install mlscale-lab`` alone, Binder): pytest is a development tool, not
something a learner must install to gate a model.

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> tmp = tempfile.TemporaryDirectory()  # removed with the object
>>> test_file = write_gate(Path(tmp.name) / "gate", np.zeros((4, 2)), [0, 1, 0, 1])
>>> test_file.name, sorted(p.name for p in test_file.parent.iterdir())
('test_model_gate.py', ['gate_config.json', 'holdout.npz', 'pytest.ini', 'test_model_gate.py'])
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from mlscale_lab._core.environment import (
    GATE_CANDIDATE_ENV,
    GATE_DATA_ENV,
    GATE_PRODUCTION_ENV,
    GATE_RESULTS_ENV,
)
from mlscale_lab.deployment._gate_checks import GateConfig
from mlscale_lab.evidence import HOLDS, INCONCLUSIVE, REFUTED, Interval, Verdict
from mlscale_lab.validation import check_choice, check_positive

#: Environment variables through which :func:`run_gate` hands the artifacts to the gate file,
#: and where the gate writes each check's result (the gate file imports these names).
ENV_CANDIDATE = GATE_CANDIDATE_ENV
ENV_PRODUCTION = GATE_PRODUCTION_ENV
ENV_DATA = GATE_DATA_ENV
ENV_RESULTS = GATE_RESULTS_ENV
RUNNERS = ("auto", "pytest", "builtin")


def gate_source() -> str:
    """The source of the gate's test file, as shipped in the package (``gate_suite/model_gate.py``).

    Returns
    -------
    str

    Examples
    --------
    >>> "GATE_CHECKS" in gate_source()
    True
    """
    suite = resources.files("mlscale_lab.deployment") / "gate_suite" / "model_gate.py"
    return suite.read_text(encoding="utf-8")


def write_gate(directory: str | os.PathLike, X, y, config: GateConfig | None = None) -> Path:
    """Write the gate into ``directory``, ready to run.

    Writes ``test_model_gate.py``, ``gate_config.json`` (the budgets), the held-out data
    ``holdout.npz`` and a ``pytest.ini`` that keeps a pytest run self-contained.

    Parameters
    ----------
    directory : path-like
        Created if missing.
    X, y : array-like
        Held-out recent data, one label per row.
    config : GateConfig, optional
        The budgets (default ``GateConfig()``).

    Returns
    -------
    pathlib.Path
        The test file.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y) or len(y) == 0:
        raise ValueError(
            f"write_gate(X=..., y=...): expected a 2-D X with one label per row, "
            f"got X of shape {X.shape} and y of shape {y.shape}"
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
    test_file.write_text(gate_source(), encoding="utf-8")
    return test_file


@dataclass
class GateRun:
    """The outcome of one run of the gate (made by :func:`run_gate`).

    Attributes
    ----------
    passed : bool
        The run exited with 0: every check passed.
    returncode : int
        -1 when the run timed out.
    checks : dict
        Test name -> ``{"outcome": "passed" | "failed" | ..., "message": str}``.
    seconds : float
        Wall time of the run, process start included.
    summary : str
        The runner's last line, e.g. ``"2 failed, 4 passed in 1.9s"``.
    junit_xml : str
        Path of the JUnit XML report.
    runner : str
        ``"pytest"`` or ``"builtin"``.
    results : dict
        Check name (``"latency"``, not ``"test_latency"``) -> what the check measured, as
        :meth:`CheckResult.as_dict`: ``passed``, ``status``, ``value``, ``limit``, ``reason``.

    Examples
    --------
    >>> run = GateRun(False, 1, {"test_schema": {"outcome": "failed", "message": "..."}},
    ...               results={"schema": {"status": "does not hold", "reason": "..."}})
    >>> run.failed, run.inconclusive
    (['test_schema'], [])
    """

    passed: bool
    returncode: int
    checks: dict[str, dict] = field(default_factory=dict)
    seconds: float = 0.0
    summary: str = ""
    junit_xml: str = ""
    runner: str = ""
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        """Names of the tests that did not pass."""
        return [name for name, c in self.checks.items() if c["outcome"] != "passed"]

    @property
    def inconclusive(self) -> list[str]:
        """Checks that failed because their measurement could not tell (rerun where it is quiet)."""
        return [name for name, r in self.results.items() if r.get("status") == INCONCLUSIVE]

    def blocked_by(self, check: str) -> Verdict:
        """Whether this run blocked its candidate on ``check``, as a three-valued verdict.

        Holds when the check showed its budget does not hold, is inconclusive when the check
        could not tell (the candidate is held back all the same, but not shown to be at fault),
        and does not hold when the check passed.

        Parameters
        ----------
        check : str
            A check's name in the gate's table, e.g. ``"latency"``.

        Returns
        -------
        Verdict
        """
        if check not in self.results:
            raise KeyError(f"GateRun.blocked_by({check!r}): this run has no result for it; it "
                           f"has {sorted(self.results)}")
        r = self.results[check]
        claim = f"the gate blocks the candidate on its {check} check"
        status = {REFUTED: HOLDS, INCONCLUSIVE: INCONCLUSIVE}.get(r.get("status"), REFUTED)
        interval = Interval(**r["interval"]) if r.get("interval") else None
        why = (r.get("verdict_reason") or r.get("reason", "")).rstrip(".")
        # The check's own words judge the budget ("would read 'does not hold'" means the
        # candidate missed it): say whose verdict they are, or they read as this claim's.
        budget = r.get("status") or "not judged"
        return Verdict(status, claim, f"the {check} budget's own verdict is '{budget}' ({why})",
                       interval)


def gate_verdict(outcome, claim: str = "the gate passes the candidate") -> Verdict:
    """Whether a gate passed its candidate, as a three-valued verdict (the gate fails closed).

    Holds when every check passed; does not hold when a check showed its budget does not hold
    (or failed without a measurement: a model that cannot predict); inconclusive when every
    check that failed could not tell (a latency interval straddling its budget, a busy
    machine): the candidate is held back all the same, but not shown to be at fault, and the
    gate should be rerun where the machine is quiet.

    Parameters
    ----------
    outcome : GateRun or iterable of CheckResult
        A run of the gate file (:func:`run_gate`) or the checks :func:`run_checks` returned.
    claim : str
        The claim in a learner's words.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from mlscale_lab.deployment import CheckResult
    >>> ok = CheckResult("accuracy", True, 0.9, 0.8, "accuracy 0.900 >= required 0.800")
    >>> busy = CheckResult("latency", False, 1.6, 1.5, "ratio 1.6", status="inconclusive")
    >>> gate_verdict([ok]).status, gate_verdict([ok, busy]).status
    ('holds', 'inconclusive')
    """
    if isinstance(outcome, GateRun):
        if outcome.passed:
            return Verdict(HOLDS, claim, f"every check passed ({len(outcome.checks)})")
        if outcome.returncode == -1:  # timed out: a candidate that hangs, or a machine too busy
            return Verdict(INCONCLUSIVE, claim, "blocked: the gate did not finish in its time, which a "
                           "candidate that hangs and a machine too busy to run it both cause (rerun it "
                           f"on a quiet machine to tell them apart): {outcome.summary}")
        failing = []
        for test, c in outcome.checks.items():
            if c["outcome"] != "passed":
                r = outcome.results.get(test.removeprefix("test_"), {})
                failing.append((test.removeprefix("test_"), r.get("status") or REFUTED,
                                r.get("verdict_reason") or r.get("reason") or c["message"]))
        if not failing:
            failing = [("gate", REFUTED, outcome.summary or f"exit code {outcome.returncode}")]
    else:
        checks = list(outcome)
        failing = [(c.name, c.status, c.verdict_reason or c.reason) for c in checks if not c.passed]
        if not failing:
            return Verdict(HOLDS, claim, f"every check passed ({len(checks)})")
    shown = [f for f in failing if f[1] != INCONCLUSIVE]
    why = "; ".join(f"{name}: {reason.rstrip('.')}" for name, _, reason in (shown or failing))
    if shown:
        return Verdict(REFUTED, claim, f"blocked by a budget shown not to hold ({why})")
    return Verdict(INCONCLUSIVE, claim, "blocked, not shown at fault: the "
                   + ", ".join(name for name, _, _ in failing)
                   + f" check could not tell ({why}); rerun the gate where the machine is quiet")


_EXCEPTION_PREFIX = re.compile(r"^(?:[\w.]+\.)?(\w*(?:Error|Exception)): ")


def parse_junit(path: str | os.PathLike) -> dict[str, dict]:
    """Each test's outcome and reason, from a JUnit XML report (pytest's or the builtin runner's).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        ``{test name: {"outcome": "passed" | "failed" | "error" | "skipped", "message": str}}``;
        the message is the reason's first line (``AssertionError:`` and module paths dropped).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> report = Path(tmp.name) / "r.xml"
    >>> _ = report.write_text('<testsuite><testcase name="test_a"/><testcase name="test_b">'
    ...     '<failure message="AssertionError: accuracy 0.61 &lt; required 0.80&#10;assert False"/>'
    ...     '</testcase></testsuite>')
    >>> parse_junit(report)["test_b"]
    {'outcome': 'failed', 'message': 'accuracy 0.61 < required 0.80'}
    """
    import xml.etree.ElementTree as ET

    checks = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                text = (node.get("message") or node.text or "").strip()
                first = text.splitlines()[0] if text else ""  # the reason, not the traceback
                message = _EXCEPTION_PREFIX.sub(
                    lambda m: "" if m[1] == "AssertionError" else f"{m[1]}: ", first
                )
                break
        checks[case.get("name")] = {"outcome": outcome, "message": message}
    return checks


def run_gate(
    test_file: str | os.PathLike,
    candidate: str | os.PathLike,
    production: str | os.PathLike | None = None,
    *,
    timeout: float = 300.0,
    runner: str = "auto",
) -> GateRun:
    """Run the gate in a subprocess, with the artifacts passed by environment variables.

    Parameters
    ----------
    test_file : path
        The file :func:`write_gate` wrote.
    candidate, production : path
        Joblib artifacts (e.g. ``ModelRegistry.path(version)``); no production on a first deploy.
    timeout : float
        Seconds before the run is stopped; a run that times out is a failed gate.
    runner : {"auto", "pytest", "builtin"}
        ``"auto"``: pytest when the gate's Python can import it, else the gate file's own
        runner. :attr:`GateRun.runner` says which one ran.

    Returns
    -------
    GateRun
    """
    timeout = check_positive("run_gate", "timeout", timeout)
    check_choice("run_gate", "runner", runner, RUNNERS)
    test_file = Path(test_file)
    if not test_file.exists():
        raise FileNotFoundError(
            f"run_gate(test_file={str(test_file)!r}): expected the file write_gate() wrote, "
            f"got a path that does not exist"
        )
    for name, path in (("candidate", candidate), ("production", production)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(
                f"run_gate({name}={str(path)!r}): expected a joblib artifact, "
                f"got a path that does not exist"
            )
    d = test_file.parent
    xml = d / "gate-report.xml"
    xml.unlink(missing_ok=True)
    results_file = d / "gate-results.jsonl"
    results_file.unlink(missing_ok=True)
    env = dict(os.environ)
    env[ENV_CANDIDATE] = str(Path(candidate).resolve())
    env[ENV_PRODUCTION] = (
        str(Path(production).resolve()) if production else str(d / "no-production.joblib")
    )
    env[ENV_DATA] = str((d / "holdout.npz").resolve())
    env[ENV_RESULTS] = str(results_file.resolve())
    cmd = [sys.executable, str(test_file.resolve()), f"--junitxml={xml}", f"--runner={runner}"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=d)
    except subprocess.TimeoutExpired:  # a gate that hangs blocks the candidate, with the reason
        why = f"the gate did not finish within timeout={timeout:g} s"
        checks = {"gate": {"outcome": "error", "message": why}}
        return GateRun(False, -1, checks, time.perf_counter() - t0, why, runner=runner)
    seconds = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
    checks = parse_junit(xml) if xml.exists() else {}
    if not checks:
        raise RuntimeError(
            f"run_gate: the gate did not run (runner={runner!r}, exit code {proc.returncode}):\n"
            f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    results = {}
    if results_file.exists():
        for line in results_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                results[r["name"]] = r
    return GateRun(proc.returncode == 0, proc.returncode, checks, seconds,
                   lines[-1] if lines else "", str(xml), _runner_of(xml), results)


def _runner_of(report: Path) -> str:
    """pytest names its test suite "pytest"; the gate file's own runner names it "model-gate"."""
    import xml.etree.ElementTree as ET

    suite = next(ET.parse(report).getroot().iter("testsuite"), None)
    return "pytest" if suite is not None and suite.get("name") == "pytest" else "builtin"
