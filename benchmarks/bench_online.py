"""Lab 04's claims over several seeds (run on a quiet machine: python benchmarks/bench_online.py).

Goals (what lab 04's conclusions rest on): after a sudden drift online accuracy >= static + 5 points; online partial_fit spends more
CPU over the stream than periodic retraining (repeated, interleaved CPU time, paired interval);
an incremental update costs <= 5% of a full retrain; the reference detector, scored over many
streams, finds >= 80 % of sudden drifts, with a mean delay under 300 samples and fewer than one
false alarm per 10,000 samples (the upper ends of the intervals); the gate's latency check
passes a model against itself and blocks a calibrated candidate ~100x slower. Also the wall time
of one run of the model gate (under pytest, and with the gate file's own runner), the fixed
cost of every delivery.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from mlscale_lab.deployment import (
    DriftTriggered,
    Incremental,
    PageHinkley,
    PeriodicRetrain,
    Static,
    check_latency,
    full_retrain,
    incremental_update,
    make_stream,
    prequential,
    run_gate,
    score_detector,
    sgd_model,
    strategy_cpu,
    write_gate,
)
from mlscale_lab.evidence import batch_means_interval, interleave

SEEDS = range(5)


def main() -> int:
    ok = True
    print("seed  online-static after drift (batch means)         online/periodic CPU")
    for seed in SEEDS:
        s = make_stream("sudden", 10_000, [5_000], seed=seed)
        mk = lambda seed=seed: sgd_model(seed)  # noqa: E731
        static = prequential(s, Static(mk), warmup=1000, batch_size=100)
        online = prequential(s, Incremental(mk), warmup=1000, batch_size=100)
        gain = batch_means_interval((online.correct - static.correct)[5000:])
        cpu = strategy_cpu(s, [PeriodicRetrain(mk, every=1000, window=2000), Incremental(mk),
                               DriftTriggered(mk)], rounds=5, batch_size=100)
        ratio = cpu.ratio("online partial_fit", "periodic retrain")
        print(f"{seed:4d}  {gain!s:46}  {ratio}")
        ok &= gain.low > 0.05 and ratio.low > 1

    drifting, calm, points = [], [], []
    rng = np.random.default_rng(0)
    for i in range(40):
        at = int(rng.integers(2000, 4000))
        run = prequential(make_stream("sudden", 6000, [at], seed=100 + i), Incremental(), warmup=1000,
                          batch_size=100)
        drifting.append(1 - run.correct[1000:])
        points.append([at - 1000])
    for i in range(20):
        run = prequential(make_stream("stationary", 11_000, seed=300 + i), Incremental(), warmup=1000,
                          batch_size=100)
        calm.append(1 - run.correct[1000:])
    ph = score_detector(PageHinkley, drifting + calm, points + [[]] * 20, max_delay=1000)
    print(f"\n{ph}\n  detection rate {ph.detection_rate()}")
    ok &= (ph.detection_rate().low > 0.8 and ph.mean_delay().high < 300
           and ph.false_alarm_rate().high < 1.0)

    big = make_stream("sudden", 24_000, [8_000], seed=2)
    X, y = big.X, big.y
    prod = full_retrain(X[8000:21000], y[8000:21000])
    cost = interleave({"retrain": lambda: full_retrain(X[8000:22000], y[8000:22000]),
                       "update": lambda: incremental_update(prod, X[21000:22000], y[21000:22000])},
                      rounds=10, clock=time.process_time)
    ratio = cost.ratio("update", "retrain")
    print(f"\nincremental update over full retrain, CPU: {ratio} (goal: below 5%)")
    ok &= ratio.high < 0.05

    from sklearn.calibration import CalibratedClassifierCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = CalibratedClassifierCV(sgd_model(0), cv=5).fit(X[8000:21000], y[8000:21000])
    same = check_latency(prod, prod, X[22000:])
    slow = check_latency(calibrated, prod, X[22000:])
    print(f"latency check, the model against itself: {same.reason}\n"
          f"latency check, calibrated candidate: {slow.reason}")
    ok &= same.passed and not slow.passed and slow.status == "does not hold"

    import joblib

    with tempfile.TemporaryDirectory() as d:
        test_file = write_gate(Path(d) / "gate", X[22000:], y[22000:])
        joblib.dump(prod, Path(d) / "c.joblib")
        for runner in ("pytest", "builtin"):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                assert run_gate(test_file, Path(d) / "c.joblib", Path(d) / "c.joblib",
                                runner=runner).passed
                times.append(time.perf_counter() - t0)
            print(f"gate run ({runner}): {min(times):.2f} s best of 3 "
                  f"(median {np.median(times):.2f} s)")
    print("\nall goals met" if ok else "\nSOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
