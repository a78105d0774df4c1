"""Learner code never runs in the test's process: lab 00 graded with a WRONG answer (it ignores
the dtype) whose function, when the test calls it, tries to speak for the test by a route the
static scan does not list. Each scores 0 (the scan may or may not also flag it); the reference
keeps full marks, unflagged. Graded once (module fixture), in the sandbox where bubblewrap works.

The first case is the attack this design was built against: through the call stack,
with no module or attribute name the scan knows, the answer rebinds ``int`` in the test's own
namespace, so every ``int(...) == ...`` of the test holds. Before learner calls ran in a process
of their own it scored 2/2 with status ``graded``.
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
SIGNATURE = "def matrix_bytes(rows, cols, dtype='float32'):\n"
CHECK = "    if rows < 0 or cols < 0:\n        raise ValueError('negative')\n"
WRONG_BODY = CHECK + "    return int(rows) * int(cols) * 4\n"  # ignores the dtype
# An int that equals everything, built without a constant-returning dunder the scan reads.
LIAR = ("class Liar(int):\n"
        "    def __eq__(self, other):\n"
        "        return other == other\n"
        "    __hash__ = int.__hash__\n")
# Walks the caller's frames with names the scan does not list and rebinds `int` where the
# test's own namespace is (the frame whose globals hold the test's names).
CLIMB = ("import operator\n" + LIAR +
         "def climb():\n"
         "    try:\n"
         "        raise ZeroDivisionError\n"
         "    except ZeroDivisionError as e:\n"
         "        frame = operator.attrgetter('__traceback__.tb_fr' + 'ame')(e)\n"
         "    while frame is not None:\n"
         "        g = operator.attrgetter('f_glob' + 'als')(frame)\n"
         "        if 'matrix_bytes' in g and 'climb' not in g:\n"
         "            g['int'] = lambda *a, **k: Liar(0)\n"
         "        frame = operator.attrgetter('f_ba' + 'ck')(frame)\n")

CASES = {
    # the attack the design was built against: through the call stack when the test calls the answer
    "call_stack": CLIMB + SIGNATURE + "    climb()\n" + WRONG_BODY,
    # a thread started inside the answer, racing the test from beside it
    "thread": (CLIMB + "import concurrent.futures, sys, time\n"
               "def race():\n"
               "    end = time.monotonic() + 5\n"
               "    while time.monotonic() < end:\n"
               "        for frame in operator.methodcaller('_current_' + 'frames')(sys).values():\n"
               "            while frame is not None:\n"
               "                g = operator.attrgetter('f_glob' + 'als')(frame)\n"
               "                if 'matrix_bytes' in g and 'climb' not in g:\n"
               "                    g['int'] = lambda *a, **k: Liar(0)\n"
               "                frame = operator.attrgetter('f_ba' + 'ck')(frame)\n"
               "        time.sleep(0.001)\n"
               "POOL = []\n"
               + SIGNATURE + "    if not POOL:\n"
               "        POOL.append(concurrent.futures.ThreadPoolExecutor(1))\n"
               "        POOL[0].submit(race)\n"
               "        time.sleep(0.2)\n" + WRONG_BODY),
    # a forged verdict written to every inherited descriptor, then the process ended early
    "descriptors_and_exit": (
        "import io, json, operator, os, sys\n" + SIGNATURE +
        "    if hasattr(sys.stdout, 'session'):  # in the kernel: act only where the tests run\n"
        "        return int(rows) * int(cols) * 4\n"
        "    verdict = json.dumps({'passed': True, 'error': None, 'changed': [], 'load_error': None,\n"
        "                          'output': ''}).encode()\n"
        "    for fd in range(3, 256):\n"
        "        try:\n"
        "            io.FileIO(fd, 'w', closefd=False).write(verdict)\n"
        "        except Exception:\n"
        "            pass\n"
        "    operator.methodcaller('_ex' + 'it', 0)(os)\n" + WRONG_BODY),
    # a signal handler (from _signal, which the scan does not list) that rebinds later
    "signal_handler": (CLIMB + "import _signal\n"
                       "def later(signum, frame):\n"
                       "    while frame is not None:\n"
                       "        g = operator.attrgetter('f_glob' + 'als')(frame)\n"
                       "        if 'matrix_bytes' in g and 'climb' not in g:\n"
                       "            g['int'] = lambda *a, **k: Liar(0)\n"
                       "        frame = operator.attrgetter('f_ba' + 'ck')(frame)\n"
                       + SIGNATURE + "    _signal.signal(_signal.SIGALRM, later)\n"
                       "    _signal.setitimer(_signal.ITIMER_REAL, 0.001)\n"
                       "    import time; time.sleep(0.05)\n" + WRONG_BODY),
    # a module the test imports, patched when the answer is called
    "patched_numpy": (LIAR + "import numpy\n"
                      "class FakeArray:\n"
                      "    nbytes = Liar(0)\n" + SIGNATURE +
                      "    numpy.__setattr__('zeros', lambda *a, **k: FakeArray())\n" +
                      CHECK + "    return Liar(0)\n"),
    # values that lie: __eq__, __bool__, __float__/__int__, __array__
    "lying_object": (CLIMB + "class Lies:\n"
                     "    def __int__(self):\n        climb()\n        return 400\n"
                     "    __index__ = __int__\n"
                     "    def __float__(self):\n        return 0.5\n"
                     "    def __eq__(self, other):\n        return other == other\n"
                     "    def __bool__(self):\n        return 1 == 1\n"
                     "    def __array__(self, dtype=None, copy=None):\n"
                     "        import numpy\n        return numpy.asarray(Liar(0))\n"
                     "    __hash__ = object.__hash__\n" + SIGNATURE + CHECK + "    return Lies()\n"),
    # a generator whose body climbs the stack when the test iterates it
    "generator": (CLIMB + "class Gen:\n"
                  "    def __init__(self, n):\n        self.n = n\n"
                  "    def __iter__(self):\n        climb()\n        yield self.n\n"
                  "    def __int__(self):\n        climb()\n        return self.n\n"
                  + SIGNATURE + CHECK + "    return Gen(int(rows) * int(cols) * 4)\n"),
    # subclasses of float and ndarray whose comparisons and conversions lie
    "float_subclass": (CLIMB + "class F(float):\n"
                       "    def __int__(self):\n        climb()\n        return 400\n"
                       "    def __eq__(self, other):\n        return other == other\n"
                       "    __hash__ = float.__hash__\n" + SIGNATURE + CHECK + "    return F(1.0)\n"),
    "ndarray_subclass": (CLIMB + "import numpy\n"
                         "class A(numpy.ndarray):\n"
                         "    def __int__(self):\n        climb()\n        return 400\n"
                         "    def __eq__(self, other):\n        return numpy.True_\n"
                         + SIGNATURE + CHECK + "    return numpy.asarray(1).view(A)\n"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    subs = root / "subs"
    student = generate_student_version(LAB)
    (subs / "reference").mkdir(parents=True)
    shutil.copyfile(LAB, subs / "reference" / LAB.name)
    for name, source in {"wrong": SIGNATURE + WRONG_BODY, **CASES}.items():
        nb = copy.deepcopy(student)
        next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == GID).source = source
        (subs / name).mkdir()
        nbformat.write(nb, str(subs / name / LAB.name))
    results = grade_submissions(subs, root / "out", workers=2, timeout=60, budget=300, progress=False,
                                **sandbox_kw())
    return {r.student: r for r in results}


def test_reference_full_marks_unflagged_and_plain_wrong_answer_zero(graded):
    ref, wrong = graded["reference"], graded["wrong"]
    assert ref.status == "graded" and not ref.flags and ref.points == ref.max_points > 0, ref.reason
    assert wrong.status == "graded" and wrong.points == 0, (wrong.status, wrong.cells)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_answer_that_reaches_for_the_tests_process_scores_zero(graded, name):
    r = graded[name]
    assert r.points == 0, (name, r.status, r.reason, [(c.grade_id, c.points, c.reason) for c in r.cells])
    assert r.status in ("graded", "flagged", "kernel_died", "timeout"), (name, r.status, r.reason)
