"""Thread scaling, Amdahl's law and the vertical cost table."""

import numpy as np
import pytest

from mlscale_lab.scaling import (
    CsvMlpWorkload,
    amdahl_ceiling,
    amdahl_speedup,
    fit_amdahl,
    measure_thread_scaling,
    partition_sizes,
    skewed_keys,
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
    r = measure_thread_scaling(lambda: calls.append(1), (1, 2), repeats=2, warmup=1)
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


def test_cost_table_memory_forces_the_bigger_machine():
    rows = vertical_cost_table(0.1, 1000.0, batch_bytes=25e9)
    fits = {r["machine"]: r["fits"] for r in rows}
    assert not fits["small"] and not fits["large"] and fits["xlarge"]
    by = {r["machine"]: r for r in rows}
    # Amdahl: 16 vCPUs at s = 0.1 give 6.4x, not 16x, so cost per row rises with size.
    assert by["xlarge"]["speedup"] == pytest.approx(1 / (0.1 + 0.9 / 16))
    assert by["xlarge"]["cost_per_million_rows"] > by["small"]["cost_per_million_rows"]


def test_range_partitioning_of_a_skewed_key_makes_a_hotspot():
    keys = skewed_keys(100_000, 10_000, zipf_a=1.1, seed=0)
    rng_sizes = partition_sizes(keys, 8, "range")
    hash_sizes = partition_sizes(keys, 8, "hash")
    assert rng_sizes.sum() == hash_sizes.sum() == 100_000
    assert rng_sizes.max() / rng_sizes.mean() > 4
    assert hash_sizes.max() / hash_sizes.mean() < rng_sizes.max() / rng_sizes.mean() / 2
    with pytest.raises(ValueError, match="scheme='sorted'"):
        partition_sizes(keys, 8, "sorted")
