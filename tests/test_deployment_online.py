import time

import numpy as np
import pytest

from mlscale_lab.deployment import (
    DriftTriggered,
    Incremental,
    PageHinkley,
    PeriodicRetrain,
    PrequentialResult,
    Static,
    Strategy,
    detect_drifts,
    full_retrain,
    incremental_update,
    make_stream,
    prequential,
    results_table,
    sgd_model,
    sgd_step_size,
    strategy_cpu,
)
from mlscale_lab.evidence import interleave


@pytest.fixture(scope="module")
def sudden():
    return make_stream("sudden", 8000, [4000], seed=0)


@pytest.fixture(scope="module")
def runs(sudden):
    import sklearn.linear_model  # noqa: F401  (imported before, not inside, the first measurement)

    strategies = [
        Static(),
        PeriodicRetrain(every=1000, window=1500),
        Incremental(),
        DriftTriggered(),
    ]
    return {r.name: r for r in (prequential(sudden, s, warmup=1000) for s in strategies)}


def test_online_learning_beats_static_by_5_points_after_a_sudden_drift(runs):
    static = runs["static"].accuracy(4000)
    for name in ("online partial_fit", "online + drift detector", "periodic retrain"):
        assert runs[name].accuracy(4000) >= static + 0.05, (name, runs[name].accuracy(4000), static)
    # Before the drift nobody needs to adapt: all within a few points.
    before = [r.accuracy(0, 4000) for r in runs.values()]
    assert max(before) - min(before) < 0.05


def test_detector_strategy_alarms_shortly_after_the_drift_and_retrains(runs):
    r = runs["online + drift detector"]
    assert len(r.alarms) == 1 and 4000 <= r.alarms[0] < 4300, r.alarms
    assert r.retrains == 1


def test_periodic_retrain_counts_its_retrains(runs):
    # 7000 scored samples, a retrain every 1000 (batches of 50): 7 retrains.
    assert runs["periodic retrain"].retrains == 7


def test_prequential_tests_before_training():
    """A model that memorises what it was trained on is only right by luck when tested first."""

    class Memoriser:
        name = "memoriser"

        def start(self, X, y):
            self.seen = {}
            self.learn(X, y, None, 0)

        def predict(self, X):
            return np.array([self.seen.get(x.tobytes(), 0) for x in X])

        def learn(self, X, y, y_pred, position):
            self.seen.update({x.tobytes(): int(t) for x, t in zip(X, y, strict=True)})

    s = make_stream("stationary", 3000, seed=1, label_noise=0.5)
    r = prequential(s, Memoriser(), warmup=100)
    assert r.accuracy() == pytest.approx(np.mean(s.y[100:] == 0), abs=1e-12)
    assert r.accuracy() < 0.6
    assert np.isnan(r.correct[:100]).all() and not np.isnan(r.correct[100:]).any()


def test_rolling_accuracy_matches_a_direct_window_mean():
    correct = np.r_[np.full(10, np.nan), np.tile([1.0, 0.0, 0.0, 1.0], 25)]
    r = PrequentialResult("x", correct, 0.0, 0.0, warmup=10)
    roll = r.rolling_accuracy(8)
    assert np.isnan(roll[:10]).all()
    assert roll[10 + 7] == pytest.approx(np.mean(correct[10:18]))
    assert roll[-1] == pytest.approx(np.mean(correct[-8:]))


def test_results_table_and_cpu_seconds(runs, sudden):
    rows = results_table(list(runs.values()), sudden.drift_points)
    assert [r["strategy"] for r in rows] == list(runs)
    assert all(r["cpu_seconds"] >= 0 for r in rows)


