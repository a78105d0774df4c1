"""Evenly spaced levels: symmetric integer quantization, per tensor or per output channel.

A ``b``-bit symmetric quantizer maps a weight ``w`` to ``s * q`` with ``q`` an integer in
``[-(2**(b-1) - 1), 2**(b-1) - 1]`` and one scale ``s = max|w| / (2**(b-1) - 1)`` (Jacob et al.
2018; Nagel et al. 2021, section 2): zero stays exactly zero, and the largest weight is
represented exactly. The range is set by the *largest* weight, so one outlier stretches the
grid for all the others: a scale per output channel (one per row of a ``Linear`` weight)
lets each row use its own range. At 8 bits the grid is fine enough either way; at 2 bits
(three levels: ``-s, 0, s``) where the levels fall decides everything, which is what k-means
(:mod:`._sharing`) chooses instead of spacing them evenly.

The functions here *simulate* the quantizer (they return float tensors holding the
quantized values), which is how the accuracy of a bit width is measured before any integer
kernel exists for it; fp16 and bf16 are the float baselines, rounded the same way.
"""

from __future__ import annotations

import copy

from mlscale_lab.validation import check_choice, check_int

FLOAT_FORMATS = ("float16", "bfloat16")


def uniform_quantize(weight, bits: int, *, per_channel: bool = False):
    """``weight`` rounded to a symmetric ``bits``-bit integer grid (returned as float).

    Parameters
    ----------
    weight : torch.Tensor
        Any shape; with ``per_channel`` the first dimension is the channel (a ``Linear``
        layer's output rows).
    bits : int in [2, 16]
        Bits per weight (2 bits: the levels ``-s, 0, s``).
    per_channel : bool, default False
        One scale per row of ``weight`` instead of one for the whole tensor.

    Returns
    -------
    torch.Tensor
        Same shape and dtype; every value is ``scale * integer``.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([[0.1, -0.2, 0.4], [1.0, 0.6, -0.3]])
    >>> uniform_quantize(w, 2).tolist()  # one scale, 1.0: row 0 rounds to zero entirely
    [[0.0, -0.0, 0.0], [1.0, 1.0, -0.0]]
    >>> uniform_quantize(w, 2, per_channel=True).tolist()  # row 0 gets its own scale, 0.4
    [[0.0, -0.0, 0.4000000059604645], [1.0, 1.0, -0.0]]
    """
    import torch

    bits = check_int("uniform_quantize", "bits", bits, low=2, high=16)
    if not isinstance(weight, torch.Tensor):
        raise TypeError(f"uniform_quantize(weight={type(weight).__name__}): expected a torch "
                        "tensor, e.g. layer.weight.detach()")
    w = weight.detach()
    top = 2 ** (bits - 1) - 1
    if per_channel and w.ndim >= 1:
        peak = w.abs().reshape(w.shape[0], -1).amax(dim=1).reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        peak = w.abs().amax()
    scale = torch.where(peak > 0, peak / top, torch.ones_like(peak))
    return torch.clamp(torch.round(w / scale), -top, top) * scale


def round_to_float(weight, fmt: str):
    """``weight`` stored as float16 or bfloat16 and read back as float32.

    float16 keeps 10 bits of mantissa over a narrow range (largest 65504); bfloat16 keeps
    float32's range with 7 bits of mantissa. Either halves the bytes of float32.

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([1.0 + 2**-9, 70000.0])
    >>> round_to_float(w, "float16").tolist(), round_to_float(w, "bfloat16").tolist()
    ([1.001953125, inf], [1.0, 70144.0])
    """
    import torch

    fmt = check_choice("round_to_float", "fmt", fmt, FLOAT_FORMATS)
    return weight.detach().to(getattr(torch, fmt)).to(weight.dtype)


def quantize_weights(model, bits, *, method: str = "uniform", per_channel: bool = False,
                     seed: int = 0):
    """A copy of ``model`` whose ``Linear`` weights are quantized (simulated); biases stay float.

    Parameters
    ----------
    model : torch.nn.Module
    bits : int, dict or str
        Bits for every ``Linear`` weight, or ``{layer name: bits}`` (a layer left out or mapped
        to None stays float32); ``"float16"`` / ``"bfloat16"`` round every weight to that format.
    method : {"uniform", "kmeans"}
        Evenly spaced symmetric levels (:func:`uniform_quantize`) or k-means shared values
        (:func:`share_weights`, one codebook per layer).
    per_channel : bool
        For ``"uniform"``: one scale per output row.
    seed : int
        For ``"kmeans"``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(6, 4)); torch.manual_seed(0) and None
    >>> q = quantize_weights(m, 2, per_channel=True)
    >>> int(torch.unique(q[0].weight[0]).numel()) <= 3
    True
    """
    import torch

    from mlscale_lab.complexity.compression._sharing import linear_layers, share_weights

    func = "quantize_weights"
    method = check_choice(func, "method", method, ("uniform", "kmeans"))
    layers = linear_layers(model)
    if isinstance(bits, str):
        check_choice(func, "bits", bits, FLOAT_FORMATS)
        out = copy.deepcopy(model)
        with torch.no_grad():
            for m in linear_layers(out).values():
                m.weight.copy_(round_to_float(m.weight, bits))
        return out
    if method == "kmeans":
        return share_weights(model, bits, seed=seed)
    plan = dict(bits) if isinstance(bits, dict) else dict.fromkeys(layers, bits)
    unknown = set(plan) - set(layers)
    if unknown:
        raise ValueError(f"{func}(bits={bits!r}): expected keys among the Linear layers "
                         f"{list(layers)}, got {sorted(unknown)}")
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, m in linear_layers(out).items():
            if plan.get(name) is not None:
                m.weight.copy_(uniform_quantize(m.weight, plan[name], per_channel=per_channel))
    return out
