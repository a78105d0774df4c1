"""Partitioning by key: hash against range split at sampled quantiles, the hot key, and
increasing keys that send every new write to the last range."""

import numpy as np
import pytest

from mlscale_lab.scaling import (
    increasing_keys,
    partition_of,
    partition_sizes,
    range_boundaries,
    skewed_keys,
)


def test_quantile_ranges_balance_skewed_but_spread_keys():
    # Many moderately popular keys: sampled quantiles give every range the same rows,
    # where equal-width slices of the key space would put most rows in the first slice.
    keys = skewed_keys(100_000, 10_000, zipf_a=0.8, seed=0)
    sizes = partition_sizes(keys, 8, "range", boundaries=range_boundaries(keys, 8, seed=1))
    assert sizes.sum() == 100_000
    assert sizes.max() / sizes.mean() < 1.3
    equal_width = np.bincount(np.minimum(keys * 8 // 10_000, 7), minlength=8)
    assert equal_width.max() / equal_width.mean() > 2


def test_one_hot_key_cannot_be_split_by_any_key_partitioner():
    keys = skewed_keys(100_000, 10_000, zipf_a=1.1, seed=0)
    top_share = np.bincount(keys).max() / keys.size
    assert top_share > 1 / 8  # hotter than a partition's share
    for scheme in ("hash", "range"):
        sizes = partition_sizes(keys, 8, scheme)
        assert sizes.max() >= top_share * keys.size, scheme


def test_increasing_keys_send_every_new_write_to_the_last_range():
    yesterday = increasing_keys(50_000, start=0, rate=10.0, seed=0)
    today = increasing_keys(20_000, start=yesterday[-1] / 1000, rate=10.0, seed=1)
    bounds = range_boundaries(yesterday, 8, seed=0)
    # Yesterday's rows were split evenly...
    assert partition_sizes(yesterday, 8, "range", boundaries=bounds).max() < 1.2 * 50_000 / 8
    # ...but today's writes all sort after the last boundary.
    new = partition_sizes(today, 8, "range", boundaries=bounds)
    assert new[-1] == 20_000 and new[:-1].sum() == 0
    spread = partition_sizes(today, 8, "hash")
    assert spread.max() / spread.mean() < 1.1


def test_range_boundaries_are_sample_quantiles():
    assert range_boundaries(np.arange(1000), 4).tolist() == [249, 499, 749]
    b = range_boundaries(np.arange(1_000_000), 4, sample_size=2000, seed=0)
    assert np.allclose(b, [250_000, 500_000, 750_000], rtol=0.1)
    assert range_boundaries(np.arange(10), 1).size == 0


@pytest.mark.parametrize("call, kind, words", [
    (lambda: partition_sizes([1, 2], 8, "sorted"), ValueError, "partition_of(scheme='sorted')"),
    (lambda: partition_of([1, 2], 0, "hash"), ValueError, "n_partitions=0"),
    (lambda: partition_of([1, 2], 3, "range", boundaries=[5]), ValueError, "2 increasing split points"),
    (lambda: range_boundaries([], 4), ValueError, "at least one key"),
    (lambda: skewed_keys(10, zipf_a=0), ValueError, "skewed_keys(zipf_a=0)"),
    (lambda: increasing_keys(2.5), TypeError, "increasing_keys(n=2.5)"),
])
def test_bad_input_names_function_parameter_and_value(call, kind, words):
    with pytest.raises(kind) as info:
        call()
    assert words in str(info.value)
