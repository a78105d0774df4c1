"""ResourceMonitor budgets: overhead at 10 Hz, and accuracy on a 400 MB child.

Run on a quiet machine: ``.venv/bin/python benchmarks/bench_monitor.py``.

- Overhead: a CPU-bound pure-Python workload, with the monitor at 10 Hz and without it, run as
  alternating pairs in one process; goal: median (with / without) <= 1.03.
- Accuracy: a child process that allocates and touches 400 MB and holds it for 0.5 s (started
  and warmed before the monitor, so its interpreter is not part of the rise); goal: the
  reported peak rise is within 5% of 400 MB.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from mlscale_lab.constraints import ResourceMonitor

MB = 1024**2

CHILD = r"""
import sys, time
import numpy as np
print("ready", flush=True)
sys.stdin.readline()
block = np.ones(400 * 1024**2 // 8)
time.sleep(0.5)
print("done", flush=True)
"""


def workload(n: int = 1_500_000) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def sampler_cost(seconds: float = 3.0) -> float:
    """CPU seconds the sampling thread itself uses per wall second (a load-independent figure)."""
    t_cpu = time.process_time()
    with ResourceMonitor(interval=0.1):
        time.sleep(seconds)
    return (time.process_time() - t_cpu) / seconds


def overhead(pairs: int = 15) -> list[float]:
    workload()  # warm
    ratios = []
    for i in range(pairs):
        runs = {}
        # Alternate which goes first, so drift in machine load does not favour one side.
        order = ("with", "without") if i % 2 == 0 else ("without", "with")
        for which in order:
            t0 = time.perf_counter()
            if which == "with":
                with ResourceMonitor(interval=0.1):
                    workload()
            else:
                workload()
            runs[which] = time.perf_counter() - t0
        ratios.append(runs["with"] / runs["without"])
    return ratios


def accuracy(trials: int = 3) -> list[float]:
    rises = []
    for _ in range(trials):
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        with ResourceMonitor(interval=0.1) as mon:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            proc.stdout.readline()
        proc.wait()
        rises.append(mon.summary().peak_rise_bytes / MB)
    return rises


def main() -> int:
    ratios = overhead()
    med = statistics.median(ratios)
    print(
        f"overhead: {len(ratios)} pairs, median ratio with/without monitor at 10 Hz = {med:.4f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}); goal <= 1.03: {'OK' if med <= 1.03 else 'MISSED'}"
    )
    cost = sampler_cost()
    print(
        f"sampler cost: {cost:.2%} of one CPU at 10 Hz (an idle main thread, so all of it is the sampler)"
    )
    rises = accuracy()
    worst = max(abs(r - 400) / 400 for r in rises)
    print(
        f"accuracy: peak rise for a 400 MB child = {', '.join(f'{r:.1f}' for r in rises)} MB; "
        f"worst error {worst:.1%}; goal <= 5%: {'OK' if worst <= 0.05 else 'MISSED'}"
    )
    return 0 if med <= 1.03 and worst <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
