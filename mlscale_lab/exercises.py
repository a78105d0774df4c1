"""Support for the labs' graded exercises: noticing an answer that hands the work to a helper.

An exercise earns its points when the learner applies the idea, not when they call the
library function that computes the answer. Test cells call :func:`reaches` on the learner's
function to see whether it uses such a helper, directly, through a module attribute
(``sc.fit_amdahl``), through another function the learner wrote, or a closure.

>>> import math
>>> def hypot(a, b):
...     return math.hypot(a, b)
>>> reaches(hypot, math.hypot)
['hypot']
>>> def by_hand(a, b):
...     return (a * a + b * b) ** 0.5
>>> reaches(by_hand, math.hypot)
[]
"""

from __future__ import annotations

import dis
import sys
import types

__all__ = ["reaches"]


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _imported_modules(code: types.CodeType) -> list:
    """Modules a function imports in its own body (``import x.y as z``, ``from x import y``)."""
    found = []
    for instr in dis.get_instructions(code):
        if instr.opname == "IMPORT_NAME" and isinstance(instr.argval, str):
            module = sys.modules.get(instr.argval)
            if module is None:
                try:
                    module = __import__(instr.argval, fromlist=["_"])
                except Exception:
                    continue
            found.append(module)
    return found


def _functions_of(obj) -> list:
    """The plain functions behind ``obj``: itself, a method's function, a class's methods (or
    what a stand-in for a function kept in another process names, ``__reaches_functions__``)."""
    hook = getattr(type(obj), "__reaches_functions__", None)
    if hook is not None:
        return list(hook(obj))
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, types.FunctionType):
        return [obj]
    if isinstance(obj, type):
        return [v for v in vars(obj).values() if isinstance(v, types.FunctionType)]
    return []


def reaches(func, *targets) -> list[str]:
    """The names of ``targets`` that ``func`` can call, directly or through code it calls.

    Follows the names ``func``'s code reads (nested functions and lambdas included), the
    attributes it reads on modules it names or imports in its own body, its closure and
    defaults, and recursively the functions and classes defined in the same module (a
    notebook's own helpers). It reads code, it does not run it. A name computed at run time
    (``getattr(module, "na" + "me")``) is beyond it; the grader's scan flags those.

    Parameters
    ----------
    func : function, method or class
        The learner's answer.
    *targets : objects
        The library functions or classes the exercise must not hand its work to.

    Returns
    -------
    list of str
        The targets' names (``__name__``) found, in the order given; empty when none is reached.

    Examples
    --------
    >>> import statistics
    >>> def helper(xs):
    ...     return statistics.median(xs)
    >>> def answer(xs):
    ...     return helper(sorted(xs))
    >>> reaches(answer, statistics.median, statistics.mean)
    ['median']
    """
    wanted = {id(t): t for t in targets}
    hit: set[int] = set()
    seen: set[int] = set()
    todo = _functions_of(func)
    home = getattr(func, "__module__", None)
    while todo:
        fn = todo.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        names, found = _facts(fn)
        modules_seen: set[int] = set()
        for obj in found:  # grows while it runs: submodules reached by attribute are appended
            if id(obj) in wanted:
                hit.add(id(obj))
            if isinstance(obj, types.ModuleType):
                if id(obj) in modules_seen:
                    continue
                modules_seen.add(id(obj))
                for n in names:
                    attr = getattr(obj, n, None)
                    if attr is not None and id(attr) in wanted:
                        hit.add(id(attr))
                    elif isinstance(attr, types.ModuleType):
                        found.append(attr)  # `sc.serving.plan_capacity`
            elif getattr(obj, "__module__", None) == home:
                todo.extend(_functions_of(obj))
    return [getattr(t, "__name__", repr(t)) for i, t in wanted.items() if i in hit]


def _facts(fn) -> tuple[set, list]:
    """The names ``fn``'s code reads and the objects it reaches: its globals by those names,
    modules it imports in its body, its closure and defaults. A stand-in for a function kept in
    another process (the grader's) gives them itself (``__reaches_facts__``)."""
    hook = getattr(type(fn), "__reaches_facts__", None)
    if hook is not None:
        names, found = hook(fn)
        return set(names), list(found)
    names = {n for code in _code_objects(fn.__code__) for n in code.co_names}
    names |= {n for code in _code_objects(fn.__code__) for n in code.co_freevars}
    found = [fn.__globals__[n] for n in names if n in fn.__globals__]
    # imports inside the function: `from mlscale_lab.prices import machine as m` inside it
    found += [m for code in _code_objects(fn.__code__) for m in _imported_modules(code)]
    found += [c.cell_contents for c in (fn.__closure__ or ()) if _filled(c)]
    found += list(fn.__defaults__ or ()) + list((fn.__kwdefaults__ or {}).values())
    return names, found


def _filled(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 (an empty cell raises)
    except ValueError:
        return False
    return True
