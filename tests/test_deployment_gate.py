import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier

from mlscale_lab import deployment as gate
from mlscale_lab.deployment import full_retrain, make_stream, sgd_model


@pytest.fixture(scope="module")
def data():
    s = make_stream("sudden", 9000, [3000], seed=11)
    X, y = s.X, s.y
    good = full_retrain(X[3000:7000], y[3000:7000])
    stale = full_retrain(X[:3000], y[:3000])  # trained before the drift: a regression today
    # Probability calibration over 5 folds: as accurate and small, but every prediction runs
    # five models and their calibrators: a latency regression only the latency check sees.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = CalibratedClassifierCV(sgd_model(0), cv=5).fit(X[3000:7000], y[3000:7000])
    return {"X": X[7000:], "y": y[7000:], "good": good, "stale": stale, "calibrated": calibrated}


class Crashes:
    """A candidate whose predict raises (e.g. a feature pipeline that changed)."""

    n_features_in_ = 10

    def predict(self, X):
        raise KeyError("column 'age' not found")


class WrongShape:
    def predict(self, X):
        return np.zeros((len(X), 2))


def _by_name(results):
    return {r.name: r for r in results}


def test_good_candidate_passes_every_check(data):
    res = _by_name(gate.run_checks(data["good"], data["stale"], data["X"], data["y"]))
    assert all(r.passed for r in res.values()), [r for r in res.values() if not r.passed]
    assert res["accuracy"].value > 0.85
    assert res["no_regression"].value < 0  # better than production: a negative drop


def test_regressed_candidate_fails_accuracy_and_regression(data):
    res = _by_name(gate.run_checks(data["stale"], data["good"], data["X"], data["y"]))
    assert not res["accuracy"].passed and not res["no_regression"].passed
    assert "beyond" in res["no_regression"].reason
    assert res["schema"].passed  # it is a working model, just a worse one


def test_margin_decides_a_small_regression(data):
    X, y = data["X"], data["y"]
    acc = data["good"].score(X, y)
    # Flip a few of the good model's right answers into the labels: the same model scores lower.
    tight = gate.check_no_regression(data["good"], data["good"], X, y, max_regression=0.0)
    assert tight.passed and tight.value == pytest.approx(0.0)
    worse = DummyClassifier(strategy="constant", constant=1).fit(X, y)
    drop = acc - worse.score(X, y)
    assert gate.check_no_regression(worse, data["good"], X, y, max_regression=drop + 0.01).passed
    assert not gate.check_no_regression(
        worse, data["good"], X, y, max_regression=drop - 0.01
    ).passed


@pytest.mark.parametrize("model, words", [(Crashes(), "KeyError"), (WrongShape(), "shape")])
def test_a_model_that_cannot_predict_fails_with_the_reason(data, model, words):
    res = gate.run_checks(model, data["good"], data["X"], data["y"])
    failed = {r.name: r.reason for r in res if not r.passed}
    assert {"schema", "accuracy", "no_regression", "latency", "invariance"} <= set(failed)
    assert words in failed["schema"]


def test_schema_catches_a_feature_count_mismatch(data):
    narrow = DummyClassifier().fit(data["X"][:, :4], data["y"])
    r = gate.check_schema(narrow, data["X"], classes=[0, 1])
    assert not r.passed and "expects 4 features" in r.reason
    labels = DummyClassifier(strategy="constant", constant=7).fit(
        data["X"], np.full(len(data["y"]), 7)
    )
    r = gate.check_schema(labels, data["X"], classes=[0, 1])
    assert not r.passed and "[7]" in r.reason


def test_size_budget_bites(data):
    assert not gate.check_size(data["good"], max_bytes=10).passed
    assert gate.check_size(data["good"], max_bytes=10**6).passed


