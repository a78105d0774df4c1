"""Load generators: what they measure (open loop from the schedule, closed loop from the send),
and what they refuse (anything but a running local server, unbounded runs)."""

from __future__ import annotations

import numpy as np
import pytest

from mlscale_lab.scaling import serving as sv


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    path = tmp_path_factory.mktemp("load") / "digits.joblib"
    joblib.dump(LogisticRegression(max_iter=200).fit(X[:600], y[:600]), path)
    with sv.serve(path, workers=1, n_features=64, max_batch=8, max_wait_ms=2.0) as s:
        s.rows = X[:50]
        yield s


def test_poisson_schedule_is_seeded_and_has_the_rate():
    a, b = sv.poisson_schedule(200.0, 20_000, seed=3), sv.poisson_schedule(200.0, 20_000, seed=3)
    assert np.array_equal(a, b) and a[0] == 0.0 and np.all(np.diff(a) >= 0)
    assert (a.size - 1) / a[-1] == pytest.approx(200.0, rel=0.03)


def test_open_loop_times_each_request_from_its_schedule(server):
    r = sv.open_loop(server, 100.0, rows=server.rows, n_requests=80, seed=1)
    assert r.kind == "open" and r.n_requests == 80 and r.errors == 0
    assert np.array_equal(r.scheduled, sv.poisson_schedule(100.0, 80, seed=1))
    assert np.all(r.sent >= r.scheduled - 1e-3), "nothing is sent before its time"
    assert np.all(r.latency >= r.service_latency), "the schedule is never later than the send"
    assert r.p50 == pytest.approx(np.percentile(r.latency, 50) * 1000)
    assert 0 < r.p50 <= r.p95 <= r.p99
    assert r.sent_rate > 0 and r.throughput > 0


def test_closed_loop_keeps_at_most_users_in_flight_and_reports_from_the_send(server):
    r = sv.closed_loop(server, 3, rows=server.rows, n_requests=60)
    assert r.kind == "closed" and r.n_requests == 60 and r.errors == 0
    events = sorted([(t, 1) for t in r.sent] + [(t, -1) for t in r.done])
    assert max(np.cumsum([e for _, e in events])) <= 3
    assert r.p99 == pytest.approx(np.percentile(r.service_latency, 99) * 1000)
    for u in range(3):  # each user sends after its previous answer
        mine = r.user == u
        assert np.all(r.sent[mine][1:] >= r.done[mine][:-1] - 1e-6)


def test_paced_closed_loop_records_the_plan_it_missed(server):
    r = sv.closed_loop(server, 2, rows=server.rows, duration=0.5, rate=100.0)
    assert r.n_requests <= 52 and r.errors == 0
    gaps = np.diff(np.sort(r.scheduled[r.user == 0]))
    assert np.allclose(gaps, 2 / 100.0), "each of 2 users aims at one request every 20 ms"
    assert np.all(r.latency >= r.service_latency - 1e-9)


def test_the_micro_batcher_groups_concurrent_requests(server):
    before = server.health()
    sv.closed_loop(server, 8, rows=server.rows, n_requests=200)
    after = server.health()
    rows, batches = after["rows"] - before["rows"], after["batches"] - before["batches"]
    assert rows == 200 and batches < rows, "8 requests in flight should share batches"


@pytest.mark.parametrize("target", ["http://127.0.0.1:8000", "http://example.com", ("10.0.0.1", 80), None])
def test_generators_refuse_anything_but_a_local_server_object(target):
    rows = np.zeros((1, 64))
    with pytest.raises(TypeError, match=r"open_loop\(server=.*only target the local server"):
        sv.open_loop(target, 10.0, rows=rows, n_requests=1)
    with pytest.raises(TypeError, match=r"closed_loop\(server="):
        sv.closed_loop(target, 1, rows=rows, n_requests=1)


def test_generators_refuse_a_stopped_server(tmp_path):
    import joblib
    from sklearn.dummy import DummyClassifier

    path = tmp_path / "dummy.joblib"
    joblib.dump(DummyClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1]), path)
    s = sv.serve(path, n_features=2)
    s.stop()
    with pytest.raises(ValueError, match=r"open_loop\(server=.*stopped"):
        sv.open_loop(s, 10.0, rows=np.zeros((1, 2)), n_requests=1)


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"n_requests": sv.MAX_REQUESTS + 1}, r"open_loop\(n_requests=20001\)"),
    ({"duration": 31.0}, r"open_loop\(duration=31.0\)"),
    ({"duration": 1.0, "n_requests": 5}, r"exactly one of"),
    ({}, r"exactly one of"),
])
def test_runs_are_bounded(server, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        sv.open_loop(server, 10.0, rows=server.rows, **kwargs)


def test_rate_and_users_are_bounded(server):
    with pytest.raises(ValueError, match=r"open_loop\(rate=1000000.0\)"):
        sv.open_loop(server, 1e6, rows=server.rows, n_requests=5)
    with pytest.raises(ValueError, match=r"closed_loop\(users=0\)"):
        sv.closed_loop(server, 0, rows=server.rows, n_requests=5)
    with pytest.raises(ValueError, match=r"rows="):
        sv.open_loop(server, 10.0, rows=np.zeros(64), n_requests=5)
