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


# Lab 05's checkpoints on thread scaling and on chunks, run on inputs a test chose: each fails
# when its claim's input breaks, and says inconclusive where the machine cannot tell.

def _lab05_threads(speedup, *, share=0.5, machine=None, rounds=8, prediction=1.0, counts=(1, 2),
                   last=1.0):
    """What lab 05's cells before the Amdahl verdicts bind: thread counts timed interleaved, with
    the parse and the matrix products timed alone. ``prediction`` scales the measured 2-thread
    pass against what its parts predict; ``last`` scales the most threads' time against the law
    (more than two counts: the MLP parallel as the 2-thread speedup says)."""
    from types import SimpleNamespace

    from checkpoints import QuietMachine

    from mlscale_lab import scaling as sc
    from mlscale_lab.evidence import Interval, checkpoint, judge

    rng = np.random.default_rng(0)

    def noisy(x):
        return x * (1 + rng.normal(0, 0.01, rounds))

    one = noisy(np.full(rounds, 0.1))
    two = noisy(one / speedup)
    parse = noisy(share * one)
    mlp1 = one - parse
    mlp2 = noisy(two / prediction - parse)
    # the law through 1 and 2 threads (T1 s + T1 (1 - s) / p) for counts past 2
    s_fit = 2 / speedup - 1
    others = [noisy(one * (s_fit + (1 - s_fit) / p)) * (last if p == max(counts) else 1)
              for p in counts[2:]]
    x = (one, two, *others)
    scaling = ThreadScaling(tuple(counts), tuple(float(np.median(v)) for v in x),
                            tuple(tuple(v) for v in x),
                            {("parse", 1): tuple(parse), ("mlp", 1): tuple(mlp1), ("mlp", 2): tuple(mlp2)})
    return {"np": np, "sc": sc, "scaling": scaling, "judge": judge, "checkpoint": checkpoint,
            "serial_share": Interval(share, share - 0.02, share + 0.02, 0.95, "parse share", 7),
            "threads_check": SimpleNamespace(report=machine or QuietMachine(cpus=max(counts))),
            "CPUS": max(counts), "record": lambda name, value: value,
            "views": SimpleNamespace(plot_thread_scaling=lambda *a, **k: None)}


def test_lab05_amdahl_checkpoint_fails_on_no_speedup_or_one_past_the_parsers_bound(capsys):
    """The parser's share 0.48-0.52 bounds 2 threads at 1.35x: 1.25x passes both verdicts, no
    speedup refutes the first, 1.7x the bound; a busy or one-CPU machine cannot tell."""
    from checkpoints import BusyMachine, QuietMachine, run_cells

    cells = ("lab05-8", "lab05-9")
    ns = run_cells("05", cells, _lab05_threads(1.25))
    assert ns["speedup_verdict"].holds and ns["bound_verdict"].holds
    with pytest.raises(AssertionError, match="at least 5 % faster"):
        run_cells("05", cells, _lab05_threads(1.0))
    with pytest.raises(AssertionError, match="within Amdahl's bound"):
        run_cells("05", cells, _lab05_threads(1.7))
    busy = run_cells("05", cells, _lab05_threads(1.0, machine=BusyMachine()))
    assert busy["speedup_verdict"].inconclusive
    one_cpu = run_cells("05", cells, _lab05_threads(1.7, machine=QuietMachine(cpus=1)))
    assert one_cpu["speedup_verdict"].inconclusive and one_cpu["bound_verdict"].inconclusive
    out = capsys.readouterr().out
    assert "exactly determined" in out, "two points: the lab says they test nothing"
    assert "No held-out thread count" in out, "two counts: the lab says why nothing is held out"


def test_lab05_prediction_from_the_parts_fails_when_the_pass_is_far_from_them(capsys):
    """The 2-thread pass is held to parse + MLP(2) both ways: 30 % slower or 30 % faster than
    its parts predict fails the checkpoint (within the parser's bound and with a speedup, so
    only this verdict can); a busy machine says inconclusive, as does one CPU."""
    from checkpoints import BusyMachine, QuietMachine, run_cells

    cells = ("lab05-8", "lab05-9")
    assert run_cells("05", cells, _lab05_threads(1.25))["prediction_verdict"].holds
    for off in (1.3, 0.7):
        with pytest.raises(AssertionError, match="the time its parts predict"):
            run_cells("05", cells, _lab05_threads(1.25, prediction=off))
    assert "however quiet the machine" in capsys.readouterr().out
    busy = run_cells("05", cells, _lab05_threads(1.25, prediction=1.3, machine=BusyMachine()))
    assert busy["prediction_verdict"].inconclusive and "cannot be trusted" in busy["prediction_verdict"].reason
    out = capsys.readouterr().out
    assert "not figures to build on" in out and "however quiet" not in out, "the share's bound is not a finding there"
    one_cpu = run_cells("05", cells, _lab05_threads(1.25, prediction=1.3, machine=QuietMachine(cpus=1)))
    assert one_cpu["prediction_verdict"].inconclusive


