"""Thread scaling, Amdahl's law and the vertical cost table."""

import math

import numpy as np
import pytest

from mlscale_lab.scaling import (
    CsvMlpWorkload,
    ThreadScaling,
    amdahl_ceiling,
    amdahl_speedup,
    fit_amdahl,
    fit_amdahl_rounds,
    measure_thread_scaling,
    vertical_cost_table,
)


def test_fit_amdahl_recovers_serial_fraction():
    p = np.array([1, 2, 4, 8, 16])
    for s in (0.0, 0.05, 0.3, 1.0):
        assert fit_amdahl(p, amdahl_speedup(p, s)) == pytest.approx(s, abs=1e-9)
    noisy = amdahl_speedup(p, 0.2) * np.array([1.0, 1.02, 0.98, 1.01, 0.99])
    assert fit_amdahl(p, noisy) == pytest.approx(0.2, abs=0.02)
    assert amdahl_ceiling(0.2) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="more than one worker"):
        fit_amdahl([1], [1.0])


def test_measure_thread_scaling_times_the_workload():
    calls = []
    r = measure_thread_scaling(lambda: calls.append(1), (1, 2), rounds=2, warmup=1)
    assert r.threads == (1, 2) and len(r.seconds) == 2 and len(calls) == 6
    assert r.speedup[0] == 1.0
    with pytest.raises(ValueError, match="threads"):
        measure_thread_scaling(lambda: None, (0,))


def test_csv_mlp_workload_reports_its_memory():
    w = CsvMlpWorkload(rows=100, features=4, hidden=8, seed=0)
    p = w()
    assert p.shape == (100, 10) and np.allclose(p.sum(axis=1), 1)
    # input + two hidden layers + logits + probabilities, float64
    assert w.bytes_per_row == (4 + 8 + 8 + 10 + 10) * 8


def test_cost_table_uses_the_one_price_list_and_offers_chunks():
    from mlscale_lab.prices import EXAMPLE_MACHINES

    GIB = 2**30

    rows = vertical_cost_table(0.1, 1000.0, batch_bytes=20 * GIB)
    assert [r["machine"] for r in rows] == [m.name for m in EXAMPLE_MACHINES]
    by = {r["machine"]: r for r in rows}
    # 20 GiB in 70% of memory: 2xlarge (32 GiB) holds it in one go, xlarge (16 GiB) in 2 chunks.
    assert by["2xlarge"]["fits"] and by["2xlarge"]["chunks"] == 1
    assert not by["xlarge"]["fits"] and by["xlarge"]["chunks"] == 2
    assert all(r["chunks"] * 0.7 * r["memory_bytes"] >= 20 * GIB for r in rows)
    # Amdahl: 16 vCPUs at s = 0.1 give 6.4x, not 16x, so cost per row rises with size.
    assert by["4xlarge"]["speedup"] == pytest.approx(1 / (0.1 + 0.9 / 16))
    assert by["4xlarge"]["usd_per_million_rows"] > by["small"]["usd_per_million_rows"]
    assert by["small"]["usd_per_hour"] == EXAMPLE_MACHINES[2].usd_per_hour
    # The process's own memory comes first: less room for chunks, none at all on the smallest.
    heavy = {r["machine"]: r for r in vertical_cost_table(0.1, 1000.0, 20 * GIB, process_bytes=GIB)}
    assert heavy["nano"]["chunks"] is None and heavy["micro"]["chunks"] is None
    assert heavy["small"]["chunks"] == math.ceil(20 * GIB / (0.7 * 2 * GIB - GIB))
    assert heavy["medium"]["chunks"] > by["medium"]["chunks"]


@pytest.mark.parametrize("kwargs, kind, words", [
    ({"serial_fraction": 1.5}, ValueError, "vertical_cost_table(serial_fraction=1.5)"),
    ({"rows_per_second_1cpu": 0}, ValueError, "rows_per_second_1cpu=0"),
    ({"batch_bytes": "1GB"}, TypeError, "batch_bytes='1GB'"),
])
def test_cost_table_checks_at_the_door(kwargs, kind, words):
    args = {"serial_fraction": 0.1, "rows_per_second_1cpu": 100.0, "batch_bytes": 1e9} | kwargs
    with pytest.raises(kind) as info:
        vertical_cost_table(**args)
    assert words in str(info.value)


