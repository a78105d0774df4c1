"""The test's view of objects that stay in the learner's process: proxies that only ever hand
the test plain data.

A learner function is a :class:`LearnerFunction`: calling it runs it where the learner's values
are, and :func:`mlscale_lab.exercises.reaches` reads its code as that process describes it (its
names, imports, globals, closure, defaults; modules and library functions it names are this
process's own). An object that plain data cannot carry (a fitted scikit-learn model, a
registry, a live autograd tensor) is a :class:`LearnerObject`: its attributes, methods, items
and iteration are reached across the channel. Nothing that could lie crosses: a proxy refuses
to be a truth value, a number or an array (``bool(x)``, ``int(x)``, ``np.asarray(x)`` of one
fail the test with a reason), and compares equal only to itself.
"""

from __future__ import annotations

import importlib
import sys

from mlscale_lab.harness.grading._endpoint import RemoteObject

_NO_TRUTH = ("an object the submission's code returned cannot be used as a truth value or a number in "
             "a test; return plain data (a bool, a number, an array)")


class LearnerObject(RemoteObject):
    """An object that stays in the learner's process (see the module docstring)."""

    def _what(self, type_name: str) -> str:
        return f"the call into the submission's code ({type_name.rsplit(':', 1)[-1]})"

    def __len__(self) -> int:
        n = self._ask("len")
        if type(n) is not int or n < 0:
            raise TypeError("len() of an object of the submission's code was not a whole number")
        return n

    def __iter__(self):
        it = self._ask("iter")
        return it if isinstance(it, LearnerIterator) else iter(it)

    def __bool__(self):
        raise TypeError(_NO_TRUTH)

    def __int__(self):
        raise TypeError(f"int() of a {self._type()}: {_NO_TRUTH}")

    def __float__(self):
        raise TypeError(f"float() of a {self._type()}: {_NO_TRUTH}")

    def __index__(self):
        raise TypeError(f"a {self._type()} used as an index: {_NO_TRUTH}")

    def __complex__(self):
        raise TypeError(f"complex() of a {self._type()}: {_NO_TRUTH}")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"an array of a {self._type()}: {_NO_TRUTH}")

    def _type(self) -> str:
        return object.__getattribute__(self, "_mls")[3].rsplit(":", 1)[-1]

    def __repr__(self) -> str:
        try:
            text = self._ask("repr")
        except Exception:  # noqa: BLE001 (a repr is for reading, never for grading)
            text = None
        return text[:2000] if isinstance(text, str) else f"<{object.__getattribute__(self, '_mls')[3]}>"

    def __str__(self) -> str:
        text = self._ask("str")
        if not isinstance(text, str):
            raise TypeError("str() of an object of the submission's code was not a str")
        return text

    def __format__(self, spec: str) -> str:
        if spec:
            raise TypeError(f"format {spec!r} needs a number: {_NO_TRUTH}")
        return str(self)

    def __deepcopy__(self, memo):
        return self._ask("deepcopy")

    __copy__ = __deepcopy__

    def __reduce_ex__(self, protocol):
        raise TypeError("an object of the submission's code cannot leave the test's process")

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class LearnerIterator(LearnerObject):
    """An iterator (a generator) that runs in the learner's process, fetched in batches."""

    def __iter__(self):
        return self

    def __next__(self):
        buffered = self.__dict__.setdefault("_items", [])
        if not buffered:
            if self.__dict__.get("_done"):
                raise StopIteration
            items, done = self._ask("next", 256)
            buffered.extend(items)
            self.__dict__["_done"] = bool(done)
            if not buffered:
                raise StopIteration
        return buffered.pop(0)


class CodeView:
    """What a learner function's code names, as its process described it (``co_names``,
    ``co_consts`` with nested code, ``co_freevars``, ``co_varnames``, ``co_name``)."""

    def __init__(self, d: dict) -> None:
        self.co_name = str(d.get("name", ""))
        self.co_names = tuple(str(n) for n in d.get("names", ()))
        self.co_freevars = tuple(str(n) for n in d.get("freevars", ()))
        self.co_varnames = tuple(str(n) for n in d.get("varnames", ()))
        self.imports = tuple(str(n) for n in d.get("imports", ()))
        self.co_consts = tuple(CodeView(k) if isinstance(k, dict) else k for k in d.get("consts", ()))

    def walk(self):
        """This code and every code nested in it."""
        yield self
        for k in self.co_consts:
            if isinstance(k, CodeView):
                yield from k.walk()


