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
  and on 1 worker (``--no-class-speedup`` skips it), in ``--class-rounds`` interleaved rounds
  (W then 1, then 1 then W):
  the whole command's speedup there, its start included, is the speedup's budget: >= 0.9 of
  the W-process ceiling, with a paired interval and a verdict from two rounds on (the machine
  watched by the evidence core's ``MachineCheck`` in an idle second before each run: a busy
  neighbour makes it inconclusive).
  Budget: 200 lab-00 submissions on 2 cores in <= 60 s.
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
from mlscale_lab.evidence import MachineCheck, MachineReport, judge, ratio_interval
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


def _grade_cli(subs: Path, out: Path, workers: int, n: int) -> tuple[float, MachineReport, float]:
    """Wall seconds of ``mlscale-lab grade`` from a cold start, checking every result, and what
    the machine did meanwhile (the evidence core's :class:`MachineCheck`). Its split between
    the command and other processes is not used: a submission's kernel, replay and sandboxes
    live about 0.3 s, between two samples, so their CPU shows as other processes'. The
    machine's whole busy share is (a worker's processes beside it keep more than one CPU busy),
    and whether others were busy is read in an idle second before the run (:func:`_quiet`)."""
    cmd = [sys.executable, "-m", "mlscale_lab", "grade", str(subs), "--out", str(out),
           "--workers", str(workers), "--json"]
    before = _quiet()
    t0 = time.perf_counter()
    with MachineCheck(interval=0.25) as check:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    assert len(results) == n and all(r["status"] == "graded" for r in results)
    return wall, before, check.report.ours_cores + check.report.others_cores


def _quiet() -> MachineReport:
    """One second with nothing of ours running: whether other processes were busy (any quarter
    of a CPU counts here: two workers need both CPUs, where a lab's check tolerates a neighbour
    that leaves one idle)."""
    with MachineCheck(interval=0.1) as check:
        time.sleep(1.0)
    if check.report.others_cores > 0.25:
        check.flag(f"other processes took {check.report.others_cores:.2f} CPUs in an idle second before the run")
    return check.report


def _cpus(report: MachineReport, busy: float) -> str:
    return (f"machine busy {busy:.2f} CPUs; " + ("quiet before it" if report.trusted
            else "not to be trusted before it: " + "; ".join(report.reasons)))


#: The ceiling's work: a pure-Python loop of about a second on this machine.
_SPIN = "s = 0\nfor i in range(25_000_000):\n    s += i & 7\n"


def _spin(copies: int) -> float:
    """Wall seconds of ``copies`` pure-Python processes running the same loop side by side."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-S", "-c", _SPIN]) for _ in range(copies)]
    for p in procs:
        assert p.wait() == 0
    return time.perf_counter() - t0


def process_ceiling(copies: int, rounds: int) -> float:
    """The machine's raw speedup of ``copies`` processes over one (``copies * t_one / t_copies``,
    median of interleaved rounds): the most ``copies`` workers could gain."""
    _spin(1)  # warm: the interpreter's files in the page cache
    ratios = []
    for _ in range(rounds):
        one, many = _spin(1), _spin(copies)
        ratios.append(copies * one / many)
    return statistics.median(ratios)


def _class(lab: Path, tmp: Path, args, ceiling: float) -> None:
    """The class of ``--class-size`` on W workers (W = the CPU count) and, for the speedup, on 1,
    in interleaved rounds; then the rerun with nothing new."""
    subs = _submissions(lab, tmp / "class", args.class_size)
    workers = os.cpu_count() or 2
    if workers != 2:  # the ceiling of as many processes as workers
        ceiling = process_ceiling(workers, args.repeat)
        print(f"raw {workers}-process ceiling (pure Python) {ceiling:6.2f} x")
    print(_load())
    walls, ones, reports = [], [], []
    for r in range(args.class_rounds):
        # W workers then 1, then 1 then W: a drift of the machine does not favour one arm
        order = (workers, 1) if r % 2 == 0 else (1, workers)
        wall = one = None
        for w in order if args.class_speedup else (workers,):
            seconds, report, busy = _grade_cli(subs, tmp / f"class-out-{w}-{r}", w, args.class_size)
            reports.append(report)
            if w == workers:
                wall = seconds
                print(f"{args.class_size} submissions, {workers} workers      {wall:6.2f} s   (budget <= 60 s "
                      f"for 200 on 2 cores; {_cpus(report, busy)})")
            else:
                one = seconds
                print(f"{args.class_size} submissions, 1 worker       {one:6.2f} s   ({_cpus(report, busy)})")
        walls.append(wall)
        if one is not None:
            ones.append(one)
            print(f"round {r + 1}: speedup {one / wall:.2f} x = {one / wall / ceiling:.2f} of the ceiling "
                  "(the command's start included; budget >= 0.9)")
    if len(ones) >= 2:
        speedup = ratio_interval(ones, walls)  # paired: a round's two runs side by side in time
        print(f"speedup {speedup}")
        print(judge(speedup.scaled(1 / ceiling, digits=3), f"{workers} workers reach 0.9 of the raw {workers}-process speedup (the command's "
                    "start included)", above=0.9, machine=_worst(reports)))
    elif ones:
        print("one round: no interval on the speedup (pass --class-rounds 3 for one and a verdict)")
    rerun, _, _ = _grade_cli(subs, tmp / f"class-out-{workers}-0", workers, args.class_size)
    print(f"rerun, nothing new                    {rerun:6.2f} s   (budget <= 5 s)")


def _worst(reports: list[MachineReport]) -> MachineReport:
    """The first report of a run the machine spoiled, else the last (all trusted)."""
    return next((r for r in reports if not r.trusted), reports[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lab", default="00", help="lab number or stem (default 00)")
    ap.add_argument("--n", type=int, default=20, help="submissions for the speedup (default 20)")
    ap.add_argument("--repeat", type=int, default=3, help="runs for the overhead median (default 3)")
    ap.add_argument("--class-size", type=int, default=200, help="submissions in the class run (0: skip)")
    ap.add_argument("--no-class-speedup", dest="class_speedup", action="store_false",
                    help="grade the class on W workers only, not on 1 worker too (saves about 80 s)")
    ap.add_argument("--class-rounds", type=int, default=1,
                    help="interleaved rounds of the class on W workers and on 1 (default 1; 3 or more "
                         "give the speedup an interval and a verdict)")
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
        ceiling = process_ceiling(2, args.repeat)
        print(f"raw two-process ceiling (pure Python) {ceiling:6.2f} x")

        sizes = (args.n, 2 * args.n)
        subs = {n: _submissions(lab, tmp / f"many{n}", n) for n in sizes}
        print(_load())
        runs: dict = {}
        for r in range(args.repeat):  # interleaved rounds, the median of each
            for w in (1, 2):
                for n in sizes:
                    runs.setdefault((w, n), []).append(_grade_cli(subs[n], tmp / f"many-out-{w}-{n}-{r}", w, n)[0])
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
            _class(lab, tmp, args, ceiling)
        print(_load())
    finally:
        remove_tempdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
