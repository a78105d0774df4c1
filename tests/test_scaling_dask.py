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
        sp = measure_worker_speedup(client, model, 4000, 4, (1, 2))
        assert sp.workers == (1, 2) and all(s > 0 for s in sp.seconds)
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
        sp = measure_worker_speedup(client, model, 2000, 2, (1, 2), repeats=1)
        assert sp.workers == (1, 2)
        with pytest.raises(ValueError, match="cluster's 2 workers"):
            measure_worker_speedup(client, model, 2000, 2, (1, 3), repeats=1)  # not in the cluster


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


def _lab05_partitions(seconds, machine=None):
    """Lab 05's partition-count cell with the cluster replaced by interleaved timings a test
    chose (median seconds per partition count, four rounds of small noise)."""
    from types import SimpleNamespace

    from checkpoints import FixedCheck, QuietMachine

    from mlscale_lab.evidence import Timings, checkpoint, judge

    rng = np.random.default_rng(2)
    timings = Timings({n: s * (1 + rng.normal(0, 0.01, 4)) for n, s in seconds.items()},
                      rounds=4, number=1)
    sc = SimpleNamespace(partition_overhead=lambda *a, **k: timings)
    return {"sc": sc, "client": None, "model": None, "judge": judge, "checkpoint": checkpoint,
            "MachineCheck": FixedCheck(machine or QuietMachine(cpus=2)),
            "record": lambda name, value: value,
            "views": SimpleNamespace(plot_partition_overhead=lambda *a, **k: None)}


def test_lab05_partition_checkpoint_fails_when_tiny_partitions_cost_nothing(capsys):
    """128 tiny partitions slower than 8 pass; 128 faster than 8 fail (a busy machine: cannot
    tell); and two counts within the noise are not called "the fastest here"."""
    from checkpoints import BusyMachine, run_cells

    cells = ("lab05-19", "lab05-19b")
    base = {1: 0.9, 2: 0.5, 8: 0.30, 32: 0.35, 128: 0.9}
    ns = run_cells("05", cells, _lab05_partitions(base))
    assert ns["tiny_verdict"].holds and ns["fastest_verdict"].holds
    assert "fastest here: 8 partitions" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="128 tiny partitions take longer than 8"):
        run_cells("05", cells, _lab05_partitions({**base, 128: 0.2}))
    busy = run_cells("05", cells, _lab05_partitions({**base, 128: 0.2}, BusyMachine()))
    assert busy["tiny_verdict"].inconclusive
    tied = run_cells("05", cells, _lab05_partitions({**base, 32: 0.30}))
    assert tied["fastest_verdict"].inconclusive
    assert "cannot be told apart" in capsys.readouterr().out
