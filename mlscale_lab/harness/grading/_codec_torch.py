"""torch values as plain data for :mod:`._codec`: tensors, dtypes, sizes, devices, and the
standard layers a lab's tests drive, rebuilt from their constructor settings and tensors.

A layer crosses only when it and all its children are of the exact classes listed in
:func:`layers` (``nn.Linear``, ``nn.Sequential``, activations, ``BatchNorm1d``, ...); the
receiving side builds a new layer of that class with its own code and loads the tensors into
it, pruning masks included (``torch.nn.utils.prune``: ``weight_orig`` and ``weight_mask`` are
put back with ``prune.custom_from_mask``). Hooks, extra attributes and subclasses never cross.
"""

from __future__ import annotations

from mlscale_lab.harness.grading._codec import CodecError

_PLAIN = (int, float, bool, str, type(None))


def _keep(codec, cid, obj):
    """``codec.keep``; a layer or tensor newly kept is also noted apart (``received_torch``):
    what a call may change, copied back after it, looked for among these alone."""
    kept = codec.keep(cid, obj)
    if kept is obj and isinstance(cid, int):
        codec.received_torch[id(obj)] = (cid, obj)
    return kept


def layers() -> dict:
    """``name -> (class, settings of an instance, build from settings)`` for the layers that cross."""
    from torch import nn

    def none(_m):
        return []

    return {
        "Linear": (nn.Linear, lambda m: [m.in_features, m.out_features, m.bias is not None],
                   lambda c: nn.Linear(int(c[0]), int(c[1]), bias=bool(c[2]))),
        "Sequential": (nn.Sequential, none, lambda c: nn.Sequential()),
        "ModuleList": (nn.ModuleList, none, lambda c: nn.ModuleList()),
        "ReLU": (nn.ReLU, lambda m: [m.inplace], lambda c: nn.ReLU(bool(c[0]))),
        "LeakyReLU": (nn.LeakyReLU, lambda m: [m.negative_slope, m.inplace],
                      lambda c: nn.LeakyReLU(float(c[0]), bool(c[1]))),
        "Tanh": (nn.Tanh, none, lambda c: nn.Tanh()),
        "Sigmoid": (nn.Sigmoid, none, lambda c: nn.Sigmoid()),
        "Identity": (nn.Identity, none, lambda c: nn.Identity()),
        "GELU": (nn.GELU, lambda m: [m.approximate], lambda c: nn.GELU(approximate=str(c[0]))),
        "Flatten": (nn.Flatten, lambda m: [m.start_dim, m.end_dim], lambda c: nn.Flatten(int(c[0]), int(c[1]))),
        "Dropout": (nn.Dropout, lambda m: [m.p, m.inplace], lambda c: nn.Dropout(float(c[0]), bool(c[1]))),
        "Softmax": (nn.Softmax, lambda m: [m.dim], lambda c: nn.Softmax(c[0])),
        "LogSoftmax": (nn.LogSoftmax, lambda m: [m.dim], lambda c: nn.LogSoftmax(c[0])),
        "BatchNorm1d": (nn.BatchNorm1d, lambda m: [m.num_features, m.eps, m.momentum, m.affine,
                                                   m.track_running_stats],
                        lambda c: nn.BatchNorm1d(int(c[0]), float(c[1]), c[2], bool(c[3]), bool(c[4]))),
    }


def _layer_name(module, table) -> str | None:
    for name, (cls, _, _) in table.items():
        if type(module) is cls:
            return name
    return None


def _crosses(module, table) -> bool:
    return _layer_name(module, table) is not None and all(_crosses(c, table) for c in module._modules.values()
                                                          if c is not None)


