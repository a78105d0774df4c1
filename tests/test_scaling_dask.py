"""Dask helpers on a real LocalCluster: same code through a scheduler address, failures, adapt,
and no process left behind."""

import os
import tempfile

import numpy as np
import psutil
import pytest

from mlscale_lab.scaling import (
    adapt_under_bursts,
    connect,
    dask_grid_search,
    local_cluster,
    local_predict,
    make_model,
    measure_worker_speedup,
    partition_overhead,
    partitioned_predict,
    survive_worker_death,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _children():
    """Child processes, except multiprocessing's resource tracker (it lives as long as we do)."""
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.append(p.pid)
        except psutil.Error:
            pass
    return out


@pytest.fixture(scope="module")
def model():
    return make_model(hidden=(32,))


def test_cluster_via_address_failure_and_cleanup(model, tmp_path, monkeypatch):
    before = set(_children())
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with local_cluster(2) as (cluster, client):
        assert len(cluster.workers) == 2
        # The same function through a scheduler address, as on a real cluster.
        with connect(cluster.scheduler_address) as remote:
            pred, seconds = partitioned_predict(remote, model, 3000, 6)
        assert seconds > 0
        np.testing.assert_allclose(pred, local_predict(model, 3000, 6))
        sp = measure_worker_speedup(client, model, 4000, 4, (1, 2), rounds=3)
        assert sp.workers == (1, 2) and all(s > 0 for s in sp.seconds)
        assert all(len(x) == 3 for x in sp.samples) and sp.speedup_interval(2).n == 3
        over = partition_overhead(client, model, 2000, [1, 4, 64], rounds=3)
        assert sorted(over.samples) == [1, 4, 64] and all(len(v) == 3 for v in over.samples.values())
        assert over.ratio(64, 4).estimate > 0 and over.interval(1).low > 0
        search, _, per_worker = dask_grid_search(client, {"C": [1.0, 10.0], "gamma": [1e-3]}, cv=2)
        assert search.best_score_ > 0.9 and sum(per_worker.values()) >= 4
        # A worker dies mid-task: Dask reschedules it on the other worker.
        out = survive_worker_death(client, str(tmp_path / "marker"), timeout=120)
        assert out["result"] == 49 and out["died_pid"] != os.getpid()
    assert set(_children()) - before == set(), "a Dask process outlived its cluster"
    # the scratch space (and the killed worker's lock file) went with the cluster
    assert not list(scratch.iterdir()), sorted(str(p) for p in scratch.rglob("*"))


def test_worker_speedup_waits_for_the_clusters_workers_to_connect(model):
    with local_cluster(0) as (cluster, client):
        cluster.scale(2)  # asked for, not yet connected: the measurement waits for them
        sp = measure_worker_speedup(client, model, 2000, 2, (1, 2), rounds=2)
        assert sp.workers == (1, 2)
        with pytest.raises(ValueError, match="cluster's 2 workers"):
            measure_worker_speedup(client, model, 2000, 2, (1, 3), rounds=2)  # not in the cluster


def test_always_dying_task_is_a_clear_error_not_a_hang():
    import dask
    from distributed import KilledWorker

    def _always_die(x: int) -> int:  # nested: cloudpickle ships it by value to the worker
        os._exit(1)

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster(1) as (_, client):
        fut = client.submit(_always_die, 1, pure=False)
        with pytest.raises(KilledWorker):
            fut.result(timeout=120)


def test_adapt_follows_bursts():
    with local_cluster(2) as (cluster, client):
        tl = adapt_under_bursts(cluster, client, minimum=1, maximum=2, bursts=(12,),
                                task_seconds=0.3, gap_seconds=1.5, timeout=120)
    assert len(tl.t) == len(tl.workers) == len(tl.pending) > 5
    assert min(tl.workers) >= 1 and max(tl.workers) <= 2
    assert max(tl.pending) >= 1


def test_partitioned_predict_bad_input(model):
    with pytest.raises(ValueError, match=r"partitioned_predict\(total_rows=10\)"):
        partitioned_predict(None, model, 10, 20)
    with pytest.raises(ValueError, match="scheduler address"):
        connect("localhost")


def _lab05_partitions(seconds, machine=None, rounds=8):
    """Lab 05's partition-count cell with the cluster replaced by interleaved timings a test
    chose (median seconds per partition count, eight rounds of small noise)."""
    from types import SimpleNamespace

    from checkpoints import FixedCheck, QuietMachine

    from mlscale_lab.evidence import Timings, checkpoint, judge

    rng = np.random.default_rng(2)
    timings = Timings({n: s * (1 + rng.normal(0, 0.01, rounds)) for n, s in seconds.items()},
                      rounds=rounds, number=1)
    sc = SimpleNamespace(partition_overhead=lambda *a, **k: timings)
    return {"sc": sc, "client": None, "model": None, "judge": judge, "checkpoint": checkpoint,
            "MachineCheck": FixedCheck(machine or QuietMachine(cpus=2)),
            "record": lambda name, value: value,
            "views": SimpleNamespace(plot_partition_overhead=lambda *a, **k: None)}


def test_lab05_partition_checkpoint_fails_when_tiny_partitions_cost_nothing(capsys):
    """64 tiny partitions slower than 8 and 2 faster than 1 pass; 64 faster than 8, or 1 as
    fast as 2, fail (a busy machine: cannot tell); the fastest count is shown, not judged."""
    from checkpoints import BusyMachine, run_cells

    cells = ("lab05-19", "lab05-19b")
    base = {1: 0.9, 2: 0.5, 8: 0.30, 64: 0.9}
    ns = run_cells("05", cells, _lab05_partitions(base))
    assert ns["tiny_verdict"].holds and ns["idle_verdict"].holds
    assert "lowest median here: 8 partitions" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="64 tiny partitions take longer than 8"):
        run_cells("05", cells, _lab05_partitions({**base, 64: 0.2}))
    with pytest.raises(AssertionError, match="2 partitions .* run faster than 1"):
        run_cells("05", cells, _lab05_partitions({**base, 1: 0.25}))
    busy = run_cells("05", cells, _lab05_partitions({**base, 64: 0.2, 1: 0.25}, BusyMachine()))
    assert busy["tiny_verdict"].inconclusive and busy["idle_verdict"].inconclusive


