"""The headless runner: fresh kernel per lab, time, peak memory, records, failures named."""

import json
import subprocess

import pytest

from mlscale_lab.harness.labs import UnknownLabError, resolve_labs
from mlscale_lab.harness.runner import format_table, run_lab, run_labs


def test_ok_lab_reports_its_records(tiny_labs):
    run = run_lab(tiny_labs / "00_ok.ipynb", budget=120)
    assert run.status == "ok", run.error
    assert run.results == {"answer": 42}
    assert run.seconds > 0
    assert run.peak_memory_bytes > 20 * 1024**2  # an IPython kernel is tens of MB at least


def test_peak_memory_sees_what_the_kernel_allocates(tiny_labs):
    run = run_lab(tiny_labs / "02_alloc.ipynb", budget=120)
    assert run.status == "ok", run.error
    assert run.peak_memory_bytes > 150 * 1024**2


def test_failing_lab_names_cell_and_error_and_others_still_run(tiny_labs):
    runs = run_labs(resolve_labs(None), budget=120)
    by_name = {r.name: r for r in runs}
    broken = by_name["01_broken"]
    assert broken.status == "failed"
    assert broken.failed_cell == 1
    assert "ValueError: deliberate failure" in broken.error and "cell 1" in broken.error
    assert "never" not in broken.results
    assert by_name["00_ok"].status == "ok" and by_name["02_alloc"].status == "ok"
    table = format_table(runs)
    assert "01_broken" in table and "failed" in table and "answer = 42" in table


def test_lab_over_its_time_budget_is_stopped(tmp_path):
    from tests.conftest import make_notebook

    nb = make_notebook(tmp_path / "00_slow.ipynb", "import time\ntime.sleep(60)")
    run = run_lab(nb, budget=3)
    assert run.status == "failed"
    assert run.seconds < 30
    assert "timeout" in run.error or "budget" in run.error


def test_resolve_by_number_stem_or_path(tiny_labs):
    assert [p.stem for p in resolve_labs(["1"])] == ["01_broken"]
    assert [p.stem for p in resolve_labs(["02_alloc", "00"])] == ["02_alloc", "00_ok"]
    with pytest.raises(UnknownLabError, match="00_ok, 01_broken, 02_alloc"):
        resolve_labs(["07"])


def test_cli_run_unknown_lab_lists_labs_exit_2(tiny_labs, cli_env):
    out = subprocess.run([*cli_env, "run", "99"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "00_ok" in out.stderr and "unknown lab '99'" in out.stderr


def test_cli_run_writes_report_and_fails_on_broken_lab(tiny_labs, cli_env, tmp_path):
    report = tmp_path / "r.json"
    out = subprocess.run([*cli_env, "run", "00", "01", "--report", str(report)],
                         capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    data = json.loads(report.read_text())
    labs = {lab["name"]: lab for lab in data["labs"]}
    assert set(labs["00_ok"]) >= {"name", "status", "seconds", "peak_memory_bytes", "results", "error"}
    assert labs["00_ok"]["status"] == "ok" and labs["00_ok"]["results"] == {"answer": 42}
    assert labs["01_broken"]["status"] == "failed"
    assert "deliberate failure" in labs["01_broken"]["error"]