def test_latency_budget_is_scaled_to_the_model_it_replaces(data, monkeypatch):
    import mlscale_lab.evidence._machine as machine

    # the budget's arithmetic, on a machine taken as quiet (a busy one makes every latency
    # check inconclusive, not passed: the next test); the timings themselves are real
    monkeypatch.setattr(machine.MachineCheck, "_reasons", lambda self, **kw: iter([]))
    good, X = data["good"], data["X"]
    same = gate.check_latency(good, data["stale"], X)  # same kind of model: ratio near 1
    assert same.passed and same.status == "holds" and 0.7 < same.value < 1.4, same
    # the calibrated candidate takes milliseconds where production takes a tenth of one: the old
    # fixed 100 ms budget let it through; scaled to production, the gate blocks it
    slow = gate.check_latency(data["calibrated"], good, X)
    assert not slow.passed and slow.value > 10, slow
    assert slow.status in ("does not hold", "inconclusive")
    assert slow.interval["low"] <= slow.value <= slow.interval["high"]
    assert "paired bootstrap of the ratio" in slow.reason
    assert gate.check_latency(data["calibrated"], None, X).passed  # what 100 ms alone said
    # the same candidate judged on a budget it meets passes
    assert gate.check_latency(data["calibrated"], good, X, max_ratio=10_000).passed
    # a first deployment: nothing to compare with, held to an absolute p95
    first = gate.check_latency(good, None, X)
    assert first.passed and first.limit == 100.0 and "no production model" in first.reason
    assert not gate.check_latency(good, None, X, max_p95_ms=0.001).passed


def test_a_latency_regression_on_a_busy_machine_is_inconclusive_not_passed(data, monkeypatch):
    import mlscale_lab.evidence._machine as machine

    monkeypatch.setattr(machine.MachineCheck, "_reasons",
                        lambda self, **kw: iter(["other processes took 1.00 CPUs"]))
    good = data["good"]
    slow = gate.check_latency(data["calibrated"], good, data["X"])
    assert not slow.passed and slow.inconclusive and "other processes took 1.00 CPUs" in slow.reason
    # a candidate shown within budget still passes: noise only ever adds time to a call
    assert gate.check_latency(good, data["stale"], data["X"]).passed


def test_the_gate_is_a_table_one_test_per_row(gate_dir):
    names = [c.name for c in gate.GATE_CHECKS]
    assert names == ["schema", "accuracy", "no_regression", "latency", "artifact_size", "invariance"]
    budgets = [b.name for c in gate.GATE_CHECKS for b in c.budgets]
    assert sorted(budgets) == sorted(gate.GateConfig().as_dict())  # the config is the table's
    d, test_file = gate_dir
    run = gate.run_gate(test_file, d / "good.joblib", d / "stale.joblib", runner="builtin")
    assert list(run.checks) == [f"test_{n}" for n in names]
    assert list(run.results) == names and run.results["accuracy"]["value"] > 0.85


def test_a_new_row_in_the_table_is_a_new_check_in_process_and_in_the_gate_file(
        gate_dir, data, monkeypatch, tmp_path):
    """Adding a check is one entry: its budget joins the config, run_checks and the gate run it."""
    import mlscale_lab.deployment._gate_checks as table

    def check_two_classes(c, b):
        seen = len(set(np.asarray(c.candidate.predict(c.X)).tolist()))
        return gate.CheckResult("two_classes", seen >= b.min_classes, float(seen),
                                float(b.min_classes), f"{seen} classes predicted")

    row = gate.GateCheck("two_classes", "Predicts both classes.", check_two_classes,
                         (gate.Budget("min_classes", 2, "count", "classes predicted, at least"),))
    monkeypatch.setattr(table, "GATE_CHECKS", (*table.GATE_CHECKS, row))
    assert gate.GateConfig(min_classes=3).min_classes == 3
    results = {r.name: r for r in gate.run_checks(data["good"], None, data["X"], data["y"])}
    assert results["two_classes"].passed
    ones = DummyClassifier(strategy="constant", constant=1).fit(data["X"], data["y"])
    assert not {r.name: r for r in gate.run_checks(ones, None, data["X"], data["y"])}["two_classes"].passed


