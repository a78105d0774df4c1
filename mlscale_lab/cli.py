"""The ``mlscale-lab`` command line: a thin shell over the library, one job per command."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_doctor(args) -> int:
    from mlscale_lab.doctor import doctor_report, format_doctor

    report = doctor_report(args.path)
    print(json.dumps(report, indent=2) if args.json else format_doctor(report))
    return 0 if report["fits"] else 1


def _cmd_start(args) -> int:
    import subprocess

    from mlscale_lab.workspace import prepare_workspace

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
    from mlscale_lab.labs import UnknownLabError, resolve_labs
    from mlscale_lab.runner import format_table, report_dict, run_labs, write_report

    try:
        paths = resolve_labs(args.labs)
    except UnknownLabError as exc:
        print(f"mlscale-lab run: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("mlscale-lab run: no labs found", file=sys.stderr)
        return 2
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr, flush=True))
    runs = run_labs(paths, timeout=args.timeout, executed_dir=args.executed, progress=progress)
    if args.report:
        write_report(runs, args.report)
    print(json.dumps(report_dict(runs), indent=2) if args.json else format_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1


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
                       description="Add the lab notebooks missing from DIR (never overwriting one that "
                       "is there) and launch JupyterLab on it.")
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
    p.set_defaults(func=_cmd_run)
    return parser


def _version() -> str:
    from mlscale_lab import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        print(f"mlscale-lab {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
