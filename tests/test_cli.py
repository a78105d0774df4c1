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
