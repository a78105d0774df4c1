"""`import mlscale_lab` stays light: no torch, dask or matplotlib, and fast."""

import json
import subprocess
import sys

# numpy too: ~80 ms alone, and its BLAS threads spin up and count as CPU (CI once measured
# 0.317 CPU s in 0.208 s of wall time with numpy imported at the top).
HEAVY = ("torch", "dask", "distributed", "matplotlib", "ipywidgets", "sklearn", "nbgrader", "numpy")

PROBE = """
import json, sys, time
t, cpu = time.perf_counter(), time.process_time()
import mlscale_lab
import mlscale_lab.constraints, mlscale_lab.harness.cli, mlscale_lab.harness.labs, mlscale_lab.recording
elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "modules": sorted(sys.modules)}))
"""


def _probe():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_import_pulls_in_no_heavy_library():
    modules = _probe()["modules"]
    loaded = [m for m in HEAVY if m in modules]
    assert not loaded, f"`import mlscale_lab` imported {loaded}; import them where they are used"


def test_import_is_fast():
    # CPU seconds, not wall seconds: on a machine shared with other jobs the wall clock measures
    # the neighbours. Best of three, so one cold disk read does not fail the suite.
    runs = [_probe() for _ in range(3)]
    best = min(r["cpu_seconds"] for r in runs)
    assert best < 0.3, (f"import mlscale_lab (with the CLI) took {best:.3f} CPU s (budget 0.3 s; "
                        f"wall {min(r['seconds'] for r in runs):.3f} s)")
