"""Grading budgets: overhead per submission, speedup of two workers against the machine's own
ceiling, a class of 200, a rerun.

    python benchmarks/bench_grading.py                       # lab 00, everything below
    python benchmarks/bench_grading.py --n 20 --class-size 0 # skip the class of 200

Prints, with the machine's load average before each part (the budgets hold on a quiet machine):
- overhead, one submission graded alone: seconds grading a class of one takes beyond executing
  the same notebook headless with ``mlscale_lab.harness.runner.run_lab`` (fresh kernel, same
  cells), median of ``--repeat`` runs. It includes the class's own start (the zygotes' imports,
  the sandbox holders), which a class pays once.
- ceiling: the raw two-process speedup of this machine: two pure-Python processes, each doing
  the same loop, against one doing it alone (``2 * t_one / t_two``, median of ``--repeat``
  interleaved rounds). Two cores that share a memory bus, a turbo budget or a hypervisor give
  less than 2.
- speedup: wall time of ``mlscale-lab grade`` (a fresh process, as an instructor runs it) on N
  and 2N copies of the reference solution with 1 worker and with 2, and its share of the
  ceiling: the whole command's on N (its start, paid once, included), and the workers' own,
  the time the N further submissions add with 1 worker over the time they add with 2.
  Medians of ``--repeat`` interleaved rounds. The workers' own is an upper estimate (2 workers'
  start can run past the first N submissions); the budget is read on the class below.
- a submission in a class: what each further submission adds on 1 worker (the speedup's
  runs), beyond the time its cells take (busy to idle of each cell, from run_lab's executed
  notebook: executing, with no kernel start), and beyond run_lab's whole run. Budget: the
  first <= 0.3 s.
- class: ``mlscale-lab grade --workers W`` (W = the CPU count) on ``--class-size`` copies
  and on 1 worker (``--no-class-speedup`` skips it): the whole command's speedup there, its start
  included, is the speedup's budget: >= 0.9 of the ceiling. Budget: 200 lab-00 submissions on 2
  cores in <= 60 s.
- rerun: the same command again with nothing new (every result kept). Budget: <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir
from mlscale_lab.harness.grading import grade_submissions
from mlscale_lab.harness.labs import resolve_labs
from mlscale_lab.harness.runner import run_lab


def _submissions(lab: Path, root: Path, n: int) -> Path:
    for i in range(n):
        d = root / f"student{i:03d}"
        d.mkdir(parents=True)
        shutil.copyfile(lab, d / lab.name)
    return root


def _cells_seconds(executed: Path) -> float:
    """Seconds the kernel spent running the cells of an executed notebook (busy to idle of
    each, as nbclient records them): executing, without the kernel's start."""
    from datetime import datetime

    import nbformat

    def at(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    total = 0.0
    for cell in nbformat.read(str(executed), as_version=4).cells:
        t = cell.metadata.get("execution", {})
        if "iopub.status.busy" in t and "iopub.status.idle" in t:
            total += at(t["iopub.status.idle"]) - at(t["iopub.status.busy"])
    return total


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _busy_cpus() -> float:
    """CPU seconds the whole machine has been busy so far (every process, psutil's count)."""
    import psutil

    t = psutil.cpu_times()
    # Linux counts guest time inside user time too
    return sum(t) - t.idle - sum(getattr(t, f, 0.0) for f in ("iowait", "guest", "guest_nice"))


#: CPUs the machine kept busy on average during each ``_grade_cli`` run, by (workers, n).
BUSY: dict = {}


def _grade_cli(subs: Path, out: Path, workers: int, n: int) -> float:
    """Wall seconds of ``mlscale-lab grade`` from a cold start; checks every result. The CPUs
    the machine kept busy meanwhile go to ``BUSY``: a worker's kernel, replay and sandboxes run
    beside it, so one worker keeps more than one CPU busy."""
    cmd = [sys.executable, "-m", "mlscale_lab", "grade", str(subs), "--out", str(out),
           "--workers", str(workers), "--json"]
    busy0, t0 = _busy_cpus(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    BUSY[workers, n] = (_busy_cpus() - busy0) / wall
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert len(results) == n and all(r["status"] == "graded" for r in results)
    return wall


#: The ceiling's work: a pure-Python loop of about a second on this machine.
_SPIN = "s = 0\nfor i in range(25_000_000):\n    s += i & 7\n"


def _spin(copies: int) -> float:
    """Wall seconds of ``copies`` pure-Python processes running the same loop side by side."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-S", "-c", _SPIN]) for _ in range(copies)]
    for p in procs:
        assert p.wait() == 0
    return time.perf_counter() - t0


def two_process_ceiling(rounds: int) -> float:
    """The machine's raw speedup of two processes over one (median of interleaved rounds)."""
    _spin(1)  # warm: the interpreter's files in the page cache
    ratios = []
    for _ in range(rounds):
        one, two = _spin(1), _spin(2)
        ratios.append(2 * one / two)
    return statistics.median(ratios)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", default="00", help="lab number or stem (default 00)")
    ap.add_argument("--n", type=int, default=20, help="submissions for the speedup (default 20)")
    ap.add_argument("--repeat", type=int, default=3, help="runs for the overhead median (default 3)")
    ap.add_argument("--class-size", type=int, default=200, help="submissions in the class run (0: skip)")
    ap.add_argument("--no-class-speedup", dest="class_speedup", action="store_false",
                    help="grade the class on W workers only, not on 1 worker too (saves about 80 s)")
    args = ap.parse_args(argv)
    (lab,) = resolve_labs([args.lab])
    tmp = owned_tempdir("bench-grading")
    try:
        print(f"lab {lab.stem}; {os.cpu_count()} CPUs; {_load()}")
        # Warm up: first imports, nbgrader's gradebook template, the OS file cache.
        grade_submissions(_submissions(lab, tmp / "warm", 1), tmp / "warm-out", progress=False)
        run_lab(lab)
        plain, graded, cells = [], [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            run = run_lab(lab, executed_dir=tmp / f"executed{i}")
            plain.append(time.perf_counter() - t0)
            assert run.status == "ok", run.error
            cells.append(_cells_seconds(tmp / f"executed{i}" / lab.name))
            t0 = time.perf_counter()
            (r,) = grade_submissions(_submissions(lab, tmp / f"one{i}", 1), tmp / f"one{i}-out", progress=False)
            graded.append(time.perf_counter() - t0)
            auto = [c for c in r.cells if c.points is not None]  # written answers wait for a human
            assert r.status == "graded" and all(c.points == c.max_points for c in auto), (r.status, r.cells)
        overhead = statistics.median(g - p for g, p in zip(graded, plain, strict=True))
        print(f"execute headless (run_lab), median   {statistics.median(plain):6.2f} s   "
              f"(its cells alone {statistics.median(cells):.2f} s)")
        print(f"grade one submission, median          {statistics.median(graded):6.2f} s")
        print(f"overhead, one submission graded alone {overhead:6.2f} s   (the class's own start included)")

        print(_load())
        ceiling = two_process_ceiling(args.repeat)
        print(f"raw two-process ceiling (pure Python) {ceiling:6.2f} x")

        sizes = (args.n, 2 * args.n)
        subs = {n: _submissions(lab, tmp / f"many{n}", n) for n in sizes}
        print(_load())
        runs: dict = {}
        for r in range(args.repeat):  # interleaved rounds, the median of each
            for w in (1, 2):
                for n in sizes:
                    runs.setdefault((w, n), []).append(_grade_cli(subs[n], tmp / f"many-out-{w}-{n}-{r}", w, n))
        walls = {key: statistics.median(v) for key, v in runs.items()}
        for (w, n), wall in walls.items():
            print(f"{n} submissions, {w} worker{'s' if w > 1 else ' '}          {wall:6.2f} s")
        whole = walls[1, args.n] / walls[2, args.n]
        # The command's own start (imports, the gradebook, the zygotes' imports: about 2 s here)
        # is paid once whatever the workers: the workers' speedup is that of the time each
        # further submission adds, the difference between the two class sizes.
        added = {w: walls[w, sizes[1]] - walls[w, sizes[0]] for w in (1, 2)}
        marginal = added[1] / added[2]
        print(f"speedup 2 workers over 1, {args.n} submissions  {whole:6.2f} x  = {whole / ceiling:.2f} of the "
              "ceiling (the command's start included)")
        print(f"speedup of the {args.n} further submissions  {marginal:6.2f} x  = {marginal / ceiling:.2f} of "
              "the ceiling (an upper estimate: 2 workers' start can run past the first N)")
        # A submission's own cost in a class: what each further one adds on 1 worker, against
        # executing the notebook headless (run_lab starts a fresh kernel; the grader forks one).
        each = added[1] / args.n
        print(f"a submission in a class, 1 worker     {each:6.2f} s   beyond its cells "
              f"{each - statistics.median(cells):.2f} s (budget <= 0.3 s), beyond run_lab "
              f"{each - statistics.median(plain):.2f} s")

        if args.class_size:
            subs = _submissions(lab, tmp / "class", args.class_size)
            workers = os.cpu_count() or 2
            print(_load())
            wall = _grade_cli(subs, tmp / "class-out", workers, args.class_size)
            print(f"{args.class_size} submissions, {workers} workers      {wall:6.2f} s   (budget <= 60 s for 200 on 2 cores; "
                  f"{BUSY[workers, args.class_size]:.2f} CPUs busy)")
            if args.class_speedup:
                one = _grade_cli(subs, tmp / "class-out-1", 1, args.class_size)
                print(f"{args.class_size} submissions, 1 worker       {one:6.2f} s   speedup {one / wall:.2f} x = "
                      f"{one / wall / ceiling:.2f} of the ceiling (the command's start included; budget >= 0.9); "
                      f"1 worker kept {BUSY[1, args.class_size]:.2f} CPUs busy")
            rerun = _grade_cli(subs, tmp / "class-out", workers, args.class_size)
            print(f"rerun, nothing new                    {rerun:6.2f} s   (budget <= 5 s)")
        print(_load())
    finally:
        remove_tempdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
