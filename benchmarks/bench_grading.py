"""Grading budgets: overhead per submission, and the speedup of two workers over one.

    python benchmarks/bench_grading.py                 # lab 00, 10 submissions
    python benchmarks/bench_grading.py --lab 02 --n 10 --repeat 3

Prints:
- overhead: seconds grading one submission takes beyond executing the same notebook headless
  with ``mlscale_lab.harness.runner.run_lab`` (fresh kernel, same cells), median of ``--repeat`` runs;
  also the grader's own time outside nbclient's execution (gradebook, nbgrader preprocessors,
  feedback HTML). Budget: <= 3 s.
- speedup: wall time of ``mlscale-lab grade`` (a fresh process, as an instructor runs it) on
  N copies of the reference solution with 1 worker over the time with 2 workers. Budget: >= 1.6x on an idle 2-core machine (noisy on a shared one).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlscale_lab.harness.grading import grade_submissions
from mlscale_lab.harness.labs import resolve_labs
from mlscale_lab.harness.runner import run_lab


def _submissions(lab: Path, root: Path, n: int) -> Path:
    for i in range(n):
        d = root / f"student{i:02d}"
        d.mkdir(parents=True)
        shutil.copyfile(lab, d / lab.name)
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", default="00", help="lab number or stem (default 00)")
    ap.add_argument("--n", type=int, default=10, help="submissions for the speedup (default 10)")
    ap.add_argument("--repeat", type=int, default=3, help="runs for the overhead median (default 3)")
    args = ap.parse_args(argv)
    (lab,) = resolve_labs([args.lab])
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        # Warm up: first imports, nbgrader's gradebook template, the OS file cache.
        grade_submissions(_submissions(lab, tmp / "warm", 1), tmp / "warm-out", progress=False)
        run_lab(lab)
        plain, graded, inside = [], [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            run = run_lab(lab)
            plain.append(time.perf_counter() - t0)
            assert run.status == "ok", run.error
            t0 = time.perf_counter()
            (r,) = grade_submissions(_submissions(lab, tmp / f"one{i}", 1), tmp / f"one{i}-out", progress=False)
            graded.append(time.perf_counter() - t0)
            inside.append(r.seconds - r.execute_seconds)
            auto = [c for c in r.cells if c.points is not None]  # written answers wait for a human
            assert r.status == "graded" and all(c.points == c.max_points for c in auto), (r.status, r.cells)
        overhead = statistics.median(g - p for g, p in zip(graded, plain, strict=True))
        print(f"lab {lab.stem}")
        print(f"execute headless (run_lab), median   {statistics.median(plain):6.2f} s")
        print(f"grade one submission, median          {statistics.median(graded):6.2f} s")
        print(f"overhead beyond executing, median     {overhead:6.2f} s   (budget <= 3 s)")
        print(f"grader time outside execution, median {statistics.median(inside):6.2f} s")

        subs = _submissions(lab, tmp / "many", args.n)
        walls = {}
        for workers in (1, 2):
            # The command an instructor runs, from a cold start, so both sides pay their imports.
            out = tmp / f"many-out-{workers}"
            cmd = [sys.executable, "-m", "mlscale_lab", "grade", str(subs), "--out", str(out),
                   "--workers", str(workers), "--json"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            walls[workers] = time.perf_counter() - t0
            assert proc.returncode == 0, proc.stderr[-2000:]
            results = json.loads(proc.stdout)
            assert len(results) == args.n and all(r["status"] == "graded" for r in results)
        print(f"{args.n} submissions, 1 worker           {walls[1]:6.2f} s")
        print(f"{args.n} submissions, 2 workers          {walls[2]:6.2f} s")
        print(f"speedup 2 workers over 1              {walls[1] / walls[2]:6.2f} x  (budget >= 1.6x, idle machine)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
