"""Tampering never earns points: lab 00 with a WRONG answer plus one kind of tampering each.

Each submission below gets 0 on the tampered exercise or status ``flagged`` with a reason that
names what it did; the reference keeps full marks, unflagged. Graded once (module fixture).
"""

from __future__ import annotations

import copy
import shutil

import nbformat
import pytest
from grading_kit import sandbox_kw

from mlscale_lab.harness.grading import generate_student_version, grade_submissions
from mlscale_lab.harness.labs import list_labs

pytestmark = pytest.mark.slow
LAB = next(p for p in list_labs() if p.stem.startswith("00"))
GID = "lab00-matrix-bytes"
WRONG = "def matrix_bytes(rows, cols, dtype='float32'):\n    return 400\n"
EQ_ALL = "type('E', (), {'__eq__': lambda s, o: True, '__int__': lambda s: 400})()"

# name -> (answer cell source, a word the flag must contain or None)
CASES = {
    "input_transformer": (WRONG + "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
                          "input_transformers_post"),
    "do_execute": (WRONG + "k = get_ipython().kernel\n_orig = k.do_execute\n"
                   "def _fake(code, *a, **kw):\n    return _orig('pass', *a, **kw)\nk.do_execute = _fake",
                   "do_execute"),
    "shadowed_int": (WRONG + "class _Eq(int):\n    def __eq__(self, o):\n        return True\n"
                     "    __hash__ = int.__hash__\nint = lambda *a: _Eq(0)", "builtin `int`"),
    "np_isclose": (WRONG + "np.isclose = lambda *a, **k: True", "np.isclose"),
    "ast_transformer": (WRONG + "import ast\nclass T(ast.NodeTransformer):\n"
                        "    def visit_Assert(self, node):\n        return ast.Pass()\n"
                        "get_ipython().ast_transformers.append(T())", "ast_transformers"),
    "custom_exc": (WRONG + "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)",
                   "set_custom_exc"),
    "builtins_module": (WRONG + f"import builtins\nbuiltins.int = lambda *a: {EQ_ALL}", "builtins"),
    "sys_modules": (WRONG + "import sys, types\nsys.modules['numpy'] = types.ModuleType('numpy')",
                    "sys.modules"),
    "patch_at_call_time": ("def matrix_bytes(rows, cols, dtype='float32'):\n    import builtins\n"
                           f"    builtins.int = lambda *a: {EQ_ALL}\n    return 400", "builtins"),
    "pickle_hook": ("class Evil:\n    def __reduce__(self):\n"
                    f"        return (exec, (\"import builtins; builtins.int = lambda *a: {EQ_ALL}\",))\n"
                    "evil = Evil()\ndef matrix_bytes(rows, cols, dtype='float32'):\n    evil\n    return 400",
                    "__reduce__"),
}

# Code inside an answer function runs in the replay's test process when the test calls it: it
# could try to answer for the test on the grader's channel (the note's nonce, the result pipe)
# and end the process before the test's asserts. The scan flags every step of it.
FORGE = ("import os, json, glob\n"
         "def matrix_bytes(rows, cols, dtype='float32'):\n"
         "    run = os.path.dirname(os.environ['MPLCONFIGDIR'])\n"
         "    notes = [json.load(open(f)) for f in glob.glob(run + '/snapshots/*.json')]\n"
         "    for fd in os.listdir('/proc/self/fd'):\n"
         "        for note in notes:\n"
         "            try:\n"
         "                os.write(int(fd), json.dumps({'nonce': note.get('nonce'), 'passed': True,\n"
         "                    'error': None, 'changed': [], 'load_error': None, 'output': ''}).encode())\n"
         "            except Exception:\n"
         "                pass\n"
         "    os._exit(0)\n")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("tamper")
    subs = root / "subs"
    student = generate_student_version(LAB)
    (subs / "reference").mkdir(parents=True)
    shutil.copyfile(LAB, subs / "reference" / LAB.name)
    # The forging submission also writes into every descriptor of the learner's own kernel (its
    # sockets) and ends it: it is graded with the sandbox off too (the grader must survive it).
    for name, (source, _) in {"wrong": (WRONG, None), "forge": (FORGE, None), **CASES}.items():
        nb = copy.deepcopy(student)
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == GID).source = source
        (subs / name).mkdir()
        nbformat.write(nb, str(subs / name / LAB.name))
    results = grade_submissions(subs, root / "out", workers=2, timeout=60, budget=300, progress=False,
                                **sandbox_kw())
    return {r.student: r for r in results}


def test_reference_keeps_full_marks_unflagged_and_wrong_answer_scores_zero(graded):
    ref = graded["reference"]
    assert ref.status == "graded" and not ref.flags, ref.reason
    assert ref.points == ref.max_points > 0
    assert graded["wrong"].status == "graded" and graded["wrong"].points == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_tampering_scores_zero_and_is_flagged_with_what_it_did(graded, name):
    r = graded[name]
    assert r.points == 0, (name, r.status, r.reason, r.cells)
    word = CASES[name][1]
    assert r.flags and any(word in f for f in r.flags), (name, r.flags)
    assert r.status in ("flagged", "kernel_died"), (name, r.status)
    assert word in r.reason


def test_answering_for_the_test_on_the_graders_channel_is_flagged_and_not_counted(graded, tmp_path):
    r = graded["forge"]
    assert r.status in ("flagged", "kernel_died"), (r.status, r.reason)
    assert any("os._exit" in f for f in r.flags) and any("/proc/" in f for f in r.flags), r.flags