def test_strategy_cpu_repeats_interleaves_and_drops_the_warm_up(sudden):
    calls = []

    class Counted(Incremental):
        name = "counted"

        def start(self, X, y):
            calls.append(1)
            super().start(X, y)

    cpu = strategy_cpu(sudden, [Static(), Counted()], rounds=4, warmup=1, samples_warmup=1000)
    assert len(calls) == 5 and len(cpu.samples["counted"]) == 4  # the warm-up run is not kept
    # learning every batch costs more than never learning, and the paired interval shows it
    assert cpu.ratio("counted", "static").low > 1.5
    rows = results_table([prequential(sudden, Static()), prequential(sudden, Counted())],
                         sudden.drift_points, cpu=cpu)
    assert rows[1]["cpu_low"] <= rows[1]["cpu_seconds"] <= rows[1]["cpu_high"]
    assert rows[1]["cpu_seconds"] == pytest.approx(cpu.median("counted"))
    used = Static()
    prequential(sudden, used)
    with pytest.raises(ValueError, match="has run already"):
        strategy_cpu(sudden, [used])
    with pytest.raises(ValueError, match="distinct names"):
        strategy_cpu(sudden, [Static(), Static()])


def test_incremental_update_leaves_production_untouched_and_costs_a_fraction_of_a_retrain():
    s = make_stream("sudden", 16000, [2000], seed=4)
    X, y = s.X, s.y
    prod = full_retrain(X[2000:14000], y[2000:14000])
    coef = prod.coef_.copy()
    upd = incremental_update(prod, X[14000:15000], y[14000:15000])
    np.testing.assert_array_equal(prod.coef_, coef)
    assert not np.array_equal(upd.coef_, coef)
    assert upd.score(X[15000:], y[15000:]) > 0.85
    cpu = interleave({"retrain": lambda: full_retrain(X[2000:15000], y[2000:15000]),
                      "update": lambda: incremental_update(prod, X[14000:15000], y[14000:15000])},
                     rounds=5, clock=time.process_time)
    # the lab's claim is 5 %; the interval of the paired ratio holds it on any machine
    assert cpu.ratio("update", "retrain").high < 0.05, cpu.ratio("update", "retrain")


def test_full_retrain_picks_the_alpha_with_the_best_validation_score():
    s = make_stream("stationary", 3000, seed=2)
    model = full_retrain(s.X, s.y, alphas=(1e-4, 10.0))
    assert model.alpha == 1e-4  # alpha=10 shrinks the weights to nothing


def test_detector_is_pluggable_and_checked():
    s = make_stream("sudden", 4000, [2000], seed=5)
    never = PageHinkley(threshold=1e9)
    r = prequential(s, DriftTriggered(detector=never), warmup=500)
    assert r.alarms == []
    with pytest.raises(TypeError, match="detector"):
        DriftTriggered(detector=object())


@pytest.mark.parametrize(
    "kwargs, word",
    [({"batch_size": 0}, "batch_size"), ({"warmup": 5000}, "warmup"), ({"warmup": -1}, "warmup")],
)
def test_bad_prequential_parameters_are_named(kwargs, word):
    s = make_stream("stationary", 2000, seed=0)
    with pytest.raises(ValueError, match=word):
        prequential(s, Static(), **kwargs)


def test_bad_strategy_parameters_are_named():
    with pytest.raises(ValueError, match="every"):
        PeriodicRetrain(every=0)
    with pytest.raises(ValueError, match="window"):
        PeriodicRetrain(window=-10)
    with pytest.raises(ValueError, match="validation"):
        full_retrain(np.zeros((10, 2)), np.zeros(10), validation=1.5)


def test_sgd_model_is_seeded():
    s = make_stream("stationary", 2000, seed=0)
    a = sgd_model(3).fit(s.X, s.y).coef_
    b = sgd_model(3).fit(s.X, s.y).coef_
    np.testing.assert_array_equal(a, b)


