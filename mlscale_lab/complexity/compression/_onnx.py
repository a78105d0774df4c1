"""The deployable artifact: a model exported to ONNX and served by ONNX Runtime.

Export uses torch's maintained exporter (``torch.onnx.export(..., dynamo=True)``, built on
``torch.export``; the TorchScript exporter is deprecated since torch 2.9) with a dynamic batch
dimension and the weights inside the one ``.onnx`` file. ONNX Runtime runs the graph without
torch: its process starts faster and its per-call overhead is smaller. Its own
``quantize_dynamic`` writes an int8 ONNX file (the maintained int8 route for a CPU artifact).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlscale_lab.validation import check_choice, check_int, check_number

RUNTIMES = ("onnxruntime", "torch")


@contextlib.contextmanager
def _quiet_exporter():
    # The exporter logs progress lines and warns about optional torchvision ops it skips;
    # ONNX Runtime's quantizer logs advice through the root logger. None of it is actionable here.
    import warnings

    loggers = [logging.getLogger(n) for n in ("", "torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


EXPORTERS = ("dynamo", "torchscript")


def export_onnx(model, path: str | os.PathLike, n_features: int, *, exporter: str = "dynamo") -> int:
    """Export a torch ``model`` taking ``(batch, n_features)`` float32 rows to one ONNX file.

    The input is named ``"x"``, the output ``"logits"``; the batch dimension is dynamic, so
    the same file serves batch 1 and batch 256. Returns the file's size in bytes.

    ``exporter="dynamo"`` (default) is torch's maintained exporter; ``"torchscript"`` is the
    older one, deprecated since torch 2.9 but about 60x faster for a small MLP (0.1 s against
    6.7 s cold, measured on this project's 2-core machine), which a lab on a time budget that
    only needs the file can prefer. Both give the same graph of Linear and ReLU nodes.

    Examples
    --------
    >>> import tempfile
    >>> from torch import nn
    >>> tmp = tempfile.TemporaryDirectory()  # removed with the object
    >>> path = tmp.name + "/tiny.onnx"
    >>> export_onnx(nn.Sequential(nn.Linear(4, 3)), path, n_features=4) > 0
    True
    >>> onnx_predictor(path)(np.ones((5, 4), np.float32)).shape
    (5, 3)
    """
    import torch

    func = "export_onnx"
    n_features = check_int(func, "n_features", n_features, low=1)
    check_choice(func, "exporter", exporter, EXPORTERS)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{func}(model={type(model).__name__}): expected a torch nn.Module, "
                        f"got {type(model).__name__}")
    with _quiet_exporter(), open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(model.eval(), (torch.zeros(2, n_features),), str(path), dynamo=True,
                              input_names=["x"], output_names=["logits"],
                              dynamic_shapes=({0: batch},), external_data=False, verbose=False)
        else:
            torch.onnx.export(model.eval(), (torch.zeros(1, n_features),), str(path), dynamo=False,
                              input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return os.path.getsize(path)


def onnx_predictor(path: str | os.PathLike, *, threads: int = 1):
    """An ONNX Runtime session on ``path`` as ``predict(X) -> logits`` (float32 NumPy arrays).

    ``threads`` sets ONNX Runtime's intra-op threads (one, like the torch side of the lab).
    """
    import onnxruntime as ort

    threads = check_int("onnx_predictor", "threads", threads, low=1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(X):
        return session.run(None, {name: np.ascontiguousarray(X, dtype=np.float32)})[0]

    return predict


def quantize_onnx_int8(source: str | os.PathLike, target: str | os.PathLike) -> int:
    """ONNX Runtime's dynamic int8 quantization of ``source`` (weights int8, activations
    quantized at run time) written to ``target``; returns the new file's bytes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not Path(source).is_file():
        raise FileNotFoundError(f"quantize_onnx_int8(source={os.fspath(source)!r}): expected an "
                                "existing .onnx file, got a path with no file; export_onnx first")
    with _quiet_exporter():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return os.path.getsize(target)


