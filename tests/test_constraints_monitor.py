"""ResourceMonitor: samples, phases, children, accuracy, and behaviour on bad input or errors."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest

from mlscale_lab.constraints import ResourceMonitor
from mlscale_lab.constraints._monitor import cpu_tick_seconds

MB = 1024**2

# A child that imports numpy, says "ready", waits for a line, then allocates and touches N MB.
ALLOC_CHILD = r"""
import sys, time
import numpy as np
print("ready", flush=True)
sys.stdin.readline()
block = np.ones(int(sys.argv[1]) * 1024**2 // 8)
time.sleep(float(sys.argv[2]))
print("done", flush=True)
"""


def monitor_threads():
    return [t for t in threading.enumerate() if t.name == "mlscale-ResourceMonitor"]


@pytest.mark.parametrize("bad, kind", [(0, ValueError), (-0.1, ValueError),
                                       (float("nan"), ValueError), ("0.1", TypeError),
                                       (None, TypeError)])
def test_interval_must_be_positive(bad, kind):
    with pytest.raises(kind, match=r"ResourceMonitor\(interval="):
        ResourceMonitor(interval=bad)


def test_measurement_does_not_draw():
    # Drawing lives in views.monitor; the monitor has no plot method and never imports views.
    assert not hasattr(ResourceMonitor, "plot")
    probe = ("import sys, mlscale_lab.constraints; "
             "print([m for m in sys.modules if m.startswith('mlscale_lab.views')])")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plot_monitor_draws_phases():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from mlscale_lab.views.monitor import plot_monitor

    with ResourceMonitor(interval=0.02) as mon:
        mon.mark("a")
        time.sleep(0.05)
        mon.mark("b")
        time.sleep(0.05)
    fig = plot_monitor(mon, title="two phases")
    ax = fig.axes[0]
    assert ax.get_title() == "two phases"
    assert [t.get_text().strip() for t in ax.texts] == ["a", "b"]


def test_monitor_without_cpu_affinity_or_io_counters(monkeypatch):
    # macOS: no cpu_affinity, no io_counters; the monitor still samples.
    monkeypatch.delattr(psutil.Process, "io_counters", raising=False)
    with ResourceMonitor(interval=0.02, io=True) as mon:
        time.sleep(0.05)
    assert mon.peak_rss_bytes > 0


def test_samples_phases_and_summary():
    with ResourceMonitor(interval=0.02) as mon:
        mon.mark("small")
        time.sleep(0.15)
        mon.mark("big")
        block = bytearray(60 * MB)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
        time.sleep(0.15)
    del block
    s = mon.summary()
    assert s.samples >= 5
    assert set(s.phases) == {"small", "big"}
    assert s.phases["big"]["peak_rss_bytes"] - s.phases["small"]["peak_rss_bytes"] > 50 * MB
    # A phase lasts from its mark to the next: at least the sleep, more if the machine is busy.
    assert 0.1 <= s.phases["small"]["seconds"] <= 0.5
    ts = mon.timeseries()
    assert len(ts["t"]) == len(ts["rss_bytes"]) == s.samples
    assert ts["t"] == sorted(ts["t"])
    assert s.peak_rss_bytes == max(ts["rss_bytes"]) == mon.peak_rss_bytes


def test_cpu_seconds_of_busy_block():
    with ResourceMonitor(interval=0.05) as mon:
        t_end = time.process_time() + 0.4
        while time.process_time() < t_end:
            pass
    assert 0.3 < mon.cpu_seconds < 1.0


def test_phase_cpu_is_cpu_time_over_wall_time_with_its_resolution():
    """Per phase: the tree's CPU seconds between its marks over its seconds, with the error the
    operating system's CPU-time ticks allow; not a mean of per-sample percentages."""
    with ResourceMonitor(interval=0.03) as mon:
        mon.mark("busy")
        t_end = time.process_time() + 0.25
        while time.process_time() < t_end:
            pass
        mon.mark("idle")
        time.sleep(0.25)
        mon.mark("blip")  # a phase of a few ms: far below what ticks resolve
        t_end = time.perf_counter() + 0.003  # by the clock: a busy machine stretches CPU time's
        while time.perf_counter() < t_end:
            pass
    s = mon.summary()
    busy, idle, blip = (s.phases[k] for k in ("busy", "idle", "blip"))
    tick = cpu_tick_seconds()
    # the busy loop's 0.25 CPU seconds, plus what the sampling thread used, give or take a tick
    # (read as a difference of tick counts: 0.25 - 0.01 came out as 0.23999999999999488)
    assert 0.25 - tick - 1e-9 <= busy["cpu_seconds"] <= 0.3
    assert busy["mean_cpu_percent"] == pytest.approx(100 * busy["cpu_seconds"] / busy["seconds"])
    assert busy["mean_cpu_percent"] <= 100 + busy["cpu_percent_resolution"] + 10
    assert idle["mean_cpu_percent"] <= idle["cpu_percent_resolution"] + 10
    # one tick per process of the tree (this one, and any helper it started, such as
    # multiprocessing's resource tracker), over the phase's seconds
    per_process = 100 * tick / busy["seconds"]
    processes = busy["cpu_percent_resolution"] / per_process
    assert processes >= 1 and processes == pytest.approx(round(processes))
    # one tick per process over the phase's own seconds, whatever the machine did meanwhile;
    # a phase shorter than a tick cannot be resolved, and says so
    assert blip["cpu_percent_resolution"] == pytest.approx(100 * tick * round(processes) / blip["seconds"], rel=0.05)
    if blip["seconds"] < tick:  # 3 ms unless the test was preempted for a tick
        assert blip["cpu_percent_resolution"] > 100, "a few-ms phase cannot be resolved: it says so"
    # the phases' CPU seconds add up to the block's (the phases cover it from the first mark)
    assert sum(ph["cpu_seconds"] for ph in s.phases.values()) == pytest.approx(s.cpu_seconds,
                                                                             abs=2 * tick)
    assert s.mean_cpu_percent == pytest.approx(100 * s.cpu_seconds / s.seconds)


def test_block_that_raises_stops_the_sampler():
    before = len(monitor_threads())
    with pytest.raises(ZeroDivisionError), ResourceMonitor(interval=0.01) as mon:
        time.sleep(0.05)
        raise ZeroDivisionError("inside the block")
    assert not mon.running
    assert len(monitor_threads()) == before
    assert len(mon.samples) >= 2  # what was sampled before the error is kept


def test_nested_monitors():
    with ResourceMonitor(interval=0.02) as outer:
        outer.mark("outer")
        with ResourceMonitor(interval=0.02) as inner:
            inner.mark("inner")
            time.sleep(0.1)
        time.sleep(0.1)
    assert not outer.running and not inner.running
    assert outer.summary().seconds > inner.summary().seconds
    assert "inner" not in outer.summary().phases
    assert len(outer.samples) > len(inner.samples)


def test_child_memory_counts_and_exit_midway_keeps_samples():
    proc = subprocess.Popen(
        [sys.executable, "-c", ALLOC_CHILD, "200", "0.4"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with ResourceMonitor(interval=0.05, include_children=True) as mon:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
            proc.wait(timeout=30)  # the child exits while the monitor samples
            time.sleep(0.2)
    finally:
        proc.kill()
    rise = mon.summary().peak_rise_bytes
    assert 180 * MB < rise < 240 * MB, f"peak rise {rise / MB:.0f} MB for a 200 MB child"
    assert mon.timeseries()["rss_bytes"][-1] < mon.peak_rss_bytes - 150 * MB  # it is gone


def test_children_ignored_when_asked():
    proc = subprocess.Popen(
        [sys.executable, "-c", ALLOC_CHILD, "150", "0.3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with ResourceMonitor(interval=0.05, include_children=False) as mon:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            proc.stdout.readline()
    finally:
        proc.kill()
        proc.wait()
    assert mon.summary().peak_rise_bytes < 50 * MB


def test_listener_called_and_broken_listener_dropped():
    seen = []

    def broken(sample):
        raise RuntimeError("a view bug")

    with ResourceMonitor(interval=0.02) as mon:
        mon.add_listener(seen.append)
        mon.add_listener(broken)
        time.sleep(0.15)
    assert len(seen) >= 3
    assert seen[-1] is mon.samples[-1]


def test_summary_before_start_and_restart():
    mon = ResourceMonitor()
    with pytest.raises(RuntimeError, match="no samples"):
        mon.summary()
    mon.start()
    with pytest.raises(RuntimeError, match="already running"):
        mon.start()
    mon.stop()


def test_live_view_is_harmless_headless(monkeypatch):
    from mlscale_lab.views.monitor import LiveMonitorView, live_view

    monkeypatch.setenv("MLSCALE_HEADLESS", "1")
    with ResourceMonitor(interval=0.02) as mon:
        assert live_view(mon) is None
        time.sleep(0.05)
    assert mon.summary().samples >= 2
    # Built directly (not displayed), the view follows the samples.
    pytest.importorskip("ipywidgets")
    with ResourceMonitor(interval=0.02) as mon:
        view = LiveMonitorView(mon, memory_limit_bytes=4 * 1024**3, fps=100)
        time.sleep(0.2)
    assert view.gauge.value == pytest.approx(mon.samples[-1].rss_bytes / MB, rel=0.2)
    assert "<polyline" in view.timeline.value and "MB" in view.label.value


def test_a_phase_shorter_than_the_interval_still_has_a_reading():
    # A long interval: no sampling-thread tick can land inside the short phases.
    with ResourceMonitor(interval=5.0) as mon:
        mon.mark("short a")
        sum(range(1000))
        mon.mark("short b")
        sum(range(1000))
    phases = mon.summary().phases
    assert {"short a", "short b"} <= set(phases)
    assert all(ph["samples"] >= 1 for ph in phases.values())


def test_live_view_shows_a_new_phase_despite_its_frame_rate():
    pytest.importorskip("ipywidgets")
    from mlscale_lab.constraints import Sample
    from mlscale_lab.views.monitor import LiveMonitorView

    view = LiveMonitorView(ResourceMonitor(), memory_limit_bytes=4 * 1024**3, fps=1)
    view.update(Sample(0.0, 100 * MB, 50.0, phase="fit"))
    view.update(Sample(0.1, 120 * MB, 50.0, phase="fit"))  # within 1 s: throttled
    assert "120 / " not in view.label.value
    view.update(Sample(0.2, 130 * MB, 50.0, phase="predict"))  # a new phase always shows
    assert "predict" in view.label.value and "130 / " in view.label.value


def test_children_counted_without_the_proc_fast_path(monkeypatch):
    # macOS and Windows have no /proc/<pid>/task/*/children: psutil finds the tree instead.
    import mlscale_lab._core.processes as proctree

    monkeypatch.setattr(proctree, "_children_from_proc", lambda pid: None)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in proctree.descendant_pids(os.getpid())
        time.sleep(0.3)  # let the child's interpreter load
        child_rss = psutil.Process(child.pid).memory_info().rss
        with ResourceMonitor(interval=0.02) as mon:
            time.sleep(0.1)
        with ResourceMonitor(interval=0.02, include_children=False) as alone:
            time.sleep(0.1)
        assert mon.peak_rss_bytes - alone.peak_rss_bytes > child_rss / 2, "the child should count"
    finally:
        child.kill()
        child.wait()


def test_a_fork_counts_the_pages_it_owns_never_a_copy_of_its_parent():
    # A fork shares every page of its parent copy-on-write, whatever its age: summing RSS
    # counted a big parent twice (a 1.07 GB pytest process gave a 1.87 GB tree). The old rule
    # left a fork out while it was younger than 0.5 s by psutil's create_time(), which is off by
    # up to a second (the boot time it adds is whole seconds), so on some machines every fork
    # was "old". The fork now counts the pages only it maps: none while it sleeps, at any age;
    # what it writes once it works.
    import multiprocessing

    ballast = np.ones(500 * MB // 8)  # a big parent, like a notebook kernel or a long test run
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()

    def work():
        os.read(go_r, 1)
        block = np.ones(150 * MB // 8)  # the worker's own pages
        os.write(done_w, b"x")
        os.read(go_r, 1)
        del block

    worker = multiprocessing.get_context("fork").Process(target=work)
    try:
        with ResourceMonitor(interval=0.02) as mon:
            worker.start()
            time.sleep(1.0)  # older than any "not yet exec'd" age
            idle_peak = mon.peak_rss_bytes
            os.write(go_w, b"x")
            assert os.read(done_r, 1) == b"x"
            time.sleep(0.3)
            busy_peak = mon.peak_rss_bytes
            os.write(go_w, b"x")
            worker.join(timeout=10)
    finally:
        if worker.is_alive():
            worker.kill()
            worker.join()
        for fd in (go_r, go_w, done_r, done_w):
            os.close(fd)
    base = mon.summary().start_rss_bytes  # this process and any child an earlier test left
    assert idle_peak < base + 50 * MB, (
        f"an idle fork added {(idle_peak - base) / MB:.0f} MB: it counted as a copy of its 500 MB parent")
    rise = busy_peak - base
    assert 130 * MB < rise < 250 * MB, f"a fork that wrote 150 MB added {rise / MB:.0f} MB"
    del ballast


def test_lab01s_cpu_checkpoint_fails_on_a_mean_of_samples_or_a_resolution_finer_than_a_tick():
    """Lab 01's monitor checkpoint holds a real summary; a phase's CPU % taken as the mean of its
    samples' percentages (a sample at a mark counts as much as a full interval), or claimed
    finer than one CPU-time tick over the phase, fails it."""
    import dataclasses

    from checkpoints import run_checkpoint

    with ResourceMonitor(interval=0.02) as mon:
        for phase in ("forest fit", "forest predict", "epoch 0"):
            mon.mark(phase)
            t_end = time.process_time() + 0.03
            while time.process_time() < t_end:
                pass
    summary = mon.summary()
    run_checkpoint("01", "lab01-8", {"summary": summary})

    def broken(**change):
        phases = {k: dict(v) for k, v in summary.phases.items()}
        phases["forest predict"].update(change)
        return {"summary": dataclasses.replace(summary, phases=phases)}

    ph = summary.phases["forest predict"]
    with pytest.raises(AssertionError, match="CPU seconds over its wall seconds"):
        run_checkpoint("01", "lab01-8", broken(mean_cpu_percent=ph["mean_cpu_percent"] + 37.5))
    with pytest.raises(AssertionError, match="no finer than one tick"):
        run_checkpoint("01", "lab01-8", broken(cpu_percent_resolution=0.0))
