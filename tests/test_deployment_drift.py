import numpy as np
import pytest

from mlscale_lab.deployment import (
    Adwin,
    PageHinkley,
    detect_drifts,
    page_hinkley_trace,
    score_detections,
    score_detector,
)


def _errors(rng, rates_and_lengths):
    return np.concatenate([rng.random(n) < p for p, n in rates_and_lengths]).astype(float)


@pytest.mark.parametrize("seed", range(5))
def test_sudden_jump_in_error_is_found_within_300_samples(seed):
    rng = np.random.default_rng(seed)
    errors = _errors(rng, [(0.1, 5000), (0.5, 2000)])
    report = score_detections(detect_drifts(PageHinkley(), errors), [5000], max_delay=300)
    assert report.detected_all, report
    assert report.false_alarms == 0, report


@pytest.mark.parametrize("seed", range(3))
def test_no_alarm_on_a_stationary_stream_of_10000(seed):
    rng = np.random.default_rng(100 + seed)
    for p in (0.05, 0.15, 0.3):
        assert detect_drifts(PageHinkley(), _errors(rng, [(p, 10_000)])) == []


def test_a_drop_in_error_is_not_an_alarm():
    rng = np.random.default_rng(0)
    assert detect_drifts(PageHinkley(), _errors(rng, [(0.5, 2000), (0.1, 5000)])) == []


def test_higher_threshold_means_later_detection():
    rng = np.random.default_rng(1)
    errors = _errors(rng, [(0.1, 3000), (0.4, 3000)])
    fast = detect_drifts(PageHinkley(threshold=10), errors)
    slow = detect_drifts(PageHinkley(threshold=80), errors)
    first = [next(a for a in alarms if a >= 3000) for alarms in (fast, slow)]
    assert first[0] < first[1]


def test_detector_resets_after_an_alarm_and_finds_the_next_drift():
    rng = np.random.default_rng(2)
    errors = _errors(rng, [(0.1, 3000), (0.5, 100), (0.1, 3000), (0.6, 1000)])
    alarms = detect_drifts(PageHinkley(), errors)
    report = score_detections(alarms, [3000, 6100], max_delay=300)
    assert report.detected_all, report


def test_score_detections_counts_misses_and_false_alarms():
    r = score_detections([50, 1100, 1150, 9000], [1000, 5000], max_delay=300)
    assert r.delays == (100, None)
    assert r.false_alarms == 3
    assert not r.detected_all


def test_score_detector_pools_delays_misses_and_false_alarms_over_streams():
    rng = np.random.default_rng(40)
    drifting = [_errors(rng, [(0.1, 3000), (0.5, 1000)]) for _ in range(10)]
    calm = [_errors(rng, [(0.2, 10_000)]) for _ in range(10)]
    points = [[3000]] * 10 + [()] * 10
    ph = score_detector(PageHinkley, drifting + calm, points, max_delay=500)
    assert (ph.streams, ph.drifts, ph.detected) == (20, 10, 10)
    one = [score_detections(detect_drifts(PageHinkley(), e), [3000], max_delay=500).delays[0]
           for e in drifting]
    assert ph.delays == tuple(one) and ph.mean_delay().contains(float(np.mean(one)))
    assert ph.monitored == 10 * (4000 - 500) + 10 * 10_000
    # no alarm in 135,000 samples bounds the rate below 3.7 in 135,000 (exact, two-sided 95 %)
    assert ph.false_alarms == 0 and 0.2 < ph.false_alarm_rate().high < 0.3
    assert ph.detection_rate().low > 0.65 and "10 of 10 drifts" in str(ph)
    # a detector tuned to alarm on noise: many false alarms, and the interval says how many
    jumpy = score_detector(lambda: PageHinkley(threshold=3, delta=0.0), drifting + calm, points,
                           max_delay=500, name="jumpy")
    assert jumpy.name == "jumpy" and jumpy.false_alarm_rate().low > 1.0
    # a detector that never alarms misses every drift
    deaf = score_detector(lambda: PageHinkley(threshold=1e9), drifting, [[3000]] * 10, max_delay=500)
    assert deaf.detected == 0 and deaf.detection_rate().high < 0.31
    with pytest.raises(ValueError, match="one list of drift points per stream"):
        score_detector(PageHinkley, drifting, [[3000]], max_delay=500)
    with pytest.raises(TypeError, match="fresh detector"):
        score_detector(PageHinkley(), drifting, [[3000]] * 10, max_delay=500)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"threshold": -1}, "threshold"),
        ({"threshold": 0}, "threshold"),
        ({"delta": -0.1}, "delta"),
        ({"alpha": 1.5}, "alpha"),
        ({"min_instances": 0}, "min_instances"),
    ],
)
def test_bad_parameters_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PageHinkley(**kwargs)