@dataclass(frozen=True)
class ColdStart:
    """A fresh process loading a model and making its first prediction.

    Attributes
    ----------
    runtime : str
        ``"onnxruntime"`` or ``"torch"``.
    load_to_prediction_s : float
        Inside the child: from before importing the runtime to the first prediction's result
        (imports, reading the file, building the session or model, one batch-1 call).
    process_s : float
        In the parent: from starting the process to its exit (adds the interpreter's start).
    prediction : list
        The first prediction's logits, for checking that both runtimes agree.
    rss_bytes : int
        The child's resident memory right after its first prediction: the runtime, the
        interpreter and the model together, what one serving process of it holds (measured
        like lab 07's memory per worker).
    """

    runtime: str
    load_to_prediction_s: float
    process_s: float
    prediction: list
    rss_bytes: int = 0

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
runtime, path, row, weights = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
import numpy as np
x = np.asarray([row], dtype=np.float32)
if runtime == "onnxruntime":
    import onnxruntime as ort
    opts = ort.SessionOptions(); opts.intra_op_num_threads = 1; opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
else:
    import torch
    torch.set_num_threads(1)
    model = torch.load(path, weights_only=False, map_location="cpu").eval()
    if weights:  # a deep-compressed file: decoded into the module's dense float32 tensors
        from mlscale_lab.complexity.compression import load_deep_compressed
        model.load_state_dict(load_deep_compressed(weights))
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
t1 = time.perf_counter()
import psutil
rss = psutil.Process().memory_info().rss
print(json.dumps({"seconds": t1 - t0, "prediction": out[0].tolist(), "rss": rss}))
"""


def cold_start(path: str | os.PathLike, row, *, runtime: str = "onnxruntime",
               weights: str | os.PathLike | None = None, timeout: float = 120.0) -> ColdStart:
    """Time a fresh Python process from loading ``path`` to its first prediction on ``row``.

    The child imports only its runtime (ONNX Runtime never imports torch). It is killed, with
    anything it started, if it does not finish within ``timeout`` seconds; it never outlives
    this call.

    Parameters
    ----------
    path : path-like
        An ``.onnx`` file (``runtime="onnxruntime"``) or a whole module saved with
        ``torch.save(model, path)`` (``runtime="torch"``).
    row : array-like
        One input row.
    runtime : {"onnxruntime", "torch"}
    weights : path-like, optional
        With ``runtime="torch"``: a :func:`save_deep_compressed` file whose tensors the child
        loads into the module after reading ``path`` (what serving a deep-compressed model
        costs: decoding, then dense float32 weights).
    timeout : float, default 120

    Returns
    -------
    ColdStart
    """
    from mlscale_lab._core.processes import kill_process_tree

    func = "cold_start"
    runtime = check_choice(func, "runtime", runtime, RUNTIMES)
    timeout = check_number(func, "timeout", timeout, low=0, low_open=True)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{func}(path={os.fspath(path)!r}): expected an existing model "
                                "file, got a path with no file")
    if weights is not None and (runtime != "torch" or not Path(weights).is_file()):
        raise ValueError(f"{func}(weights={os.fspath(weights)!r}): expected an existing "
                         "deep-compressed file, with runtime='torch'")
    values = np.asarray(row, dtype=np.float32).ravel().tolist()
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", _CHILD, runtime, os.fspath(path), json.dumps(values),
                                  "" if weights is None else os.fspath(weights)],
                                 stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        try:
            out, _ = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process_tree(child.pid)
            child.communicate()
            raise TimeoutError(f"{func}(timeout={timeout}): the {runtime} process did not make its "
                               f"first prediction within {timeout} s") from None
        finally:
            kill_process_tree(child.pid)  # nothing it started may outlive the call
        elapsed = time.perf_counter() - started
        if child.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-800:]
            raise RuntimeError(f"{func}: the {runtime} process failed (exit {child.returncode}):\n{tail}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return ColdStart(runtime, float(result["seconds"]), elapsed, result["prediction"], int(result["rss"]))
