"""The plain-data codec between a learner's process and a test's: what it carries, what it
refuses, and that decoding never runs code of the sender's (records are set, not constructed;
classes outside mlscale_lab, subclasses and lying dunders never come out)."""

from __future__ import annotations

import collections
import copy
import math
import pathlib
import socket
import threading

import numpy as np
import pytest
import torch

from mlscale_lab.harness.grading._codec import (
    MAX_FRAME_BYTES,
    Codec,
    CodecError,
    recv_frame,
    send_frame,
)
from mlscale_lab.prices import Machine


class Peer:
    """A side with no proxies: what it cannot send as data it marks as a handle."""

    def __init__(self):
        self.codec = Codec(self)
        self.exported = []

    def export(self, v):
        self.exported.append(v)
        return ["H", len(self.exported), "object", type(v).__name__]

    def keeps(self, tensor):
        return False

    def yours(self, v):
        return None

    def own(self, kind, ident):
        return self.codec.sent[ident]

    def proxy(self, hid, kind, type_name):
        return ("proxy", hid, type_name)


def cross(value, sender=None, receiver=None):
    """``value`` sent through a real socket and decoded on the other side."""
    sender, receiver = sender or Peer(), receiver or Peer()
    node, bufs = sender.codec.encode(value)
    a, b = socket.socketpair()
    with a, b:
        t = threading.Thread(target=send_frame, args=(a, node, bufs))
        t.start()
        head, buffers = recv_frame(b)
        t.join()
    return receiver.codec.decode(head, buffers)


PLAIN = [None, True, False, 0, -7, 2**70, 1.5, math.inf, -math.inf, "ünïcode", b"\x00\xff", bytearray(b"ab"),
         3 + 4j, range(2, 10, 3), slice(1, None, 2), Ellipsis, [1, [2, (3, 4)]], (1,), {(1, 2): {"a": [None]}},
         {1, 2}, frozenset({"x"}), int, float, pathlib.Path("/tmp/x"), pathlib.PurePath("a/b")]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_values_cross_with_their_exact_type(value):
    got = cross(value)
    assert got == value and type(got) is type(value)


def test_nan_crosses():
    assert math.isnan(cross(math.nan))


@pytest.mark.parametrize("arr", [np.arange(12, dtype=np.int16).reshape(3, 4), np.zeros((0, 3)),
                                 np.asfortranarray(np.eye(3)), np.arange(10.0)[::3], np.array(5.5),
                                 np.array(["ab", "c"]), np.array([1, 2], dtype="datetime64[D]"),
                                 np.array([True, False])], ids=lambda a: f"{a.dtype}{a.shape}")
def test_numpy_arrays_cross_writable_and_equal(arr):
    got = cross(arr)
    assert type(got) is np.ndarray and got.dtype == arr.dtype and got.shape == arr.shape
    assert np.array_equal(got, arr) and got.flags.writeable


def test_numpy_scalars_dtypes_and_scalar_types_cross():
    assert type(cross(np.float32(1.5))) is np.float32 and cross(np.int64(3)) == 3
    assert cross(np.dtype("float16")) == np.dtype("float16") and cross(np.float16) is np.float16
    objects = np.array([1, "two", None], dtype=object)
    assert cross(objects).tolist() == [1, "two", None]


def test_subclasses_of_plain_types_cross_as_the_plain_type_and_lose_their_overrides():
    class Lies(float):
        def __eq__(self, other):
            return True

        def __float__(self):
            return 0.0

        __hash__ = float.__hash__

    class Arr(np.ndarray):
        def __eq__(self, other):
            return True

    got = cross([Lies(2.5), np.arange(3).view(Arr), collections.defaultdict(int, a=1), collections.Counter("aa")])
    assert [type(x) for x in got] == [float, np.ndarray, dict, dict]
    assert got[0] == 2.5 and got[0] != 3 and not np.array_equal(got[1], [9, 9, 9]) and got[2] == {"a": 1}


def test_objects_that_are_not_plain_data_stay_behind_as_handles():
    sender = Peer()

    class Anything:
        def __eq__(self, other):
            return True

    thing = Anything()
    got = cross({"x": thing, "f": len}, sender)
    assert got["x"][0] == "proxy" and got["f"][0] == "proxy" and sender.exported == [thing, len]