def test_detect_drifts_refuses_an_object_without_update():
    with pytest.raises(TypeError, match="update"):
        detect_drifts(object(), [0.0, 1.0])


@pytest.mark.parametrize("seed", range(5))
def test_adwin_finds_a_sudden_jump_within_300_samples_and_shrinks_its_window(seed):
    rng = np.random.default_rng(200 + seed)
    errors = _errors(rng, [(0.1, 4000), (0.5, 2000)])
    det = Adwin()
    alarms = detect_drifts(det, errors[:4400])
    report = score_detections(alarms, [4000], max_delay=300)
    assert report.detected_all and report.false_alarms == 0, report
    # After the cut, the window holds (mostly) the new regime only.
    assert det.width < 4400 - 4000 + det.clock
    assert np.mean(det.window) > 0.3


def test_adwin_testing_fewer_splits_finds_the_same_drifts_as_testing_every_one():
    rng = np.random.default_rng(9)
    for _ in range(3):
        errors = _errors(rng, [(0.1, 5000), (0.4, 1500), (0.1, 2000)])
        every = detect_drifts(Adwin(max_splits=10**6), errors)
        strided = detect_drifts(Adwin(), errors)
        assert len(every) == len(strided)
        assert all(abs(a - b) <= 2 * Adwin().clock for a, b in zip(every, strided, strict=True))


def test_adwin_is_quiet_on_stationary_streams():
    rng = np.random.default_rng(300)
    alarms = sum(
        len(detect_drifts(Adwin(), _errors(rng, [(p, 10_000)]))) for p in (0.05, 0.15, 0.3) * 2
    )
    assert alarms <= 1


def test_adwin_smaller_delta_is_more_cautious():
    rng = np.random.default_rng(5)
    errors = _errors(rng, [(0.2, 3000), (0.35, 3000)])
    first = [
        next((a for a in detect_drifts(Adwin(delta=d), errors) if a >= 3000), 10**9)
        for d in (0.1, 1e-6)
    ]
    assert first[0] <= first[1]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"delta": 0}, "delta"),
        ({"delta": 1.5}, "delta"),
        ({"clock": 0}, "clock"),
        ({"max_window": 1}, "max_window"),
        ({"min_side": 600, "max_window": 1000}, "min_side"),
        ({"max_splits": 0}, "max_splits"),
    ],
)
def test_adwin_bad_parameters_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Adwin(**kwargs)


# -- River's protocol: update(x) returns nothing, then drift_detected says ------------------
def _jump(seed=0):
    rng = np.random.default_rng(seed)
    return _errors(rng, [(0.1, 3000), (0.5, 2000)])


@pytest.mark.parametrize("make", [PageHinkley, Adwin], ids=["PageHinkley", "Adwin"])
def test_our_detectors_follow_rivers_protocol(make):
    first = make()
    assert first.update(0.0) is None  # the alarm is an attribute, never the return value
    assert first.drift_detected is False
    det, alarms = make(), []
    for i, x in enumerate(_jump()):
        det.update(x)
        if det.drift_detected:
            alarms.append(i)
    assert alarms == detect_drifts(make(), _jump())
    assert alarms and 3000 <= alarms[0] < 3300


def _river_detectors():
    drift = pytest.importorskip("river.drift")
    return {
        "river PageHinkley": drift.PageHinkley(delta=0.03, threshold=30, alpha=1.0, mode="up"),
        "river ADWIN": drift.ADWIN(),
        "river KSWIN": drift.KSWIN(seed=0),
    }


@pytest.mark.parametrize("name", ["river PageHinkley", "river ADWIN", "river KSWIN"])
def test_detect_drifts_reads_drift_detected_from_rivers_detectors(name):
    det = _river_detectors()[name]
    alarms = detect_drifts(det, _jump())
    # River's update returns None: treating its return value as the alarm finds nothing at all.
    assert alarms, f"{name} found no drift"
    assert 3000 <= alarms[0] < 3300 and len(alarms) < 10, alarms


def test_river_and_our_page_hinkley_agree():
    det = _river_detectors()["river PageHinkley"]
    theirs = detect_drifts(det, _jump(1))
    ours = detect_drifts(PageHinkley(delta=0.03, threshold=30), _jump(1))
    assert len(theirs) == len(ours) == 1 and abs(theirs[0] - ours[0]) <= 30, (theirs, ours)


def test_detect_drifts_refuses_an_object_without_drift_detected():
    class ReturnsTheAlarm:  # the protocol River does not follow
        def update(self, x):
            return x > 0.5

    with pytest.raises(TypeError, match="drift_detected"):
        detect_drifts(ReturnsTheAlarm(), [0.0, 1.0])