def test_views_draw_what_the_results_hold(runs, sudden):
    import matplotlib

    matplotlib.use("Agg")
    from mlscale_lab.deployment import page_hinkley_trace
    from mlscale_lab.views.online import plot_accuracy_vs_compute, plot_prequential

    results = list(runs.values())
    fig = plot_prequential(results, sudden.drift_points, window=200)
    ax = fig.axes[0]
    curves = [ln for ln in ax.get_lines() if ln.get_label() in runs]
    assert [ln.get_label() for ln in curves] == list(runs)
    np.testing.assert_allclose(curves[0].get_ydata(), results[0].rolling_accuracy(200))
    rows = results_table(results, sudden.drift_points)
    fig2 = plot_accuracy_vs_compute(rows)
    assert len(fig2.axes[0].collections) == len(rows)

    errors = 1.0 - results[0].correct[1000:]
    stats, alarms = page_hinkley_trace(errors, delta=0.03, threshold=30, offset=1000)
    assert stats.shape == (8000,) and np.isnan(stats[:1000]).all()
    assert alarms == [1000 + a for a in detect_drifts(PageHinkley(), errors)]


def test_drift_triggered_works_with_adwin(sudden):
    from mlscale_lab.deployment import Adwin

    r = prequential(sudden, DriftTriggered(detector=Adwin()), warmup=1000, batch_size=100)
    assert r.alarms and 4000 <= r.alarms[0] < 4300, r.alarms
    assert r.accuracy(4000) > 0.85


def test_detector_explorer_redraws_when_a_slider_moves(capsys):
    import matplotlib

    matplotlib.use("Agg")
    from mlscale_lab.views.online import detector_explorer

    rng = np.random.default_rng(0)
    errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
    box = detector_explorer(errors, [3000])
    sliders, info, image = box.children
    assert bytes(image.value).startswith(b"\x89PNG")
    assert info.value.startswith("1 alarm(s)")
    first = bytes(image.value)
    sliders.children[1].value = 3.0  # a far lower threshold: alarms on noise
    assert int(info.value.split()[0]) > 1 and bytes(image.value) != first


# -- the strategies share a base; none is a special case of the static model ---------------
def test_strategies_share_a_base_and_static_is_not_one_of_them():
    for cls in (Static, PeriodicRetrain, Incremental, DriftTriggered):
        assert issubclass(cls, Strategy)
    assert not issubclass(Incremental, Static) and not issubclass(PeriodicRetrain, Static)
    with pytest.raises(TypeError, match=r"Incremental\(make_model="):
        Incremental(make_model=3)


# -- River's detectors plug into DriftTriggered ------------------------------------------------
def _river(name):
    drift = pytest.importorskip("river.drift")
    if name == "PageHinkley":
        return drift.PageHinkley(delta=0.03, threshold=30, alpha=1.0, mode="up")
    return drift.ADWIN()


@pytest.mark.parametrize("name", ["PageHinkley", "ADWIN"])
def test_drift_triggered_works_with_rivers_detectors(sudden, name):
    r = prequential(sudden, DriftTriggered(detector=_river(name)), warmup=1000, batch_size=100)
    # River's update() returns None: reading it as the alarm would never (or always) alarm.
    assert r.alarms and 4000 <= r.alarms[0] < 4300, r.alarms
    assert len(r.alarms) <= 3 and r.accuracy(4000) > 0.85, (r.alarms, r.accuracy(4000))


def test_drift_triggered_reads_drift_detected_not_the_return_value(sudden):
    class LoudReturnQuietFlag(PageHinkley):
        def update(self, x):  # returns True every time, but never sets drift_detected
            super().update(x)
            self.drift_detected = False
            return True

    r = prequential(sudden, DriftTriggered(detector=LoudReturnQuietFlag()), warmup=1000)
    assert r.alarms == [] and r.retrains == 0


