"""The command line: --help everywhere, doctor's JSON, exit statuses."""

import json
import subprocess

import pytest

from mlscale_lab.harness.cli import build_parser


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "usage: mlscale-lab" in capsys.readouterr().out


def test_doctor_json_reports_binder_mem_limit(cli_env, monkeypatch):
    monkeypatch.setenv("MEM_LIMIT", "1073741824")
    out = subprocess.run([*cli_env, "doctor", "--json"], capture_output=True, text=True)
    data = json.loads(out.stdout)
    for key in ("cpus", "memory_limit_bytes", "memory_available_bytes", "disk_free_bytes",
                "limit_source", "fits"):
        assert key in data
    assert data["memory_limit_bytes"] == 1073741824
    assert data["limit_source"] == "MEM_LIMIT"
    # 1 GiB is below what the largest lab needs: the verdict says so, and the exit status too.
    assert data["fits"] is False and data["problems"]
    assert out.returncode == 1


def test_doctor_text_on_this_machine(cli_env, monkeypatch):
    monkeypatch.delenv("MEM_LIMIT", raising=False)
    out = subprocess.run([*cli_env, "doctor"], capture_output=True, text=True)
    assert "memory limit" in out.stdout and "verdict" in out.stdout
    assert "torch 2." in out.stdout


def test_bad_environment_is_a_clear_error_not_a_traceback(cli_env, monkeypatch):
    monkeypatch.setenv("MEM_LIMIT", "lots")
    out = subprocess.run([*cli_env, "doctor"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "MEM_LIMIT='lots' is not a number" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_internal_error_keeps_its_traceback(monkeypatch):
    # A ValueError raised by our own code is a bug to see, not "bad input": it propagates
    # (the interpreter prints the traceback and exits 1).
    from mlscale_lab.harness import cli

    def broken(args):
        raise ValueError("a bug of ours")

    monkeypatch.setattr(cli, "_cmd_lint", broken)
    with pytest.raises(ValueError, match="a bug of ours"):
        cli.main(["lint"])


def test_an_internal_error_exits_1_with_a_traceback(cli_env, tmp_path):
    bad = tmp_path / "sitecustomize.py"  # breaks lint_labs inside the CLI's own process
    bad.write_text("import mlscale_lab.harness.grading as g\n"
                   "def boom(*a, **k):\n    raise ValueError('a bug of ours')\n"
                   "g.lint_labs = boom\n")
    import os

    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    out = subprocess.run([*cli_env, "lint"], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ValueError: a bug of ours" in out.stderr


@pytest.mark.parametrize("argv, message", [
    (["run", "99"], "unknown lab '99'"),
    (["check", "no-such.ipynb"], "is not a file"),
    (["grade", "no-such-folder", "--out", "o"], "is not a folder"),
])
def test_usage_errors_are_one_line_and_exit_2(argv, message, capsys):
    from mlscale_lab.harness.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("text, size", [("2G", 2 * 1024**3), ("1536M", 1536 * 1024**2),
                                        ("512MiB", 512 * 1024**2), ("2147483648", 2147483648),
                                        ("1.5g", 1536 * 1024**2)])
def test_sizes_parse_like_people_write_them(text, size):
    from mlscale_lab.harness.arguments import parse_size

    assert parse_size(text) == size
    assert build_parser().parse_args(["grade", "s", "--out", "o", "--memory", text]).memory == size
    assert build_parser().parse_args(["run", "--binder", "--memory-limit", text]).memory_limit == size


def test_grade_memory_zero_means_no_cap_and_bad_sizes_are_usage_errors(capsys):
    assert build_parser().parse_args(["grade", "s", "--out", "o", "--memory", "0"]).memory is None
    assert build_parser().parse_args(["grade", "s", "--out", "o"]).memory == 4 * 1024**3
    for bad in ("lots", "-1G", "10M"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["grade", "s", "--out", "o", "--memory", bad])
        assert exc.value.code == 2
    assert "(e.g. 2G)" in capsys.readouterr().err



def test_cli_defaults_are_the_librarys(capsys):
    import inspect

    from mlscale_lab.harness.grading import (
        DEFAULT_BUDGET,
        DEFAULT_TIMEOUT,
        check_notebook,
        grade_submissions,
    )
    from mlscale_lab.harness.runner import run_lab

    grade = build_parser().parse_args(["grade", "s", "--out", "o"])
    defaults = inspect.signature(grade_submissions).parameters
    assert (grade.timeout, grade.budget, grade.workers) == (DEFAULT_TIMEOUT, DEFAULT_BUDGET,
                                                             defaults["workers"].default)
    assert build_parser().parse_args(["run"]).budget == inspect.signature(run_lab).parameters["budget"].default
    assert (build_parser().parse_args(["check", "nb.ipynb"]).timeout
            == inspect.signature(check_notebook).parameters["timeout"].default)


def test_a_labs_budget_a_cells_timeout_cpus_and_seeds_are_read_as_what_they_are(capsys):
    parse = build_parser().parse_args
    assert parse(["run", "--budget", "90"]).budget == 90.0
    assert parse(["run", "--timeout", "90"]).budget == 90.0  # the old spelling of a lab's budget
    assert parse(["run", "--binder", "--cpus", "0.5"]).cpus == 0.5
    assert parse(["grade", "s", "--out", "o", "--seed", "0"]).seed == 0  # the library's default seed
    for argv, message in ((["run", "--binder", "--cpus", "lots"], "a number of CPUs (e.g. 1 or 0.5) > 0"),
                          (["grade", "s", "--out", "o", "--seed", "-3"], "whole number >= 0")):
        with pytest.raises(SystemExit) as exc:
            parse(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_grade_with_no_scheduler_there_is_a_usage_error(tmp_path, capsys, monkeypatch):
    import shutil
    import socket

    from mlscale_lab.harness.cli import main
    from mlscale_lab.harness.grading import _run
    from mlscale_lab.harness.labs import resolve_labs

    monkeypatch.setattr(_run, "SCHEDULER_TIMEOUT", 3.0)  # nothing listens: waiting 30 s tells no more

    lab = resolve_labs(["00"])[0]
    (tmp_path / "subs" / "ada").mkdir(parents=True)
    shutil.copyfile(lab, tmp_path / "subs" / "ada" / lab.name)
    with socket.socket() as s:  # a free loopback port: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    status = main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--no-sandbox",
                   "--scheduler", f"tcp://127.0.0.1:{port}"])
    assert status == 2
    assert "no Dask scheduler answered there within 3 s" in capsys.readouterr().err