def test_records_of_mlscale_lab_are_set_field_by_field_without_running_their_code(monkeypatch):
    m = Machine("small", 2, 4 * 1024**3, 0.1)
    assert cross(m) == m and type(cross(m)) is Machine
    ran = []
    monkeypatch.setattr(Machine, "__post_init__", lambda self: ran.append(self), raising=False)
    node = ["dc", "mlscale_lab.prices", "Machine", 1, ["name", "vcpus", "memory_bytes", "usd_per_hour"],
            "x", -1, "not bytes", None]
    got = Peer().codec.decode(node, [])
    assert got.vcpus == -1 and ran == [], "the record's code never ran"


@pytest.mark.parametrize("node", [
    ["dc", "os", "PathLike", 1, [], ],
    ["dc", "mlscale_lab.harness.grading._grade", "CellGrade", 1, ["grade_id", "points", "max_points", "reason"],
     "a", 1, 1, "r"],
    ["dc", "mlscale_lab.prices", "Machine", 1, ["name"], "x"],
    ["nt", "collections", "namedtuple"],
    ["a", 1, "|O", [1], 0],
    ["a", 1, [["f0", "<i4"]], [1], 0],
    ["zz"],
    {"not": "a node"},
    ["Tm", 1, "Conv2d", [], True, [], [], [], []],
], ids=str)
def test_anything_else_is_refused(node):
    with pytest.raises((CodecError, TypeError, ValueError, KeyError, IndexError)):
        Peer().codec.decode(node, [b"\x00" * 8])


def test_a_frame_over_the_limit_is_refused_before_it_is_read():
    import struct

    a, b = socket.socketpair()
    with a, b:
        a.sendall(struct.pack("!II", 10, 1) + struct.pack("!Q", MAX_FRAME_BYTES))
        with pytest.raises(CodecError, match="over the"):
            recv_frame(b)


def test_an_object_sent_and_sent_back_is_the_same_object_and_a_resent_one_is_brought_up_to_date():
    a, b = Peer(), Peer()
    table = [{"k": 1}, {"k": 2}]
    copy_there = cross(table, a, b)
    back = cross(copy_there[1], b, a)
    assert back is table[1], "the original comes back, not a copy"
    table[0]["k"] = 10
    again = cross(table, a, b)
    assert again is copy_there and again[0] == {"k": 10}, "the same object there, refreshed"


def _pruned():
    from torch.nn.utils import prune

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    prune.l1_unstructured(model[0], "weight", 0.5)
    prune.l1_unstructured(model[0], "weight", 0.3)
    model[2].weight.grad = torch.ones_like(model[2].weight)
    return model


def test_standard_layers_cross_rebuilt_by_the_receiver_pruning_included():
    model = _pruned()
    state = torch.random.get_rng_state()
    got = cross(model)
    assert torch.equal(torch.random.get_rng_state(), state), "rebuilding layers leaves the RNG alone"
    assert type(got) is torch.nn.Sequential and type(got[0]) is torch.nn.Linear
    x = torch.randn(4, 6)
    assert torch.allclose(got(x), model(x))
    assert torch.equal(got[0].weight_mask, model[0].weight_mask) and int((got[0].weight == 0).sum()) == int((model[0].weight == 0).sum()) > 0
    assert torch.equal(got[2].weight.grad, model[2].weight.grad)
    copy.deepcopy(cross(model))  # a rebuilt pruned layer can be copied, as one just pruned in place can


def test_a_layer_subclass_or_an_unknown_layer_stays_behind_as_a_handle():
    class Sneaky(torch.nn.Linear):
        def forward(self, x):
            return x * 0

    sender = Peer()
    got = cross([Sneaky(2, 2), torch.nn.Sequential(torch.nn.Conv1d(1, 1, 1))], sender)
    assert [g[0] for g in got] == ["proxy", "proxy"] and len(sender.exported) == 2


@pytest.mark.parametrize("t", [torch.arange(6.0).reshape(2, 3), torch.tensor([1, 2], dtype=torch.int64),
                               torch.zeros(3, dtype=torch.bfloat16), torch.tensor(2.5),
                               torch.ones(2, requires_grad=True)], ids=lambda t: str(t.dtype))
def test_tensors_cross(t):
    got = cross(t)
    assert got.dtype == t.dtype and torch.equal(got.detach(), t.detach()) and got.requires_grad == t.requires_grad
    assert cross(torch.Size([2, 3])) == torch.Size([2, 3]) and cross(torch.float16) is torch.float16