def test_invariance_flags_a_model_that_reacts_to_noise(data):
    class Jumpy:
        """Predicts from the 6th decimal of the first feature: noise flips it half the time."""

        def predict(self, X):
            return (np.floor(np.asarray(X)[:, 0] * 1e6) % 2).astype(int)

    assert not gate.check_invariance(Jumpy(), data["X"]).passed
    assert gate.check_invariance(data["good"], data["X"]).passed


def test_gate_config_checks_and_round_trips(tmp_path):
    with pytest.raises(ValueError, match="min_accuracy"):
        gate.GateConfig(min_accuracy=1.5)
    with pytest.raises(ValueError, match="max_regression"):
        gate.GateConfig(max_regression=-0.1)
    with pytest.raises(ValueError, match="max_latency_ratio"):
        gate.GateConfig(max_latency_ratio=0)
    with pytest.raises(TypeError, match="no such budget"):
        gate.GateConfig(max_p95=3)
    with pytest.raises(AttributeError, match="frozen"):
        gate.GateConfig().min_accuracy = 0.5
    cfg = gate.GateConfig(min_accuracy=0.7)
    p = tmp_path / "c.json"
    p.write_text(__import__("json").dumps(cfg.as_dict()))
    assert gate.GateConfig.from_json(p) == cfg


@pytest.fixture(scope="module")
def gate_dir(data, tmp_path_factory):
    d = tmp_path_factory.mktemp("ws")
    test_file = gate.write_gate(d / "gate", data["X"], data["y"])
    for name in ("good", "stale", "calibrated"):
        joblib.dump(data[name], d / f"{name}.joblib")
    joblib.dump(Crashes(), d / "crashes.joblib")
    return d, test_file


RUNNERS = ["pytest", "builtin"]


@pytest.mark.parametrize("runner", RUNNERS)
def test_gate_passes_a_good_candidate(gate_dir, runner):
    d, test_file = gate_dir
    run = gate.run_gate(test_file, d / "good.joblib", d / "stale.joblib", runner=runner)
    # the failing checks in full (the run's repr is cut off before them in a CI log)
    failing = {name: run.checks[name] for name in run.failed}
    assert run.passed and run.returncode == 0, (run.returncode, run.summary, failing)
    assert len(run.checks) == 6 and run.failed == [] and run.runner == runner
    assert "6 passed" in run.summary


@pytest.mark.parametrize("runner", RUNNERS)
def test_gate_blocks_a_regression_and_says_why(gate_dir, runner):
    d, test_file = gate_dir
    run = gate.run_gate(test_file, d / "stale.joblib", d / "good.joblib", runner=runner)
    assert not run.passed and run.returncode == 1
    assert set(run.failed) == {"test_accuracy", "test_no_regression"}
    message = run.checks["test_no_regression"]["message"]
    assert message.startswith("candidate ") and "beyond the allowed" in message
    assert "2 failed, 4 passed" in run.summary


@pytest.mark.parametrize("runner", RUNNERS)
def test_gate_fails_a_model_that_cannot_take_the_schema(gate_dir, data, runner):
    d, test_file = gate_dir
    narrow = full_retrain(data["X"][:, :4], data["y"])  # trained on 4 features, served 10
    joblib.dump(narrow, d / "narrow.joblib")
    run = gate.run_gate(test_file, d / "narrow.joblib", runner=runner)  # first deploy
    assert not run.passed
    assert run.checks["test_schema"]["outcome"] == "failed"
    assert run.checks["test_schema"]["message"] == "model expects 4 features, the schema has 10"
    assert "features" in run.checks["test_accuracy"]["message"]
    assert run.checks["test_artifact_size"]["outcome"] == "passed"