# -- the learning-rate schedule decides whether SGD can follow a drift ------------------------
def test_sgd_step_size_matches_the_update_scikit_learn_makes():
    s = make_stream("stationary", 2000, seed=0)
    for schedule in ("constant", "invscaling", "optimal"):
        with _quiet():
            m = sgd_model(0, learning_rate=schedule).fit(s.X[:1000], s.y[:1000])
        eta, w0, b0 = sgd_step_size(m), m.coef_.ravel().copy(), m.intercept_[0]
        x, label = s.X[1500], s.y[1500]
        sign = 1 if label == 1 else -1
        dloss = -sign / (np.exp(sign * (x @ w0 + b0)) + 1)  # log loss' derivative
        m.partial_fit(x[None], [label])
        # one SGD step: w <- (1 - eta alpha) w - eta dloss x
        expected = (1 - eta * m.alpha) * w0 - eta * dloss * x
        np.testing.assert_allclose(m.coef_.ravel(), expected, rtol=1e-9, err_msg=schedule)


def _quiet():
    import contextlib
    import warnings

    @contextlib.contextmanager
    def quiet():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield

    return quiet()


def test_a_decaying_step_stops_sgd_from_following_a_drift(sudden):
    def run(schedule):
        return prequential(sudden, Incremental(lambda: sgd_model(0, learning_rate=schedule)),
                           warmup=1000, batch_size=100)

    constant, decaying = run("constant"), run("invscaling")
    assert abs(constant.accuracy(1000, 4000) - decaying.accuracy(1000, 4000)) < 0.05
    assert constant.accuracy(6000) > decaying.accuracy(6000) + 0.15


# -- labels that arrive late ---------------------------------------------------------------
class _Spy:
    """Logs what the loop asks of it: ("predict", start) and ("learn", start)."""

    name = "spy"

    def __init__(self):
        self.log = []

    def start(self, X, y):
        self.log.append(("start", len(y)))

    def predict(self, X):
        self.log.append(("predict", int(X[0, 0])))
        return np.zeros(len(X), dtype=int)

    def learn(self, X, y, y_pred, position):
        assert int(X[0, 0]) == position
        self.log.append(("learn", position))


def _indexed_stream(n):
    s = make_stream("stationary", n, seed=0)
    X = s.X.copy()
    X[:, 0] = np.arange(n)  # each row says where it sits
    return type(s)(X=X, y=s.y, kind=s.kind, drift_points=(), concept_id=s.concept_id)


@pytest.mark.parametrize("delay", [0, 100, 150])
def test_labels_arrive_label_delay_samples_after_their_batch(delay):
    spy = _Spy()
    prequential(_indexed_stream(1000), spy, warmup=200, batch_size=100, label_delay=delay)
    expected = [("start", 200)]
    learned = 200
    for start in range(200, 1000, 100):
        expected.append(("predict", start))
        while learned + 100 + delay <= start + 100:  # that batch's labels are in by now
            expected.append(("learn", learned))
            learned += 100
    assert spy.log == expected


def test_label_delay_slows_the_recovery_after_a_drift(sudden):
    acc = [prequential(sudden, Incremental(), warmup=1000, batch_size=100, label_delay=d)
           .accuracy(4000, 6000) for d in (0, 1000, 2000)]
    assert acc[0] > acc[1] > acc[2] and acc[0] - acc[2] > 0.08, acc
    with pytest.raises(ValueError, match=r"prequential\(label_delay=-1\)"):
        prequential(sudden, Incremental(), label_delay=-1)


# -- lab 04's checkpoints fail when their claims break ---------------------------------------
def _lab04_ns():
    from mlscale_lab import evidence

    return {"checkpoint": evidence.checkpoint, "judge": evidence.judge, "np": np}


def _series(mean, n=5000, seed=0):
    """A difference of two models' 0/1 answers, sample by sample, with the given mean."""
    rng = np.random.default_rng(seed)
    return (rng.random(n) < 0.5 + mean / 2).astype(float) - (rng.random(n) < 0.5 - mean / 2)


