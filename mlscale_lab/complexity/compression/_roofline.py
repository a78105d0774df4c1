"""The bytes a prediction moves, and what they predict for its latency at batch 1.

At batch 1 a ``Linear`` layer multiplies each weight once: two flops per weight read, far too
little arithmetic to keep a CPU core busy, so the time is set by how fast the weights stream
in from memory (the roofline model's memory-bound side: Williams, Waterman and Patterson
2009). A call then costs about

    latency  =  fixed overhead  +  bytes read / memory bandwidth

where the overhead is the framework's dispatch per call and per layer (microseconds, the
same at any size) and the bytes are the weights at their stored width: int8 reads a quarter
of fp32's. A small model is all overhead (its weights sit in cache and take no time to
read); a model of tens of megabytes is all bytes. :func:`read_bandwidth` measures the
bandwidth, :func:`bytes_per_prediction` counts the bytes, :func:`roofline_ms` predicts.
"""

from __future__ import annotations

import time

from mlscale_lab.validation import check_int, check_number

#: Bytes per stored weight, by format.
WEIGHT_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}


def bytes_per_prediction(model, weight_format: str = "float32", *, batch: int = 1) -> int:
    """Bytes one call reads and writes: weights at ``weight_format``, biases, activations.

    Weights are read once per call whatever the batch; biases are float32 (int8 layers keep
    them so), and an int8 layer also reads one float32 scale per output channel; activations
    (inputs and outputs of each layer, float32) grow with the batch.

    Examples
    --------
    >>> from torch import nn
    >>> m = nn.Sequential(nn.Linear(100, 50), nn.ReLU(), nn.Linear(50, 10))
    >>> bytes_per_prediction(m)          # 5,500 weights * 4 + 60 biases * 4 + (100+50+10) * 4
    22880
    >>> bytes_per_prediction(m, "int8")  # 5,500 weights * 1 + biases and scales + activations
    6620
    """
    from mlscale_lab.complexity.compression._sharing import linear_layers

    func = "bytes_per_prediction"
    if weight_format not in WEIGHT_BYTES:
        raise ValueError(f"{func}(weight_format={weight_format!r}): expected one of "
                         f"{sorted(WEIGHT_BYTES)}")
    batch = check_int(func, "batch", batch, low=1)
    layers = list(linear_layers(model).values())
    if not layers:
        raise ValueError(f"{func}(model=...): expected a model with nn.Linear layers")
    total = 0
    for i, layer in enumerate(layers):
        total += layer.weight.numel() * WEIGHT_BYTES[weight_format]
        total += 4 * (layer.out_features if layer.bias is not None else 0)
        if weight_format == "int8":
            total += 4 * layer.out_features  # one scale per output channel
        total += 4 * batch * (layer.out_features + (layer.in_features if i == 0 else 0))
    return int(total)


def read_bandwidth(megabytes: int = 64, *, repeats: int = 5) -> float:
    """Bytes per second one thread reads from memory: the fastest of ``repeats`` passes.

    Sums a float32 array of ``megabytes`` MB (larger than the CPU's caches, so the data comes
    from memory; a sum does one addition per 4 bytes, like a batch-1 layer's two flops per
    weight). The fastest pass is the machine's, the others include interruptions.

    Examples
    --------
    >>> read_bandwidth(8, repeats=2) > 1e8   # at least 100 MB/s
    True
    """
    import torch

    megabytes = check_int("read_bandwidth", "megabytes", megabytes, low=1)
    repeats = check_int("read_bandwidth", "repeats", repeats, low=1)
    x = torch.ones(megabytes * 2**20 // 4, dtype=torch.float32)
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass faults the pages in
        t0 = time.perf_counter()
        float(x.sum())
        best = min(best, time.perf_counter() - t0)
    return x.numel() * 4 / best


def roofline_ms(nbytes: int, bandwidth: float, overhead_ms: float = 0.0) -> float:
    """Predicted batch-1 latency: ``overhead_ms`` plus ``nbytes`` read at ``bandwidth`` (B/s).

    Examples
    --------
    >>> roofline_ms(40_000_000, 10e9, overhead_ms=0.05)   # 40 MB at 10 GB/s: 4 ms + overhead
    4.05
    """
    check_number("roofline_ms", "nbytes", nbytes, low=0)
    bandwidth = check_number("roofline_ms", "bandwidth", bandwidth, low=0, low_open=True)
    overhead_ms = check_number("roofline_ms", "overhead_ms", overhead_ms, low=0)
    return round(overhead_ms + 1e3 * nbytes / bandwidth, 12)


def wide_mlp(width: int, *, depth: int = 3, n_features: int = 64, seed: int = 0):
    """A ReLU MLP of ``depth`` hidden layers of ``width`` units (random weights, eval mode):
    a stand-in for a big model whose latency, not accuracy, is measured.

    Examples
    --------
    >>> wide_mlp(32, depth=2)[2]
    Linear(in_features=32, out_features=32, bias=True)
    """
    from mlscale_lab.complexity import pruning as P

    width = check_int("wide_mlp", "width", width, low=1)
    depth = check_int("wide_mlp", "depth", depth, low=1)
    return P.make_mlp((n_features,) + (width,) * depth + (10,), seed=seed).eval()
