"""Lab 04's goals, over several seeds (run on a quiet machine: python benchmarks/bench_online.py).

Goals (issue 6): after a sudden drift online accuracy >= static + 5 points; an incremental update
costs <= 5% of a full retrain (CPU seconds); the reference detector finds a sudden drift within
300 samples and raises no alarm on a stationary stream of 10,000 samples. Also the wall time of
one run of the model gate (under pytest, and with the gate file's own runner), the fixed cost
of every delivery.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mlscale_lab.deployment import (
    DriftTriggered,
    Incremental,
    PageHinkley,
    Static,
    cpu_seconds_per_call,
    detect_drifts,
    full_retrain,
    incremental_update,
    make_stream,
    prequential,
    run_gate,
    score_detections,
    sgd_model,
    write_gate,
)

SEEDS = range(5)


def main() -> int:
    ok = True
    print("seed  static_after  online_after  detector_after  delay  stationary_alarms")
    for seed in SEEDS:
        s = make_stream("sudden", 10_000, [5_000], seed=seed)
        mk = lambda seed=seed: sgd_model(seed)  # noqa: E731
        static = prequential(s, Static(mk), warmup=1000, batch_size=100)
        online = prequential(s, Incremental(mk), warmup=1000, batch_size=100)
        det = prequential(s, DriftTriggered(mk), warmup=1000, batch_size=100)
        delay = score_detections(det.alarms, s.drift_points, max_delay=1000).delays[0]
        calm = make_stream("stationary", 11_000, seed=100 + seed)
        calm_alarms = prequential(calm, DriftTriggered(mk), warmup=1000, batch_size=100).alarms
        sa, oa, da = static.accuracy(5000), online.accuracy(5000), det.accuracy(5000)
        print(
            f"{seed:4d}  {sa:12.3f}  {oa:12.3f}  {da:14.3f}  {delay!s:>5}  {len(calm_alarms):17d}"
        )
        ok &= oa >= sa + 0.05 and delay is not None and delay <= 300 and not calm_alarms

    rng = np.random.default_rng(0)
    delays, false_runs = [], 0
    for _ in range(20):
        e = np.r_[rng.random(5000) < 0.1, rng.random(2000) < 0.5].astype(float)
        delays.append(
            score_detections(detect_drifts(PageHinkley(), e), [5000], max_delay=2000).delays[0]
        )
        false_runs += bool(detect_drifts(PageHinkley(), (rng.random(10_000) < 0.2).astype(float)))
    print(
        f"\nPage-Hinkley on Bernoulli errors 10% -> 50%: delay median {np.median(delays):.0f}, "
        f"max {max(delays)}; stationary 20% error, 10,000 samples: alarms in {false_runs}/20 runs"
    )
    ok &= max(delays) <= 300 and false_runs == 0

    big = make_stream("sudden", 24_000, [8_000], seed=2)
    X, y = big.X, big.y
    prod = full_retrain(X[8000:21000], y[8000:21000])
    retrain = cpu_seconds_per_call(
        lambda: full_retrain(X[8000:22000], y[8000:22000]), min_seconds=2.0
    )
    update = cpu_seconds_per_call(
        lambda: incremental_update(prod, X[21000:22000], y[21000:22000]), min_seconds=2.0
    )
    print(
        f"\nfull retrain {retrain * 1000:.1f} CPU ms, incremental update {update * 1000:.2f} CPU ms, "
        f"ratio {update / retrain:.2%} (goal <= 5%)"
    )
    ok &= update / retrain <= 0.05

    import joblib

    with tempfile.TemporaryDirectory() as d:
        test_file = write_gate(Path(d) / "gate", X[22000:], y[22000:])
        joblib.dump(prod, Path(d) / "c.joblib")
        for runner in ("pytest", "builtin"):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                assert run_gate(test_file, Path(d) / "c.joblib", runner=runner).passed
                times.append(time.perf_counter() - t0)
            print(f"gate run ({runner}): {min(times):.2f} s best of 3 "
                  f"(median {np.median(times):.2f} s)")
    print("\nall goals met" if ok else "\nSOME GOALS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
