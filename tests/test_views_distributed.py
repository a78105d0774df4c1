"""views.distributed draws what it is given: every arm, every interval, every stage's work."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from mlscale_lab.evidence import Interval  # noqa: E402
from mlscale_lab.views import distributed as views  # noqa: E402


def _iv(x):
    return Interval(x, 0.9 * x, 1.1 * x, 0.95, "test", 10)


def test_step_split_draws_each_arm_and_each_part():
    fig = views.plot_step_split({"1 process": _iv(0.04), "2 processes, DDP": _iv(0.025)},
                                {"compute": 0.02, "waiting": 0.002, "all-reduce": 0.003})
    ax = fig.axes[0]
    assert len(ax.patches) == 2 + 3
    assert [t.get_text() for t in ax.get_yticklabels()][-1] == "no-overlap step, in parts"


def test_allreduce_marks_the_held_out_size_and_predicts_per_worker_count():
    sizes = [1e3, 1e5, 1e7]
    fig = views.plot_allreduce(sizes, [1e-4, 2e-4, 1e-2], [_iv(1e-4), _iv(2e-4), _iv(1e-2)],
                               lambda m: 1e-4 + np.asarray(m) / 1e9, held_out=1e7,
                               workers=[2, 4], predictions=[_iv(1e-3), _iv(2e-3)], gradient_bytes=4e6)
    left, right = fig.axes
    assert "held out (not fitted)" in [t.get_text() for t in left.get_legend().get_texts()]
    assert len(right.containers) == 2


def test_pipeline_timeline_draws_every_compute_interval():
    step = [[("F", 0, 0.0, 0.01), ("F", 1, 0.01, 0.02), ("B", 0, 0.05, 0.07), ("B", 1, 0.07, 0.09)],
            [("F", 0, 0.012, 0.022), ("F", 1, 0.022, 0.032), ("B", 0, 0.032, 0.052), ("B", 1, 0.052, 0.072)]]
    fig = views.plot_pipeline(step, [1, 2], [_iv(0.5), _iv(0.4)], [0.5, 1 / 3])
    assert len(fig.axes[0].patches) == 8 and len(fig.axes[1].containers) == 2


def test_elastic_shows_both_attempts_the_kill_and_the_restart():
    events = [{"kind": "step", "attempt": 0, "rank": 0, "step": s, "t": 100 + s * 0.1} for s in range(4)]
    events += [{"kind": "checkpoint", "attempt": 0, "rank": 0, "step": 2, "t": 100.15},
               {"kind": "kill", "attempt": 0, "rank": 1, "step": 4, "t": 100.4}]
    events += [{"kind": "step", "attempt": 1, "rank": 0, "step": s, "t": 103 + s * 0.1} for s in range(2, 6)]
    fig = views.plot_elastic(events, checkpoint_every=2)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "attempt 1" in labels and "attempt 2" in labels and any("restart" in x for x in labels)


def test_buckets_and_scaling_draw_their_points():
    fig = views.plot_buckets([0.25, 25], [_iv(0.05), _iv(0.06)], [7, 1])
    assert len(fig.axes[0].containers) == 2
    fig = views.plot_scaling([1, 2, 4], [1, 1.9, 3.2], [1, 0.98, 0.95], measured=(2, _iv(1.7)))
    assert len(fig.axes[0].lines) >= 3