def test_lab04_strategy_checkpoint_fails_on_a_small_gain_or_a_gap_before_the_drift():
    from checkpoints import run_checkpoint

    from mlscale_lab.evidence import batch_means_interval

    def ns(after, before):
        return {**_lab04_ns(), "after_gain": batch_means_interval(_series(after)),
                "before_gap": batch_means_interval(_series(before, n=3000))}

    run_checkpoint("04", "lab04-11", ns(0.2, 0.0))
    with pytest.raises(AssertionError, match="beats the static model by more than 5 points"):
        run_checkpoint("04", "lab04-11", ns(0.0, 0.0))
    with pytest.raises(AssertionError, match="within 5 points"):
        run_checkpoint("04", "lab04-11", ns(0.2, 0.2))


def test_lab04_cpu_comparison_is_a_finding_printed_either_way_never_a_failed_checkpoint(capsys):
    """Online against periodic CPU is per-call overhead against compiled epochs: a correct run
    can read either way on some machine, so lab04-10 prints the verdict and lab04-11 does not
    checkpoint it (a "does not hold" on a quiet machine must not stop the notebook)."""
    from types import SimpleNamespace

    from checkpoints import BusyMachine, QuietMachine, run_cells

    from mlscale_lab.evidence import Interval, batch_means_interval

    def ns(cpu_ratio, machine):
        names = ["static", "periodic retrain", "online partial_fit", "online + drift detector"]
        rng = np.random.default_rng(0)
        static = (rng.random(6000) < 0.7).astype(float)
        online = np.r_[static[:3000], rng.random(3000) < 0.9].astype(float)  # adapts at 3000
        rows = [{"strategy": n, "after_drift": 0.6 if n == "static" else 0.9, "retrains": 9}
                for n in names]
        results = [SimpleNamespace(name=n, correct=online if n == "online partial_fit" else static)
                   for n in names]
        ratio = Interval(cpu_ratio, cpu_ratio * 0.9, cpu_ratio * 1.1, 0.95, "paired bootstrap", 5)
        return {**_lab04_ns(), "rows": rows, "results": results, "WARMUP": 1000, "drift": 3000,
                "cpu": SimpleNamespace(ratio=lambda a, b: ratio), "record": lambda name, v: v,
                "cpu_machine": SimpleNamespace(report=machine),
                "batch_means_interval": batch_means_interval}

    for cpu_ratio, machine, status, words in [
            (1.7, QuietMachine(), "holds", "adds up to more CPU than a few retrains"),
            (0.5, QuietMachine(), "does not hold", "add up to less CPU than the retrains"),
            (0.5, BusyMachine(), "inconclusive", "cannot tell which of the two spends more CPU")]:
        out = run_cells("04", ["lab04-10", "lab04-11"], ns(cpu_ratio, machine))
        printed = capsys.readouterr().out
        assert out["cpu_verdict"].status == status
        assert f"{status}: over the whole stream, online partial_fit spends more CPU" in printed
        assert words in printed, printed


def test_lab04_step_schedule_checkpoint_fails_when_the_decaying_step_keeps_up():
    from checkpoints import run_checkpoint

    from mlscale_lab.evidence import batch_means_interval

    def ns(end, before=0.0, warm=1e-4):
        return {**_lab04_ns(), "decay": {"step_warm": warm}, "const": {"step_warm": 0.01},
                "before_steps": batch_means_interval(_series(before, n=4000)),
                "end_gap": batch_means_interval(_series(end, n=1000))}

    run_checkpoint("04", "lab04-lr-check", ns(0.3))
    with pytest.raises(AssertionError, match="more than 10 points above the decaying one"):
        run_checkpoint("04", "lab04-lr-check", ns(0.05))
    with pytest.raises(AssertionError, match="hardly matters"):
        run_checkpoint("04", "lab04-lr-check", ns(0.3, before=0.15))
    with pytest.raises(AssertionError, match="tiny by the end of the warm-up"):
        run_checkpoint("04", "lab04-lr-check", ns(0.3, warm=0.005))


