"""run_limited budget: a function that allocates twice its cap fails fast and cleanly.

Run on a quiet machine: ``.venv/bin/python benchmarks/bench_run_limited.py``.
Goal: ``MemoryLimitExceeded`` within 5 s of the call, the parent's resident memory unchanged
afterwards (within 10 MB), no child left behind. Also prints the child's start-up cost.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import psutil

from mlscale_lab.constraints import MemoryLimitExceeded, run_limited, run_measured

MB = 1024**2


def allocate(n_bytes: int) -> float:
    block = np.ones(n_bytes // 8)
    time.sleep(10)
    return float(block[0])


def main(trials: int = 5) -> int:
    me = psutil.Process()
    start = run_measured(abs, -1)
    t0 = time.perf_counter()
    run_limited(abs, -1)
    print(
        f"start-up: a trivial call takes {time.perf_counter() - t0:.2f} s; child baseline "
        f"{start.baseline_rss_bytes / MB:.0f} MB"
    )
    ok = True
    for cap_mb in (200, 400):
        for _ in range(trials):
            rss0 = me.memory_info().rss
            t0 = time.perf_counter()
            try:
                run_limited(allocate, 2 * cap_mb * MB, memory_bytes=cap_mb * MB)
            except MemoryLimitExceeded as exc:
                seconds = time.perf_counter() - t0
                delta = (me.memory_info().rss - rss0) / MB
                left = me.children()
                good = seconds < 5 and abs(delta) < 10 and not left
                ok &= good
                print(
                    f"cap {cap_mb} MB: caught in {seconds:.2f} s, reached {exc.reached / MB:.0f} MB, "
                    f"parent RSS change {delta:+.1f} MB, children left {len(left)}: "
                    f"{'OK' if good else 'MISSED'}"
                )
            else:
                ok = False
                print(f"cap {cap_mb} MB: NOT caught")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
