"""Lab 06's deployable artifact and decision: ONNX export and runtime, cold start in a fresh
process that never outlives the call, measured recipes and device profiles."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from mlscale_lab._core.processes import descendant_pids
from mlscale_lab.complexity import compression as C


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(12, 40), nn.ReLU(), nn.Linear(40, 30), nn.Tanh(),
                         nn.Linear(30, 4)).eval()


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    size = C.export_onnx(model, path, n_features=12)
    assert size == os.path.getsize(path) and not list(path.parent.glob("*.data"))  # one file
    return path


@pytest.mark.parametrize("batch", [1, 7, 256])
def test_onnx_runtime_predicts_what_torch_does(model, onnx_path, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 12)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    got = C.onnx_predictor(onnx_path)(x)
    assert got.shape == (batch, 4)
    assert np.allclose(got, expected, atol=1e-5)


def test_onnx_int8_is_smaller_and_close(onnx_path, tmp_path):
    big = nn.Sequential(nn.Linear(32, 512), nn.ReLU(), nn.Linear(512, 64)).eval()
    src = tmp_path / "big.onnx"
    fp32 = C.export_onnx(big, src, n_features=32)
    int8 = C.quantize_onnx_int8(src, tmp_path / "big-int8.onnx")
    assert fp32 / int8 > 3.5
    x = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    a = C.onnx_predictor(src)(x)
    b = C.onnx_predictor(tmp_path / "big-int8.onnx")(x)
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max()
    with pytest.raises(FileNotFoundError, match="export_onnx first"):
        C.quantize_onnx_int8(tmp_path / "missing.onnx", tmp_path / "out.onnx")


@pytest.mark.parametrize("batch", [1, 33])
def test_torchscript_exporter_gives_the_same_predictions(model, tmp_path, batch):
    path = tmp_path / "ts.onnx"
    C.export_onnx(model, path, n_features=12, exporter="torchscript")
    x = np.random.default_rng(batch).standard_normal((batch, 12)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(C.onnx_predictor(path)(x), expected, atol=1e-5)


def test_export_onnx_checks_its_arguments(model, tmp_path):
    with pytest.raises(ValueError, match=r"export_onnx\(exporter='jit'\)"):
        C.export_onnx(model, tmp_path / "x.onnx", n_features=3, exporter="jit")
    with pytest.raises(ValueError, match=r"export_onnx\(n_features=0\)"):
        C.export_onnx(model, tmp_path / "x.onnx", n_features=0)
    with pytest.raises(TypeError, match="nn.Module"):
        C.export_onnx("model", tmp_path / "x.onnx", n_features=3)


@pytest.mark.slow
def test_cold_start_in_both_runtimes_agrees_and_leaves_no_process(model, onnx_path, tmp_path):
    before = set(descendant_pids(os.getpid()))  # an earlier test's (a resource tracker) are not ours
    pt = tmp_path / "m.pt"
    torch.save(model, pt)
    row = np.linspace(-1, 1, 12, dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(row[None]))[0].numpy()
    runs = {rt: C.cold_start(p, row, runtime=rt) for rt, p in [("onnxruntime", onnx_path), ("torch", pt)]}
    for run in runs.values():
        assert np.allclose(run.prediction, expected, atol=1e-5)
        assert 0 < run.load_to_prediction_s < run.process_s
    # the runtime is most of a serving process's memory: torch's dwarfs ONNX Runtime's
    assert 20 * 2**20 < runs["onnxruntime"].rss_bytes < runs["torch"].rss_bytes
    assert set(descendant_pids(os.getpid())) - before == set()


@pytest.mark.slow
def test_cold_start_of_a_deep_compressed_file_decodes_it(model, tmp_path):
    pt, dc = tmp_path / "m.pt", tmp_path / "m.dc"
    torch.save(model, pt)
    shared = C.share_weights(model, 3)
    C.save_deep_compressed(shared, dc)
    row = np.ones(12, dtype=np.float32)
    with torch.no_grad():
        expected = shared(torch.from_numpy(row[None]))[0].numpy()
    run = C.cold_start(pt, row, runtime="torch", weights=dc)
    assert np.allclose(run.prediction, expected, atol=1e-5) and run.rss_bytes > 0
    with pytest.raises(ValueError, match="weights"):
        C.cold_start(pt, row, runtime="onnxruntime", weights=dc)


def test_cold_start_timeout_kills_the_child(onnx_path):
    before = set(descendant_pids(os.getpid()))
    with pytest.raises(TimeoutError, match="did not make its first prediction"):
        C.cold_start(onnx_path, np.zeros(12), timeout=0.01)
    assert set(descendant_pids(os.getpid())) - before == set()


def test_cold_start_errors(onnx_path, tmp_path):
    with pytest.raises(ValueError, match="runtime='tf'"):
        C.cold_start(onnx_path, np.zeros(12), runtime="tf")
    with pytest.raises(FileNotFoundError):
        C.cold_start(tmp_path / "none.onnx", np.zeros(12))
    with pytest.raises(RuntimeError, match="failed"):
        C.cold_start(onnx_path, np.zeros(5))  # wrong input width: the child reports it


# --------------------------------------------------------------------------- decision


RECIPES = [
    C.Recipe("fp32", 4_500_000, 4_500_000, 0.25, 50_000.0, 97.8),
    C.Recipe("int8", 1_100_000, 1_100_000, 0.10, 120_000.0, 97.6),
    C.Recipe("int8 onnx", 1_000_000, 1_100_000, 0.05, 140_000.0, 97.6),
    C.Recipe("deep", 60_000, 4_500_000, 0.25, 50_000.0, 97.3),
    C.Recipe("student", 10_000, 10_000, 0.02, 900_000.0, 95.0),
]


@pytest.mark.parametrize("profile,expected", [
    (C.DeviceProfile("none"), "fp32"),
    (C.DeviceProfile("download", max_file_bytes=100_000), "deep"),
    (C.DeviceProfile("phone", max_file_bytes=100_000, max_memory_bytes=2_000_000), "student"),
    (C.DeviceProfile("tie", max_memory_bytes=1_100_000), "int8 onnx"),  # tie on accuracy: smaller file
    (C.DeviceProfile("edge", max_latency_ms=0.10), "int8 onnx"),
    (C.DeviceProfile("server", min_throughput=120_000.0), "int8 onnx"),
    (C.DeviceProfile("exact", max_file_bytes=1_100_000, max_latency_ms=0.1), "int8 onnx"),
    (C.DeviceProfile("impossible", max_memory_bytes=5_000), None),
])
def test_choose_recipe(profile, expected):
    chosen = C.choose_recipe(RECIPES, profile)
    assert (chosen.name if chosen else None) == expected


def test_a_value_at_the_limit_meets_it():
    assert C.violations(RECIPES[1], C.DeviceProfile("x", max_file_bytes=1_100_000,
                                                    min_throughput=120_000.0)) == []
    v = C.violations(RECIPES[3], C.DeviceProfile("phone", max_file_bytes=100_000,
                                                 max_memory_bytes=2_000_000, max_latency_ms=0.1))
    assert v == ["memory 4,500,000 B > 2,000,000 B", "latency 0.250 ms > 0.100 ms"]
    assert C.headroom(RECIPES[4], C.DeviceProfile("p", max_file_bytes=20_000)) == 2.0


def test_device_profile_checks_limits():
    with pytest.raises(ValueError, match=r"DeviceProfile\(max_file_bytes=-1\)"):
        C.DeviceProfile("bad", max_file_bytes=-1)
    with pytest.raises(TypeError, match="DeviceProfile"):
        C.choose_recipe(RECIPES, {"max_file_bytes": 3})


def test_measure_recipe_on_a_torch_model(model):
    x = torch.randn(300, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)

    def predict(b):
        with torch.no_grad():
            return model(b)

    r = C.measure_recipe("fp32", predict, x, y, file_bytes=10, memory_bytes=20, rounds=3, number=2)
    assert r.accuracy == 100.0 and r.latency_ms > 0 and r.throughput > 0
    assert (r.file_bytes, r.memory_bytes) == (10, 20)


def test_time_predictors_interleaves_and_gives_a_paired_ratio():
    import time

    t = C.time_predictors({"slow": lambda b: time.sleep(0.002), "fast": lambda b: b}, np.ones((4, 2)),
                          rounds=6, number=2, inputs={"fast": np.zeros((4, 2))})
    assert t.ratio("slow", "fast").low > 10
    with pytest.raises(TypeError, match="time_predictors"):
        C.time_predictors({}, np.ones((2, 2)))


def test_bytes_per_prediction_and_the_roofline():
    from torch import nn

    m = nn.Sequential(nn.Linear(1000, 1000), nn.ReLU(), nn.Linear(1000, 10))
    fp32, int8 = C.bytes_per_prediction(m), C.bytes_per_prediction(m, "int8")
    assert fp32 == 4 * (1_010_000 + 1010) + 4 * (1000 + 1000 + 10)
    assert 3.9 < fp32 / int8 < 4.0  # a quarter of the weight bytes, biases and scales stay float32
    assert C.bytes_per_prediction(m, batch=8) - fp32 == 4 * 7 * 2010
    assert C.roofline_ms(1e9, 1e9) == 1000.0
    with pytest.raises(ValueError, match="weight_format"):
        C.bytes_per_prediction(m, "int4")
