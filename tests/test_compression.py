"""Compression helpers (lab 06): int8 quantization, k-means weight sharing, distillation, the
deep-compression file. Each on models and seeds other than the lab's."""

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from mlscale_lab.complexity import compression as C
from mlscale_lab.complexity import pruning as P


def _mlp(sizes, seed):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@pytest.fixture(scope="module")
def digits():
    return P.load_digits_split(seed=3)


@pytest.fixture(scope="module")
def trained(digits):
    model = P.make_mlp((64, 128, 64, 10), seed=5)
    return P.train(model, digits.X_train, digits.y_train, epochs=8, lr=3e-3, seed=5)


# --------------------------------------------------------------------------- int8


@pytest.mark.parametrize("sizes,seed", [((32, 256, 256, 5), 1), ((48, 400, 200, 7), 2)])
def test_dynamic_int8_is_4x_smaller_close_and_leaves_the_original(sizes, seed):
    model = _mlp(sizes, seed)
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(50, sizes[0], generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the deprecation notices are silenced, nothing else warns
        q = C.quantize_dynamic_int8(model)
        with torch.no_grad():
            diff = float((q(x) - model(x)).abs().max())
            scale = float(model(x).abs().max())
    assert diff < 0.05 * scale
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    ratio = P.torch_save_bytes(model.state_dict()) / P.torch_save_bytes(q.state_dict())
    assert 3.5 < ratio < 4.1


def test_dynamic_int8_keeps_accuracy_on_a_trained_model(trained, digits):
    q = C.quantize_dynamic_int8(trained)
    drop = P.accuracy(trained, digits.X_test, digits.y_test) - P.accuracy(q, digits.X_test, digits.y_test)
    assert abs(drop) <= 1.0


def test_static_int8_calibrates_and_matches(trained, digits):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = C.quantize_static_int8(trained, digits.X_train[:300])
        acc = P.accuracy(q, digits.X_test, digits.y_test)
    assert acc >= P.accuracy(trained, digits.X_test, digits.y_test) - 1.5
    # Linear+ReLU pairs are fused into one int8 module
    assert "LinearReLU" in {type(m).__name__ for m in q.modules()}


def test_quantize_errors_name_the_problem():
    with pytest.raises(TypeError, match=r"quantize_dynamic_int8\(model=list\)"):
        C.quantize_dynamic_int8([1, 2])
    with pytest.raises(ValueError, match="without one"):
        C.quantize_dynamic_int8(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="nn.Sequential of nn.Linear and nn.ReLU"):
        C.quantize_static_int8(nn.Sequential(nn.Linear(3, 3), nn.Tanh()), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="calibration"):
        C.quantize_static_int8(nn.Sequential(nn.Linear(3, 3)), torch.zeros(0, 3))


# --------------------------------------------------------------------------- weight sharing


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8])
def test_kmeans_codebook_assigns_each_value_to_its_nearest_centroid(bits):
    x = np.random.default_rng(bits).standard_normal(30_000).astype(np.float32)
    cb = C.kmeans_codebook(x, bits, seed=1, sample=5_000)
    assert len(cb.centroids) <= 2**bits and np.all(np.diff(cb.centroids) > 0)
    nearest = np.abs(x[:2000, None] - cb.centroids[None, :]).argmin(axis=1)
    chosen = np.abs(x[:2000] - cb.centroids[cb.codes[:2000]])
    best = np.abs(x[:2000] - cb.centroids[nearest])
    assert np.allclose(chosen, best, atol=1e-6)
    assert cb.values().shape == x.shape


def test_kmeans_error_falls_with_bits_and_is_seeded():
    x = np.random.default_rng(0).laplace(size=50_000)
    errors = [float(np.mean((C.kmeans_codebook(x, b, seed=0).values() - x) ** 2)) for b in (1, 2, 4, 6)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0] / 100
    a, b = C.kmeans_codebook(x, 4, seed=7), C.kmeans_codebook(x, 4, seed=7)
    assert np.array_equal(a.centroids, b.centroids)


