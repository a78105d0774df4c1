"""Optional imports the package's own processes skip: notebooks still read and validate, the
command line never loads them, and a process that did not ask is left as it was."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlscale_lab._core.imports import SLOW_OPTIONAL_IMPORTS

PROBE = """
import json, sys
{setup}
import nbformat
from nbformat.v4 import new_code_cell, new_notebook
nbformat.validate(new_notebook(cells=[new_code_cell("x = 1")]))
print(json.dumps({{n: sys.modules.get(n, "absent") is not None and n in sys.modules for n in {names!r}}}))
"""


def _loaded(setup: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(setup=setup, names=SLOW_OPTIONAL_IMPORTS)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_skipped_imports_leave_notebooks_readable_and_are_never_loaded():
    skipped = _loaded("from mlscale_lab._core.imports import skip_slow_optional_imports\n"
                      "skip_slow_optional_imports()")
    assert skipped == dict.fromkeys(SLOW_OPTIONAL_IMPORTS, False)


def test_the_command_line_skips_them_before_reading_a_notebook(tmp_path):
    # `lint` reads every lab with nbformat; the probe then asks what got loaded
    setup = ("from mlscale_lab.harness.cli import main\n"
             "import contextlib, io\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    main(['lint'])")
    assert _loaded(setup) == dict.fromkeys(SLOW_OPTIONAL_IMPORTS, False)


def test_a_process_that_does_not_ask_imports_what_is_installed():
    # a fresh interpreter: this test process skipped them itself (tests/conftest.py)
    code = ("import importlib.util, json\n"
            f"print(json.dumps([n for n in {SLOW_OPTIONAL_IMPORTS!r} if importlib.util.find_spec(n)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    installed = set(json.loads(out))
    if not installed:
        pytest.skip("none of the skipped libraries is installed here")
    assert _loaded("") == {n: n in installed for n in SLOW_OPTIONAL_IMPORTS}