def test_page_hinkley_trace_matches_the_detector():
    errors = _jump(2)
    stats, alarms = page_hinkley_trace(errors, delta=0.03, threshold=30, offset=100)
    assert stats.shape == (5100,) and np.isnan(stats[:100]).all()
    assert alarms == [100 + a for a in detect_drifts(PageHinkley(), errors)]
    assert stats[alarms[0]] > 30 >= np.nanmax(stats[: alarms[0]])


def test_validation_messages_name_the_class_parameter_and_value():
    with pytest.raises(ValueError, match=r"PageHinkley\(threshold=0\): expected a finite number > 0"):
        PageHinkley(threshold=0)
    with pytest.raises(TypeError, match=r"Adwin\(clock=2.5\): expected a whole number"):
        Adwin(clock=2.5)


# -- lab 04's detector checkpoint and exercise ---------------------------------------------------
def _scores(delays, false_alarms, monitored=170_000, drifts=20):
    from mlscale_lab.deployment import DetectorScores

    return DetectorScores("PageHinkley", 30, drifts, len(delays), tuple(delays), false_alarms,
                          monitored, 1000)


def test_lab04_detector_checkpoint_fails_on_a_slow_or_jumpy_or_deaf_detector():
    from checkpoints import run_checkpoint

    from mlscale_lab import evidence

    ns = {"checkpoint": evidence.checkpoint, "judge": evidence.judge,
          "proportion_interval": evidence.proportion_interval}
    good = [90 + 7 * (i % 5) for i in range(20)]
    run_checkpoint("04", "lab04-20", {**ns, "ph_scores": _scores(good, 0)})
    run_checkpoint("04", "lab04-20", {**ns, "ph_scores": _scores(good[:18], 0)})  # two missed: shown
    with pytest.raises(AssertionError, match="mean detection delay is under 300"):
        run_checkpoint("04", "lab04-20", {**ns, "ph_scores": _scores([d + 400 for d in good], 0)})
    with pytest.raises(AssertionError, match="fewer than 1 false alarm per 10,000"):
        run_checkpoint("04", "lab04-20", {**ns, "ph_scores": _scores(good, 60)})
    with pytest.raises(AssertionError, match="finds more than two thirds"):
        run_checkpoint("04", "lab04-20", {**ns, "ph_scores": _scores(good[:8], 0)})


def test_lab04_detection_rate_bar_is_one_twenty_streams_show_for_a_sound_detector():
    """The reference detector found 199 of 200 drifts on the lab's kind of streams (95 % CI 0.972
    to 1; measured when the bar was set). A detector that finds 97 % of drifts shows lab04-20's
    bar of two thirds on 20 streams in about 98 % of draws (up to two misses); a bar of 80 %
    only when all 20 are found, in 54 % of draws: the edge of what 20 streams can show."""
    from checkpoints import cell_source
    from scipy.stats import binom

    from mlscale_lab.evidence import proportion_interval

    source = cell_source("04", "lab04-20")
    assert "RATE_BAR = 2 / 3" in source and "above=RATE_BAR" in source
    setup = cell_source("04", "lab04-2")
    k = int(next(ln for ln in setup.splitlines() if ln.startswith("K_DRIFT")).split("=")[1].split(",")[0])

    def shown(bar, p=0.97):  # chance that k streams show "rate above bar" for a detector finding p
        return sum(binom.pmf(found, k, p) for found in range(k + 1)
                   if proportion_interval(found, k).low > bar)

    assert shown(2 / 3) >= 0.97, shown(2 / 3)
    assert shown(0.8) < 0.6  # why the bar is not 80 % with these streams


@pytest.mark.slow
def test_lab04_page_hinkley_exercise_passes_a_correct_detector_on_the_streams_a_grader_draws():
    """The hidden tests draw their streams from the grading seed: the reference must pass them
    all (it passed 2,000 of 2,000 draws when the bounds were set)."""
    from checkpoints import cell_source

    from mlscale_lab.deployment import Adwin
    from mlscale_lab.exercises import reaches

    ns = {"np": np, "PageHinkley": PageHinkley, "Adwin": Adwin, "detect_drifts": detect_drifts,
          "page_hinkley_trace": page_hinkley_trace, "reaches": reaches}
    exec(cell_source("04", "lab04-page-hinkley-25"), ns)  # the reference answer
    tests = compile(cell_source("04", "lab04-page-hinkley-tests-26"), "<tests>", "exec")
    for seed in range(100):
        exec(tests, {**ns, "GRADING_SEED": 5000 + seed})
