"""mlscale_lab.exercises.reaches: the delegation check the labs' test cells rely on."""

import math
import statistics
import types

from mlscale_lab.exercises import reaches


def _notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell would: its own __main__-like namespace."""
    ns = {"__name__": "__main__"}
    exec(compile(source, "<cell>", "exec"), ns)
    return ns


def test_direct_call_through_alias_and_module_attribute_are_found():
    ns = _notebook(
        "import statistics as st\nfrom statistics import median as m\n"
        "def a(xs): return m(xs)\n"
        "def b(xs): return st.median(xs)\n"
        "def c(xs): return sorted(xs)[len(xs) // 2]\n")
    assert reaches(ns["a"], statistics.median) == ["median"]
    assert reaches(ns["b"], statistics.median) == ["median"]
    assert reaches(ns["c"], statistics.median) == []


def test_found_through_helpers_lambdas_closures_defaults_and_classes():
    ns = _notebook(
        "import math\n"
        "def helper(x): return math.hypot(x, 1)\n"
        "def via_helper(x): return helper(x)\n"
        "def via_lambda(x): return (lambda y: math.hypot(y, 1))(x)\n"
        "def make():\n    f = math.hypot\n    def inner(x): return f(x, 1)\n    return inner\n"
        "via_closure = make()\n"
        "def via_default(x, f=math.hypot): return f(x, 1)\n"
        "class Solver:\n    def run(self, x): return helper(x)\n"
        "def via_class(x): return Solver().run(x)\n")
    for name in ("via_helper", "via_lambda", "via_closure", "via_default", "via_class"):
        assert reaches(ns[name], math.hypot) == ["hypot"], name


def test_library_internals_are_not_followed():
    # statistics.median itself calls sorted(); a learner calling sorted() is not delegating
    # to median, and functions of other modules are not walked into.
    ns = _notebook("import statistics\ndef a(xs): return statistics.mean(xs)\n")
    assert reaches(ns["a"], sorted, statistics.median) == []


def test_methods_and_recursion_terminate():
    ns = _notebook("def f(n): return 0 if n == 0 else f(n - 1)\n")
    assert reaches(ns["f"], math.hypot) == []
    assert reaches(types.MethodType(ns["f"], 3), math.hypot) == []


def test_imports_inside_the_function_are_followed():
    ns = _notebook(
        "def a(xs):\n    from statistics import median as m\n    return m(xs)\n"
        "def b(xs):\n    import statistics as st\n    return st.median(xs)\n"
        "def c(xs):\n    import statistics\n    return statistics.mean(xs)\n")
    assert reaches(ns["a"], statistics.median) == ["median"]
    assert reaches(ns["b"], statistics.median) == ["median"]
    assert reaches(ns["c"], statistics.median) == []


def test_submodules_reached_by_attribute_are_followed():
    import email.utils

    ns = _notebook("import email\nimport email.utils\n"
                   "def a(s):\n    return email.utils.parseaddr(s)\n"
                   "def b(s):\n    from email import utils\n    return utils.parseaddr(s)\n")
    assert reaches(ns["a"], email.utils.parseaddr) == ["parseaddr"]
    assert reaches(ns["b"], email.utils.parseaddr) == ["parseaddr"]