class LearnerFunction(LearnerObject):
    """A learner function (or class): called where the learner's values are; described for
    :func:`mlscale_lab.exercises.reaches`."""

    def __init__(self, endpoint, hid: int, kind: str, type_name: str) -> None:
        super().__init__(endpoint, hid, kind, type_name)
        module, _, qualname = type_name.partition(":")
        self.__dict__.update({"__module__": module, "__qualname__": qualname,
                              "__name__": qualname.rsplit(".", 1)[-1]})

    def _described(self) -> dict:
        if "_description" not in self.__dict__:
            d = self._ask("describe")
            self.__dict__["_description"] = d if isinstance(d, dict) else {}
        return self.__dict__["_description"]

    @property
    def __code__(self) -> CodeView:
        """The function's code as its process described it."""
        return CodeView(self._described().get("code") or {})

    def __reaches_facts__(self):
        """``(names the code reads, objects it reaches)`` for :func:`mlscale_lab.exercises.reaches`."""
        d = self._described()
        code = CodeView(d.get("code") or {})
        names = {n for c in code.walk() for n in (*c.co_names, *c.co_freevars)}
        found = [_resolve(r) for r in (d.get("globals") or {}).values()]
        found += [_resolve(["module", m]) for c in code.walk() for m in c.imports]
        found += [_resolve(r) for r in (*(d.get("closure") or ()), *(d.get("defaults") or ()))]
        return names, [f for f in found if f is not None]

    def __reaches_functions__(self) -> list:
        """The functions behind this proxy: itself, or a class's methods."""
        if object.__getattribute__(self, "_mls")[2] != "class":
            return [self]
        return [m for m in self._described().get("methods") or () if isinstance(m, LearnerFunction)]


class ModuleStandIn:
    """A module a learner function names that this process does not load (nothing in it can
    be a helper the test looks for)."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


def _module(name: str):
    """A module of a package this process has already imported (others are not imported here)."""
    if not isinstance(name, str) or name.split(".")[0] not in sys.modules:
        return ModuleStandIn(str(name))
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 (a name that is no module here)
        return ModuleStandIn(name)


def _resolve(ref):
    """A described reference as an object of this process: a module, a library object, a value."""
    if not isinstance(ref, list) or not ref:
        return None
    if ref[0] == "module" and len(ref) == 2:
        return _module(ref[1])
    if ref[0] == "ref" and len(ref) == 3:
        obj = _module(ref[1])
        for part in str(ref[2]).split("."):
            obj = getattr(obj, part, None)
        return obj
    if ref[0] == "value" and len(ref) == 2:
        return ref[1]
    return None


def make_proxy(endpoint, hid: int, kind: str, type_name: str):
    """The test side's proxy for a learner object (the :class:`Endpoint`'s ``make_proxy``)."""
    if kind in ("function", "class"):
        return LearnerFunction(endpoint, hid, kind, type_name)
    if kind == "iterator":
        return LearnerIterator(endpoint, hid, kind, type_name)
    return LearnerObject(endpoint, hid, kind, type_name)


#: Library functions that run a function they are given in a process of their own: given a
#: learner function, they run in the learner's sandbox (so what they measure is the learner's).
REMOTE_RUNNERS = frozenset({("mlscale_lab.constraints", "run_measured"), ("mlscale_lab.constraints", "run_limited")})


def where_learner_runs(fn, module: str, name: str, endpoint):
    """``fn`` (a :data:`REMOTE_RUNNERS` function), which, handed a learner function, runs in
    the learner's process instead of this one."""
    def run(*args, **kwargs):
        if args and isinstance(args[0], LearnerFunction):
            return endpoint.request("callref", None, module, name, list(args), kwargs,
                                    what=f"{name}({args[0].__name__}, ...)")
        return fn(*args, **kwargs)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = getattr(fn, "__doc__", None)
    return run