@pytest.mark.parametrize("runner", RUNNERS)
def test_gate_blocks_a_latency_regression_the_old_fixed_budget_let_through(gate_dir, data, runner):
    d, test_file = gate_dir
    run = gate.run_gate(test_file, d / "calibrated.joblib", d / "good.joblib", runner=runner)
    assert not run.passed and run.failed == ["test_latency"], run.checks
    latency = run.results["latency"]
    assert latency["value"] > 10 and latency["limit"] == 1.5
    verdict = run.blocked_by("latency")
    assert verdict.status in ("holds", "inconclusive") and verdict.interval.low > 1
    if verdict.holds:
        assert latency["status"] == "does not hold" and verdict.interval.low > 1.5
    assert run.blocked_by("accuracy").refuted  # it is as accurate as the good model
    with pytest.raises(KeyError, match="no result"):
        run.blocked_by("speed")


@pytest.mark.parametrize("runner", RUNNERS)
def test_gate_reports_an_artifact_it_cannot_load(gate_dir, runner):
    d, test_file = gate_dir
    # Crashes lives in this test module, which the gate's subprocess cannot import.
    run = gate.run_gate(test_file, d / "crashes.joblib", runner=runner)
    assert not run.passed
    assert run.checks["test_schema"]["outcome"] == "failed"
    assert run.checks["test_schema"]["message"].startswith("ArtifactError: cannot load crashes.joblib")


