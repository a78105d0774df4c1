"""Benchmark for lab 05's performance goals; prints the figures. Run on a quiet machine:

    .venv/bin/python benchmarks/bench_scaling.py            # everything (~1-2 min)
    .venv/bin/python benchmarks/bench_scaling.py --no-dask  # simulators only

Goals (lab 05's simulators are trusted only where they match queueing theory, and its speedups
and auto-scaling claims only where these figures hold):
- central-queue mean wait within 5% of Erlang C at utilisation 0.8, and random routing within
  5% of M/M/1: the batch-means 95% interval over 3 seeds of 1e6 requests lies inside +-5%
  (a mean of five short runs passes or fails by seed luck);
- power of two choices: p99 at most half of random's at utilisation 0.9, heterogeneous replicas;
- 1e6 simulated requests in at most 5 s (per policy);
- Dask on 2 workers: at least 1.6x speedup on CPU-bound partitions;
- auto-scaling: cost at most 0.6 of static-at-peak with at most 1% SLO violations;
- lab 05's exercise 3 (tuning an auto-scaler on validation days), with ``--calibrate N``: over
  N >= 44 days of the trace family, the unseen-days test (a setting on 40 unseen days: a
  one-sided exact binomial test at 1 % on the days only one of them misses, against the first
  grid target the validation days reject) passes a setting at least as safe as the sound one in
  at least 99% of draws; its power against the one-day and average-day methods and targets one
  or two steps too far is reported; the per-day miss rate is near 1/5 (exchangeability).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mlscale_lab import scaling as sc


def bench_theory(seeds: int = 3) -> None:
    from mlscale_lab.evidence import batch_means_interval

    c, rho, s = 8, 0.8, 1.0
    lam = rho * c / s
    for policy, theory in (("central_queue", sc.mmc_mean_wait(c, lam, s)), ("random", sc.mm1_mean_wait(lam / c, s))):
        runs = [sc.simulate_balancer(policy, c, lam, s, 1_000_000, seed, warmup=0.02)
                for seed in range(seeds)]
        each = ", ".join(f"{iv.estimate:+.1%} [{iv.low:+.1%}, {iv.high:+.1%}]" for iv in
                         (r.mean_wait_interval().relative_to(theory) for r in runs))
        # the seeds' runs side by side: 20 batches each, every batch inside one run
        pooled = batch_means_interval(np.concatenate([r.waits for r in runs]),
                                      batches=20 * seeds).relative_to(theory)
        ok = pooled.low > -0.05 and pooled.high < 0.05
        print(f"{policy:14s} mean wait vs theory {theory:.3f}: per seed {each}; pooled over "
              f"{seeds} seeds {pooled.estimate:+.1%} [{pooled.low:+.1%}, {pooled.high:+.1%}]  "
              f"goal inside +-5%: {'PASS' if ok else 'FAIL'}")


def bench_tail() -> None:
    means = sc.heterogeneous_means(10, spread=0.1)
    lam = 0.9 * sum(1 / m for m in means)
    p99 = {p: sc.simulate_balancer(p, 10, lam, means, 200_000, 0).p99 for p in sc.POLICIES}
    print("p99 at utilisation 0.9, 10 heterogeneous replicas:",
          ", ".join(f"{k} {v:.2f}" for k, v in p99.items()))
    ratio = p99["power_of_two"] / p99["random"]
    print(f"power_of_two / random p99 = {ratio:.2f}  goal <=0.5: {'PASS' if ratio <= 0.5 else 'FAIL'}")


def bench_speed() -> None:
    for policy in sc.POLICIES:
        t0, c0 = time.perf_counter(), time.process_time()
        sc.simulate_balancer(policy, 10, 9.0, 1.0, 1_000_000, 0)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        # CPU seconds of this process: what the wall time would be on an idle core.
        print(f"1e6 requests, {policy:18s}: {dt:5.2f} s wall, {cpu:5.2f} s CPU  "
              f"goal <=5 s: {'PASS' if dt <= 5 else 'FAIL'}")


def bench_autoscale() -> None:
    trace = sc.make_request_trace(seed=0, spike_ramp_minutes=2)
    peak = sc.simulate_autoscaler(trace, "static_peak")
    hpa = sc.simulate_autoscaler(trace, "hpa")
    ratio = hpa.replica_seconds / peak.replica_seconds
    ok = ratio <= 0.6 and hpa.slo_violation_rate <= 0.01
    print(f"autoscale: cost {ratio:.3f} of static peak, SLO violations {hpa.slo_violation_rate:.3%}  "
          f"goal <=0.6 and <=1%: {'PASS' if ok else 'FAIL'}")


def bench_robust_target(n_days: int, draws: int = 4000, n_val: int = 4, n_unseen: int = 40) -> None:
    """Exercise 3's unseen-days comparison, replayed on random draws of validation and unseen days.

    A setting is compared with the first grid target the validation days reject, on the same
    unseen days: on the days only one of the two misses, a one-sided exact binomial test at 1 %.
    (In grading, a target alone that meets every validation day lies below that one and is not
    simulated: it has more headroom on every day.) Settings at least as safe as the sound method
    must pass in >= 99 % of draws; how often the comparison catches the one-day and average-day
    methods, and one and two steps too far, is its power.
    """
    from scipy import stats

    targets = np.round(np.arange(0.6, 0.951, 0.05), 2)
    t0, c0 = time.perf_counter(), time.process_time()
    viol = np.array([[sc.simulate_autoscaler(d, target_utilisation=float(t)).slo_violation_rate
                      for t in targets] for d in sc.request_trace_family(n_days, seed=7)])
    print(f"{n_days} days x {targets.size} targets simulated in {time.perf_counter() - t0:.0f} s "
          f"wall, {time.process_time() - c0:.0f} s CPU")
    if n_days < n_val + n_unseen:
        raise SystemExit(f"--calibrate needs at least {n_val + n_unseen} days, got {n_days}")
    rng = np.random.default_rng(0)

    def highest_ok(v):  # cost falls as the target rises: the least-cost target within the SLO
        ok = np.where(v <= 0.01)[0]
        return int(ok.max()) if ok.size else None

    def rejected(mine, ref):
        only_mine, only_ref = int(np.sum(mine & ~ref)), int(np.sum(ref & ~mine))
        if only_mine + only_ref == 0:
            return False
        return stats.binomtest(only_mine, only_mine + only_ref, 0.5,
                               alternative="greater").pvalue < 0.01

    sound_pick = lambda val: highest_ok(val.max(axis=0))  # noqa: E731
    methods = {"sound (every validation day)": sound_pick,
               "one step of headroom": lambda val: max(0, sound_pick(val) - 1),
               "one day": lambda val: highest_ok(val[0]),
               "average day": lambda val: highest_ok(val.mean(axis=0)),
               "one step too far": lambda val: min(targets.size - 1, sound_pick(val) + 1),
               "two steps too far": lambda val: min(targets.size - 1, sound_pick(val) + 2)}
    caught = dict.fromkeys(methods, 0)
    differs = dict.fromkeys(methods, 0)
    day_misses = dict.fromkeys(methods, 0)
    n = 0
    for _ in range(draws):
        idx = rng.choice(n_days, n_val + n_unseen, replace=False)
        val, unseen = viol[idx[:n_val]], viol[idx[n_val:]] > 0.01
        if sound_pick(val) is None or any(f(val) is None for f in methods.values()):
            continue
        n += 1
        reference = unseen[:, min(targets.size - 1, sound_pick(val) + 1)]  # first rejected
        for m, f in methods.items():
            j = f(val)
            day_misses[m] += int(unseen[:, j].sum())
            differs[m] += j != sound_pick(val)
            caught[m] += rejected(unseen[:, j], reference)
    for m in methods:
        print(f"  {m:30s}: misses an unseen day {day_misses[m] / (n * n_unseen):.1%} of the time; "
              f"differs from the sound pick in {differs[m] / n:.1%} of {n} draws; the unseen-days "
              f"test ({n_unseen} days) fails it in {caught[m] / n:.1%} of draws"
              + (f", {caught[m] / differs[m]:.1%} of those where it differs" if differs[m] else ""))
    safe = 1 - caught["one step of headroom"] / n
    print(f"a setting safer than the sound method passes in {safe:.1%} of draws  goal >=99%: "
          f"{'PASS' if safe >= 0.99 else 'FAIL'}")
    print(f"power: the comparison fails the one-day method in {caught['one day'] / n:.1%} of draws "
          f"and two steps too far in {caught['two steps too far'] / n:.1%} (reported, no goal: "
          "the public check on the validation days already rejects both)")


def bench_dask(rounds: int) -> None:
    import psutil

    t0 = time.perf_counter()
    model = sc.make_model(seed=0)
    with sc.local_cluster(n_workers=2, threads_per_worker=1) as (_, client):
        print(f"cluster up and model fitted in {time.perf_counter() - t0:.1f} s")
        sp = sc.measure_worker_speedup(client, model, 160_000, 8, (1, 2), rounds=rounds)
        iv = sp.speedup_interval(2)
        print(f"Dask partitioned inference: 1 worker {sp.seconds[0]:.2f} s, 2 workers {sp.seconds[1]:.2f} s "
              f"(medians of {rounds} interleaved rounds), speedup {iv}  goal >=1.6x: "
              f"{'PASS' if iv.low >= 1.6 else 'FAIL'}"
              f"  (CPUs: {psutil.cpu_count()}, load average {psutil.getloadavg()[0]:.1f})")
        over = sc.partition_overhead(client, model, 20_000, [1, 2, 8, 32, 128, 512], rounds=5,
                                      spread=True)
        print("partition overhead (20k rows, median of 5 interleaved rounds):",
              ", ".join(f"{k}: {over.median(k):.3f} s" for k in over.samples))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-dask", action="store_true", help="skip the Dask speedup (simulators only)")
    ap.add_argument("--rounds", type=int, default=8, help="Dask timings: interleaved rounds")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="replay lab 05's exercise 3 grading over N >= 44 simulated days (100: ~30 s CPU)")
    args = ap.parse_args()
    bench_theory()
    bench_tail()
    bench_speed()
    bench_autoscale()
    if args.calibrate:
        bench_robust_target(args.calibrate)
    if not args.no_dask:
        bench_dask(args.rounds)


if __name__ == "__main__":  # Dask starts worker processes: keep the guard
    main()
