"""One side of the channel between a test's process and the learner's process that holds the
learner's values: requests and answers in plain data (:mod:`._codec`), served in both ways.

The test's side asks: fetch the names a test reads, call a learner function, read an attribute
of a learner object, iterate it. While it waits for an answer it serves the learner's side in
turn, on the test's own objects it passed as arguments (a spy whose ``predict`` the learner's
loop calls): then only public attributes and methods are reachable, and never a module, a
class or a function the test did not define. Every answer is decoded by the codec, which can
build plain data and proxies, nothing else; an answer that does not come within the test's
time, or a channel that closes, fails the call with a reason.
"""

from __future__ import annotations

import contextlib
import copy
import io
import socket
import sys
import time
import traceback
import types

from mlscale_lab.harness.grading._codec import (
    Codec,
    CodecError,
    PeerClosed,
    exception_node,
    rebuild_exception,
    recv_frame,
    send_frame,
)

#: Requests the test's side serves on its own objects, asked by the learner's code.
TEST_SIDE_OPS = frozenset({"call", "getattr", "setattr", "getitem", "setitem", "len", "bool",
                           "contains", "iter", "next", "repr", "str"})
_MAX_DEPTH = 64  # calls nested inside calls (test -> learner -> test -> ...)
_OUTPUT_LIMIT = 200_000


class LearnerCallError(RuntimeError):
    """A call into the learner's process that did not give an answer: it hung past the test's
    time, its process ended, or what came back was not plain data."""