def test_chunked_pass_bounds_memory_and_gives_the_same_answer():
    w = CsvMlpWorkload(rows=2000, features=16, hidden=128, seed=0)
    whole = w.run()
    chunked = w.run(chunk_rows=250)
    assert whole.rows == chunked.rows == 2000 and chunked.chunk_rows == 250
    # Eight chunks: the peak follows the chunk (plus the labels array), not the batch.
    assert chunked.peak_bytes < whole.peak_bytes / 4
    assert whole.peak_bytes >= 2000 * w.bytes_per_row
    np.testing.assert_array_equal(w.predict(0, 250).argmax(axis=1), w().argmax(axis=1)[:250])
    with pytest.raises(ValueError, match="chunk_rows=0"):
        w.run(chunk_rows=0)


def test_thread_counts_are_timed_in_interleaved_rounds_with_the_pools_pinned():
    from threadpoolctl import threadpool_info

    seen = []

    def workload():
        blas = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        seen.append(blas[0] if blas else None)

    r = measure_thread_scaling(workload, (1, 2), rounds=3, warmup=0)
    if seen[0] is not None:
        assert seen == [1, 2, 2, 1, 1, 2], "A B, B A, A B: each count pinned while it runs"
    assert [len(x) for x in r.samples] == [3, 3]
    import tracemalloc

    tracemalloc.start()
    try:
        with pytest.raises(RuntimeError, match="tracemalloc"):
            measure_thread_scaling(workload, (1, 2), rounds=2)
    finally:
        tracemalloc.stop()


def test_amdahl_fit_says_when_it_is_exactly_determined_and_gives_an_interval():
    rng = np.random.default_rng(0)

    def scaling(p, s=0.3, noise=0.02, rounds=12):
        x = tuple(tuple(2.0 * (s + (1 - s) / q) * (1 + rng.normal(0, noise, rounds)))
                  for q in p)
        return ThreadScaling(tuple(p), tuple(float(np.median(v)) for v in x), x)

    four = fit_amdahl_rounds(scaling((1, 2, 3, 4)))
    assert not four.exactly_determined and four.points == 4 and four.measured_up_to == 4
    assert four.serial_fraction.low < 0.3 < four.serial_fraction.high
    assert four.serial_fraction.width < 0.15
    two = fit_amdahl_rounds(scaling((1, 2)))
    assert two.exactly_determined and "cannot test" in two.describe()
    noisy = fit_amdahl_rounds(scaling((1, 2), noise=0.15))
    assert noisy.serial_fraction.width > two.serial_fraction.width, "noise widens the interval"
    with pytest.raises(ValueError, match="two or more thread counts"):
        fit_amdahl_rounds(ThreadScaling((2,), (1.0,), ((1.0, 1.0),)))
    with pytest.raises(ValueError, match="per-round samples"):
        fit_amdahl_rounds(ThreadScaling((1, 2), (1.0, 0.6)))


def test_serial_share_is_the_parse_part_and_bounds_the_speedup():
    w = CsvMlpWorkload(rows=300, features=32, hidden=64, seed=0)
    share = w.serial_share(rounds=4)
    assert 0 < share.low <= share.estimate <= share.high < 1
    assert "parse" in share.method
    # the bound it gives lies between no speedup and a perfect one
    assert 1 < amdahl_speedup(2, share.estimate) < 2


def test_cost_table_marks_the_machines_past_the_measured_threads():
    rows = vertical_cost_table(0.3, 1000.0, 2**20, measured_up_to=2)
    assert [r["extrapolated"] for r in rows] == [r["vcpus"] > 2 for r in rows]
    assert not any(r["extrapolated"] for r in vertical_cost_table(0.3, 1000.0, 2**20))
