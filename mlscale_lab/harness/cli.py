"""The ``mlscale-lab`` command line: a thin shell over the library, one job per command.

Every command has ``--help`` and exits non-zero on failure: 1 when the work failed (a lab, an
exercise, a submission), 2 for a usage error (bad input: a message, no traceback), 3 when
grading has no sandbox. Commands that report take ``--json`` for scripts. Any other exception is
a bug of ours and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mlscale_lab.harness import budgets
from mlscale_lab.harness.arguments import (
    count_arg,
    cpus_arg,
    memory_cap_arg,
    seconds_arg,
    seed_arg,
    size_arg,
)


class UsageError(Exception):
    """Bad input from the command line or its environment: reported in one line, exit status 2."""


def _labs(names):
    """Lab notebooks named on the command line; an unknown name is a usage error."""
    from mlscale_lab.harness.labs import UnknownLabError, resolve_labs

    try:
        paths = resolve_labs(names)
    except (UnknownLabError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    if not paths:
        raise UsageError("no labs found")
    return paths


def _not_a_folder(path, what: str) -> None:
    if Path(path).exists() and not Path(path).is_dir():
        raise UsageError(f"{what} {path} exists and is not a folder; choose another")


def _print_json(data) -> None:
    print(json.dumps(data, indent=2))


def _cmd_doctor(args) -> int:
    from mlscale_lab.constraints import doctor_report, format_doctor, machine_budget

    try:
        machine_budget()
    except ValueError as exc:  # MEM_LIMIT / CPU_LIMIT that are not numbers: the environment's fault
        raise UsageError(str(exc)) from None
    report = doctor_report(args.path)
    _print_json(report) if args.json else print(format_doctor(report))
    return 0 if report["fits"] else 1


def _cmd_start(args) -> int:
    from mlscale_lab.harness.workspace import prepare_workspace, start_jupyterlab

    _not_a_folder(args.directory, "DIR")
    ws = prepare_workspace(args.directory)
    if ws.added:
        print(f"added to {ws.directory}: {', '.join(ws.added)}")
    if ws.kept:
        print(f"kept your own copies (not overwritten): {', '.join(ws.kept)}")
    if args.no_launch:
        return 0
    return start_jupyterlab(ws.directory, port=args.port, ip=args.ip, open_browser=not args.no_browser)


def _cmd_run(args) -> int:
    from mlscale_lab.harness.runner import format_table, report_dict, run_labs, write_report

    paths = _labs(args.labs)
    if args.binder or args.memory_limit or args.cpus:
        return _run_binder_sized(paths, args)
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    runs = run_labs(paths, budget=args.budget, executed_dir=args.executed, progress=progress)
    if args.report:
        write_report(runs, args.report)
    _print_json(report_dict(runs)) if args.json else print(format_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1


def _run_binder_sized(paths, args) -> int:
    """``run --binder``: run labs inside a Binder pod's limits and print the headroom table."""
    from mlscale_lab.harness import confine, runner

    try:
        limits = confine.BinderLimits(memory_bytes=args.memory_limit or confine.BINDER_MEMORY_BYTES,
                                      cpus=args.cpus or confine.BINDER_CPUS)
        with confine.Confinement(limits):  # can this machine confine at all? Say so before any run.
            pass
    except (ValueError, OSError) as exc:  # ConfinementUnavailableError is an OSError
        raise UsageError(str(exc)) from None
    runs = []
    for path in paths:
        if not args.json:
            print(f"running {path.stem} inside {limits.memory_bytes / 1024**2:.0f} MB, "
                  f"{limits.cpus:g} CPU ...", file=sys.stderr, flush=True)
        runs.append(runner.run_lab_binder_sized(path, limits, budget=args.budget, executed_dir=args.executed))
    report = runner.binder_report_dict(runs, limits)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _print_json(report) if args.json else print(runner.format_binder_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1


def _cmd_render(args) -> int:
    from mlscale_lab.harness.render import render_labs

    _not_a_folder(args.out, "--out")
    paths = _labs(args.labs)
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    pages = render_labs(args.out, [str(p) for p in paths], budget=args.budget, progress=progress)
    if args.json:
        _print_json([{"name": p.name, "status": p.status, "html": str(p.html_path), "error": p.error}
                     for p in pages])
    else:
        for page in pages:
            print(f"{page.status:6}  {page.html_path}")
        print(f"index: {Path(args.out) / 'index.html'}")
    return 0 if all(p.status == "ok" for p in pages) else 1


def _cmd_release(args) -> int:
    from mlscale_lab.harness.grading import release_labs

    _not_a_folder(args.out, "--out")
    written = release_labs(_labs(args.labs), args.out)
    if args.json:
        _print_json([str(p) for p in written])
    else:
        print(f"wrote {len(written)} student version(s) to {args.out}: " + ", ".join(p.name for p in written))
    return 0


def _cmd_check(args) -> int:
    from mlscale_lab.harness.grading import check_notebook, format_check

    if not Path(args.notebook).is_file():
        raise UsageError(f"NOTEBOOK {args.notebook} is not a file; give the path of your .ipynb")
    checks, problem = check_notebook(args.notebook, timeout=args.timeout)
    if args.json:
        _print_json({"exercises": [c.__dict__ for c in checks], "problem": problem})
    else:
        print(format_check(Path(args.notebook).name, checks, problem))
    return 0 if checks and all(c.passed for c in checks) else 1


def _cmd_grade(args) -> int:
    from mlscale_lab.harness.confine import can_cap_address_space
    from mlscale_lab.harness.grading import (
        NO_SANDBOX_RISK,
        SandboxUnavailableError,
        grade_submissions,
    )

    if not Path(args.submissions).is_dir():
        raise UsageError(f"SUBMISSIONS {args.submissions} is not a folder of <student>/<lab>.ipynb")
    _not_a_folder(args.out, "--out")
    if args.tests is not None and not Path(args.tests).is_dir():
        raise UsageError(f"--tests {args.tests} is not a folder of <grade_id>.py files")
    if args.no_sandbox:
        print(f"mlscale-lab grade: WARNING: --no-sandbox: {NO_SANDBOX_RISK}.", file=sys.stderr)
    if args.memory is not None and not can_cap_address_space():
        print(f"mlscale-lab grade: note: this platform ({sys.platform}) cannot cap a kernel's memory, "
              f"so --memory is not enforced: a submission may use all the memory there is.",
              file=sys.stderr)
    extra = {k: v for k, v in (("tests", args.tests), ("seed", args.seed), ("scheduler", args.scheduler))
             if v is not None}
    if args.force:
        extra["force"] = True
    try:
        results = grade_submissions(args.submissions, args.out, workers=args.workers,
                                    timeout=args.timeout, budget=args.budget, memory=args.memory,
                                    no_sandbox=args.no_sandbox, progress=not args.json, **extra)
    except SandboxUnavailableError as exc:
        print(f"mlscale-lab grade: {exc}", file=sys.stderr)
        return 3
    except ConnectionError as exc:  # --scheduler ADDRESS where no scheduler answers
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json([r.as_dict() for r in results])
    else:
        for r in results:
            print(f"{r.student:<20} {r.lab:<28} {r.points:g}/{r.max_points:g}  {r.status}"
                  + ("" if r.status == "graded" else f"  ({r.reason})"))
        print(f"grades: {args.out}/grades.csv; gradebook (LMS import): {args.out}/gradebook.csv; "
              f"feedback: {args.out}/feedback/<student>/<lab>.html")
    return 0 if all(r.status == "graded" for r in results) else 1


def _cmd_answers(args) -> int:
    from mlscale_lab.harness.answers import format_answers, model_answers
    from mlscale_lab.harness.labs import UnknownLabError

    try:
        answers = model_answers(args.notebook)
    except (FileNotFoundError, UnknownLabError) as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json([a.__dict__ for a in answers])
    else:
        print(format_answers(answers))
    return 0


def _cmd_lint(args) -> int:
    from mlscale_lab.harness.grading import lint_labs

    report = lint_labs(_labs(args.labs))
    if args.json:
        _print_json(report)
    else:
        for lab, problems in report.items():
            print(f"{lab}: " + ("ok" if not problems else f"{len(problems)} problem(s)"))
            for problem in problems:
                print(f"  - {problem}")
    return 0 if not any(report.values()) else 1


def _add(sub, name, func, help, description, *, json_flag=True):
    p = sub.add_parser(name, help=help, description=description)
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=func)
    return p