def test_kmeans_codebook_checks_its_arguments():
    with pytest.raises(ValueError, match=r"kmeans_codebook\(bits=0\)"):
        C.kmeans_codebook([1.0, 2.0], 0)
    with pytest.raises(TypeError, match="bits=2.5"):
        C.kmeans_codebook([1.0, 2.0], 2.5)
    with pytest.raises(ValueError, match="finite"):
        C.kmeans_codebook([1.0, np.nan], 2)


def test_share_weights_keeps_zeros_limits_distinct_values_and_copies(trained):
    pruned = copy.deepcopy(trained)
    P.prune_global(pruned, 0.8)
    P.make_permanent(pruned)
    shared = C.share_weights(pruned, {"0": 3, "2": 5}, seed=2)
    layers = C.linear_layers(shared)
    for name, bits in [("0", 3), ("2", 5)]:
        w, w0 = layers[name].weight.detach(), C.linear_layers(pruned)[name].weight.detach()
        assert torch.equal(w == 0, w0 == 0), "pruned zeros stay zero, survivors stay non-zero"
        assert len(torch.unique(w[w != 0])) <= 2**bits
    assert torch.equal(layers["4"].weight, C.linear_layers(pruned)["4"].weight)  # not in the dict
    assert not torch.equal(C.linear_layers(pruned)["0"].weight, layers["0"].weight)


def test_share_weights_accuracy_recovers_with_bits(trained, digits):
    accs = {b: P.accuracy(C.share_weights(trained, b), digits.X_test, digits.y_test) for b in (1, 6)}
    assert accs[6] >= P.accuracy(trained, digits.X_test, digits.y_test) - 1.5
    assert accs[1] < accs[6]


def test_share_weights_rejects_unknown_layers(trained):
    with pytest.raises(ValueError, match=r"keys among the Linear layers \['0', '2', '4'\]"):
        C.share_weights(trained, {"1": 4})
    with pytest.raises(ValueError, match="bits"):
        C.share_weights(trained, 17)


def test_shared_layer_bytes_counts_codes_and_codebook():
    assert C.shared_layer_bytes(7, 3) == 3 + 8 * 4  # 21 bits round up to 3 bytes
    assert C.shared_layer_bytes(0, 2, centroid_bytes=2) == 8
    with pytest.raises(ValueError):
        C.shared_layer_bytes(10, 0)


# --------------------------------------------------------------------------- distillation


def _manual_kd(s, t, y, T, alpha):
    p_t = torch.softmax(t / T, dim=1)
    log_p_s = torch.log_softmax(s / T, dim=1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(dim=1).mean()
    ce = -torch.log_softmax(s, dim=1)[torch.arange(len(y)), y].mean()
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T,alpha,seed", [(1.0, 0.5, 0), (3.0, 0.9, 1), (8.0, 0.7, 2), (2.5, 0.0, 3)])
def test_distillation_loss_is_the_definition(T, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(17, 6, generator=g) * 3, torch.randn(17, 6, generator=g) * 3
    y = torch.randint(0, 6, (17,), generator=g)
    got = C.distillation_loss(s, t, y, temperature=T, alpha=alpha)
    assert float(got) == pytest.approx(float(_manual_kd(s, t, y, T, alpha)), rel=1e-5)


def test_distillation_soft_gradient_does_not_vanish_with_temperature():
    # the T**2 factor keeps the soft term's gradient of the same order as T grows
    g = torch.Generator().manual_seed(4)
    s0, t = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g) * 2
    norms = []
    for T in (2.0, 8.0):
        s = s0.clone().requires_grad_(True)
        C.distillation_loss(s, t, None, temperature=T, alpha=1.0).backward()
        norms.append(float(s.grad.norm()))
    assert 0.2 < norms[1] / norms[0] < 5


def test_distillation_loss_errors():
    s = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="temperature=0"):
        C.distillation_loss(s, s, None, temperature=0, alpha=1.0)
    with pytest.raises(ValueError, match="labels"):
        C.distillation_loss(s, s, None, alpha=0.5)
    with pytest.raises(ValueError, match="teacher_logits"):
        C.distillation_loss(s, torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))