def test_gate_runs_where_pytest_is_not_installed(gate_dir, tmp_path, monkeypatch):
    """``pip install mlscale-lab`` alone, or Binder: pytest is a dev tool, not a dependency."""
    d, test_file = gate_dir
    hide = tmp_path / "no_pytest"
    hide.mkdir()
    (hide / "pytest.py").write_text("raise ImportError('pytest is hidden for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(hide))
    good = gate.run_gate(test_file, d / "good.joblib", d / "stale.joblib")
    assert good.passed and good.runner == "builtin" and "6 passed" in good.summary
    bad = gate.run_gate(test_file, d / "stale.joblib", d / "good.joblib")
    assert not bad.passed and set(bad.failed) == {"test_accuracy", "test_no_regression"}
    with pytest.raises(RuntimeError, match="pytest is not installed"):
        gate.run_gate(test_file, d / "good.joblib", runner="pytest")


def test_gate_picks_pytest_when_it_is_there(gate_dir):
    d, test_file = gate_dir
    assert gate.run_gate(test_file, d / "good.joblib").runner == "pytest"


def test_the_gate_file_ships_inside_the_package():
    from importlib import resources

    shipped = resources.files("mlscale_lab.deployment") / "gate_suite" / "model_gate.py"
    assert shipped.is_file()
    source = gate.gate_source()
    assert source == shipped.read_text(encoding="utf-8")
    assert "import pytest\n" not in source.split("def main")[0]  # pytest only when present
    compile(source, "model_gate.py", "exec")


@pytest.mark.slow
def test_the_built_wheel_holds_the_gate_file(tmp_path):
    """hatch packs every file under mlscale_lab/, so the gate file travels in the wheel."""
    import subprocess
    import sys
    import zipfile

    pytest.importorskip("hatchling", reason="pip install hatchling to build the wheel offline")
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", str(root), "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("mlscale_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "mlscale_lab/deployment/gate_suite/model_gate.py" in names


def test_run_gate_refuses_missing_files(gate_dir):
    d, test_file = gate_dir
    with pytest.raises(FileNotFoundError, match="candidate"):
        gate.run_gate(test_file, d / "nope.joblib")
    with pytest.raises(FileNotFoundError, match="test_file"):
        gate.run_gate(d / "missing.py", d / "good.joblib")


def test_ci_workflow_runs_the_same_gate_and_parses(gate_dir):
    yaml = pytest.importorskip("yaml")
    d, test_file = gate_dir
    wf = gate.write_ci_workflow(d, test_file)
    assert wf == d / ".github" / "workflows" / "model-gate.yml"
    doc = gate.validate_workflow(wf)
    assert set(doc["on"]) == {"push", "pull_request"}
    runs = [s.get("run", "") for s in doc["jobs"]["gate"]["steps"]]
    assert any("pytest gate/test_model_gate.py" in r for r in runs)
    bad = d / "bad.yml"
    bad.write_text("name: x\non: push\njobs: {}\n")  # bare `on` is the boolean True in YAML 1.1
    assert yaml.safe_load(bad.read_text()).get(True) == "push"
    with pytest.raises(ValueError, match="'on'"):
        gate.validate_workflow(bad)


def test_ci_workflow_needs_the_gate_inside_the_workspace(tmp_path, gate_dir):
    _, test_file = gate_dir
    with pytest.raises(ValueError, match="inside workspace"):
        gate.write_ci_workflow(tmp_path / "elsewhere", test_file)


def test_a_gate_that_runs_out_of_time_blocks_the_candidate(gate_dir):
    d, test_file = gate_dir
    run = gate.run_gate(test_file, d / "good.joblib", timeout=0.05)
    assert not run.passed and run.returncode == -1
    assert "timeout=0.05" in run.checks["gate"]["message"]
    with pytest.raises(ValueError, match="timeout"):
        gate.run_gate(test_file, d / "good.joblib", timeout=0)


def _install_lines(doc):
    return [line.strip() for step in doc["jobs"]["gate"]["steps"]
            for line in step.get("run", "").splitlines() if "pip install" in line]


def test_ci_workflow_installs_the_cpu_build_of_torch_within_the_package_bounds(gate_dir):
    import re
    import tomllib

    pytest.importorskip("yaml")
    d, test_file = gate_dir
    doc = gate.validate_workflow(gate.write_ci_workflow(d, test_file))
    first, then = _install_lines(doc)
    # torch first, from the CPU index and within the package's bounds: pip then finds it
    # satisfied when it installs mlscale-lab, and never fetches PyPI's multi-GB CUDA build.
    assert f'"{gate.TORCH_REQUIREMENT}"' in first
    assert f"--index-url {gate.TORCH_CPU_INDEX}" in first
    assert "mlscale-lab" in then and "torch" not in then and "--extra-index-url" not in then
    import mlscale_lab

    assert f'"mlscale-lab=={mlscale_lab.__version__}"' in then  # the library the gate file was written for
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    torch = [r for r in pyproject["project"]["dependencies"] if re.match(r"torch\b", r)]
    assert torch == [gate.TORCH_REQUIREMENT]


def _run_workflow_offline(doc, repo):
    """Run the workflow's `run:` steps in ``repo`` with this Python, skipping installs."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    codes = []
    for step in doc["jobs"]["gate"]["steps"]:
        if "run" not in step or "pip install" in step["run"]:
            continue  # actions (`uses:`) and installs need GitHub and the network
        step_env = {**env, **{k: str(v) for k, v in step.get("env", {}).items()}}
        proc = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=step_env,
                              capture_output=True, text=True, timeout=300)
        codes.append((step.get("name"), proc.returncode, proc.stdout[-600:]))
    return codes


def test_ci_workflow_steps_pass_the_good_model_and_fail_the_regression(data, tmp_path):
    import shutil

    pytest.importorskip("yaml")
    repo = tmp_path / "repo"
    test_file = gate.write_gate(repo / "gate", data["X"], data["y"])
    doc = gate.validate_workflow(gate.write_ci_workflow(repo, test_file))
    if shutil.which("git"):
        import subprocess

        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    joblib.dump(data["stale"], repo / "gate" / "production.joblib")
    joblib.dump(data["good"], repo / "gate" / "candidate.joblib")
    (step, code, out), = _run_workflow_offline(doc, repo)
    assert step == "Model gate" and code == 0, out
    assert "6 passed" in out and (repo / "gate-report.xml").exists()
    assert gate.parse_junit(repo / "gate-report.xml")["test_no_regression"]["outcome"] == "passed"

    joblib.dump(data["good"], repo / "gate" / "production.joblib")
    joblib.dump(data["stale"], repo / "gate" / "candidate.joblib")
    (step, code, out), = _run_workflow_offline(doc, repo)
    assert code == 1, out
    failed = {n for n, c in gate.parse_junit(repo / "gate-report.xml").items()
              if c["outcome"] == "failed"}
    assert failed == {"test_accuracy", "test_no_regression"}


def test_lab04_latency_regression_checkpoint_fails_when_the_gate_lets_the_slow_candidate_through():
    from types import SimpleNamespace

    from checkpoints import run_checkpoint

    from mlscale_lab import evidence

    def ns(latency_status, failed=("test_latency",)):
        checks = {f"test_{c.name}": {"outcome": "failed" if f"test_{c.name}" in failed else "passed",
                                     "message": ""} for c in gate.GATE_CHECKS}
        results = {"latency": {"name": "latency", "status": latency_status, "reason": "ratio 70",
                               "value": 70.0}}
        run = gate.GateRun(not failed, 1 if failed else 0, checks, results=results)
        return {"checkpoint": evidence.checkpoint, "blocked": run.blocked_by("latency"),
                "slow_run": run, "registry": SimpleNamespace(production="v2"), "serving": "v2"}

    run_checkpoint("04", "lab04-slow-check", ns("does not hold"))
    run_checkpoint("04", "lab04-slow-check", ns("inconclusive"))  # blocked, not shown at fault
    with pytest.raises(AssertionError, match="does not hold: the gate blocks the candidate"):
        run_checkpoint("04", "lab04-slow-check", ns("holds", failed=()))
    with pytest.raises(AssertionError, match="only the latency check should fail"):
        run_checkpoint("04", "lab04-slow-check", ns("does not hold", ("test_accuracy", "test_latency")))


def test_a_blocked_verdict_says_the_budget_s_verdict_is_the_budget_s():
    """The latency check's words judge the budget: "would read 'does not hold'" there means
    the candidate missed it; the blocking verdict quotes them as the budget's, so a learner
    does not read that the gate failed to block."""
    results = {"latency": {"name": "latency", "status": "inconclusive", "value": 18.9,
                           "verdict_reason": "would read 'does not hold', but this machine "
                                             "cannot be trusted now: others took 1.3 CPUs."}}
    checks = {"test_latency": {"outcome": "failed", "message": ""}}
    verdict = gate.GateRun(False, 1, checks, results=results).blocked_by("latency")
    assert verdict.inconclusive
    assert verdict.reason.startswith("the latency budget's own verdict is 'inconclusive' "
                                     "(would read 'does not hold'"), verdict.reason


def _run(checks, results=None, returncode=None, summary=""):
    """A GateRun with these test outcomes ({"latency": "failed", ...}) and check results."""
    tests = {f"test_{name}": {"outcome": outcome, "message": f"{name} {outcome}"}
             for name, outcome in checks.items()}
    passed = all(o == "passed" for o in checks.values())
    code = returncode if returncode is not None else (0 if passed else 1)
    return gate.GateRun(passed and code == 0, code, tests, summary=summary, results=results or {})


def test_gate_verdict_reads_a_gate_as_passed_blocked_or_not_shown_at_fault():
    ok = gate.CheckResult("accuracy", True, 0.9, 0.8, "accuracy 0.900 >= required 0.800")
    slow = gate.CheckResult("latency", False, 3.0, 1.5, "ratio 3", status="does not hold",
                            verdict_reason="the interval lies above 1.5")
    busy = gate.CheckResult("latency", False, 1.6, 1.5, "ratio 1.6", status="inconclusive",
                            verdict_reason="would read 'does not hold', but this machine is busy")
    assert gate.gate_verdict([ok]).holds
    assert gate.gate_verdict([ok, slow]).refuted
    v = gate.gate_verdict([ok, busy], "the gate passes v2")
    assert v.inconclusive and v.claim == "the gate passes v2"
    assert "latency check could not tell" in v.reason and "machine is busy" in v.reason
    # one budget shown not to hold is the candidate's fault, whatever else could not tell
    assert gate.gate_verdict([busy, gate.CheckResult("schema", False, 8, 10, "8 features")]).refuted
    # the same from a run of the gate file: its results say which failures could not tell
    assert gate.gate_verdict(_run({"accuracy": "passed", "latency": "passed"})).holds
    assert gate.gate_verdict(_run({"accuracy": "passed", "latency": "failed"},
                                  {"latency": busy.as_dict()})).inconclusive
    assert gate.gate_verdict(_run({"accuracy": "passed", "latency": "failed"},
                                  {"latency": slow.as_dict()})).refuted
    # a test that failed without a result (an error in the gate) counts as shown
    assert gate.gate_verdict(_run({"accuracy": "error", "latency": "passed"})).refuted
    # a gate that timed out measured nothing: blocked, and the reason names both causes
    timed_out = _run({"gate": "error"}, returncode=-1, summary="did not finish within 300 s")
    verdict = gate.gate_verdict(timed_out)
    assert verdict.inconclusive and "hangs" in verdict.reason and "busy" in verdict.reason


def _lab04_gate_cells(tmp_path, latency_status, promote_by_hand=False):
    """Run lab 04's first gate cells (lab04-30, -32, -33) with the latency check's verdict chosen:
    the registry, models and other checks are real."""
    from checkpoints import run_cells

    from mlscale_lab import evidence, record

    def run_checks(candidate, production, X, y, config=None):
        checks = gate.run_checks(candidate, production, X, y, config)
        status = latency_status if all(c.passed for c in checks if c.name != "latency") else None
        if status is None:  # a broken candidate (lab04-32): its real checks
            return checks
        latency = gate.CheckResult("latency", status == "holds", 1.0, 1.5, f"ratio 1.0: {status}",
                                   status=status, verdict_reason=f"the latency verdict is {status}")
        return [latency if c.name == "latency" else c for c in checks]

    import time

    ns = {"checkpoint": evidence.checkpoint, "record": record, "time": time, "SEED": 0,
          "WORKSPACE": tmp_path, "make_stream": make_stream, "full_retrain": full_retrain,
          "ModelRegistry": gate.ModelRegistry, "GateConfig": gate.GateConfig,
          "run_checks": run_checks, "gate_verdict": gate.gate_verdict}
    ns = run_cells("04", ["lab04-30", "lab04-32"], ns)
    if promote_by_hand:  # an operator overrides the gate
        ns["registry"].promote(ns["v2"])
    return run_cells("04", ["lab04-33"], ns)


def test_lab04_first_gate_checkpoint_fails_on_a_wrong_block_or_promotion_not_on_a_busy_machine(
        tmp_path, capsys):
    ns = _lab04_gate_cells(tmp_path / "quiet", "holds")
    assert ns["registry"].production == ns["v2"] == ns["serving"] and ns["first_gate"].holds
    # a busy machine: the latency check could not tell; v2 is blocked, v1 serves, the cell says why
    capsys.readouterr()
    ns = _lab04_gate_cells(tmp_path / "busy", "inconclusive")
    out = capsys.readouterr().out
    assert ns["registry"].production == ns["v1"] == ns["serving"]
    assert "inconclusive: the gate passes the model retrained after the drift" in out
    assert "latency check could not tell" in out
    # a gate that refuses the good model on a quiet machine is wrong: the checkpoint fails
    with pytest.raises(AssertionError, match="does not hold: the gate passes the model retrained"):
        _lab04_gate_cells(tmp_path / "wrong", "does not hold")
    # a promotion the gate did not grant fails
    with pytest.raises(AssertionError, match="a model it blocked must not"):
        _lab04_gate_cells(tmp_path / "override", "inconclusive", promote_by_hand=True)
