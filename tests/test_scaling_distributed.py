"""scaling.distributed: the training problem, data parallelism, the alpha-beta model, pipelines.

The fast tests check the arithmetic (shards, loss scales, ring bytes, the alpha-beta fit on
synthetic timings, GPipe's schedule) and the one-process reference; the slow ones start real
gloo worker groups (torch.multiprocessing.spawn) and check what lab 08 relies on: DDP ends at
the parameters of one process with gradient accumulation, on sizes and world sizes the lab does
not use, and a pipeline computes the unpartitioned model's gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlscale_lab.scaling import distributed as dd

SMALL = dd.TrainSetup(features=8, hidden=32, depth=2, classes=4, rows=256, batch=36, lr=0.1, seed=3)


# -- the training problem --------------------------------------------------------------------
def test_shards_cover_the_batch_once_and_differ_by_at_most_one_row():
    for rows in (0, 1, 7, 36, 101):
        for world in (1, 2, 3, 5):
            bounds = dd.shard_bounds(rows, world)
            assert bounds[0][0] == 0 and bounds[-1][1] == rows
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_loss_scales_weigh_each_row_the_same():
    rows = [5, 1, 2]
    scales = [dd.shard_loss_scale(n, 8, 3) for n in rows]
    # DDP averages: (1/3) * sum(scale_i * mean_i) must be sum(n_i * mean_i) / 8
    assert np.allclose(np.array(scales) / 3, np.array(rows) / 8)
    assert dd.shard_loss_scale(4, 8, 2) == 1.0


def test_same_seed_same_model_and_data_and_rows_depend_only_on_the_step():
    a, b = dd.make_model(SMALL), dd.make_model(SMALL)
    assert dd.max_abs_difference(dd.parameter_arrays(a), dd.parameter_arrays(b)) == 0.0
    assert sum(p.numel() for p in a.parameters()) == SMALL.parameters
    X1, y1 = dd.make_data(SMALL)
    X2, y2 = dd.make_data(SMALL)
    assert (X1 == X2).all() and (y1 == y2).all() and len(set(y1.tolist())) > 1
    r5 = dd.batch_rows(SMALL, 5)
    assert (r5 == dd.batch_rows(SMALL, 5)).all() and len(set(r5.tolist())) == SMALL.batch
    # one epoch visits each row at most once
    per_epoch = SMALL.rows // SMALL.batch
    seen = np.concatenate([dd.batch_rows(SMALL, s).numpy() for s in range(per_epoch)])
    assert len(seen) == len(set(seen.tolist()))


def test_make_model_leaves_the_callers_random_state_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    dd.make_model(SMALL)
    assert torch.equal(torch.rand(3), expected)


def test_gradient_accumulation_matches_the_whole_batch_also_with_uneven_slices():
    whole = dd.train_one_process(SMALL, 6)
    for micro in (2, 5, 7):  # 36 rows in 5 or 7 slices: slices of unequal size
        acc = dd.train_one_process(SMALL, 6, micro_batches=micro)
        assert dd.max_abs_difference(whole, acc) < 1e-5, micro
    start = dd.train_one_process(SMALL, 3)
    assert dd.max_abs_difference(dd.train_one_process(SMALL, 3, start=dd.parameter_arrays(
        dd.make_model(SMALL))), start) == 0.0


def test_setup_refuses_bad_values_at_the_door():
    with pytest.raises(ValueError, match="batch"):
        dd.TrainSetup(rows=10, batch=20)
    with pytest.raises(TypeError):
        dd.TrainSetup(hidden=2.5)
    with pytest.raises(ValueError, match="micro_batches"):
        dd.train_one_process(SMALL, 1, micro_batches=0)


# -- communication -----------------------------------------------------------------------------
def _synthetic_sweep(alpha, bandwidth, world, noise, seed=0, rounds=12):
    rng = np.random.default_rng(seed)
    sizes = np.array([2**k for k in range(10, 25, 2)], dtype=np.int64)
    true = dd.AlphaBeta(alpha, bandwidth).seconds(sizes, world)
    seconds = true * rng.lognormal(0.0, noise, size=(rounds, sizes.size))
    return dd.AllReduceSweep(sizes, seconds, world)


@pytest.mark.parametrize("world", [2, 4, 8])
def test_the_fit_recovers_alpha_and_bandwidth_of_any_world_size(world):
    sweep = _synthetic_sweep(40e-6, 2e9, world, noise=0.0)
    fit = sweep.fit()
    assert fit.alpha == pytest.approx(40e-6, rel=1e-6)
    assert fit.bandwidth == pytest.approx(2e9, rel=1e-6)


def test_a_held_out_size_is_predicted_and_its_error_has_an_interval():
    sweep = _synthetic_sweep(30e-6, 1e9, 2, noise=0.05)
    held = int(sweep.sizes[-1])
    err = sweep.held_out_error(held)
    assert 0 <= err.low <= err.estimate <= err.high < 0.15
    iv = sweep.prediction_interval(held, 2, exclude=[held])
    truth = dd.AlphaBeta(30e-6, 1e9).seconds(held, 2)
    assert iv.low < truth < iv.high
    # the prediction for more processes grows with the ring's 2(n-1) latencies
    more = sweep.prediction_interval(2**20, 16, exclude=[held])
    assert more.estimate > sweep.prediction_interval(2**20, 2, exclude=[held]).estimate
    with pytest.raises(ValueError, match="measured sizes"):
        sweep.held_out_error(12345)


def test_ring_bytes_and_step_predictions():
    assert dd.ring_bytes(8e6, 8) == pytest.approx(14e6)
    m = dd.AlphaBeta(1e-4, 1e9)
    assert m.seconds(1e6, 1) == 0.0
    strong = [dd.predict_step_seconds(1.0, 1e7, dd.AlphaBeta(2e-3, 1e9), n) for n in (1, 2, 8, 64)]
    assert strong[0] == 1.0 and strong[2] < strong[1] < strong[0] and strong[3] > strong[2]  # turns up
    weak = [dd.predict_step_seconds(1.0, 1e8, m, n, scaling="weak") for n in (1, 2, 4)]
    assert weak == sorted(weak)
    with pytest.raises(ValueError, match="scaling"):
        dd.predict_step_seconds(1.0, 1.0, m, 2, scaling="sideways")


# -- pipelines ---------------------------------------------------------------------------------
def test_gpipe_schedule_against_the_bubble_formula():
    for p in (1, 2, 3, 4):
        for m in (1, 2, 5, 16):
            step = dd.gpipe_step_seconds([1.0] * p, [2.0] * p, m)
            assert step == pytest.approx((m + p - 1) * 3.0)
            busy = p * m * 3.0
            assert 1 - busy / (p * step) == pytest.approx(dd.gpipe_bubble(p, m))
    # the slowest stage sets the pace
    assert dd.gpipe_step_seconds([1, 3], [2, 6], 4) == pytest.approx(4 + 3 * 3 + 8 + 3 * 6)


def test_stages_split_the_parameters_about_evenly():
    setup = dd.TrainSetup(hidden=256, depth=4)
    for p in (2, 3):
        bounds = dd.stage_bounds(setup, p)
        model = dd.make_model(setup)
        assert bounds[0][0] == 0 and bounds[-1][1] == len(model)
        counts = [sum(q.numel() for q in model[a:b].parameters()) for a, b in bounds]
        assert max(counts) < 1.6 * setup.parameters / p


# -- with real worker groups -----------------------------------------------------------------
@pytest.fixture(scope="module")
def pair():
    with dd.start_workers(2) as workers:
        yield workers
    assert not dd.leftover_processes()


@pytest.mark.slow
def test_ddp_on_two_processes_ends_where_one_process_with_accumulation_ends(pair):
    for setup in (SMALL, dd.TrainSetup(features=16, hidden=48, depth=1, rows=300, batch=37, seed=1)):
        ddp = dd.train_data_parallel(pair, setup, 5)
        acc = dd.train_one_process(setup, 5, micro_batches=2)
        assert dd.max_abs_difference(ddp, acc) < 1e-5
    # unscaled losses on unequal shards (37 rows: 19 + 18) give another model
    plain = dd.train_data_parallel(pair, dd.TrainSetup(features=16, hidden=48, depth=1, rows=300,
                                                       batch=37, seed=1), 5, exact=False)
    assert dd.max_abs_difference(plain, acc) > 1e-5


@pytest.mark.slow
def test_local_gradients_weighted_by_rows_give_the_batch_gradient_and_ddp_averages(pair):
    lg = dd.local_gradients(pair, SMALL, 7)
    assert lg.rows == [4, 3]
    assert np.allclose(lg.ddp_average, np.mean(lg.gradients, axis=0), atol=1e-7)
    full = dd.full_batch_gradient(SMALL, 7)
    weighted = np.tensordot(np.array(lg.rows, float), np.asarray(lg.gradients), 1) / 7
    assert np.allclose(weighted, full, atol=1e-6)
    assert np.abs(lg.ddp_average - full).max() > 1e-4


@pytest.mark.slow
def test_timings_have_every_arm_and_a_split(pair):
    t = dd.time_data_parallel(pair, SMALL, rounds=3, steps_per_round=2)
    assert set(t.timings.samples) == {"1 process", t.ddp, t.sequential}
    assert all(len(v) == 3 and (v > 0).all() for v in t.timings.samples.values())
    assert len(t.compute) == len(t.waiting) == len(t.communication) == 6
    assert t.speedup().low > 0
    times, buckets = dd.time_buckets(pair, dd.TrainSetup(hidden=256, depth=4, batch=64), [0.1, 25],
                                     rounds=2, steps_per_round=1)
    assert len(buckets["0.1 MB"]) > len(buckets["25 MB"]) == 1


@pytest.mark.slow
def test_allreduce_sweep_measures_every_size_and_big_messages_take_longer(pair):
    # 4 KB against 16 MB: about 16 ms apart on this machine's 1 GB/s, so a moment of the other
    # tests' scheduling (6 ms once, at 4 MB: CI run34) cannot reverse the order
    sweep = dd.measure_allreduce(pair, [4096, 2**24], repeats=6)
    assert sweep.seconds.shape == (6, 2) and (sweep.seconds > 0).all()
    assert sweep.medians()[1] > sweep.medians()[0]
    with pytest.raises(ValueError, match="two or more sizes"):
        dd.measure_allreduce(pair, [4096])


@pytest.mark.slow
def test_a_pipeline_computes_the_unpartitioned_gradient_and_records_its_schedule(pair):
    setup = dd.TrainSetup(features=8, hidden=64, depth=4, classes=4, rows=256, batch=32, seed=2)
    pipe = dd.measure_pipeline(pair, setup, (1, 3), rounds=2)
    assert pipe.gradient_difference(setup) < 1e-5
    for m in (1, 3):
        assert len(pipe.bubbles[m]) == 2 and all(0 <= b < 1 for b in pipe.bubbles[m])
        for step in pipe.events[m]:
            for stage in step:
                assert sorted(k for k, *_ in stage) == ["B"] * m + ["F"] * m
        # the schedule replayed with this run's own stage times and message cost
        f, b = pipe.stage_seconds(m)
        assert pipe.message_seconds(m) >= 0
        assert pipe.overhead_seconds(m) >= 0
        assert pipe.schedule_bubble(m) == dd.gpipe_schedule_bubble(f, b, m, pipe.message_seconds(m),
                                                                   pipe.overhead_seconds(m))
        assert pipe.theory(m) - 1e-9 <= pipe.schedule_bubble(m) < 1 or min(f) < max(f)
    assert 0 <= pipe.bubble_error(model="schedule").estimate < 1
    with pytest.raises(ValueError, match="model"):
        pipe.bubble_error(model="formula")
    mem = pipe.memory
    whole = dd.unpartitioned_memory(setup)
    assert sum(x["parameter_bytes"] for x in mem) == whole["parameter_bytes"]
    assert all(x["activation_bytes"] < whole["activation_bytes"] for x in mem)


@pytest.mark.slow
def test_three_processes_agree_with_one_too():
    with dd.start_workers(3) as workers:
        pids = workers.pids()
        ddp = dd.train_data_parallel(workers, SMALL, 4)
        setup = dd.TrainSetup(features=8, hidden=64, depth=4, classes=4, rows=256, batch=30, seed=2)
        pipe = dd.measure_pipeline(workers, setup, (2,), rounds=2)
    assert dd.max_abs_difference(ddp, dd.train_one_process(SMALL, 4, micro_batches=3)) < 1e-5
    assert pipe.gradient_difference(setup) < 1e-5
    assert not set(pids) & {p["pid"] for p in dd.leftover_processes()}


def test_the_schedule_replay_is_the_formula_without_messages_and_larger_with_them():
    for p, m in ((2, 1), (2, 8), (3, 4), (4, 16)):
        assert abs(dd.gpipe_schedule_bubble([1.0] * p, [2.0] * p, m) - dd.gpipe_bubble(p, m)) < 1e-12
    # a message as long as a micro-batch's forward pass: more micro-batches cannot hide it all
    with_messages = [dd.gpipe_schedule_bubble([1.0, 1.0], [2.0, 2.0], m, 1.0) for m in (1, 4, 16)]
    assert all(b > dd.gpipe_bubble(2, m) for b, m in zip(with_messages, (1, 4, 16), strict=True))
    # an unbalanced pipeline idles its fast stage however many micro-batches there are
    assert dd.gpipe_schedule_bubble([1.0, 3.0], [2.0, 6.0], 64) > 0.3
    with pytest.raises(ValueError, match="message_seconds"):
        dd.gpipe_schedule_bubble([1.0], [1.0], 2, -1.0)