def test_train_student_uses_only_labeled_rows_without_a_teacher(digits, trained):
    labeled = torch.zeros(len(digits.y_train), dtype=torch.bool)
    labeled[:100] = True
    scrambled = digits.y_train.clone()
    scrambled[100:] = (scrambled[100:] + 1) % 10  # wrong labels on unlabeled rows: never read
    a = C.train_student(P.make_mlp((64, 32, 10), seed=1), digits.X_train, digits.y_train,
                        labeled=labeled, epochs=5, seed=1)
    b = C.train_student(P.make_mlp((64, 32, 10), seed=1), digits.X_train, scrambled,
                        labeled=labeled, epochs=5, seed=1)
    assert torch.equal(a[0].weight, b[0].weight)
    d = C.train_student(P.make_mlp((64, 32, 10), seed=1), digits.X_train, scrambled, teacher=trained,
                        labeled=labeled, epochs=15, seed=1)
    assert P.accuracy(d, digits.X_test, digits.y_test) > P.accuracy(a, digits.X_test, digits.y_test)


# --------------------------------------------------------------------------- deep-compression file


@pytest.mark.parametrize("sparsity,bits", [(0.9, 3), (0.5, 6)])
def test_deep_compressed_file_round_trips_exactly(trained, tmp_path, sparsity, bits):
    model = copy.deepcopy(trained)
    P.prune_global(model, sparsity)
    P.make_permanent(model)
    shared = C.share_weights(model, bits, seed=1)
    size = C.save_deep_compressed(shared, tmp_path / "m.dc")
    loaded = C.load_deep_compressed(tmp_path / "m.dc")
    assert list(loaded) == list(shared.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in shared.state_dict().items())
    dense = P.torch_save_bytes(trained.state_dict())
    assert size < P.save_sparse(model, tmp_path / "m.sparse") and size < dense / 5


def test_deep_compressed_needs_permanent_masks_and_stores_unshared_densely(trained, tmp_path):
    masked = copy.deepcopy(trained)
    P.prune_global(masked, 0.5)
    with pytest.raises(ValueError, match="make_permanent"):
        C.save_deep_compressed(masked, tmp_path / "m.dc")
    big = {"w": torch.randn(300, 300), "b": torch.randn(300)}  # 90,000 distinct values: dense
    size = C.save_deep_compressed(big, tmp_path / "d.dc")
    loaded = C.load_deep_compressed(tmp_path / "d.dc")
    assert all(torch.equal(loaded[k], v) for k, v in big.items())
    assert size > 300 * 300 * 4 * 0.85
    (tmp_path / "x.dc").write_bytes(b"nope")
    with pytest.raises(ValueError, match="save_deep_compressed"):
        C.load_deep_compressed(tmp_path / "x.dc")


def test_deep_compression_pipeline_on_another_model(digits, tmp_path):
    model = P.train(P.make_mlp((64, 200, 10), seed=8), digits.X_train, digits.y_train, epochs=8,
                    lr=3e-3, seed=8)
    stages, pruned = C.deep_compression(model, digits, tmp_path, sparsity=0.9, bits=4, steps=2,
                                       epochs_per_step=2, final_epochs=3, lr=3e-3, seed=8)
    assert [s.name for s in stages][:3] == ["dense fp32", "pruned (torch.save)", "pruned, sparse file"]
    sizes = [s.file_bytes for s in stages]
    assert sizes[3] < sizes[2] < sizes[0] and sizes[0] / sizes[3] > 20
    assert stages[-1].accuracy >= stages[0].accuracy - 3
    assert (tmp_path / "shared.dc").stat().st_size == sizes[3]
    again = C.share_weights(pruned, 4, seed=8)
    assert P.accuracy(again, digits.X_test, digits.y_test) == stages[-1].accuracy
    assert 0.89 < P.weight_sparsity(pruned) < 0.91
