import numpy as np
import pytest

from mlscale_lab.deployment import make_stream


def _agreement_with_concept(stream, lo, hi, concept):
    """Share of labels in [lo, hi) equal to what concept `concept` of a fresh fit would give."""
    ids = stream.concept_id[lo:hi]
    return float(np.mean(ids == concept))


def test_sudden_drift_switches_concept_exactly_at_the_point():
    s = make_stream("sudden", 3000, [1000, 2000], seed=3)
    assert s.drift_points == (1000, 2000)
    assert set(s.concept_id[:1000]) == {0}
    assert set(s.concept_id[1000:2000]) == {1}
    assert set(s.concept_id[2000:]) == {2}
    assert s.segments() == [(0, 1000), (1000, 2000), (2000, 3000)]


def test_drift_changes_the_rule_a_model_learned():
    from sklearn.linear_model import LogisticRegression

    s = make_stream("sudden", 6000, [3000], seed=0, label_noise=0.0)
    model = LogisticRegression().fit(s.X[:2000], s.y[:2000])
    before = model.score(s.X[2000:3000], s.y[2000:3000])
    after = model.score(s.X[3000:], s.y[3000:])
    assert before > 0.95  # one linear concept, no noise: learnable
    assert after < before - 0.15  # the old rule no longer holds


def test_label_noise_sets_the_ceiling():
    s0 = make_stream("stationary", 20000, seed=1, label_noise=0.0)
    s1 = make_stream("stationary", 20000, seed=1, label_noise=0.2)
    assert np.mean(s0.y != s1.y) == pytest.approx(0.2, abs=0.02)


def test_gradual_drift_mixes_concepts_inside_the_window_only():
    s = make_stream("gradual", 10000, [5000], width=2000, seed=0)
    assert _agreement_with_concept(s, 0, 4000, 0) == 1.0
    assert _agreement_with_concept(s, 6000, 10000, 1) == 1.0
    early = _agreement_with_concept(s, 4000, 4500, 1)
    late = _agreement_with_concept(s, 5500, 6000, 1)
    assert 0.0 < early < 0.3 and 0.7 < late < 1.0  # the new concept's share rises across the window


def test_recurring_drift_comes_back_to_the_first_concept():
    s = make_stream("recurring", 4000, [1000, 2000, 3000], seed=0)
    assert [int(s.concept_id[i]) for i in (0, 1500, 2500, 3500)] == [0, 1, 0, 1]


def test_same_seed_same_stream_and_batches_cover_it():
    a = make_stream("sudden", 1000, seed=7)
    b = make_stream("sudden", 1000, seed=7)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    sizes = [len(yb) for _, _, yb in a.batches(300)]
    assert sizes == [300, 300, 300, 100]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"kind": "sudden", "n_samples": 1000, "drift_points": [1500]}, "drift_points"),
        ({"kind": "sudden", "n_samples": 1000, "drift_points": [0]}, "drift_points"),
        ({"kind": "sudden", "n_samples": 1000, "drift_points": [600, 400]}, "drift_points"),
        ({"kind": "stationary", "n_samples": 1000, "drift_points": [500]}, "drift_points"),
        ({"kind": "sideways"}, "kind"),
        ({"n_samples": -5}, "n_samples"),
        ({"label_noise": 0.7}, "label_noise"),
        ({"n_features": 3, "n_informative": 5}, "n_informative"),
        ({"kind": "gradual", "n_samples": 1000, "drift_points": [500], "width": 5000}, "width"),
    ],
)
def test_bad_parameters_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        make_stream(**kwargs)