def test_lab05_held_out_thread_count_is_a_finding_about_the_machine(capsys):
    """On four CPUs, the law fitted on 1-3 threads predicts 4: timings on the law hold; a
    4-thread time 30 % off does not hold and the lab says what about the machine can cause it
    (hyperthreads, performance and efficiency cores), without stopping: a sound laptop can show
    it; a busy machine cannot tell."""
    from checkpoints import BusyMachine, run_cells

    cells = ("lab05-8", "lab05-9")
    ns = run_cells("05", cells, _lab05_threads(1.25, counts=(1, 2, 3, 4)))
    assert ns["holdout_verdict"].holds
    assert "A finding about this machine" not in capsys.readouterr().out
    off = run_cells("05", cells, _lab05_threads(1.25, counts=(1, 2, 3, 4), last=1.3))
    assert off["holdout_verdict"].refuted
    assert "A finding about this machine, not an error" in capsys.readouterr().out
    busy = run_cells("05", cells, _lab05_threads(1.25, counts=(1, 2, 3, 4), last=1.3,
                                                 machine=BusyMachine()))
    assert busy["holdout_verdict"].inconclusive


def test_lab05_matrix_products_finding_needs_a_quiet_machine(capsys):
    """An inflated fitted s prints "do not scale perfectly" only on a trusted machine: a
    neighbour holding one CPU slows only the 2-thread arm."""
    from checkpoints import BusyMachine, run_cells

    cells = ("lab05-8",)
    quiet = run_cells("05", cells, _lab05_threads(1.1, share=0.3))
    assert quiet["matrix_verdict"].holds and "do not scale perfectly" in capsys.readouterr().out
    busy = run_cells("05", cells, _lab05_threads(1.1, share=0.3, machine=BusyMachine()))
    assert busy["matrix_verdict"].inconclusive
    assert "do not scale perfectly" not in capsys.readouterr().out


def test_threads_parts_predict_the_pass_and_the_held_out_count():
    calls = []
    r = measure_thread_scaling(lambda: calls.append("w"), (1, 2), rounds=3, warmup=0,
                               parts={"a": (lambda: calls.append("a"), [1]),
                                      "b": (lambda: calls.append("b"), [1, 2])})
    assert calls.count("w") == 6 and calls.count("a") == 3 and calls.count("b") == 6
    assert set(r.parts) == {("a", 1), ("b", 1), ("b", 2)}
    assert r.predicted_seconds(2).shape == (3,)
    assert 0 < r.part_share("a").estimate < 1
    from mlscale_lab.evidence import NotEnoughData
    from mlscale_lab.scaling import holdout_ratio
    with pytest.raises(NotEnoughData, match="three or more"):
        holdout_ratio(r)


def _lab05_chunks(slowdown, share_machine=None):
    """Lab 05's cost-table inputs: one batch against 8 chunks timed interleaved (seconds), the
    parser's share timed on ``share_machine`` (a quiet one by default)."""
    from types import SimpleNamespace

    import psutil
    from checkpoints import QuietMachine

    from mlscale_lab import scaling as sc
    from mlscale_lab.evidence import Interval, Timings, checkpoint, judge
    from mlscale_lab.prices import PRICE_UNIT

    rng = np.random.default_rng(1)
    whole = 0.05 * (1 + rng.normal(0, 0.01, 7))
    timings = Timings({"one batch": whole, "8 chunks": whole * slowdown * (1 + rng.normal(0, 0.01, 7))},
                      rounds=7, number=1)
    return {"np": np, "sc": sc, "psutil": psutil, "Interval": Interval, "judge": judge,
            "checkpoint": checkpoint, "PRICE_UNIT": PRICE_UNIT, "record": lambda n, v: v,
            "workload": SimpleNamespace(rows=3000, bytes_per_row=2400.0),
            "chunk_timings": timings, "chunk_slowdown": timings.ratio("8 chunks", "one batch"),
            "serial_share": Interval(0.5, 0.48, 0.52, 0.95, "parse share", 7),
            "scaling": ThreadScaling((1, 2), (0.1, 0.07)),
            "chunk_check": SimpleNamespace(report=QuietMachine(cpus=2)),
            "threads_check": SimpleNamespace(report=share_machine or QuietMachine(cpus=2))}


def test_lab05_chunk_cost_checkpoint_fails_when_chunks_are_too_slow_to_pay():
    """Chunks on a small machine beat one batch on a big one while they run at about the same
    speed per row; chunks 30x slower per row cost more, and the checkpoint says so. The big
    machines' prices rest on the parser's share: timed on a busy machine, the saving cannot be
    told either way."""
    from checkpoints import BusyMachine, run_cells

    cells = ("lab05-11d", "lab05-11e")
    ns = run_cells("05", cells, _lab05_chunks(1.1))
    assert ns["saving_verdict"].holds and ns["any_way"]["chunks"] > 1
    busy = run_cells("05", cells, _lab05_chunks(1.1, BusyMachine()))
    assert busy["saving_verdict"].inconclusive and "cannot be trusted" in busy["saving_verdict"].reason
    with pytest.raises(AssertionError, match="runs the batch in chunks|costs less per row"):
        run_cells("05", cells, _lab05_chunks(30.0))