def encode_torch(codec, v, bufs: list, depth: int):
    """The node of a torch value, or None when ``v`` is not one that crosses."""
    import torch

    if isinstance(v, torch.Tensor):
        if codec.peer.keeps(v):
            return None  # a tensor in an autograd graph stays where the graph is (a handle)
        if v.layout != torch.strided or v.is_quantized or v.device.type != "cpu":
            return None
        t = v.detach().contiguous()
        bufs.append(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        at = len(bufs) - 1
        grad = codec.node(v.grad, bufs, depth) if v.is_leaf and v.grad is not None else None
        return ["Tt", codec.copy_id(v), str(t.dtype).removeprefix("torch."), list(t.shape), at,
                bool(v.requires_grad), isinstance(v, torch.nn.Parameter), grad]
    if isinstance(v, torch.Size):
        return ["Ts", [int(x) for x in v]]
    if isinstance(v, torch.dtype):
        return ["Td", str(v).removeprefix("torch.")]
    if isinstance(v, torch.device):
        return ["Tv", str(v)]
    if isinstance(v, torch.nn.Module):
        table = layers()
        if not _crosses(v, table):
            return None
        return _module_node(codec, v, table, bufs, depth)
    return None


def _module_node(codec, m, table, bufs, depth):
    name = _layer_name(m, table)
    config = table[name][1](m)
    pruned = sorted(k[:-5] for k in m._parameters if k.endswith("_orig") and f"{k[:-5]}_mask" in m._buffers)
    return ["Tm", codec.copy_id(m), name, config, bool(m.training),
            [[k, _module_node(codec, c, table, bufs, depth + 1)] for k, c in m._modules.items() if c is not None],
            [[k, codec.node(p, bufs, depth + 1)] for k, p in m._parameters.items()],
            [[k, codec.node(b, bufs, depth + 1)] for k, b in m._buffers.items()], pruned]


def _dtype(name):
    import torch

    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype):
        raise CodecError(f"torch has no dtype {name!r}")
    return dtype


def decode_torch(codec, n, bufs, depth):
    """The torch value a node describes, built by this side's own torch."""
    import torch

    tag = n[0]
    if tag == "Ts":
        return torch.Size([int(x) for x in n[1]])
    if tag == "Td":
        return _dtype(n[1])
    if tag == "Tv":
        return torch.device(str(n[1]))
    if tag == "Tt":
        dtype, shape, data = _dtype(n[2]), [int(s) for s in n[3]], bufs[n[4]]
        if len(data):
            t = torch.frombuffer(bytearray(data), dtype=torch.uint8).view(dtype).reshape(shape)
        else:
            t = torch.empty(shape, dtype=dtype)
        if n[6]:
            t = torch.nn.Parameter(t, requires_grad=bool(n[5]))
        elif n[5]:
            t.requires_grad_(True)
        if n[7] is not None:
            t.grad = codec.value(n[7], bufs, depth)
        return _keep(codec, n[1], t)
    if tag == "Tm":
        with torch.random.fork_rng(devices=[]):  # building a layer must not move the test's RNG
            return _module(codec, n, layers(), bufs, depth)
    raise CodecError(f"an unknown torch tag {tag!r}")


def _module(codec, n, table, bufs, depth):
    import torch
    from torch.nn.utils import prune

    _, cid, name, config, training, children, params, buffers, pruned = n
    if name not in table or not all(isinstance(c, _PLAIN) for c in config):
        raise CodecError(f"a layer {name!r} that cannot be rebuilt")
    m = table[name][2](config)
    for key, child in children:
        m.add_module(str(key), _module(codec, child, table, bufs, depth + 1))
    values = {str(k): codec.value(p, bufs, depth + 1) for k, p in params}
    masks = {str(k): codec.value(b, bufs, depth + 1) for k, b in buffers}
    for base in pruned:
        values[base] = values.pop(f"{base}_orig")
    for key, value in values.items():
        if key not in m._parameters or not (value is None or isinstance(value, torch.nn.Parameter)):
            raise CodecError(f"{name} has no parameter {key!r}")
        m._parameters[key] = value
    for base in pruned:
        with torch.no_grad():  # as after pruning in place: the masked weight is no graph node yet
            prune.custom_from_mask(m, base, masks.pop(f"{base}_mask"))  # `base`_orig is set above
    for key, value in masks.items():
        if key not in m._buffers or not (value is None or isinstance(value, torch.Tensor)):
            raise CodecError(f"{name} has no buffer {key!r}")
        m._buffers[key] = value
    m.training = bool(training)
    return _keep(codec, cid, m)


def transplant(original, new) -> bool:
    """Make ``original`` hold ``new``'s state in place (a layer or a tensor the other side changed);
    False when they are not of the same kind."""
    import torch

    if isinstance(original, torch.nn.Module) and type(original) is type(new):
        original.__dict__.clear()
        original.__dict__.update(new.__dict__)
        return True
    if isinstance(original, torch.Tensor) and isinstance(new, torch.Tensor):
        with torch.no_grad():
            original.data = new.data
        if original.is_leaf:
            original.grad = new.grad
        return True
    return False
