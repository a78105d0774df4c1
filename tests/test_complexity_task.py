"""The task labs 03 and 06 compress: generated, seeded, with a ceiling a model stays below."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlscale_lab.complexity import pruning as P  # noqa: E402
from mlscale_lab.complexity.task import TaskSpec, make_task  # noqa: E402


def test_splits_are_seeded_independent_of_each_others_sizes_and_balanced():
    a = make_task(3, n_train=500, n_val=300, n_test=400, n_pool=200)
    b = make_task(3, n_train=500, n_val=300, n_test=400, n_pool=200)
    c = make_task(3, n_train=100, n_val=300, n_test=400)
    assert torch.equal(a.X_test, b.X_test) and torch.equal(a.X_test, c.X_test)  # sizes of others don't matter
    assert not torch.equal(a.X_test, make_task(4, n_test=400).X_test)
    assert tuple(a.X_pool.shape) == (200, 64) and a.X_train.dtype == torch.float32
    counts = np.bincount(make_task(0, n_train=20000).y_train.numpy(), minlength=10)
    assert counts.min() > 0.9 * 2000 and counts.max() < 1.1 * 2000


def test_the_noise_features_carry_nothing_and_the_ceiling_is_the_bayes_rule():
    t = make_task(0, n_test=20000)
    ceiling = t.ceiling_correct("test").mean()
    assert 0.85 < ceiling < 0.95
    # shuffling the noise inputs changes no Bayes prediction
    X = t.X_test.numpy().copy()
    X[:, 16:] = np.random.default_rng(1).permutation(X[:, 16:])
    assert np.array_equal(t.spec.bayes_predict(X), t.spec.bayes_predict(t.X_test.numpy()))
    # a nearest-centre rule (one cluster per class, ignoring the mixture) does worse than Bayes
    easier = TaskSpec(separation=3.0)
    assert make_task(0, n_test=5000, spec=easier).ceiling_correct().mean() > ceiling + 0.05


def test_a_trained_mlp_stays_clearly_below_the_ceiling():
    torch.set_num_threads(1)
    t = make_task(1, n_train=2000)
    m = P.train(P.make_mlp((64, 128, 10), seed=1), t.X_train, t.y_train, epochs=10, anneal=True)
    acc = P.accuracy(m, t.X_test, t.y_test)
    assert 60 < acc < 100 * t.ceiling_correct().mean() - 2


def test_make_task_checks_its_arguments():
    with pytest.raises(ValueError, match="n_train"):
        make_task(0, n_train=0)
    with pytest.raises(TypeError, match="TaskSpec"):
        make_task(0, spec={"separation": 1.0})
    with pytest.raises(ValueError, match="separation"):
        make_task(0, spec=TaskSpec(separation=0))
    with pytest.raises(ValueError, match="split"):
        make_task(0, n_train=5).ceiling_correct("pool")
