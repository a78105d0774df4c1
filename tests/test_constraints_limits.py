"""run_limited: results, limits that fail cleanly, errors that say what to do."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from mlscale_lab.constraints import (
    LimitedRun,
    MemoryLimitExceeded,
    ResourceLimitExceeded,
    TimeLimitExceeded,
    run_limited,
    run_measured,
)

MB = 1024**2


def allocate_and_touch(n_bytes, hold_s=0.0):
    block = np.ones(n_bytes // 8)  # np.ones writes every page, so all of it is resident
    time.sleep(hold_s)
    return float(block[-1])


def spawn_sleeper(pid_file):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(pid_file, "w") as fh:
        fh.write(str(child.pid))
    time.sleep(60)


def test_returns_value_and_forwards_kwargs():
    assert run_limited(divmod, 17, 5, timeout_s=30) == (3, 2)
    assert run_limited(sorted, [3, 1, 2], reverse=True) == [3, 2, 1]


def test_notebook_defined_function_and_lambda():
    # A function defined in a notebook cell lives in __main__, which a fresh child cannot import.
    ns = {"__name__": "__main__"}
    exec("import math\ndef hyp(a, b):\n    return math.hypot(a, b)\n", ns)
    assert run_limited(ns["hyp"], 3, 4) == 5.0
    scale = 3
    assert run_limited(lambda x: x * scale, 7) == 21


def test_exceptions_propagate_with_type_and_message():
    with pytest.raises(ValueError, match="invalid literal for int"):
        run_limited(int, "not a number")
    with pytest.raises(KeyError, match="missing") as info:
        run_limited(dict().__getitem__, "missing")
    assert any("child process" in note for note in info.value.__notes__)


def test_memory_cap_raises_quickly_and_parent_is_unchanged():
    cap = 250 * MB
    children_before = set(psutil.Process().children())  # an earlier test's are not ours
    rss_before = psutil.Process().memory_info().rss
    t0 = time.perf_counter()
    with pytest.raises(MemoryLimitExceeded) as info:
        run_limited(allocate_and_touch, 2 * cap, hold_s=5, memory_bytes=cap)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"took {elapsed:.1f} s to catch the breach"
    err = info.value
    assert isinstance(err, ResourceLimitExceeded) and isinstance(err, MemoryError)
    assert err.limit == cap and err.reached > cap
    assert "250 MB" in str(err) and "allocate_and_touch" in str(err)
    assert psutil.Process().memory_info().rss - rss_before < 30 * MB
    assert not set(psutil.Process().children()) - children_before, "the child must be gone"


def test_under_the_cap_succeeds_and_reports_peak():
    run = run_measured(allocate_and_touch, 150 * MB, memory_bytes=400 * MB)
    assert isinstance(run, LimitedRun)
    assert run.value == 1.0
    assert 0 < run.baseline_rss_bytes < run.peak_rss_bytes <= 400 * MB
    assert 140 * MB < run.peak_rise_bytes < 200 * MB


@pytest.mark.parametrize("platform", ["posix", "no process groups (Windows)"])
def test_time_limit_kills_the_whole_tree(tmp_path, monkeypatch, platform):
    if platform != "posix":  # no sessions, no killpg/getpgid: descendants are killed one by one
        for name in ("setsid", "killpg", "getpgid"):
            monkeypatch.delattr(os, name)
    pid_file = tmp_path / "pid"
    t0 = time.perf_counter()
    with pytest.raises(TimeLimitExceeded, match="timeout_s=1") as info:
        run_limited(spawn_sleeper, str(pid_file), timeout_s=1)
    assert time.perf_counter() - t0 < 15
    assert isinstance(info.value, TimeoutError) and info.value.limit == 1.0
    grandchild = int(pid_file.read_text())
    deadline = time.time() + 5
    while psutil.pid_exists(grandchild) and time.time() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    alive = (
        psutil.pid_exists(grandchild)
        and psutil.Process(grandchild).status() != psutil.STATUS_ZOMBIE
    )
    assert not alive, "the grandchild process survived the time limit"


def test_cap_below_interpreter_baseline_gives_minimum():
    with pytest.raises(ValueError, match=r"at least \d+ MB") as info:
        run_limited(allocate_and_touch, MB, memory_bytes=4 * MB)
    assert "memory_bytes" in str(info.value)


def test_unpicklable_function_is_named():
    lock = threading.Lock()

    def uses_lock():
        with lock:
            return 1

    with pytest.raises(TypeError, match="uses_lock") as info:
        run_limited(uses_lock)
    assert "pickle" in str(info.value)


def test_child_output_reaches_the_caller(capsys):
    run_limited(print, "hello from the child")
    assert "hello from the child" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs, kind, match",
    [
        ({"memory_bytes": 0}, ValueError, r"run_limited\(memory_bytes=0\): expected"),
        ({"memory_bytes": -5}, ValueError, "memory_bytes"),
        ({"memory_bytes": "1GB"}, TypeError, r"run_limited\(memory_bytes='1GB'\)"),
        ({"timeout_s": 0}, ValueError, "timeout_s"),
        ({"timeout_s": float("nan")}, ValueError, "timeout_s"),
    ],
)
def test_bad_limits(kwargs, kind, match):
    with pytest.raises(kind, match=match):
        run_limited(abs, 1, **kwargs)


def test_errors_name_the_function_called():
    with pytest.raises(ValueError, match=r"^run_measured\(timeout_s=-1\)"):
        run_measured(abs, 1, timeout_s=-1)


def test_not_callable():
    with pytest.raises(TypeError, match="callable"):
        run_limited(42)


def test_no_stray_children():
    run_limited(abs, -1)
    assert not psutil.Process(os.getpid()).children()


def test_peak_is_the_childs_not_the_parents():
    # Linux's ru_maxrss carries the parent's size into a fresh child; the peak must not.
    ballast = bytearray(300 * MB)
    ballast[::4096] = b"x" * len(ballast[::4096])
    run = run_measured(abs, -1)
    del ballast
    assert run.peak_rss_bytes < 200 * MB, f"child peak {run.peak_rss_bytes / MB:.0f} MB"


# -- platforms without process groups or readable memory (Windows, macOS), simulated on Linux --
def test_cap_enforced_without_process_groups(monkeypatch):
    # Windows has neither os.killpg nor os.getpgid: the tree is killed process by process.
    monkeypatch.delattr(os, "killpg")
    monkeypatch.delattr(os, "getpgid")
    with pytest.raises(MemoryLimitExceeded):
        run_limited(allocate_and_touch, 400 * MB, 10, memory_bytes=250 * MB, timeout_s=60)
    assert not psutil.Process(os.getpid()).children()


def test_runs_without_the_resource_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "resource", None)  # `import resource` now fails
    assert run_limited(divmod, 7, 2, memory_bytes=500 * MB) == (3, 1)


def test_unreadable_memory_warns_once_that_the_cap_is_not_enforced(monkeypatch):
    import mlscale_lab.constraints._limits as limits

    def denied(self):
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "memory_info", denied)
    monkeypatch.setattr(limits, "_warned_unenforced", False)
    with pytest.warns(RuntimeWarning, match="memory cap is NOT enforced") as record:
        assert run_limited(abs, -3, memory_bytes=300 * MB) == 3
        assert run_limited(abs, -4, memory_bytes=300 * MB) == 4
    assert len([w for w in record if "NOT enforced" in str(w.message)]) == 1
