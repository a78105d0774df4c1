"""Plain data across the boundary between a learner's process and a test's process.

Only bytes cross; :class:`Codec` turns them back into plain data and into nothing else, so a
value a learner's code produced cannot bring code along (no ``pickle``). What it builds:
``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``bytearray``, lists,
tuples, dicts, sets, frozensets, ``range``, ``slice``, ``Ellipsis``, builtin scalar types,
``pathlib`` paths; numpy arrays, scalars, dtypes and scalar types of plain dtypes (object
arrays of plain items); torch tensors, dtypes, sizes and standard layers (:mod:`._codec_torch`);
dataclass records and named tuples defined in :mod:`mlscale_lab` (fields are plain data, set
without running any code of the record); and *handles*: an object the other side keeps, which
decodes into a proxy (:mod:`._endpoint`), or, sent back, into the object itself.

Exact types are built (a subclass of ``float`` or ``ndarray`` arrives as a ``float`` or an
``ndarray``), so overridden comparisons or conversions never cross. A frame is
``u32 header length, u32 buffer count, u64 buffer lengths, JSON header, buffers``.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import pathlib
import socket
import struct
import sys

#: The largest frame either side accepts (a value bigger than this fails the call).
MAX_FRAME_BYTES = 1 << 30
_SCALAR_TYPES = {t.__name__: t for t in (int, float, complex, bool, str, bytes, bytearray, list,
                                          tuple, dict, set, frozenset, object, type(None), range, slice)}
_SEQUENCES = {list: "l", tuple: "t", set: "s", frozenset: "f"}


class CodecError(ValueError):
    """A value that cannot cross as plain data, or bytes that are not a valid frame."""


class PeerClosed(EOFError):
    """The other side of the channel is gone (its process ended or closed the channel)."""


def send_frame(sock: socket.socket, header, buffers=()) -> None:
    """Write one frame: the JSON ``header`` and the raw ``buffers`` it refers to by index."""
    head = json.dumps(header, separators=(",", ":")).encode()
    sizes = [memoryview(b).nbytes for b in buffers]
    prefix = struct.pack(f"!II{len(sizes)}Q", len(head), len(sizes), *sizes)
    if sum(sizes) < 65536:
        sock.sendall(b"".join([prefix, head, *(bytes(b) for b in buffers)]))
        return
    sock.sendall(prefix + head)
    for b in buffers:
        sock.sendall(b)


def _recv_exact(sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise PeerClosed("the other side closed the channel")
        got += k
    return buf


def recv_frame(sock: socket.socket) -> tuple[object, list[memoryview]]:
    """Read one frame; the header as parsed JSON and the buffers (views of one bytearray)."""
    head_len, count = struct.unpack("!II", _recv_exact(sock, 8))
    if count > 1_000_000:
        raise CodecError(f"a frame announced {count} buffers")
    sizes = struct.unpack(f"!{count}Q", _recv_exact(sock, 8 * count)) if count else ()
    if head_len + sum(sizes) > MAX_FRAME_BYTES:
        raise CodecError(f"a frame of {head_len + sum(sizes):,} bytes is over the {MAX_FRAME_BYTES:,} byte limit")
    head = json.loads(bytes(_recv_exact(sock, head_len)))
    body = memoryview(_recv_exact(sock, sum(sizes))) if sizes else memoryview(b"")
    out, at = [], 0
    for size in sizes:
        out.append(body[at:at + size])
        at += size
    return head, out


def _plain_base(v):
    """The value of an instance of a subclass of a plain type, by the plain type's own code
    (``float.__float__``, not an override), or None."""
    if "numpy" in sys.modules and isinstance(v, sys.modules["numpy"].generic):
        return None  # numpy scalars keep their dtype
    for base, get in ((bool, bool.__bool__), (int, int.__int__), (float, float.__float__), (complex, complex.__complex__),
                      (str, str.__str__), (bytes, bytes.__bytes__)):
        if isinstance(v, base):
            return get(v)
    for base in (list, tuple, set, frozenset):
        if isinstance(v, base) and not (hasattr(type(v), "_fields") and _is_record(v)):
            return base(base.__iter__(v))
    if isinstance(v, dict):
        return dict(dict.items(v))
    return None


def _library_class(module: str, qualname: str):
    """A class defined in :mod:`mlscale_lab` (never in its grading harness), or CodecError."""
    if not (module == "mlscale_lab" or module.startswith("mlscale_lab.")) or module.startswith(
            "mlscale_lab.harness") or "<" in qualname:
        raise CodecError(f"{module}.{qualname} is not a record of mlscale_lab")
    import importlib

    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise CodecError(f"{module}.{qualname} is not a class")
    return obj


def _is_record(obj) -> bool:
    cls = type(obj)
    module = getattr(cls, "__module__", "") or ""
    return (module.startswith("mlscale_lab.") and not module.startswith("mlscale_lab.harness")
            and "<" not in cls.__qualname__)


class Codec:
    """Encode values to frames and decode frames to values, for one side of one channel.

    ``peer`` (see :class:`mlscale_lab.harness.grading._endpoint.Endpoint`) decides what
    becomes a handle (:meth:`export`), builds proxies for the other side's handles
    (:meth:`proxy`), and resolves handles that come back (:meth:`own`). Values sent by copy get
    a copy id, and a copy that comes back is the original again (``x is table[3]`` holds).
    """

    def __init__(self, peer) -> None:
        self.peer = peer
        self.sent: dict[int, object] = {}  # copy id -> our object sent by value
        self._sent_ids: dict[int, int] = {}  # id(our object) -> copy id
        self.received: dict[int, tuple[int, object]] = {}  # id(their copy here) -> (copy id, object)
        self.received_torch: dict[int, tuple[int, object]] = {}  # those that are layers or tensors
        self._by_cid: dict[int, object] = {}  # their copy id -> our copy of it
        self._next = 1
        self.fresh = False  # while True, copies of the other side's objects are sent whole

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, value) -> tuple[object, list]:
        """The JSON header node and buffers of ``value``."""
        buffers: list = []
        return self.node(value, buffers, 0), buffers

    def copy_id(self, obj) -> int:
        """The copy id of one of our objects sent by value (the same object, the same id)."""
        cid = self._sent_ids.get(id(obj))
        if cid is None:
            cid, self._next = self._next, self._next + 1
            self._sent_ids[id(obj)] = cid
            self.sent[cid] = obj
        return cid

    def node(self, v, bufs: list, depth: int):
        """The header node of ``v`` (its raw data appended to ``bufs``)."""
        if depth > 200:
            raise CodecError("a value nested more than 200 levels deep")
        t = type(v)
        if v is None or t is bool or t is str:
            return v
        if t is int:
            return v if -(1 << 53) < v < (1 << 53) else ["i", str(v)]
        if t is float:
            return v if v == v and v not in (float("inf"), float("-inf")) else ["F", repr(v)]
        mine = self.peer.yours(v)  # one of their objects (a proxy here), or a copy of theirs
        if mine is not None:
            return mine
        back = None if self.fresh else self.received.get(id(v))
        if back is not None and back[1] is v:
            return ["Y", "c", back[0]]
        nxt = depth + 1
        if t in _SEQUENCES:
            return [_SEQUENCES[t], self.copy_id(v), *(self.node(x, bufs, nxt) for x in v)]
        if t is dict:
            items = []
            for k, x in v.items():
                items += [self.node(k, bufs, nxt), self.node(x, bufs, nxt)]
            return ["d", self.copy_id(v), *items]
        if t in (bytes, bytearray):
            bufs.append(bytes(v))
            return ["b" if t is bytes else "ba", len(bufs) - 1]
        if t is complex:
            return ["c", repr(v.real), repr(v.imag)]
        if t is range:
            return ["r", v.start, v.stop, v.step]
        if t is slice:
            return ["sl", *(self.node(x, bufs, nxt) for x in (v.start, v.stop, v.step))]
        if v is Ellipsis:
            return ["el"]
        if isinstance(v, type) and v.__name__ in _SCALAR_TYPES and _SCALAR_TYPES[v.__name__] is v:
            return ["ty", v.__name__]
        if isinstance(v, pathlib.PurePath):
            return ["p", str(v), isinstance(v, pathlib.Path)]
        base = _plain_base(v)
        if base is not None:  # a subclass of a plain type crosses as that type's own value
            return self.node(base, bufs, nxt)
        try:
            extra = self._numpy(v, bufs, nxt) if "numpy" in sys.modules else None
            if extra is None and "torch" in sys.modules:
                from mlscale_lab.harness.grading._codec_torch import encode_torch

                extra = encode_torch(self, v, bufs, nxt)
        except CodecError:
            extra = None  # not plain data after all: it stays where it is, as a handle
        if extra is not None:
            return extra
        if _is_record(v) and dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = [f.name for f in dataclasses.fields(v)]
            return ["dc", t.__module__, t.__qualname__, self.copy_id(v), fields,
                    *(self.node(getattr(v, f), bufs, nxt) for f in fields)]
        if _is_record(v) and isinstance(v, tuple) and hasattr(t, "_fields"):
            return ["nt", t.__module__, t.__qualname__, *(self.node(x, bufs, nxt) for x in v)]
        return self.peer.export(v)

    def _numpy(self, v, bufs, depth):
        import numpy as np

        if isinstance(v, np.ndarray):
            arr = np.asarray(v)  # a subclass arrives as a plain ndarray
            if arr.dtype.hasobject:
                return ["ao", self.copy_id(v), list(arr.shape),
                        *(self.node(x, bufs, depth) for x in arr.ravel().tolist())]
            if arr.dtype.fields is not None:
                raise CodecError("a structured numpy array cannot cross; send its columns")
            bufs.append(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data if arr.size else b"")
            return ["a", self.copy_id(v), arr.dtype.str, list(arr.shape), len(bufs) - 1]
        if isinstance(v, np.generic):
            if v.dtype.hasobject or v.dtype.fields is not None:
                raise CodecError(f"a numpy {v.dtype} scalar cannot cross")
            bufs.append(np.asarray(v).tobytes())
            return ["ns", v.dtype.str, len(bufs) - 1]
        if isinstance(v, np.dtype):
            if v.hasobject or v.fields is not None:
                raise CodecError(f"numpy dtype {v} cannot cross")
            return ["dt", v.str]
        if isinstance(v, type) and issubclass(v, np.generic) and v not in (np.generic, np.object_):
            try:
                return ["nty", np.dtype(v).str]
            except TypeError:
                return None
        return None

    # -- decoding -------------------------------------------------------------------------------
    def decode(self, node, buffers) -> object:
        """The value a header node and its buffers describe (CodecError for anything else)."""
        return self.value(node, buffers, 0)

    def keep(self, cid, obj):
        """Remember ``obj`` as our copy of the other side's object ``cid`` and return it; when
        that object came before, the copy we have is brought up to date and returned instead
        (the same object there is the same object here)."""
        if not isinstance(cid, int):
            return obj
        old = self._by_cid.get(cid)
        if old is not None and old is not obj and _refresh(old, obj):
            return old
        self._by_cid[cid] = obj
        self.received[id(obj)] = (cid, obj)
        return obj

    def value(self, n, bufs, depth):
        """The value of one header node."""
        if n is None or isinstance(n, bool | int | float | str):
            return n
        if not isinstance(n, list) or not n or not isinstance(n[0], str) or depth > 200:
            raise CodecError("a malformed value")
        tag, nxt = n[0], depth + 1
        if tag in ("l", "t", "s", "f"):
            items = [self.value(x, bufs, nxt) for x in n[2:]]
            return self.keep(n[1], {"l": list, "t": tuple, "s": set, "f": frozenset}[tag](items))
        if tag == "d":
            vals = [self.value(x, bufs, nxt) for x in n[2:]]
            return self.keep(n[1], dict(zip(vals[::2], vals[1::2], strict=True)))
        if tag == "i":
            return int(n[1])
        if tag == "F":
            return float(n[1])
        if tag in ("b", "ba"):
            return (bytes if tag == "b" else bytearray)(bufs[n[1]])
        if tag == "c":
            return complex(float(n[1]), float(n[2]))
        if tag == "r":
            return range(int(n[1]), int(n[2]), int(n[3]))
        if tag == "sl":
            return slice(*(self.value(x, bufs, nxt) for x in n[1:4]))
        if tag == "el":
            return Ellipsis
        if tag == "ty":
            return _SCALAR_TYPES[n[1]]
        if tag == "p":
            return (pathlib.Path if n[2] else pathlib.PurePath)(str(n[1]))
        if tag in ("a", "ao", "ns", "dt", "nty"):
            return self._numpy_value(n, bufs, nxt)
        if tag.startswith("T"):
            from mlscale_lab.harness.grading._codec_torch import decode_torch

            return decode_torch(self, n, bufs, nxt)
        if tag == "dc":
            cls = _library_class(str(n[1]), str(n[2]))
            fields = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else None
            if fields != n[4]:
                raise CodecError(f"{n[2]} does not have the fields {n[4]}")
            obj = object.__new__(cls)  # no __init__ or __post_init__ of the record runs
            for name, x in zip(fields, n[5:], strict=True):
                object.__setattr__(obj, name, self.value(x, bufs, nxt))
            return self.keep(n[3], obj)
        if tag == "nt":
            cls = _library_class(str(n[1]), str(n[2]))
            if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
                raise CodecError(f"{n[2]} is not a named tuple")
            return tuple.__new__(cls, [self.value(x, bufs, nxt) for x in n[3:]])
        if tag == "Y":
            return self.peer.own(n[1], n[2])
        if tag == "H":
            return self.peer.proxy(int(n[1]), str(n[2]), str(n[3]))
        raise CodecError(f"an unknown value tag {tag!r}")

    def _numpy_value(self, n, bufs, depth):
        import numpy as np

        tag = n[0]
        if tag == "ao":
            items = [self.value(x, bufs, depth) for x in n[3:]]
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return self.keep(n[1], arr.reshape([int(s) for s in n[2]]))
        dtype = np.dtype(str(n[2] if tag == "a" else n[1]))
        if dtype.hasobject or dtype.fields is not None:
            raise CodecError(f"numpy dtype {dtype} cannot cross")
        if tag == "dt":
            return dtype
        if tag == "nty":
            return dtype.type
        if tag == "ns":
            return np.frombuffer(bufs[n[2]], dtype=dtype, count=1)[0]
        shape = [int(s) for s in n[3]]
        data = bufs[n[4]]
        # a buffer of its own (aligned, writable, not keeping the whole frame alive)
        arr = np.frombuffer(bytearray(data), dtype=dtype) if len(data) else np.empty(0, dtype=dtype)
        return self.keep(n[1], arr.reshape(shape))


def _refresh(old, new) -> bool:
    """Give ``old`` the contents of ``new`` in place (same kind of object); False if it cannot."""
    if type(old) is not type(new):
        return False
    if isinstance(old, list):
        old[:] = new
    elif isinstance(old, dict | set):
        old.clear()
        old.update(new)
    elif isinstance(old, tuple | frozenset):
        return old == new
    elif dataclasses.is_dataclass(old):
        for f in dataclasses.fields(old):
            object.__setattr__(old, f.name, getattr(new, f.name))
    elif "numpy" in sys.modules and isinstance(old, sys.modules["numpy"].ndarray):
        if old.shape != new.shape or old.dtype != new.dtype or not old.flags.writeable:
            return False
        old[...] = new
    else:
        from mlscale_lab.harness.grading._codec_torch import transplant

        return "torch" in sys.modules and transplant(old, new)
    return True


def exception_node(exc: BaseException, tb_text: str = "") -> list:
    """An exception as plain data: its builtin ancestors (most derived first), message, traceback."""
    names = [c.__name__ for c in type(exc).__mro__ if getattr(builtins, c.__name__, None) is c]
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 (a learner's __str__ may raise)
        message = "(its message could not be read)"
    return ["x", type(exc).__qualname__[:200], names[:20], message[:4000], tb_text[-6000:]]


def rebuild_exception(node, wrap: type[BaseException]) -> BaseException:
    """The builtin exception an :func:`exception_node` describes (``wrap`` for one that ends a
    process: ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``, or none known)."""
    try:
        _, qualname, names, message, tb_text = node
    except (TypeError, ValueError):
        return wrap("an error that could not be read")
    cls = wrap
    for name in names if isinstance(names, list) else ():
        found = getattr(builtins, str(name), None)
        if (isinstance(found, type) and issubclass(found, Exception)):
            cls = found
            break
    try:
        exc = cls(str(message)) if cls is not wrap else wrap(f"{qualname}: {message}")
    except Exception:  # noqa: BLE001 (an exception class whose constructor wants more)
        exc = wrap(f"{qualname}: {message}")
    if tb_text:
        exc.add_note(f"raised in the submission's code ({qualname}):\n{tb_text}".rstrip())
    return exc
