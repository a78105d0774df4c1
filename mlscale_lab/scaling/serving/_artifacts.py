"""Model files a server can load: a torch module (fp32 or int8), an ONNX graph, a pickled estimator.

The server process imports only what its artifact needs: an ONNX model is served by
onnxruntime without importing torch at all, which is much of why it starts faster and uses
less memory per worker.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mlscale_lab.validation import check_int

__all__ = ["ARTIFACT_KINDS", "artifact_kind", "export_artifacts", "load_predictor"]

#: File suffix -> what serves it.
ARTIFACT_KINDS = {".pt": "torch", ".onnx": "onnxruntime", ".joblib": "scikit-learn",
                  ".pkl": "scikit-learn"}


def artifact_kind(func: str, path) -> Path:
    """``path`` as a Path after checking it exists and has a suffix the server can load."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{func}(model_path={path!r}): expected a path to a model file, got {path!r}")
    p = Path(path)
    if p.suffix not in ARTIFACT_KINDS:
        raise ValueError(
            f"{func}(model_path={str(p)!r}): expected a file ending in one of "
            f"{', '.join(ARTIFACT_KINDS)}, got {p.suffix or 'no suffix'!r}")
    if not p.is_file():
        raise FileNotFoundError(
            f"{func}(model_path={str(p)!r}): expected an existing model file, got a path where "
            "no file exists; save the model first (see export_artifacts)")
    return p


def load_predictor(model_path, threads: int = 1):
    """Load the artifact at ``model_path``; return ``predict(X) -> labels`` for a 2-D float32 array.

    Parameters
    ----------
    model_path : path-like
        ``.pt`` (a whole ``torch.nn.Module`` saved by ``torch.save``), ``.onnx``, ``.joblib``/``.pkl``.
    threads : int
        Intra-op threads of the runtime (one per worker process: workers are the parallelism).
    """
    p = artifact_kind("load_predictor", model_path)
    threads = check_int("load_predictor", "threads", threads, low=1)
    kind = ARTIFACT_KINDS[p.suffix]
    if kind == "torch":
        import torch

        torch.set_num_threads(threads)
        model = torch.load(p, weights_only=False, map_location="cpu")
        model.eval()

        def predict(X):
            with torch.inference_mode():
                return model(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))).argmax(1).numpy()
    elif kind == "onnxruntime":
        from mlscale_lab.complexity.compression import onnx_predictor

        logits = onnx_predictor(p, threads=threads)

        def predict(X):
            return logits(X).argmax(1)
    else:
        import joblib

        model = joblib.load(p)

        def predict(X):
            return np.asarray(model.predict(np.asarray(X, dtype=np.float32)))
    return predict


def export_artifacts(model, n_features: int, folder) -> dict[str, Path]:
    """Save a torch ``model`` three ways: ``fp32`` (.pt), ``int8`` (lab 06's dynamic quantisation
    of its Linear layers, .pt) and ``onnx`` (needs the ``onnx`` package; skipped without it).

    The ONNX file comes from lab 06's :func:`~mlscale_lab.complexity.compression.export_onnx`
    with its TorchScript exporter: the maintained ``dynamo`` one takes seconds longer (over 20 s
    on a busy 2-core machine) for the same graph of Linear and ReLU layers, and a serving lab on
    a time budget only needs the file.

    Returns
    -------
    dict
        ``{"fp32": path, "int8": path, "onnx": path}`` (no ``"onnx"`` key when it cannot be made).
    """
    import warnings

    import torch

    from mlscale_lab.complexity import compression

    n_features = check_int("export_artifacts", "n_features", n_features, low=1)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    paths = {"fp32": folder / "model_fp32.pt", "int8": folder / "model_int8.pt"}
    torch.save(model, paths["fp32"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notices about quantized tensors
        torch.save(compression.quantize_dynamic_int8(model), paths["int8"])
        try:
            import onnx  # noqa: F401  (the exporter needs it)
        except ImportError:
            return paths
        paths["onnx"] = folder / "model.onnx"
        compression.export_onnx(model, paths["onnx"], n_features, exporter="torchscript")
    return paths
