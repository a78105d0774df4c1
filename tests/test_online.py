import numpy as np
import pytest

from mlscale_lab.deployment._drift import PageHinkley, detect_drifts
from mlscale_lab.deployment._online import (
    DriftTriggered,
    Incremental,
    PeriodicRetrain,
    PrequentialResult,
    Static,
    cpu_seconds_per_call,
    full_retrain,
    incremental_update,
    prequential,
    results_table,
    sgd_model,
)
from mlscale_lab.deployment._streams import make_stream


@pytest.fixture(scope="module")
def sudden():
    return make_stream("sudden", 8000, [4000], seed=0)


@pytest.fixture(scope="module")
def runs(sudden):
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
    # Learning every batch costs more than never learning.
    cpu = {r["strategy"]: r["cpu_seconds"] for r in rows}
    assert cpu["online partial_fit"] > cpu["static"]


def test_incremental_update_leaves_production_untouched_and_costs_a_fraction_of_a_retrain():
    s = make_stream("sudden", 16000, [2000], seed=4)
    X, y = s.X, s.y
    prod = full_retrain(X[2000:14000], y[2000:14000])
    coef = prod.coef_.copy()
    upd = incremental_update(prod, X[14000:15000], y[14000:15000])
    np.testing.assert_array_equal(prod.coef_, coef)
    assert not np.array_equal(upd.coef_, coef)
    assert upd.score(X[15000:], y[15000:]) > 0.85
    retrain = cpu_seconds_per_call(
        lambda: full_retrain(X[2000:15000], y[2000:15000]), min_seconds=0.3
    )
    update = cpu_seconds_per_call(
        lambda: incremental_update(prod, X[14000:15000], y[14000:15000]), min_seconds=0.3
    )
    # The goal is 5%; a generous margin keeps this test stable on a busy machine.
    assert update < 0.15 * retrain, (update, retrain)


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
    from mlscale_lab.views.online import (
        page_hinkley_trace,
        plot_accuracy_vs_compute,
        plot_prequential,
    )

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
    from mlscale_lab.deployment._drift import Adwin

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
