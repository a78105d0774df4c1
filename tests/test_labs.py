"""Execute every lab once, headless, through the runner (as `mlscale-lab run` does), and hold
that one run to everything a lab promises (the run is shared: ``tests/lab_runs.py``; the browser
test renders the same executed notebook):

- it runs top to bottom within its time and memory budget (``metadata.mlscale.budget``), and
  leaves nothing in the temporary folder it ran with;
- its peak leaves a quarter of a Binder pod's memory free (the labs run on Binder);
- the numbers it records lie in the ranges its metadata gives (a range with ``"when"`` only
  where the record it names is true);
- every exercise's test cells pass the reference answer and reject each plausible wrong answer
  in tests/wrong_answers/ (replayed in the lab's own kernel after its last cell).
"""

import nbformat
import pytest
from exercise_trials import problems

from mlscale_lab.harness.confine import BINDER_MEMORY_BYTES, MIN_HEADROOM
from mlscale_lab.harness.labs import list_labs

LABS = list_labs()
MB = 1024**2


def _check_range(name, value, spec, results=None):
    # {"when": "other_record"}: the range holds only where that record is true (a timing claim
    # on a machine the evidence core's MachineCheck trusted; a busy or one-CPU machine says so)
    if "when" in spec and not (results or {}).get(spec["when"]):
        return
    if "equals" in spec:
        assert value == spec["equals"], f"{name} = {value!r}, expected {spec['equals']!r}"
    if "min" in spec:
        assert value >= spec["min"], f"{name} = {value!r}, expected at least {spec['min']}"
    if "max" in spec:
        assert value <= spec["max"], f"{name} = {value!r}, expected at most {spec['max']}"


@pytest.mark.slow
@pytest.mark.xdist_group("labs")  # one worker runs the labs and their gradings, one at a time
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_runs_within_budget_records_expected_numbers_and_its_tests_reject_wrong_answers(
        path, executed_labs):
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata["mlscale"]
    budget = meta["budget"]
    executed = executed_labs.get(path)
    run = executed.run  # the runner's run, with the exercise trials appended
    assert run.status == "ok", f"{path.name} failed: {run.error}"
    # run with TMPDIR pointed at an empty folder, which every temporary folder's owner emptied
    assert executed.left == [], f"{path.name} left files in the temporary folder: {executed.left[:20]}"
    # the trial cell is not the lab's: its time is part of the run, so allow it a little. The
    # budget is a quiet machine's: the time the kernel sat ready but waiting for a CPU that
    # another program held (a busy neighbour) is not the lab's (near zero on a quiet machine)
    waited = run.cpu_wait_seconds or 0.0
    assert run.seconds - waited <= budget["seconds"] * 1.1, (
        f"{path.name} took {run.seconds:.1f} s ({waited:.1f} s of it waiting for a CPU), "
        f"budget {budget['seconds']} s")
    assert run.peak_memory_bytes <= budget["peak_memory_mb"] * MB, (
        f"{path.name} peaked at {run.peak_memory_bytes / MB:.0f} MB, budget {budget['peak_memory_mb']} MB")
    binder_cap = (1 - MIN_HEADROOM) * BINDER_MEMORY_BYTES
    assert run.peak_memory_bytes <= binder_cap, (
        f"{path.name} peaked at {run.peak_memory_bytes / MB:.0f} MB: less than {MIN_HEADROOM:.0%} "
        f"of a {BINDER_MEMORY_BYTES / MB:.0f} MB Binder pod would be left free")
    missing = set(meta["records"]) - set(run.results)
    assert not missing, f"{path.name} did not record {sorted(missing)}"
    for name, spec in meta["records"].items():
        _check_range(name, run.results[name], spec, run.results)
    found = problems(nb, path.stem, run.results.get("exercise_trials", {}))
    assert not found, f"{path.name}: " + "\n".join(found)


def test_a_range_with_when_holds_only_where_its_record_is_true():
    spec = {"min": 1.2, "when": "speedup_trusted"}
    _check_range("speedup", 0.9, spec, {"speedup_trusted": False})  # a busy machine: not held
    _check_range("speedup", 1.5, spec, {"speedup_trusted": True})
    with pytest.raises(AssertionError, match="at least 1.2"):
        _check_range("speedup", 0.9, spec, {"speedup_trusted": True})