def _lab05_dask(one, two, machine=None, rounds=8):
    """Lab 05's Dask speedup cell with the cluster replaced by interleaved rounds a test chose."""
    from types import SimpleNamespace

    from checkpoints import FixedCheck, QuietMachine

    from mlscale_lab.evidence import checkpoint, judge
    from mlscale_lab.scaling import WorkerSpeedup

    rng = np.random.default_rng(3)
    x = (one * (1 + rng.normal(0, 0.01, rounds)), two * (1 + rng.normal(0, 0.01, rounds)))
    speed = WorkerSpeedup((1, 2), tuple(float(np.median(v)) for v in x), tuple(map(tuple, x)))
    sc = SimpleNamespace(measure_worker_speedup=lambda *a, **k: speed)
    return {"sc": sc, "client": None, "model": None, "SMALL": False, "judge": judge,
            "checkpoint": checkpoint, "MachineCheck": FixedCheck(machine or QuietMachine(cpus=2)),
            "record": lambda name, value: value}


def test_lab05_dask_speedup_checkpoint_fails_when_two_workers_gain_nothing(capsys):
    """Two workers 1.7x as fast pass; 1.1x fail the checkpoint; a busy machine or
    one CPU says inconclusive; the lab prints the verdict, never a bare speedup."""
    from checkpoints import BusyMachine, QuietMachine, run_cells

    cells = ("lab05-16", "lab05-16b")
    ns = run_cells("05", cells, _lab05_dask(1.0, 0.6))
    assert ns["dask_verdict"].holds
    out = capsys.readouterr().out
    assert str(ns["dask_verdict"]) in out and "speedup with 2 workers" not in out, out
    with pytest.raises(AssertionError, match="at least 1.2x as fast as 1"):
        run_cells("05", cells, _lab05_dask(1.0, 0.9))
    assert run_cells("05", cells, _lab05_dask(1.0, 0.9, BusyMachine()))["dask_verdict"].inconclusive
    assert run_cells("05", cells, _lab05_dask(1.0, 0.6, QuietMachine(cpus=1)))["dask_verdict"].inconclusive

