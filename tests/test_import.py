"""`import mlscale_lab` stays light: no torch, dask or matplotlib, and fast."""

import json
import subprocess
import sys

HEAVY = ("torch", "dask", "distributed", "matplotlib", "ipywidgets", "sklearn", "nbgrader")

PROBE = """
import json, sys, time
t = time.perf_counter()
import mlscale_lab
import mlscale_lab.constraints, mlscale_lab.harness.cli, mlscale_lab.harness.labs, mlscale_lab.recording
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "modules": sorted(sys.modules)}))
"""


def _probe():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_import_pulls_in_no_heavy_library():
    modules = _probe()["modules"]
    loaded = [m for m in HEAVY if m in modules]
    assert not loaded, f"`import mlscale_lab` imported {loaded}; import them where they are used"


def test_import_is_fast():
    # Best of three, so one slow disk read does not fail the suite; the budget is 0.3 s.
    best = min(_probe()["seconds"] for _ in range(3))
    assert best < 0.3, f"import mlscale_lab took {best:.3f} s (budget 0.3 s)"
