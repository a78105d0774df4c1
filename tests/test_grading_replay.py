"""The pristine replay driver on its own (no kernel, no sandbox): what it reports for a test that
passes, fails, patches builtins or a library, loads a booby-trapped pickle, hangs or exits."""

from __future__ import annotations

import json
import subprocess
import sys

import cloudpickle
import pytest

from mlscale_lab.harness.grading._pristine import ReplayServer

EQ_ALL = "type('E', (), {'__eq__': lambda s, o: True, '__int__': lambda s: 4})()"


# Defined as a notebook defines them (module __main__), so cloudpickle ships them by value.
_NOTEBOOK = {"__name__": "__main__"}
exec(f"""
class Trap:
    def __reduce__(self):
        return (exec, ("import builtins; builtins.int = lambda *a: {EQ_ALL}",))

def double(x):
    return 2 * x
""", _NOTEBOOK)
_Trap, _double = _NOTEBOOK["Trap"], _NOTEBOOK["double"]


TESTS = {
    "passes": ("assert int(double(2)) == 4\nprint('ok', np.zeros(2).sum())", {"double": _double}),
    "fails": ("print('before')\nassert int(double(3)) == 7, 'double(3) should be 7'", {"double": _double}),
    "patches": ("import numpy\nnumpy.isclose = lambda *a, **k: True\nassert numpy.isclose(1, 2)", {}),
    "trap": ("assert int(5) == 4", {"trap": _Trap()}),
    "hangs": ("while True:\n    pass", {}),
    "exits": ("import os\nos._exit(3)", {}),
    "seeded": ("assert GRADING_SEED == 1234\nprint('seed ok')", {}),
}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    (root / "job").mkdir()
    tests = []
    for name, (source, values) in TESTS.items():
        snap = root / f"{name}.pkl"
        snap.write_bytes(cloudpickle.dumps({"values": values, "lines": {}}))
        tests.append({"grade_id": name, "source": source, "filename": f"<test {name}>", "snapshot": str(snap),
                      "pinned": {"np": ["numpy", None]}, "nonce": f"nonce-{name}"})
    server = ReplayServer(tests, job_dir=root / "job", workdir=root, env={"PATH": "/usr/bin:/bin"},
                          sandbox_prefix=[], memory_bytes=None, timeout=3, seed=1234,
                          watch={"numpy", "mlscale_lab"}, preload={"numpy"})
    try:
        assert not (root / "job" / "job.json").exists() or server.proc.poll() is None
        for i in range(len(tests)):
            assert server.run(i)
        assert not (root / "job" / "job.json").exists(), "the job (hidden tests) is off the disk"
        return server.results()
    finally:
        server.close()
        assert server.proc.poll() is not None


def test_a_passing_test_reports_its_output_and_nonce(replayed):
    r = replayed["passes"]
    assert r["passed"] and r["nonce"] == "nonce-passes" and "ok 0.0" in r["output"]


def test_a_failing_test_reports_the_error_and_its_line(replayed):
    r = replayed["fails"]
    assert not r["passed"] and r["error"]["ename"] == "AssertionError" and r["error"]["line"] == 2
    assert "double(3) should be 7" in r["error"]["evalue"] and "before" in r["output"]


def test_a_library_patched_while_the_test_runs_fails_it(replayed):
    r = replayed["patches"]
    assert not r["passed"] and any("numpy.isclose" in c for c in r["changed"])


def test_a_pickle_that_runs_code_on_load_is_caught(replayed):
    r = replayed["trap"]
    assert not r["passed"] and any("loading the answer values replaced `builtins.int`" in c for c in r["changed"])


def test_a_hanging_or_exiting_test_gives_no_verdict(replayed):
    assert replayed["hangs"]["problem"] == "timeout"
    assert "ended without a result" in replayed["exits"]["problem"]


def test_the_grading_seed_reaches_the_test(replayed):
    assert replayed["seeded"]["passed"] and "seed ok" in replayed["seeded"]["output"]


def test_the_driver_imports_only_the_standard_library_and_cloudpickle():
    import mlscale_lab.harness.grading._replay as replay

    code = (f"import runpy, sys; runpy.run_path({replay.__file__!r}, run_name='replay'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'IPython', 'nbgrader', 'mlscale_lab')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []
