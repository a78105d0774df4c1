"""Execute every lab headless through the runner, as `mlscale-lab run` does, and hold it to
its budget and to the ranges its metadata gives for its recorded numbers."""

import nbformat
import pytest

from mlscale_lab.harness.labs import list_labs
from mlscale_lab.harness.runner import run_lab

LABS = list_labs()
MB = 1024**2


@pytest.fixture(scope="module")
def runs():
    return {}


def _run(path, runs):
    if path.stem not in runs:
        budget = nbformat.read(path, as_version=4).metadata["mlscale"]["budget"]
        # The kill switch sits well above the budget, so an overrun is reported, not hidden.
        runs[path.stem] = run_lab(path, timeout=max(120, 3 * budget["seconds"]))
    return runs[path.stem]


def _check_range(name, value, spec):
    if "equals" in spec:
        assert value == spec["equals"], f"{name} = {value!r}, expected {spec['equals']!r}"
    if "min" in spec:
        assert value >= spec["min"], f"{name} = {value!r}, expected at least {spec['min']}"
    if "max" in spec:
        assert value <= spec["max"], f"{name} = {value!r}, expected at most {spec['max']}"


@pytest.mark.slow
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_runs_within_budget_and_records_expected_numbers(path, runs):
    meta = nbformat.read(path, as_version=4).metadata["mlscale"]
    run = _run(path, runs)
    assert run.status == "ok", f"{path.name} failed: {run.error}"
    budget = meta["budget"]
    assert run.seconds <= budget["seconds"], (
        f"{path.name} took {run.seconds:.1f} s, budget {budget['seconds']} s")
    assert run.peak_memory_bytes <= budget["peak_memory_mb"] * MB, (
        f"{path.name} peaked at {run.peak_memory_bytes / MB:.0f} MB, budget {budget['peak_memory_mb']} MB")
    missing = set(meta["records"]) - set(run.results)
    assert not missing, f"{path.name} did not record {sorted(missing)}"
    for name, spec in meta["records"].items():
        _check_range(name, run.results[name], spec)
