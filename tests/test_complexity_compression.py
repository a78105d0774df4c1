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


@pytest.fixture(scope="module")
def task():
    from mlscale_lab.complexity.task import make_task

    return make_task(seed=7, n_train=1500, n_val=800, n_test=1500, n_pool=3000)


@pytest.fixture(scope="module")
def teacher(task):
    return P.train(P.make_mlp((64, 128, 10), seed=7), task.X_train, task.y_train, epochs=10,
                   lr=3e-3, seed=7, anneal=True)


def test_train_student_reads_only_labeled_rows_and_takes_exactly_its_steps(task):
    X, y = task.X_train, task.y_train
    labeled = torch.zeros(len(y), dtype=torch.bool)
    labeled[:100] = True
    scrambled = y.clone()
    scrambled[100:] = (scrambled[100:] + 1) % 10  # wrong labels on unlabelled rows: never read
    a = C.train_student(P.make_mlp((64, 16, 10), seed=1), X, labels=y, labeled=labeled, steps=30, seed=1)
    b = C.train_student(P.make_mlp((64, 16, 10), seed=1), X, labels=scrambled, labeled=labeled, steps=30, seed=1)
    assert torch.equal(a[0].weight, b[0].weight)
    seen = []
    student = P.make_mlp((64, 16, 10), seed=1)
    student.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    C.train_student(student, X, labels=y, steps=17, batch_size=9, seed=1)
    assert seen == [9] * 17
    with pytest.raises(ValueError, match="labels=..., teacher_logits"):
        C.train_student(student, X, steps=1)


def test_distilled_students_share_start_and_steps_and_the_teacher_helps(task, teacher):
    students = C.distill_students(teacher, task, (64, 16, 10), steps=600, seed=2)
    assert list(students) == list(C.STUDENT_KINDS)
    acc = {k: P.accuracy(m, task.X_test, task.y_test) for k, m in students.items()}
    teacher_acc = P.accuracy(teacher, task.X_test, task.y_test)
    assert min(acc.values()) > 40  # every student learned (chance is 10 %)
    # no leakage: a student that learns only from the teacher cannot know more than it does
    assert acc["hard labels"] < teacher_acc + 2 and acc["distilled"] < teacher_acc + 2
    # the students differ only in their targets: same start, same steps, so the same seed twice
    # gives the same weights
    again = C.distill_students(teacher, task, (64, 16, 10), steps=600, seed=2)
    assert all(torch.equal(again[k][0].weight, students[k][0].weight) for k in students)


# --------------------------------------------------------------------------- uniform levels


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_uniform_quantize_uses_2_to_the_bits_minus_1_levels_and_keeps_the_peak(bits):
    w = torch.randn(20, 30, generator=torch.Generator().manual_seed(bits))
    for per_channel in (False, True):
        q = C.uniform_quantize(w, bits, per_channel=per_channel)
        top = 2 ** (bits - 1) - 1
        rows = q if per_channel else q.reshape(1, -1)
        src = w if per_channel else w.reshape(1, -1)
        for qr, wr in zip(rows, src, strict=True):
            scale = float(wr.abs().max()) / top
            ints = qr / scale
            assert torch.allclose(ints, ints.round(), atol=1e-4) and float(ints.abs().max()) <= top + 1e-4
            assert float((qr - wr).abs().max()) <= scale / 2 + 1e-6
        assert len(torch.unique(rows[0])) <= 2 * top + 1


def test_per_channel_scales_help_a_row_of_small_weights():
    w = torch.randn(8, 50, generator=torch.Generator().manual_seed(0))
    w[0] *= 0.01  # one row ten times smaller than the others' outliers
    err_t = float((C.uniform_quantize(w, 3)[0] - w[0]).abs().mean())
    err_c = float((C.uniform_quantize(w, 3, per_channel=True)[0] - w[0]).abs().mean())
    assert err_c < err_t / 3


def test_float_formats_and_quantize_weights(trained, digits):
    half = C.quantize_weights(trained, "float16")
    assert all(torch.equal(m.weight, m.weight.half().float()) for m in C.linear_layers(half).values())
    assert torch.equal(half[0].bias, trained[0].bias)  # biases stay float32
    q2 = C.quantize_weights(trained, 2, per_channel=True)
    assert int(torch.unique(q2[0].weight[3]).numel()) <= 3
    k2 = C.quantize_weights(trained, 2, method="kmeans")
    assert int(torch.unique(k2[0].weight).numel()) <= 4
    with pytest.raises(ValueError, match="bits"):
        C.quantize_weights(trained, {"9": 4})
    with pytest.raises(ValueError, match="fmt|bits"):
        C.quantize_weights(trained, "float8")


# --------------------------------------------------------------------------- Huffman and indices


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_huffman_is_a_prefix_code_between_entropy_and_entropy_plus_one(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 500, 20)
    counts[rng.integers(0, 20)] = 0
    lengths = C.huffman_lengths(counts)
    assert np.all((lengths == 0) == (counts == 0))
    assert np.sum(2.0 ** -lengths[lengths > 0]) <= 1 + 1e-12  # Kraft: a prefix code exists
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    avg = C.huffman_bits(counts) / counts.sum()
    assert entropy - 1e-9 <= avg < entropy + 1
    symbols = rng.choice(np.flatnonzero(counts), 2000, p=p)
    data, nbits = C.huffman_encode(symbols, lengths)
    assert np.array_equal(C.huffman_decode(data, nbits, lengths, symbols.size), symbols)


