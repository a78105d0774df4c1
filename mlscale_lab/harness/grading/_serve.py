"""The learner's side of a test: run inside the submission's own kernel by the grader's cell
before each test cell, it serves the test's process the values that test reads and the calls
it makes into the learner's functions and objects, until the test is done.

This side is the learner's: everything here may have been changed by the submission's code,
and nothing it sends can do more than plain data can (:mod:`._codec`). Objects the test passes
to the learner's code that plain data cannot carry (a spy, a fitted model) arrive as a
:class:`TestProxy`: their methods run in the test's process, on the test's own object.
"""

from __future__ import annotations

import dis
import importlib
import socket
import time
import types

from mlscale_lab.harness.grading._codec import send_frame
from mlscale_lab.harness.grading._endpoint import Endpoint, RemoteObject


class TestProxy(RemoteObject):
    """An object of the test's process, as the learner's code sees it: attributes, calls,
    items, length, iteration and truth are asked of the test's side."""

    def _what(self, type_name: str) -> str:
        return f"a call into the test's {type_name}"

    def __len__(self) -> int:
        return self._ask("len")

    def __contains__(self, item) -> bool:
        return self._ask("contains", item)

    def __bool__(self) -> bool:
        return self._ask("bool")

    def __iter__(self):
        it = self._ask("iter")
        return _TestIterator(it) if isinstance(it, TestProxy) else iter(it)

    def __repr__(self) -> str:
        return self._ask("repr")

    def __str__(self) -> str:
        return self._ask("str")

    __hash__ = object.__hash__
    __eq__ = object.__eq__


class _TestIterator:
    def __init__(self, proxy) -> None:
        self.proxy, self.items, self.done = proxy, [], False

    def __iter__(self):
        return self

    def __next__(self):
        if not self.items and not self.done:
            self.items, self.done = TestProxy._ask(self.proxy, "next", 256)
        if not self.items:
            raise StopIteration
        return self.items.pop(0)


def _plain_const(k):
    return k if k is None or isinstance(k, bool | int | float | str) else None


def _code_view(code: types.CodeType) -> dict:
    return {"name": code.co_name, "names": list(code.co_names), "freevars": list(code.co_freevars),
            "varnames": list(code.co_varnames),
            "imports": [i.argval for i in dis.get_instructions(code)
                        if i.opname == "IMPORT_NAME" and isinstance(i.argval, str)],
            "consts": [_code_view(k) if isinstance(k, types.CodeType) else _plain_const(k) for k in code.co_consts]}


def _ref(value) -> list:
    """A module or library object by its name (the test's process resolves it to its own), or
    the value itself (this process's functions and classes cross as handles)."""
    if isinstance(value, types.ModuleType):
        return ["module", value.__name__]
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if (isinstance(module, str) and isinstance(qualname, str) and module != "__main__" and callable(value)
            and "<" not in qualname):
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if obj is value:
                return ["ref", module, qualname]
        except Exception:  # noqa: BLE001 (not importable by its name: a value like any other)
            pass
    return ["value", value]


def describe(endpoint, target) -> dict:
    """What :func:`mlscale_lab.exercises.reaches` reads of a function (or a class's methods)."""
    if isinstance(target, type):
        return {"methods": [v for v in vars(target).values() if isinstance(v, types.FunctionType)]}
    fn = target.__func__ if isinstance(target, types.MethodType) else target
    if not isinstance(fn, types.FunctionType):
        return {}
    view = _code_view(fn.__code__)

    def names(v):
        yield from v["names"] + v["freevars"]
        for k in v["consts"]:
            if isinstance(k, dict):
                yield from names(k)

    read = set(names(view))
    cells = []
    for cell in fn.__closure__ or ():
        try:
            cells.append(_ref(cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    return {"code": view, "globals": {n: _ref(fn.__globals__[n]) for n in sorted(read) if n in fn.__globals__},
            "closure": cells,
            "defaults": [_ref(d) for d in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values())]}


def call_library(endpoint, _target, module: str, name: str, args: list, kwargs: dict):
    """Run one of :data:`mlscale_lab.harness.grading._proxy.REMOTE_RUNNERS` here, on a
    function of this process (a measurement the test asks of the learner's code)."""
    from mlscale_lab.harness.grading._proxy import REMOTE_RUNNERS

    if (module, name) not in REMOTE_RUNNERS:
        raise ValueError(f"{module}.{name} is not run for the test")
    return getattr(importlib.import_module(module), name)(*args, **kwargs)


def serve_channel(ns: dict, sock: socket.socket, wait: float) -> None:
    """Serve the test's process on ``sock`` from the namespace ``ns`` until it is done (or
    ``wait`` seconds pass)."""
    def fetch(endpoint, _target, names):
        return {n: ns[n] for n in names if isinstance(n, str) and n in ns}

    endpoint = Endpoint(sock, "learner", TestProxy, deadline=time.monotonic() + wait,
                        handlers={"fetch": fetch, "describe": describe, "callref": call_library})
    endpoint.serve()


def serve_test(ns: dict, path: str, token: str, wait: float) -> None:
    """Connect to the grader at ``path``, say which test this is (``token``), and serve the
    test's process (:func:`serve_channel`)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(min(wait, 30.0))
        sock.connect(path)
        send_frame(sock, ["hello", token])
        serve_channel(ns, sock, wait)
    except (OSError, EOFError, ValueError):
        return
    finally:
        sock.close()
