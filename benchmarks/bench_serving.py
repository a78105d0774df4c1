"""Benchmark for lab 07's performance goals; prints the figures. Run on a quiet machine:

    /work/bin/quiet .venv/bin/python benchmarks/bench_serving.py              # about a minute
    .venv/bin/python benchmarks/bench_serving.py --requests 3000 --rhos 0.3 0.5 0.7 0.8 0.9

Goals:
- the load generator, pinned to a CPU of its own, keeps its schedule: under 2 % of sends more
  than 5 ms late at every load point;
- the mean response time at rho 0.3-0.7 lies within 20 % of M/G/1 (Allen-Cunneen on the
  measured occupancy, plus the client's measured delay), and within 10 % of the FCFS replay
  of its own trace;
- cold start (process start to first answer) of the fp32, int8 and ONNX artifacts, and the
  memory each worker adds.
The lab's own budgets (``mlscale-lab run 07`` <= 90 s and 1.5 GB; ``--binder`` with 25 %
headroom) are measured with the CLI itself.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

from mlscale_lab.evidence import MachineCheck, machine_cpus
from mlscale_lab.queueing import relaxation_time
from mlscale_lab.scaling import serving as sv


def make_model(seed: int = 0):
    """The lab's model shape (64 -> 2048 x 3 -> 10); weights random: serving cost is the same."""
    import torch

    torch.manual_seed(seed)
    w = 2048
    return torch.nn.Sequential(torch.nn.Linear(64, w), torch.nn.ReLU(), torch.nn.Linear(w, w),
                               torch.nn.ReLU(), torch.nn.Linear(w, w), torch.nn.ReLU(),
                               torch.nn.Linear(w, 10))


def bench_load_points(path, rows, rhos, requests: int, relaxations: float) -> None:
    split = sv.cpu_split(machine_cpus())
    gen, srv = split if split else (None, None)
    print(f"generator CPUs {gen}, server CPUs {srv} ({sv.AFFINITY or 'no'} affinity)")
    with sv.serve(path, workers=1, n_features=64, cpus=srv) as server:
        with MachineCheck() as mc:
            profile = sv.measure_service(server, rows, cpus=gen)
        print(f"{profile}; machine {'trusted' if mc.report.trusted else mc.report.reasons}")
        for i, rho in enumerate(rhos):
            with MachineCheck() as mc:
                p = sv.measure_load_point(server, rho, profile, rows=rows, requests=requests, repeats=3,
                                          relaxations=relaxations, seed=10 * i, cpus=gen, check=mc)
            m, err = p.measured(), p.error()
            print(f"rho {rho:.2f} (realised {p.realised_rho:.2f}, tau {relaxation_time(1, p.rate, profile.mean_s) * 1000:.0f} ms, "
                  f"warm-up {p.warmup_s:.2f} s, n {m.n}): measured {m.estimate * 1000:.2f} ms "
                  f"[{m.low * 1000:.2f}, {m.high * 1000:.2f}], M/G/1 {p.predicted() * 1000:.2f} "
                  f"(error {err.estimate:+.1%} [{err.low:+.1%}, {err.high:+.1%}]; goal within 20 %: "
                  f"{'PASS' if abs(err.estimate) <= 0.2 else 'FAIL'}), M/M/1 {p.predicted(exponential=True) * 1000:.2f}, "
                  f"replay {p.replayed() * 1000:.2f} ({m.estimate / p.replayed() - 1:+.1%}); late sends "
                  f"{p.late_share:.1%} (goal < 2 %: {'PASS' if p.late_share < 0.02 else 'FAIL'}); machine "
                  f"{'trusted' if mc.report.trusted else mc.report.reasons}")


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
    parser.add_argument("--rhos", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--requests", type=int, default=1200, help="requests measured per load point")
    parser.add_argument("--relaxations", type=float, default=15.0)
    parser.add_argument("--no-cold-start", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = np.random.default_rng(0).random((200, 64), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="mlscale-bench-serving-") as work:
        paths = sv.export_artifacts(make_model(), 64, work)
        bench_load_points(paths["fp32"], rows, args.rhos, args.requests, args.relaxations)
        if not args.no_cold_start:
            bench_cold_start(paths)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
