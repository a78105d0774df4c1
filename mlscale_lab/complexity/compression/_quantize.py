"""Post-training int8 quantization of ``nn.Linear`` layers: dynamic and static (calibrated).

Which API, and why: torch 2.10+ marks ``torch.ao.quantization`` as deprecated in favour of
torchao's ``quantize_``. On a CPU without ``torch.compile`` (eager mode, as in these labs)
torchao 0.18's int8 configurations shrink the file as much but run *slower* than fp32 (no
fused int8 kernel is dispatched in eager mode; measured in ``benchmarks/bench_compression.py``),
while ``torch.ao.quantization`` still calls fbgemm/x86 int8 GEMM kernels and runs faster than
fp32 on wide layers (about 2-3x on lab 06's 1024-wide model, same benchmark). So these helpers keep ``torch.ao.quantization`` while torch ships it (the project pins
torch below 2.14) and silence exactly its two deprecation notices, which would otherwise
print on every call. ONNX Runtime's ``quantize_dynamic`` (see :mod:`._onnx`) is the
maintained route for a deployed int8 artifact.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

from mlscale_lab.validation import check_choice, check_int

_DEPRECATIONS = (
    "torch.ao.quantization is deprecated",
    "torch.quantize_per_tensor, torch.quantize_per_channel",
    "Please use quant_min and quant_max",  # the x86 qconfig's own observers, not our call
)


@contextlib.contextmanager
def quiet_torch_ao():
    """Silence torch's deprecation notices for ``torch.ao.quantization`` (and only those).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     with quiet_torch_ao():
    ...         warnings.warn("torch.ao.quantization is deprecated and will be removed", DeprecationWarning)
    ...         warnings.warn("something else", UserWarning)
    >>> [str(w.message) for w in seen]
    ['something else']
    """
    with warnings.catch_warnings():
        for text in _DEPRECATIONS:
            warnings.filterwarnings("ignore", message=text)
        yield


def _check_linear_model(func: str, model):
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"{func}(model={type(model).__name__}): expected a torch nn.Module, "
                        f"got {type(model).__name__}")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(f"{func}(model=...): expected a model with nn.Linear layers to quantize, "
                         f"got a {type(model).__name__} without one")


def quantize_dynamic_int8(model):
    """A copy of ``model`` whose ``nn.Linear`` layers hold int8 weights (dynamic quantization).

    Weights are quantized once, per tensor, to int8; activations are quantized on the fly at
    every call from their observed range, so no calibration data is needed. The original model
    is left untouched.

    Parameters
    ----------
    model : torch.nn.Module
        A trained float model (put in eval mode in the copy).

    Returns
    -------
    torch.nn.Module
        The quantized copy (``torch.ao.nn.quantized.dynamic.Linear`` layers).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> q = quantize_dynamic_int8(nn.Sequential(nn.Linear(8, 4)))
    >>> type(q[0]).__name__, q(torch.zeros(2, 8)).shape
    ('Linear', torch.Size([2, 4]))
    >>> q[0].weight().dtype
    torch.qint8
    """
    import torch
    from torch import nn

    _check_linear_model("quantize_dynamic_int8", model)
    with quiet_torch_ao():
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear},
                                                      dtype=torch.qint8)


OBSERVERS = ("histogram", "minmax")


def quantize_static_int8(model, calibration, *, batch_size: int = 256, observer: str = "histogram"):
    """A copy of ``model`` (``nn.Sequential`` of ``Linear`` and ``ReLU``) quantized statically.

    Static quantization fixes the activations' int8 scale ahead of time from
    ``calibration`` data (observers record their ranges), so no range is computed at serving
    time and Linear+ReLU pairs fuse into one int8 kernel. Input and output stay float: a
    quantize step is added in front and a dequantize step at the end.

    Parameters
    ----------
    model : torch.nn.Sequential
        ``Linear`` layers, optionally each followed by a ``ReLU``.
    calibration : torch.Tensor
        Representative inputs (a few hundred training rows are enough), shape ``(n, features)``.
    batch_size : int, default 256
        Rows per calibration forward pass.
    observer : {"histogram", "minmax"}
        How the activations' range is set from the calibration rows: the x86 default
        (``HistogramObserver``: the range that minimises the quantization error of the
        observed histogram, so rare outliers are clipped) or the plain minimum and maximum
        seen (``MinMaxObserver``: one outlier row stretches the grid). Weights are always
        per channel.

    Returns
    -------
    torch.nn.Module
        The quantized copy; ``module(x)`` takes and returns float tensors.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0) and None
    >>> m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    >>> x = torch.randn(64, 8)
    >>> q = quantize_static_int8(m, x)
    >>> bool((q(x) - m(x)).abs().max() < 0.1)
    True
    """
    import torch
    from torch import nn

    func = "quantize_static_int8"
    _check_linear_model(func, model)
    batch_size = check_int(func, "batch_size", batch_size, low=1)
    observer = check_choice(func, "observer", observer, OBSERVERS)
    if not isinstance(model, nn.Sequential) or not all(
            isinstance(m, (nn.Linear, nn.ReLU)) for m in model):
        raise TypeError(f"{func}(model=...): expected an nn.Sequential of nn.Linear and nn.ReLU "
                        f"layers, got {model.__class__.__name__} with "
                        f"{[type(m).__name__ for m in model.children()]}")
    if not isinstance(calibration, torch.Tensor) or calibration.ndim != 2 or len(calibration) == 0:
        raise ValueError(f"{func}(calibration=...): expected a non-empty 2-D float tensor of "
                         f"inputs, got {type(calibration).__name__} "
                         f"{tuple(getattr(calibration, 'shape', ()))}")
    tq = torch.ao.quantization
    children = list(copy.deepcopy(model).eval())
    pairs = [[str(i), str(i + 1)] for i in range(len(children) - 1)
             if isinstance(children[i], nn.Linear) and isinstance(children[i + 1], nn.ReLU)]
    with quiet_torch_ao():
        body = nn.Sequential(*children)
        if pairs:
            body = tq.fuse_modules(body, pairs)
        wrapped = nn.Sequential(tq.QuantStub(), body, tq.DeQuantStub()).eval()
        qconfig = tq.get_default_qconfig("x86")
        if observer == "minmax":
            qconfig = tq.QConfig(activation=tq.MinMaxObserver.with_args(reduce_range=True),
                                 weight=qconfig.weight)
        wrapped.qconfig = qconfig
        tq.prepare(wrapped, inplace=True)
        with torch.no_grad():
            for start in range(0, len(calibration), batch_size):
                wrapped(calibration[start:start + batch_size])
        tq.convert(wrapped, inplace=True)
    return wrapped
