"""measure_latency: percentiles, throughput, batching and bad input."""

import time

import numpy as np
import pytest

from mlscale_lab.constraints import LatencyResult, measure_latency


def test_batches_cycle_through_rows():
    X = np.arange(10).reshape(10, 1)
    seen = []
    measure_latency(lambda b: seen.append(b[:, 0].tolist()), X, (4,), warmup=1, repeats=3)
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]


def test_batch_bigger_than_X_wraps():
    X = np.arange(3)
    sizes = []
    measure_latency(lambda b: sizes.append(len(b)), X, (7,), warmup=0, repeats=2)
    assert sizes == [7, 7]


def test_percentiles_reflect_sleep():
    res = measure_latency(lambda b: time.sleep(0.01), np.zeros((5, 2)), (1, 4), warmup=1, repeats=8)
    assert [r.batch_size for r in res] == [1, 4]
    for r in res:
        assert isinstance(r, LatencyResult)
        assert r.calls == 8
        assert 9.5 <= r.p50_ms <= r.p95_ms <= r.p99_ms
        assert r.mean_ms >= 9.5
        assert r.throughput_per_s == pytest.approx(r.batch_size / (r.mean_ms / 1000))
    # Same time per call, four times the rows: about four times the rows a second (by the
    # median call, which one oversleep of a busy machine does not move).
    assert res[1].batch_size / res[1].p50_ms > 2.5 * res[0].batch_size / res[0].p50_ms


def test_tail_is_seen():
    calls = {"n": 0}

    def predict(b):
        calls["n"] += 1
        time.sleep(0.03 if calls["n"] % 10 == 0 else 0.001)

    (r,) = measure_latency(predict, np.zeros((3, 1)), warmup=0, repeats=40)
    assert r.p50_ms < 10 and r.p99_ms > 25


def test_max_seconds_stops_early():
    t0 = time.perf_counter()
    (r,) = measure_latency(
        lambda b: time.sleep(0.02), np.zeros(4), warmup=2, repeats=1000, max_seconds=0.3
    )
    assert time.perf_counter() - t0 < 1.5
    assert 1 <= r.calls < 50


def test_torch_and_list_inputs():
    torch = pytest.importorskip("torch")
    X = torch.arange(6.0).reshape(6, 1)
    got = []
    measure_latency(lambda b: got.append(b.shape[0]), X, (4,), warmup=0, repeats=2)
    assert got == [4, 4]
    rows = []
    measure_latency(lambda b: rows.append(list(b)), ["a", "b", "c"], (2,), warmup=0, repeats=2)
    assert rows == [["a", "b"], ["c", "a"]]


def test_as_dict():
    (r,) = measure_latency(lambda b: None, [1, 2], repeats=3, warmup=0)
    assert set(r.as_dict()) == {
        "batch_size",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "mean_ms",
        "throughput_per_s",
        "calls",
        "samples_ms",
    }
    assert len(r.samples_ms) == 3 and r.median_interval().low <= r.p50_ms


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_sizes": (0,)}, "batch_sizes"),
        ({"batch_sizes": ()}, "batch_sizes"),
        ({"batch_sizes": (1.5,)}, "batch_sizes"),
        ({"repeats": 0}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"max_seconds": 0}, "max_seconds"),
    ],
)
def test_bad_input(kwargs, match):
    kind = TypeError if kwargs.get("batch_sizes") == (1.5,) else ValueError
    with pytest.raises(kind, match=r"measure_latency\(" + match):
        measure_latency(lambda b: None, np.zeros(3), **kwargs)


def test_bad_predict_and_X():
    with pytest.raises(TypeError, match="predict"):
        measure_latency("not callable", np.zeros(3))
    with pytest.raises(ValueError, match="at least one row"):
        measure_latency(lambda b: None, np.zeros((0, 2)))
