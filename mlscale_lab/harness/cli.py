"""The ``mlscale-lab`` command line: a thin shell over the library, one job per command."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_doctor(args) -> int:
    from mlscale_lab.constraints._doctor import doctor_report, format_doctor

    report = doctor_report(args.path)
    print(json.dumps(report, indent=2) if args.json else format_doctor(report))
    return 0 if report["fits"] else 1


def _cmd_start(args) -> int:
    import subprocess

    from mlscale_lab.harness.workspace import prepare_workspace

    ws = prepare_workspace(args.directory)
    if ws.added:
        print(f"added to {ws.directory}: {', '.join(ws.added)}")
    if ws.kept:
        print(f"kept your own copies (not overwritten): {', '.join(ws.kept)}")
    if args.no_launch:
        return 0
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={ws.directory}", f"--port={args.port}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if args.ip:
        cmd.append(f"--ip={args.ip}")
    print("starting JupyterLab:", " ".join(cmd), flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def _cmd_run(args) -> int:
    from mlscale_lab.harness.labs import resolve_labs
    from mlscale_lab.harness.runner import format_table, report_dict, run_labs, write_report

    paths = resolve_labs(args.labs)
    if not paths:
        print("mlscale-lab run: no labs found", file=sys.stderr)
        return 2
    if args.binder or args.memory_limit or args.cpus:
        return _run_binder_sized(paths, args)
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    runs = run_labs(paths, timeout=args.timeout, executed_dir=args.executed, progress=progress)
    if args.report:
        write_report(runs, args.report)
    print(json.dumps(report_dict(runs), indent=2) if args.json else format_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1


def _run_binder_sized(paths, args) -> int:
    """``run --binder``: run labs inside Binder's limits and print the table."""
    from dataclasses import asdict
    from pathlib import Path

    from mlscale_lab.harness.confine import (
        BINDER_CPUS,
        BINDER_MEMORY_BYTES,
        MIN_HEADROOM,
        BinderLimits,
    )
    from mlscale_lab.harness.runner import format_binder_table, run_lab_binder_sized

    limits = BinderLimits(
        memory_bytes=parse_size(args.memory_limit) if args.memory_limit else BINDER_MEMORY_BYTES,
        cpus=float(args.cpus) if args.cpus else BINDER_CPUS,
    )
    runs = []
    for path in paths:
        if not args.json:
            print(f"running {Path(path).stem} inside {limits.memory_bytes / 1024**2:.0f} MB, "
                  f"{limits.cpus:g} CPU ...", file=sys.stderr, flush=True)
        runs.append(run_lab_binder_sized(path, limits, timeout=args.timeout, executed_dir=args.executed))
    report = {"binder": {**asdict(limits), "min_headroom": MIN_HEADROOM}, "labs": [r.as_dict() for r in runs]}
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else format_binder_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1


