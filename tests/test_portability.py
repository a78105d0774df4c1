"""Windows and macOS, tried on Linux: hide what the code falls back from and run the commands.

Windows has no ``resource`` module, no process groups (``os.killpg``/``os.getpgid``) and no
``os.sched_getaffinity``; macOS has no cgroups and does not enforce ``RLIMIT_AS``. `check` and
`grade --no-sandbox` must work there (the memory cap reported as not enforced, once), and
`run --binder` must say it cannot confine and exit 2.
"""

from __future__ import annotations

import os
import sys

import pytest
from grading_kit import make_source_lab, solved, write_submission

from mlscale_lab.harness import confine, executor
from mlscale_lab.harness.cli import main
from mlscale_lab.harness.grading import generate_student_version

HIDDEN_OS = ("killpg", "getpgid", "sched_getaffinity", "sched_setaffinity")


@pytest.fixture
def windows_like(monkeypatch):
    """This process without ``resource``, process groups, CPU affinity or Unix sockets."""
    monkeypatch.setitem(sys.modules, "resource", None)  # `import resource` raises ImportError
    monkeypatch.setattr(executor, "UNIX_SOCKETS", False)  # kernels on TCP, as on Windows
    for name in HIDDEN_OS:
        if hasattr(os, name):
            monkeypatch.delattr(os, name)


def test_launch_helpers_apply_nothing_where_nothing_can_be_applied(windows_like):
    assert not confine.can_cap_address_space() and not confine.can_pin_cpus()
    # grading's kernel: no cap, no core-dump switch, so no launcher at all (os.execvp on
    # Windows would start a second process and end the one jupyter_client watches)
    assert confine.launch_prefix(core_dumps=False) == []
    with pytest.raises(confine.ConfinementUnavailableError, match="cannot cap"):
        confine.launch_prefix(as_bytes=2 * 1024**3)


def test_run_binder_says_it_cannot_confine_and_exits_2(windows_like, monkeypatch, tiny_labs, capsys):
    monkeypatch.setattr(sys, "platform", "darwin")  # no cgroups, RLIMIT_AS not enforced
    assert main(["run", "--binder", "00"]) == 2
    err = capsys.readouterr().err
    assert "cannot hold a kernel to Binder's limits" in err
    assert "Traceback" not in err and "kernel died" not in err


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    labs = tmp_path_factory.mktemp("labs")
    student = generate_student_version(make_source_lab(labs))
    return labs, student


@pytest.mark.slow
def test_check_works_without_resource_or_process_groups(windows_like, course, tmp_path, capsys):
    _, student = course
    path = write_submission(tmp_path, "me", solved(student))
    assert main(["check", str(path)]) == 0
    assert "2 of 2 exercises pass" in capsys.readouterr().out


@pytest.mark.slow
def test_grade_no_sandbox_works_and_says_once_the_memory_cap_is_not_enforced(
        windows_like, course, tmp_path, monkeypatch, capsys):
    labs, student = course
    monkeypatch.setenv("MLSCALE_LABS_DIR", str(labs))
    write_submission(tmp_path / "subs", "ada", solved(student))
    rc = main(["grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--no-sandbox",
               "--memory", "2G", "--timeout", "60", "--budget", "120"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    assert captured.err.count("--memory is not enforced") == 1
    assert "5/5" in captured.out and "graded" in captured.out