class Endpoint:
    """One side (``"test"`` or ``"learner"``) of a channel over a connected socket.

    Parameters
    ----------
    sock : socket.socket
        The connected channel.
    side : str
        ``"test"`` (the pristine process) or ``"learner"`` (the process holding the answers).
    make_proxy : callable
        ``make_proxy(endpoint, handle_id, kind, type_name)``: this side's proxy for an object
        the other side keeps.
    handlers : dict, optional
        Extra requests this side serves (the learner's: ``fetch``, ``describe``, ``callref``).
    deadline : float, optional
        ``time.monotonic()`` after which a request stops waiting (the test's time).
    """

    def __init__(self, sock: socket.socket, side: str, make_proxy, handlers=None, deadline=None) -> None:
        self.sock, self.side, self.make_proxy = sock, side, make_proxy
        self.handlers = dict(handlers or {})
        self.deadline = deadline
        self.codec = Codec(self)
        self.exports: dict[int, object] = {}
        self._export_ids: dict[int, int] = {}
        self.proxies: dict[int, object] = {}
        self._proxy_ids: dict[int, int] = {}
        self.broken: str | None = None
        self.done = False
        self.depth = 0
        self._captured = io.StringIO()

    # -- the codec's peer -----------------------------------------------------------------------
    def export(self, obj) -> list:
        """A handle to ``obj``, which stays on this side."""
        hid = self._export_ids.get(id(obj))
        if hid is None:
            hid = len(self.exports) + 1
            self.exports[hid], self._export_ids[id(obj)] = obj, hid
        if isinstance(obj, type):
            kind = "class"
        elif isinstance(obj, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
            kind = "function"
        elif hasattr(type(obj), "__next__"):
            kind = "iterator"
        else:
            kind = "object"
        return ["H", hid, kind, f"{type(obj).__module__}.{type(obj).__qualname__}"[:200]]

    def keeps(self, tensor) -> bool:
        """Whether a tensor stays here as a handle: on the learner's side, one in an autograd graph."""
        return self.side == "learner" and tensor.grad_fn is not None

    def yours(self, obj):
        """The node that names one of the other side's objects (a proxy here), else None."""
        hid = self._proxy_ids.get(id(obj))
        return ["Y", "h", hid] if hid is not None and self.proxies.get(hid) is obj else None

    def own(self, kind, ident):
        """One of this side's objects, named by the other side."""
        table = self.exports if kind == "h" else self.codec.sent if kind == "c" else {}
        if not isinstance(ident, int) or ident not in table:
            raise CodecError("a reference to an object this side never sent")
        return table[ident]

    def proxy(self, hid: int, kind: str, type_name: str):
        """This side's proxy for the other side's object ``hid`` (one proxy per object)."""
        found = self.proxies.get(hid)
        if found is None:
            found = self.make_proxy(self, hid, kind, type_name)
            self.proxies[hid], self._proxy_ids[id(found)] = found, hid
        return found

    # -- frames ---------------------------------------------------------------------------------
    def _send(self, kind: str, op_or_status: str, value, updates=()) -> None:
        """One frame; ``updates`` are ``(copy id, object)`` of the other side's layers and tensors
        as they are here now (sent whole, never as a reference back to the other side's)."""
        bufs: list = []
        node = self.codec.node(value, bufs, 0)
        fresh = []
        if updates:
            from mlscale_lab.harness.grading._codec_torch import encode_torch

            self.codec.fresh = True
            try:
                fresh = [[cid, encode_torch(self.codec, obj, bufs, 1)] for cid, obj in updates]
            finally:
                self.codec.fresh = False
        send_frame(self.sock, [kind, op_or_status, node, self._take_output(), fresh or None], bufs)

    def _recv(self):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
        frame, bufs = recv_frame(self.sock)
        if not (isinstance(frame, list) and len(frame) == 5 and frame[0] in ("q", "a")):
            raise CodecError("a malformed frame")
        if frame[3] and self.side == "test":
            sys.stdout.write(str(frame[3]))  # what the learner's code printed, in order
        return frame, bufs

    # -- asking ---------------------------------------------------------------------------------
    def request(self, op: str, target, *args, what: str = "the call"):
        """Ask the other side for ``op`` on ``target`` (one of its objects, or None); serve its
        requests meanwhile; return the decoded answer or raise the error it reported."""
        if self.broken:
            raise LearnerCallError(f"{what} was not made: {self.broken}")
        if self.depth >= _MAX_DEPTH:
            raise LearnerCallError(f"{what}: calls nested more than {_MAX_DEPTH} deep")
        self.depth += 1
        try:
            try:
                self._send("q", op, [target, *args])
            except CodecError as exc:
                raise TypeError(f"{what}: an argument cannot be sent to the submission's process ({exc})") from None
            while True:
                frame, bufs = self._recv()
                if frame[0] == "q":
                    self._serve_one(frame, bufs)
                    continue
                return self._answer(frame, bufs, what)
        except TimeoutError:
            self._break(f"{what} did not answer within the test's time; the submission's process may be hung")
        except (PeerClosed, ConnectionError, OSError) as exc:
            self._break(f"{what} got no answer: the submission's process ended or closed the channel ({exc})")
        except CodecError as exc:
            self._break(f"{what} got an answer that is not plain data ({exc})")
        finally:
            self.depth -= 1

    def notify(self, op: str) -> None:
        """Tell the other side ``op`` without waiting for an answer (``done``: the test is over)."""
        with contextlib.suppress(OSError, CodecError):
            self._send("q", op, [None])

    def _break(self, reason: str):
        self.broken = reason
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        raise LearnerCallError(reason)

    def _answer(self, frame, bufs, what):
        _, status, node, _, updates = frame
        if self.side == "test" and isinstance(updates, list):
            self._apply_updates(updates, bufs)
        if status == "ok":
            return self.codec.decode(node, bufs)
        if status == "err":
            raise rebuild_exception(node, LearnerCallError)
        raise LearnerCallError(f"{what} was refused: {node}")

    def _apply_updates(self, updates, bufs) -> None:
        from mlscale_lab.harness.grading._codec_torch import transplant

        for cid, node in updates:
            original = self.codec.sent.get(cid)
            if original is not None:
                transplant(original, self.codec.decode(node, bufs))

    # -- serving --------------------------------------------------------------------------------
    def serve(self) -> None:
        """Serve the other side's requests until it says ``done`` or closes the channel."""
        while not self.done:
            try:
                frame, bufs = self._recv()
            except (PeerClosed, ConnectionError, OSError, TimeoutError, CodecError):
                return
            if frame[0] == "q":
                self._serve_one(frame, bufs)

    def _serve_one(self, frame, bufs) -> None:
        op = frame[1]
        if op == "done":
            self.done = True
            return
        if self.side == "test" and op not in TEST_SIDE_OPS:
            self._send("a", "refused", f"the test's process does not serve {op!r}")
            return
        try:
            target, *args = self.codec.decode(frame[2], bufs)
        except Exception as exc:  # noqa: BLE001 (a request that is not plain data)
            self._reply_error(exc)
            return
        try:
            with self._capture():
                result = self._run(op, target, args)
        except BaseException as exc:  # noqa: BLE001 (reported to the other side, never raised here)
            if isinstance(exc, KeyboardInterrupt) and self.side == "learner":
                raise  # the kernel's cell timeout: stop serving
            self._reply_error(exc)
            return
        try:
            self._send("a", "ok", result, self._updates() if self.side == "learner" else ())
        except CodecError as exc:
            self._reply_error(TypeError(f"returned a {type(result).__name__}, which cannot cross as plain "
                                        f"data ({exc})"))
        except OSError:  # the other side closed the channel (it gave up on a slow call): stop serving
            self.done = True

    def _reply_error(self, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(exc)[-12:]) if self.side == "learner" else ""
        with contextlib.suppress(OSError):
            send_frame(self.sock, ["a", "err", exception_node(exc, tb), self._take_output(), None])

    def _take_output(self) -> str:
        text = self._captured.getvalue()[:_OUTPUT_LIMIT] if self.side == "learner" else ""
        self._captured = io.StringIO()
        return text

    @contextlib.contextmanager
    def _capture(self):
        if self.side != "learner":
            yield
            return
        with contextlib.redirect_stdout(self._captured), contextlib.redirect_stderr(self._captured):
            yield

    def _updates(self) -> list:
        """``(copy id, object)`` of the layers and gradient-carrying tensors the test sent:
        copied back after each call, as a call in the notebook would have changed them."""
        kept = list(self.codec.received_torch.values())  # only these: a test may send 10^5 lists
        if not kept:
            return []
        import torch

        layers = [o for _, o in kept if isinstance(o, torch.nn.Module)]
        inner = {id(x) for m in layers for x in (*m.modules(), *m.parameters(), *m.buffers()) if x is not m}
        return [(cid, obj) for cid, obj in kept if id(obj) not in inner and (
            isinstance(obj, torch.nn.Module) or (isinstance(obj, torch.Tensor) and obj.requires_grad))]

    def _run(self, op: str, target, args: list):
        if op in self.handlers:
            return self.handlers[op](self, target, *args)
        if self.side == "test":
            self._check_reachable(op, target, args)
        if op == "call":
            positional, keywords = args
            result = target(*positional, **keywords)
        elif op == "getattr":
            result = getattr(target, args[0])
        elif op == "setattr":
            return setattr(target, args[0], args[1])
        elif op == "getitem":
            result = target[args[0]]
        elif op == "setitem":
            target[args[0]] = args[1]
            return None
        elif op == "len":
            return int(len(target))
        elif op == "bool":
            return bool(target)
        elif op == "contains":
            return bool(args[0] in target)
        elif op == "iter":
            return iter(target)  # crosses as a handle: an iterator is never plain data
        elif op == "next":
            return _take(target, int(args[0]))
        elif op in ("repr", "str"):
            return str(repr(target) if op == "repr" else str(target))
        elif op == "deepcopy":
            result = copy.deepcopy(target)
        else:
            raise ValueError(f"unknown request {op!r}")
        if self.side == "test":
            _check_result(result)
        return result

    def _check_reachable(self, op, target, args) -> None:
        if op in ("getattr", "setattr") and (not isinstance(args[0], str) or args[0].startswith("_")):
            raise AttributeError(f"only public attributes of the test's objects can be reached, not {args[0]!r}")


def _check_result(result) -> None:
    """What the learner's code may get from the test's side: never a module, class, code or
    frame, nor a function the test did not define (a builtin or a library's)."""
    if isinstance(result, types.ModuleType | type | types.CodeType | types.FrameType | types.BuiltinFunctionType):
        raise TypeError(f"a {type(result).__name__} of the test's process cannot be handed out")
    if isinstance(result, types.FunctionType) and result.__module__ != "__main__":
        raise TypeError("a library function of the test's process cannot be handed out")
    if isinstance(result, types.MethodType) and isinstance(result.__self__, type | types.ModuleType):
        raise TypeError("a class or module method of the test's process cannot be handed out")


def _take(iterator, n: int) -> list:
    """Up to ``n`` items of ``iterator`` and whether it is exhausted: ``[items, done]``."""
    items = []
    for _ in range(max(1, min(n, 10_000))):
        try:
            items.append(next(iterator))
        except StopIteration:
            return [items, True]
    return [items, False]


class RemoteObject:
    """An object that stays in the peer's process, as this side sees it: attribute reads and
    writes, calls and items are asked of the peer over the endpoint. Subclasses say how a call
    is described in a failure (:meth:`_what`) and add what their side may ask (truth, length,
    iteration, or refusing to be a number)."""

    def __init__(self, endpoint, hid: int, kind: str, type_name: str) -> None:
        object.__setattr__(self, "_mls", (endpoint, hid, kind, type_name))

    def _what(self, type_name: str) -> str:
        """How a failed call is described to the learner (each side says whose object it was)."""
        return f"a call into the other process's {type_name}"

    def _ask(self, op: str, *args):
        endpoint, _, _, type_name = object.__getattribute__(self, "_mls")
        return endpoint.request(op, self, *args, what=self._what(type_name))

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name)

    def __setattr__(self, name: str, value) -> None:
        self._ask("setattr", name, value)

    def __call__(self, *args, **kwargs):
        return self._ask("call", list(args), kwargs)

    def __getitem__(self, key):
        return self._ask("getitem", key)

    def __setitem__(self, key, value) -> None:
        self._ask("setitem", key, value)