def test_relative_indices_insert_fillers_for_long_gaps():
    mask = np.zeros(100, dtype=bool)
    mask[[0, 1, 20, 99]] = True
    e = C.relative_indices(mask, 3)  # gaps 1, 1, 19, 79: at most 7 an entry
    assert e.tolist() == [1, 1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    assert C.positions_from_indices(e, 3, 100).tolist() == [0, 1, 20, 99]
    rng = np.random.default_rng(5)
    m = rng.random((40, 70)) < 0.07
    for b in (1, 4, 8):
        assert np.array_equal(C.positions_from_indices(C.relative_indices(m, b), b, m.size),
                              np.flatnonzero(m))


def test_a_sparse_bitmask_costs_one_over_density_bits_and_relative_indices_beat_zlib():
    rng = np.random.default_rng(0)
    m = rng.random((300, 100)) < 0.05
    c = C.mask_cost(m, index_bits=4)
    assert c.bitmask == pytest.approx(m.size / m.sum())
    # zlib does not get a 5 %-dense mask near one bit per position (0.36 bits a position)
    assert c.bitmask_zlib > 6 and c.relative_huffman < c.bitmask_zlib
    with pytest.raises(ValueError, match="non-zero"):
        C.mask_cost(np.zeros((3, 3)))


# --------------------------------------------------------------------------- deep-compression file


@pytest.mark.parametrize("sparsity,bits,huffman", [(0.9, 3, True), (0.5, 6, False), (0.97, 2, True)])
def test_deep_compressed_file_round_trips_exactly(trained, tmp_path, sparsity, bits, huffman):
    model = copy.deepcopy(trained)
    P.prune_global(model, sparsity)
    P.make_permanent(model)
    shared = C.share_weights(model, bits, seed=1)
    size = C.save_deep_compressed(shared, tmp_path / "m.dc", huffman=huffman)
    loaded = C.load_deep_compressed(tmp_path / "m.dc")
    assert list(loaded) == list(shared.state_dict())
    assert all(torch.equal(loaded[k], v) for k, v in shared.state_dict().items())
    assert size < P.save_sparse(model, tmp_path / "m.sparse")


def test_huffman_stage_is_smaller_and_float16_biases_are_what_they_say(trained, tmp_path):
    model = copy.deepcopy(trained)
    P.prune_global(model, 0.9)
    shared = C.share_weights(P.make_permanent(model), 4)
    fixed = C.save_deep_compressed(shared, tmp_path / "f.dc", huffman=False)
    coded = C.save_deep_compressed(shared, tmp_path / "h.dc", huffman=True)
    half = C.save_deep_compressed(shared, tmp_path / "b.dc", bias_dtype="float16")
    assert half < coded < fixed
    back = C.load_deep_compressed(tmp_path / "b.dc")
    assert torch.equal(back["0.bias"], shared[0].bias.detach().half().float())


def test_deep_compressed_needs_permanent_masks_and_stores_unshared_values(trained, tmp_path):
    masked = copy.deepcopy(trained)
    P.prune_global(masked, 0.5)
    with pytest.raises(ValueError, match="make_permanent"):
        C.save_deep_compressed(masked, tmp_path / "m.dc")
    big = {"w": torch.randn(300, 300), "b": torch.randn(300)}  # 90,000 distinct values
    size = C.save_deep_compressed(big, tmp_path / "d.dc")
    loaded = C.load_deep_compressed(tmp_path / "d.dc")
    assert all(torch.equal(loaded[k], v) for k, v in big.items())
    assert size > 300 * 300 * 4
    (tmp_path / "x.dc").write_bytes(b"nope")
    with pytest.raises(ValueError, match="save_deep_compressed"):
        C.load_deep_compressed(tmp_path / "x.dc")


def test_centroid_fine_tuning_keeps_codes_and_zeros_and_recovers(task, teacher):
    model = copy.deepcopy(teacher)
    P.prune_global(model, 0.8)
    shared = C.share_weights(P.make_permanent(model), 2, seed=0)
    tuned = C.finetune_centroids(shared, task.X_train, task.y_train, epochs=3, lr=2e-3)
    for a, b in zip(C.linear_layers(shared).values(), C.linear_layers(tuned).values(), strict=True):
        assert torch.equal(a.weight == 0, b.weight == 0)
        # same grouping: weights that shared a value still share one
        _, ca = torch.unique(a.weight, return_inverse=True)
        _, cb = torch.unique(b.weight, return_inverse=True)
        assert len(torch.unique(ca * 100 + cb)) == len(torch.unique(ca))

    def train_loss(m):
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(m(task.X_train), task.y_train))

    assert train_loss(tuned) < 0.9 * train_loss(shared), "training the centroids lowers the loss"


def test_deep_compression_chooses_on_validation_and_reports_from_the_file(task, teacher, tmp_path):
    dc = C.deep_compression(teacher, task, tmp_path, sparsities=(0.5, 0.8, 0.9, 0.99), bits=(2, 4),
                            tolerance=1.0, epochs_per_step=2, seed=3)
    sparsity_vals = dict(dc.prune_curve)
    assert dc.sparsity < 0.98, "99 % sparsity breaks this model on validation: not chosen"
    assert sparsity_vals[dc.sparsity] >= dc.dense_val - 1.0
    assert dc.bits_curve[dc.bits] >= dc.dense_val - 1.0 or dc.bits == 4
    sizes = [s.file_bytes for s in dc.stages]
    assert sizes[3] < sizes[2] < sizes[1] < sizes[0] and dc.ratio > 20
    assert (tmp_path / "huffman.dc").stat().st_size == sizes[3]
    assert dc.stages[-1].accuracy == P.accuracy(dc.model, task.X_test, task.y_test)
    with pytest.raises(TypeError, match="validation"):
        C.deep_compression(teacher, P.load_digits_split(0), tmp_path)