def parse_size(text: str) -> int:
    """``"2G"``, ``"1536M"``, ``"2147483648"`` -> bytes (binary units, as Binder's limits are)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    raw = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] != "" else ""
    number = raw[: -len(unit)] if unit else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"memory limit {text!r} is not a size; write bytes or a number with K, M or G (e.g. 2G)"
        ) from None
    return int(value * units[unit])


def _cmd_release(args) -> int:
    from mlscale_lab.harness.grading import release_labs
    from mlscale_lab.harness.labs import resolve_labs

    paths = resolve_labs(args.labs)
    written = release_labs(paths, args.out)
    print(json.dumps([str(p) for p in written]) if args.json else
          f"wrote {len(written)} student version(s) to {args.out}: " + ", ".join(p.name for p in written))
    return 0


def _cmd_check(args) -> int:
    from pathlib import Path

    from mlscale_lab.harness.grading import check_notebook, format_check

    checks, problem = check_notebook(args.notebook, timeout=args.timeout)
    if args.json:
        print(json.dumps({"exercises": [c.__dict__ for c in checks], "problem": problem}, indent=2))
    else:
        print(format_check(Path(args.notebook).name, checks, problem))
    return 0 if checks and all(c.passed for c in checks) else 1


def _cmd_grade(args) -> int:
    from mlscale_lab.harness.grading import (
        NO_SANDBOX_RISK,
        SandboxUnavailableError,
        grade_submissions,
    )

    if args.no_sandbox:
        print(f"mlscale-lab grade: WARNING: --no-sandbox: {NO_SANDBOX_RISK}.", file=sys.stderr)
    try:
        results = grade_submissions(args.submissions, args.out, workers=args.workers,
                                    timeout=args.timeout, budget=args.budget, memory=args.memory or None,
                                    no_sandbox=args.no_sandbox, progress=not args.json)
    except SandboxUnavailableError as exc:
        print(f"mlscale-lab grade: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            print(f"{r.student:<20} {r.lab:<28} {r.points:g}/{r.max_points:g}  {r.status}"
                  + ("" if r.status == "graded" else f"  ({r.reason})"))
        print(f"grades: {args.out}/grades.csv; feedback: {args.out}/feedback/<student>/<lab>.html")
    return 0 if all(r.status == "graded" for r in results) else 1


def _cmd_lint(args) -> int:
    from mlscale_lab.harness.grading import lint_labs
    from mlscale_lab.harness.labs import resolve_labs

    paths = resolve_labs(args.labs)
    report = lint_labs(paths)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for lab, problems in report.items():
            print(f"{lab}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
            for problem in problems:
                print(f"  - {problem}")
    return 0 if not any(report.values()) else 1


def _cmd_render(args) -> int:
    from pathlib import Path

    from mlscale_lab.harness.render import render_labs

    pages = render_labs(args.out, args.labs, timeout=args.timeout,
                        progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    for page in pages:
        print(f"{page.status:6}  {page.html_path}")
    print(f"index: {Path(args.out) / 'index.html'}")
    return 0 if all(p.status == "ok" for p in pages) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlscale-lab",
        description="Hands-on labs on scaling machine-learning models, measured on your machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("doctor", help="show the CPUs, memory and disk the labs can use, and whether they fit",
                       description="Show the machine as the labs see it: container limits (cgroups, "
                       "Binder's CPU_LIMIT/MEM_LIMIT), free disk, key library versions, and a verdict. "
                       "Exit status 1 when the labs do not fit.")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--path", default=".", help="where to measure free disk (default: here)")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser("start", help="create your lab workspace and open it in JupyterLab",
                       description="Add the student versions of the labs missing from DIR (never "
                       "overwriting a notebook that is there) and launch JupyterLab on it.")
    p.add_argument("directory", nargs="?", default="workspace", metavar="DIR",
                   help="workspace folder (default: ./workspace)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--port", type=int, default=8888, help="JupyterLab's port (default 8888)")
    p.add_argument("--ip", default=None, help="address JupyterLab listens on (default: localhost)")
    p.add_argument("--no-launch", action="store_true", help="only prepare the workspace")
    p.set_defaults(func=_cmd_start)

    p = sub.add_parser("run", help="execute labs headless and report time, peak memory and results",
                       description="Execute labs top to bottom, each in a fresh kernel, and print a "
                       "table of status, wall seconds, peak memory of the kernel's process tree and "
                       "the numbers each lab recorded. Exit status 1 if any lab failed, 2 for an "
                       "unknown lab.")
    p.add_argument("labs", nargs="*", metavar="LAB", help="lab number (03) or file stem; default all")
    p.add_argument("--report", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds each lab may take before it is stopped (default 600)")
    p.add_argument("--executed", metavar="DIR", help="save the executed notebooks into DIR")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.add_argument("--binder", action="store_true",
                   help="run inside a Binder pod's limits (2 GB, 1 CPU) and report the memory headroom")
    p.add_argument("--memory-limit", metavar="SIZE", help="with --binder: memory limit (e.g. 2G)")
    p.add_argument("--cpus", metavar="N", help="with --binder: CPU limit in cores (default 1)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("render", help="execute labs and write them as HTML pages with an index",
                       description="Execute labs headless and write OUT/<lab>.html for each and "
                       "OUT/index.html, to browse the labs without running them. Exit status 1 if "
                       "any lab failed (it is still rendered up to the failing cell).")
    p.add_argument("labs", nargs="*", metavar="LAB", help="lab number (03) or file stem; default all")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the HTML pages")
    p.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds each lab may take before it is stopped (default 600)")
    p.set_defaults(func=_cmd_render)

    p = sub.add_parser("release", help="write the student versions of labs (solutions and hidden tests removed)",
                       description="Write student versions with nbgrader's generate_assignment "
                       "preprocessors: solutions replaced by `raise NotImplementedError()`, hidden tests "
                       "removed, test cells locked, checksums set.")
    p.add_argument("labs", nargs="*", metavar="LAB", help="lab number (03) or file stem; default all")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the student versions to")
    p.add_argument("--json", action="store_true", help="print the written paths as JSON")
    p.set_defaults(func=_cmd_release)

    p = sub.add_parser("check", help="run your notebook and say which exercises pass their tests",
                       description="Run NOTEBOOK top to bottom in a fresh kernel and report, per "
                       "exercise, whether its tests pass. Your file is not changed. Exit status 1 if "
                       "any exercise does not pass.")
    p.add_argument("notebook", metavar="NOTEBOOK", help="your lab notebook (.ipynb)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="seconds per cell (default 300)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("grade", help="autograde a class's submissions safely (sandbox, limits, feedback)",
                       description="Grade SUBMISSIONS/<student>/<lab>.ipynb (or nbgrader's "
                       "submitted/<student>/<lab>/<lab>.ipynb) with nbgrader, each in a fresh sandboxed "
                       "kernel that sees only its own submission. Writes DIR/grades.csv and "
                       "DIR/feedback/<student>/<lab>.html. Exit status 1 if a submission could not be "
                       "graded fully (status timeout, kernel_died or error), 3 if no sandbox exists.")
    p.add_argument("submissions", metavar="SUBMISSIONS", help="folder of submissions")
    p.add_argument("--out", required=True, metavar="DIR", help="where grades.csv and feedback go")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="submissions graded in parallel (default 1)")
    p.add_argument("--timeout", type=float, default=120.0, metavar="S",
                   help="seconds a cell may run before it is interrupted (default 120)")
    p.add_argument("--budget", type=float, default=900.0, metavar="S",
                   help="seconds a whole submission may run before it is killed (default 900)")
    p.add_argument("--memory", type=int, default=4 * 1024**3, metavar="BYTES",
                   help="address-space cap of each kernel process (default 4 GiB; 0 for none)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without a sandbox where none exists (submissions then run with your permissions)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_cmd_grade)

    p = sub.add_parser("lint", help="check the labs' exercise format (grade_ids, points, tests)",
                       description="Check each lab's nbgrader exercises: unique grade_ids, points on "
                       "every test cell, every answer cell followed by its tests, test code printing "
                       "to stdout only. Exit status 1 on any problem.")
    p.add_argument("labs", nargs="*", metavar="LAB", help="lab number (03) or file stem; default all")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_cmd_lint)
    return parser


def _version() -> str:
    from mlscale_lab import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    from mlscale_lab.harness.labs import UnknownLabError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    # One place turns bad input into "mlscale-lab COMMAND: what was wrong" and exit 2.
    except (UnknownLabError, ValueError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"mlscale-lab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
