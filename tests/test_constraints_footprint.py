"""model_footprint: counts, non-zeros and bytes of torch and scikit-learn models."""

import io
import zlib

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlscale_lab.constraints import Footprint, model_footprint

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]  # small: these tests are about counting, not accuracy


def test_torch_counts_parameters_and_buffers():
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    fp = model_footprint(net)
    # Linear 8*4+4, BatchNorm weight+bias+running mean+var (4 each) + num_batches_tracked (1), Linear 4*2+2
    assert fp.kind == "torch"
    assert fp.parameters == 36 + 16 + 1 + 10
    expected_bytes = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    assert fp.dense_bytes == expected_bytes
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    assert fp.serialized_bytes == len(buf.getvalue())
    assert fp.compressed_bytes == len(zlib.compress(buf.getvalue(), 6))


def test_torch_nonzero_follows_pruning():
    torch.manual_seed(0)
    lin = torch.nn.Linear(100, 100)
    before = model_footprint(lin)
    assert before.nonzero == before.parameters
    with torch.no_grad():
        lin.weight[:, :50] = 0
    after = model_footprint(lin)
    assert after.nonzero == before.parameters - 100 * 50
    assert after.sparsity == pytest.approx(5000 / 10100)
    # Zeros compress: the compressed size drops, the dense size does not.
    assert after.dense_bytes == before.dense_bytes
    assert after.compressed_bytes < 0.75 * before.compressed_bytes


def test_torch_dtype_changes_dense_bytes():
    lin = torch.nn.Linear(64, 64)
    assert model_footprint(lin.half()).dense_bytes * 2 == model_footprint(lin.float()).dense_bytes


def test_torch_tied_weights_counted_once():
    emb = torch.nn.Embedding(50, 8)
    head = torch.nn.Linear(8, 50, bias=False)
    head.weight = emb.weight
    model = torch.nn.ModuleDict({"emb": emb, "head": head})
    assert model_footprint(model).parameters == 50 * 8


def test_sklearn_linear_model_arrays(digits):
    X, y = digits
    model = LogisticRegression(max_iter=300).fit(X, y)
    fp = model_footprint(model)
    expected = model.coef_.size + model.intercept_.size + model.classes_.size + model.n_iter_.size
    assert fp.kind == "sklearn"
    assert fp.parameters == expected
    assert fp.nonzero == sum(
        np.count_nonzero(a) for a in (model.coef_, model.intercept_, model.classes_, model.n_iter_)
    )
    buf = io.BytesIO()
    joblib.dump(model, buf)
    assert fp.serialized_bytes == len(buf.getvalue())


def test_sklearn_pipeline_sums_its_steps(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    whole = model_footprint(pipe).parameters
    parts = model_footprint(pipe[0]).parameters + model_footprint(pipe[-1]).parameters
    assert whole == parts
    assert whole > model_footprint(pipe[-1]).parameters


def test_sklearn_trees_are_counted(digits):
    X, y = digits
    small = model_footprint(RandomForestClassifier(2, random_state=0).fit(X, y))
    big = model_footprint(RandomForestClassifier(8, random_state=0).fit(X, y))
    assert big.parameters > 3 * small.parameters
    # Node tables dominate a forest's pickle: dense bytes are most of the serialized bytes.
    assert big.dense_bytes > 0.5 * big.serialized_bytes
    gb = model_footprint(
        GradientBoostingClassifier(n_estimators=3, random_state=0).fit(X[:300], y[:300])
    )
    assert gb.dense_bytes > 0.3 * gb.serialized_bytes


def test_as_dict_and_frozen():
    fp = model_footprint(torch.nn.Linear(2, 2))
    d = fp.as_dict()
    assert d["parameters"] == 6 and d["kind"] == "torch"
    with pytest.raises(AttributeError):
        fp.parameters = 1  # type: ignore[misc]
    assert isinstance(fp, Footprint)


def test_bad_input():
    with pytest.raises(ValueError, match="not fitted"):
        model_footprint(LogisticRegression())
    with pytest.raises(TypeError, match="torch.nn.Module or a fitted scikit-learn"):
        model_footprint(np.zeros(3))