def test_lab04_delivery_checkpoint_fails_when_an_update_costs_a_retrain_and_not_on_a_busy_machine():
    from checkpoints import BusyMachine, run_checkpoint

    from mlscale_lab.evidence import ratio_interval

    rng = np.random.default_rng(1)
    retrain = rng.normal(0.05, 0.002, 8)

    def ns(update, machine=None):
        return {**_lab04_ns(), "ratio": ratio_interval(update, retrain), "delivery_machine":
                type("M", (), {"report": machine})(),
                "routes": [{"passed": True, "gate_s": 1.2, "train_s": 0.05, "verdict": _route_verdict()},
                           {"passed": True, "gate_s": 1.1, "train_s": 0.001, "verdict": _route_verdict()}],
                "first_gate": _route_verdict()}

    run_checkpoint("04", "lab04-47", ns(retrain * 0.013))
    with pytest.raises(AssertionError, match="at most 5 % of a full retrain"):
        run_checkpoint("04", "lab04-47", ns(retrain * 0.2))
    run_checkpoint("04", "lab04-47", ns(retrain * 0.2, BusyMachine()))  # inconclusive, says why


def _route_verdict(latency=None, accuracy="passed"):
    """The verdict lab04-44 reads from a route's gate run: its latency check's status chosen."""
    from mlscale_lab.deployment import GateRun, gate_verdict

    checks = {"test_accuracy": {"outcome": accuracy, "message": ""},
              "test_latency": {"outcome": "passed" if latency in (None, "holds") else "failed",
                               "message": ""}}
    results = {"latency": {"name": "latency", "status": latency or "holds", "reason": "ratio",
                           "verdict_reason": f"latency {latency}"},
               "accuracy": {"name": "accuracy", "status": "holds" if accuracy == "passed"
                            else "does not hold", "reason": "accuracy 0.61 < required 0.80"}}
    passed = all(c["outcome"] == "passed" for c in checks.values())
    return gate_verdict(GateRun(passed, 0 if passed else 1, checks, results=results),
                        "the gate passes the model the route made")


def test_lab04_delivery_routes_fail_when_the_gate_blocks_a_good_model_not_on_a_busy_machine(capsys):
    from checkpoints import run_checkpoint

    from mlscale_lab.evidence import ratio_interval

    rng = np.random.default_rng(1)
    retrain = rng.normal(0.05, 0.002, 8)

    def ns(full, incremental, first=None):
        return {**_lab04_ns(), "ratio": ratio_interval(retrain * 0.013, retrain),
                "delivery_machine": type("M", (), {"report": None})(),
                "routes": [{"gate_s": 1.2, "train_s": 0.05, "verdict": full},
                           {"gate_s": 1.1, "train_s": 0.001, "verdict": incremental}],
                "first_gate": _route_verdict() if first is None else first}

    run_checkpoint("04", "lab04-47", ns(_route_verdict(), _route_verdict()))
    # the gate blocks a route's good model on a budget it showed not to hold: the cell fails
    with pytest.raises(AssertionError, match="does not hold: the gate passes the model the route"):
        run_checkpoint("04", "lab04-47", ns(_route_verdict("does not hold"), _route_verdict()))
    with pytest.raises(AssertionError, match="does not hold: the gate passes the model the route"):
        run_checkpoint("04", "lab04-47", ns(_route_verdict(), _route_verdict(accuracy="failed")))
    # a busy machine: both routes blocked for a latency check that could not tell, said, not failed
    capsys.readouterr()
    busy = _route_verdict("inconclusive")
    run_checkpoint("04", "lab04-47", ns(busy, busy))
    assert capsys.readouterr().out.count("inconclusive: the gate passes the model the route made") == 2
    # the first gate could not tell: v1 served, so the incremental route updated v1, not v2, and
    # its gate is not held to the claim (the full retrain route, which starts from data, still is)
    run_checkpoint("04", "lab04-47", ns(_route_verdict(), _route_verdict(accuracy="failed"), busy))
    assert "not judged: the incremental route updated v1" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="does not hold: the gate passes the model the route"):
        run_checkpoint("04", "lab04-47", ns(_route_verdict(accuracy="failed"), _route_verdict(), busy))
