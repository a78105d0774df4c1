"""The static scan (second line of defence): every lab's reference answers pass it unflagged, and
each way of tampering the grader knows of is named. Fast: no kernel runs here."""

from __future__ import annotations

import nbformat
import pytest

from mlscale_lab.harness.grading._scan import lab_names, scan_cell, scan_submission
from mlscale_lab.harness.labs import list_labs


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_reference_solutions_are_never_flagged(lab):
    nb = nbformat.read(str(lab), as_version=4)
    assert scan_submission(nb, lab_names(nb)) == []


LAB00 = next(p for p in list_labs() if p.stem.startswith("00"))

TAMPERING = {
    "input transformer": ("get_ipython().input_transformers_post.append(lambda l: ['pass\\n'])",
                          "input_transformers_post"),
    "kernel do_execute": ("k = get_ipython().kernel\nk.do_execute = lambda *a, **kw: None", "do_execute"),
    "shadowed builtin": ("int = lambda *a: 400", "builtin `int`"),
    "builtin via global": ("def f():\n    global float\n    float = str", "`float`"),
    "numpy patched": ("np.isclose = lambda *a, **k: True", "np.isclose"),
    "numpy patched by alias": ("t = np.testing\nt.assert_allclose = print", "t.assert_allclose"),
    "setattr on a module": ("setattr(np, 'allclose', lambda *a: True)", "setattr"),
    "builtins module": ("import builtins\nbuiltins.abs = lambda x: 0", "builtins"),
    "sys.modules": ("import sys\nsys.modules['numpy'] = None", "sys.modules"),
    "custom exception handler": ("get_ipython().set_custom_exc((AssertionError,), print)", "set_custom_exc"),
    "silenced traceback": ("get_ipython().showtraceback = print", "showtraceback"),
    "ast transformer": ("get_ipython().ast_transformers.append(object())", "ast_transformers"),
    "pre-run event": ("get_ipython().events.register('pre_run_cell', print)", "events"),
    "exec": ("exec('int = str')", "exec"),
    "globals()": ("globals()['int'] = str", "globals"),
    "pickling hook": ("class A:\n    def __reduce__(self):\n        return (print, ())", "__reduce__"),
    "ctypes": ("import ctypes", "ctypes"),
    "equal to anything": ("class A:\n    def __eq__(self, other):\n        return True", "__eq__"),
    "ends the test's process": ("import os\ndef f():\n    os._exit(0)", "os._exit"),
    "writes a raw descriptor": ("import os as o\ndef f():\n    o.write(3, b'{}')", "os.write"),
    "reads the process's descriptors": ("def f():\n    return open('/proc/self/fd/3')", "/proc/"),
    "finds the grader's folder": ("import os\nrun = os.environ['MPLCONFIGDIR']", "MPLCONFIGDIR"),
    "computed getattr": ("import os\nf = getattr(os, '_ex' + 'it')", "getattr"),
    "subprocess": ("import subprocess", "subprocess"),
    "a thread racing the grader": ("from threading import Thread", "threading"),
    "equal to anything (lambda)": ("class A(float):\n    __eq__ = lambda s, o: True", "__eq__"),
    "class swapped": ("def f(x):\n    x.__class__ = int\n    return x", "__class__"),
    "seeding disabled": ("np.random.seed = lambda *a: None", "np.random.seed"),
    "frames": ("import sys\nf = sys._getframe(0).f_back", "_getframe"),
    "tracing": ("import sys\nsys.settrace(print)", "settrace"),
    "lab name rebound": ("np = None", "rebinds `np`"),
    "patch inside the answer": ("def matrix_bytes(r, c, d='float32'):\n    import builtins\n"
                                "    builtins.int = lambda *a: 400\n    return 0", "builtins"),
}


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_each_kind_of_tampering_is_named(name):
    nb = nbformat.read(str(LAB00), as_version=4)
    source, word = TAMPERING[name]
    found = scan_cell(source, lab_names(nb))
    assert found, name
    if word:
        assert any(word in f for f in found), found


def test_changing_data_the_tests_read_is_named():
    lab01 = next(p for p in list_labs() if p.stem.startswith("01"))
    nb = nbformat.read(str(lab01), as_version=4)
    found = scan_cell("machines[0] = None", lab_names(nb))
    assert any("machines" in f and "tests read" in f for f in found), found


@pytest.mark.parametrize("source", [
    "def matrix_bytes(rows, cols, dtype='float32'):\n    return int(rows) * int(cols) * np.dtype(dtype).itemsize",
    "import warnings\nwarnings.filterwarnings('ignore')\nx = 1\n%timeit x + 1",
    "import pandas as pd\npd.options.display.max_rows = 5\nnp.random.seed(0)",
    "def f(model):\n    model.weight = None\n    setattr(model, 'bias', None)\n    return model",
    "for i in range(3):\n    total = i\nmy_list = [max(1, i) for i in range(3)]",
    "class P:\n    def __eq__(self, other):\n        return self.x == other.x",
])
def test_honest_code_is_not_flagged(source):
    nb = nbformat.read(str(LAB00), as_version=4)
    assert scan_cell(source, lab_names(nb)) == []


def test_findings_name_the_cell():
    nb = nbformat.read(str(LAB00), as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source += "\nint = float"
    (finding,) = scan_submission(nb, lab_names(nb))
    assert finding.startswith(answer.metadata.nbgrader["grade_id"] + ": rebinds the builtin `int`")
