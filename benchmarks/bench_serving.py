"""Benchmark for lab 07's performance goals; prints the figures. Run on a quiet machine:

    .venv/bin/python benchmarks/bench_serving.py               # about 1 minute
    .venv/bin/python benchmarks/bench_serving.py --seconds 10  # longer runs, tighter figures

Goals (issue 17):
- the open-loop generator sustains its target rate within 2% up to the server's saturation
  on 2 cores (the rate it sent against the rate its Poisson schedule asked for, and against
  the nominal rate);
- the measured p50 at low load is within 20% of M/M/c's with the measured service time;
- cold start (process start to first answer) of the fp32, int8 and ONNX artifacts, and the
  memory each worker adds.
The lab's own budgets (``mlscale-lab run 07`` <= 90 s and 1.5 GB; ``--binder`` with 25%
headroom) are measured with the CLI itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from mlscale_lab.scaling import mmc_mean_wait
from mlscale_lab.scaling import serving as sv


def make_model(seed: int = 0):
    """The lab's model shape (64 -> 2048 x 3 -> 10); weights random: serving cost is the same."""
    import torch

    torch.manual_seed(seed)
    w = 2048
    return torch.nn.Sequential(torch.nn.Linear(64, w), torch.nn.ReLU(), torch.nn.Linear(w, w),
                               torch.nn.ReLU(), torch.nn.Linear(w, w), torch.nn.ReLU(),
                               torch.nn.Linear(w, 10))


def bench_generator_and_mmc(path, workers: int, seconds: float, rows) -> None:
    with sv.serve(path, workers=workers, n_features=64) as server:
        alone = sv.closed_loop(server, 1, rows=rows, n_requests=300)
        hot = float(alone.service_latency.mean())
        light = sv.closed_loop(server, 1, rows=rows, n_requests=100, rate=0.2 / hot)
        s = hot  # as the lab: back to back; an idle worker's request is slower (wake-up)
        print(f"{workers} worker(s): service time back to back {hot * 1000:.2f} ms, reaching an idle "
              f"worker {float(light.service_latency.mean()) * 1000:.2f} ms")
        saturation = sv.closed_loop(server, 4 * workers, rows=rows, duration=seconds).throughput
        print(f"{workers} worker(s): service time {s * 1000:.2f} ms, saturation {saturation:.0f}/s "
              f"(c/s = {workers / s:.0f}/s)")
        for i, f in enumerate((0.1, 0.2, 0.5, 0.8, 0.9, 1.0)):
            rate = f * saturation
            r = sv.open_loop(server, rate, rows=rows, duration=seconds, seed=i)
            asked = (r.n_requests - 1) / (r.scheduled[-1] - r.scheduled[0])
            err = r.sent_rate / asked - 1
            line = (f"  {f:4.0%} of saturation: nominal {rate:6.0f}/s, schedule {asked:6.0f}/s, sent "
                    f"{r.sent_rate:6.0f}/s ({err:+.2%}; goal within 2%: {'PASS' if abs(err) <= 0.02 else 'FAIL'}), "
                    f"vs nominal {r.sent_rate / rate - 1:+.2%}; p99 send lag "
                    f"{np.percentile(r.sent - r.scheduled, 99) * 1000:.1f} ms; p50 {r.p50:.2f} p99 {r.p99:.1f} ms")
            if f <= 0.2:
                pred = sv.mmc_latency_quantile(workers, rate, s, 0.5) * 1000
                gap = r.p50 / pred - 1
                mean, pred_mean = r.latency.mean() * 1000, (mmc_mean_wait(workers, rate, s) + s) * 1000
                line += (f"\n        p50 {r.p50:.2f} ms vs M/M/c {pred:.2f} ms ({gap:+.1%}; goal within 20%: "
                         f"{'PASS' if abs(gap) <= 0.2 else 'FAIL'}; M/M/c's exponential median is 0.69 s); "
                         f"mean {mean:.2f} vs {pred_mean:.2f} ms ({mean / pred_mean - 1:+.1%})")
            print(line)


def bench_cold_start(paths: dict) -> None:
    for name, path in paths.items():
        starts, mem = [], []
        for _ in range(3):
            with sv.serve(path, workers=1, n_features=64) as server:
                starts.append(server.ready_at - server.started_at)
                w = server.memory()["workers"][0]
                mem.append((w["uss"] or w["rss"]) / 2**20)
        print(f"cold start {name:5s}: median {np.median(starts):.2f} s (runs {', '.join(f'{x:.2f}' for x in starts)}); "
              f"{np.median(mem):.0f} MB unique per worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of load per point")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = np.random.default_rng(0).random((200, 64), dtype=np.float32)
    paths = sv.export_artifacts(make_model(), 64, tempfile.mkdtemp(prefix="bench-serving-"))
    for workers in args.workers:
        bench_generator_and_mmc(paths["fp32"], workers, args.seconds, rows)
    bench_cold_start(paths)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