def _labs_arg(p) -> None:
    p.add_argument("labs", nargs="*", metavar="LAB", help="lab number (03) or file stem; default all")


def _timeout_arg(p, default: float) -> None:
    p.add_argument("--timeout", type=seconds_arg, default=default, metavar="S",
                   help=f"seconds a cell may run before it is interrupted (default {default:g})")


def _budget_arg(p, default: float, what: str) -> None:
    # A lab's budget was once spelled --timeout: the old spelling still works.
    p.add_argument("--budget", "--timeout", dest="budget", type=seconds_arg, default=default, metavar="S",
                   help=f"seconds {what} before it is killed with every process it started (default {default:g})")


def build_parser() -> argparse.ArgumentParser:
    """The ``mlscale-lab`` argument parser, one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="mlscale-lab",
        description="Hands-on labs on scaling machine-learning models, measured on your machine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _add(sub, "doctor", _cmd_doctor, "show the CPUs, memory and disk the labs can use, and whether they fit",
             "Show the machine as the labs see it: container limits (cgroups, Binder's CPU_LIMIT/"
             "MEM_LIMIT), free disk, key library versions, and a verdict. Exit status 1 when the "
             "labs do not fit.")
    p.add_argument("--path", default=".", help="where to measure free disk (default: here)")

    p = _add(sub, "start", _cmd_start, "create your lab workspace and open it in JupyterLab",
             "Add the student versions of the labs missing from DIR (never overwriting a notebook "
             "that is there) and launch JupyterLab on it. As root (containers, WSL, cloud VMs) "
             "JupyterLab is started with --allow-root, after a warning.", json_flag=False)
    p.add_argument("directory", nargs="?", default="workspace", metavar="DIR",
                   help="workspace folder (default: ./workspace)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--port", type=int, default=8888, help="JupyterLab's port (default 8888)")
    p.add_argument("--ip", default=None, help="address JupyterLab listens on (default: localhost)")
    p.add_argument("--no-launch", action="store_true", help="only prepare the workspace")

    p = _add(sub, "run", _cmd_run, "execute labs headless and report time, peak memory and results",
             "Execute labs top to bottom, each in a fresh kernel, and print a table of status, wall "
             "seconds, peak memory of the kernel's process tree and the numbers each lab recorded. "
             "Exit status 1 if any lab failed, 2 for an unknown lab or a machine that cannot "
             "confine a --binder run.")
    _labs_arg(p)
    p.add_argument("--report", metavar="FILE", help="also write the results as JSON to FILE")
    _budget_arg(p, budgets.LAB_BUDGET_S, "each lab may run")
    p.add_argument("--executed", metavar="DIR", help="save the executed notebooks into DIR")
    p.add_argument("--binder", action="store_true",
                   help="run inside a Binder pod's limits (2 GB, 1 CPU) and report the memory headroom")
    p.add_argument("--memory-limit", type=size_arg, metavar="SIZE", help="with --binder: memory limit (e.g. 2G)")
    p.add_argument("--cpus", type=cpus_arg, metavar="N", help="with --binder: CPU limit in cores (default 1)")

    p = _add(sub, "render", _cmd_render, "execute labs and write them as HTML pages with an index",
             "Execute labs headless and write OUT/<lab>.html for each and OUT/index.html, to browse "
             "the labs without running them. Exit status 1 if any lab failed (it is still rendered "
             "up to the failing cell).")
    _labs_arg(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the HTML pages")
    _budget_arg(p, budgets.LAB_BUDGET_S, "each lab may run")

    p = _add(sub, "release", _cmd_release, "write the student versions of labs (solutions and hidden tests removed)",
             "Write student versions with nbgrader's generate_assignment preprocessors: solutions "
             "replaced by `raise NotImplementedError()`, hidden tests removed, test cells locked, "
             "checksums set.")
    _labs_arg(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the student versions to")

    p = _add(sub, "check", _cmd_check, "run your notebook and say which exercises pass their tests",
             "Run NOTEBOOK top to bottom in a fresh kernel and report, per exercise, whether its "
             "tests pass. Your file is not changed. Exit status 1 if any exercise does not pass.")
    p.add_argument("notebook", metavar="NOTEBOOK", help="your lab notebook (.ipynb)")
    _timeout_arg(p, budgets.CHECK_TIMEOUT_S)

    p = _add(sub, "grade", _cmd_grade, "autograde a class's submissions safely (sandbox, limits, feedback)",
             "Grade SUBMISSIONS/<student>/<lab>.ipynb (or nbgrader's submitted/<student>/<lab>/"
             "<lab>.ipynb) with nbgrader, each in a fresh sandboxed kernel that sees only its own "
             "submission; tests replayed in a fresh process the submission's code never ran in, "
             "tampering flagged. Writes DIR/grades.csv, DIR/gradebook.csv (one row a student, one "
             "column a lab) and DIR/feedback/<student>/<lab>.html; a rerun grades only what is new "
             "or changed. Exit status 1 if a submission could not be graded fully or was flagged "
             "(status other than graded), 3 if no sandbox exists.")
    p.add_argument("submissions", metavar="SUBMISSIONS", help="folder of submissions")
    p.add_argument("--out", required=True, metavar="DIR", help="where grades.csv and feedback go")
    p.add_argument("--workers", type=count_arg, default=budgets.GRADE_WORKERS, metavar="N",
                   help=f"submissions graded in parallel (default {budgets.GRADE_WORKERS})")
    _timeout_arg(p, budgets.GRADE_TIMEOUT_S)
    p.add_argument("--budget", type=seconds_arg, default=budgets.GRADE_BUDGET_S, metavar="S",
                   help=f"seconds a whole submission may run before it is killed (default {budgets.GRADE_BUDGET_S:g})")
    p.add_argument("--memory", type=memory_cap_arg, default=budgets.GRADE_MEMORY_BYTES, metavar="SIZE",
                   help=f"memory (address-space) cap of each kernel process, e.g. 2G (default "
                        f"{budgets.GRADE_MEMORY_BYTES // 1024**3}G; 0 for none)")
    p.add_argument("--tests", metavar="DIR", help="course-private tests: DIR/<grade_id>.py, shipped nowhere")
    p.add_argument("--seed", type=seed_arg, metavar="N", help="grading seed the tests see as GRADING_SEED (students never see it)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="grade on this Dask scheduler's workers")
    p.add_argument("--force", action="store_true", help="grade again submissions already graded unchanged")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without a sandbox where none exists (submissions then run with your permissions)")

    p = _add(sub, "answers", _cmd_answers, "show model answers to the written questions you have answered",
             "For studying on your own: for each written question of NOTEBOOK that you have "
             "answered, print a model answer from the installed labs, to compare with yours. "
             "Questions you have not tried stay closed. Your notebook is only read.")
    p.add_argument("notebook", metavar="NOTEBOOK", help="your lab notebook (.ipynb)")

    p = _add(sub, "lint", _cmd_lint, "check the labs' exercise format (grade_ids, points, tests)",
             "Check each lab's nbgrader exercises: unique grade_ids, points on every test cell, "
             "every answer cell followed by its tests, test code printing to stdout only. Exit "
             "status 1 on any problem.")
    _labs_arg(p)
    return parser


def _version() -> str:
    from mlscale_lab import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run ``mlscale-lab`` with ``argv``; return the exit status.

    A :class:`UsageError` becomes one line on stderr and status 2; any other exception is a bug
    and propagates with its traceback.
    """
    from mlscale_lab._core.imports import skip_slow_optional_imports

    skip_slow_optional_imports()  # a second off every command that reads a notebook
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"mlscale-lab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
