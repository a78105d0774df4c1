"""Model files the server loads: fp32, int8 and ONNX predict the same labels as the model."""

from __future__ import annotations

import numpy as np
import pytest

from mlscale_lab.scaling import serving as sv


def test_exported_artifacts_predict_what_the_model_predicts(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 5))
    X = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(X)).argmax(1).numpy()
    paths = sv.export_artifacts(model, 16, tmp_path)
    assert set(paths) >= {"fp32", "int8"} and all(p.is_file() for p in paths.values())
    assert paths["int8"].stat().st_size < paths["fp32"].stat().st_size
    assert np.array_equal(sv.load_predictor(paths["fp32"])(X), expected)
    assert np.mean(sv.load_predictor(paths["int8"])(X) == expected) > 0.8  # int8 rounds weights
    if "onnx" in paths:
        assert np.array_equal(sv.load_predictor(paths["onnx"])(X), expected)


def test_load_predictor_refuses_bad_paths_and_threads(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"load_predictor\(model_path=.*missing.onnx"):
        sv.load_predictor(tmp_path / "missing.onnx")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ValueError, match=r"load_predictor\(model_path=.*m.txt"):
        sv.load_predictor(tmp_path / "m.txt")
    with pytest.raises(TypeError, match=r"load_predictor\(model_path=3\)"):
        sv.load_predictor(3)


def test_importing_serving_is_light():
    import subprocess
    import sys

    code = ("import sys, mlscale_lab.scaling.serving; print(sorted(m for m in ('torch', 'fastapi', "
            "'uvicorn', 'onnxruntime', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", "the server and its frameworks live in a subprocess"
