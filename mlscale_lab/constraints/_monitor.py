"""Sample memory, CPU and I/O of a process tree in a background thread.

A phase's CPU % is the tree's CPU seconds between its marks over its wall time (a mean of
per-sample percentages would let a mark's few-ms sample count as much as a full one). CPU time
comes in ticks (10 ms on Linux), so it is known to within one tick per process over the phase's
seconds (``cpu_percent_resolution``): a 13 ms phase on one thread reads 23 % to 177 %.

Measurement only: drawing a monitor is :func:`mlscale_lab.views.monitor.plot_monitor`'s job.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field

import psutil

from mlscale_lab._core.memory import ProcessTree
from mlscale_lab.validation import check_int, check_positive

__all__ = ["MonitorSummary", "ResourceMonitor", "Sample", "cpu_tick_seconds"]


def cpu_tick_seconds() -> float:
    """Resolution of a process's CPU time as the OS reports it: Linux's clock tick (10 ms),
    Windows' timer tick (1/64 s), 10 ms assumed elsewhere.

    >>> 0 < cpu_tick_seconds() <= 0.02
    True
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(ValueError, OSError, AttributeError):
            return 1.0 / os.sysconf("SC_CLK_TCK")
    return 1 / 64 if sys.platform == "win32" else 0.01


@dataclass(frozen=True)
class Sample:
    """One reading of the monitored process tree.

    Examples
    --------
    >>> Sample(t=0.5, rss_bytes=10_000_000, cpu_percent=95.0, phase="fit").phase
    'fit'
    """

    t: float  #: seconds since the monitor started
    rss_bytes: int  #: resident memory of the whole tree
    cpu_percent: float  #: CPU use since the last sample, in percent of one CPU (200 = two busy)
    read_bytes: int | None = None  #: cumulative bytes read by the tree (when ``io=True``)
    write_bytes: int | None = None  #: cumulative bytes written by the tree (when ``io=True``)
    phase: str = ""  #: label set by the last :meth:`ResourceMonitor.mark`
    cpu_seconds: float = 0.0  #: CPU seconds the tree used since the monitor started


@dataclass
class MonitorSummary:
    """What a monitored block used (from :meth:`ResourceMonitor.summary`).

    Attributes
    ----------
    seconds : float
        Wall time from start to stop.
    samples : int
        Readings taken.
    start_rss_bytes, peak_rss_bytes : int
        Resident memory of the tree at the first reading, and the highest reading.
    peak_rise_bytes : int
        ``peak_rss_bytes - start_rss_bytes``: what the block itself added.
    mean_cpu_percent : float
        CPU use over the block, in percent of one CPU: ``100 * cpu_seconds / seconds``.
    cpu_seconds : float
        CPU seconds (user + system) the tree used during the block.
    phases : dict
        Per phase label: ``seconds``, ``peak_rss_bytes``, ``samples``, ``cpu_seconds`` (the
        tree's CPU time over the phase), ``mean_cpu_percent`` (``100 * cpu_seconds /
        seconds``) and ``cpu_percent_resolution`` (its error from the CPU-time ticks alone:
        one tick per process, over the phase's seconds).
    cpu_tick_seconds : float
        The operating system's CPU-time resolution (:func:`cpu_tick_seconds`).

    Examples
    --------
    >>> with ResourceMonitor(interval=0.05) as mon:
    ...     _ = sum(range(10_000))
    >>> s = mon.summary()
    >>> s.samples >= 2 and s.peak_rss_bytes >= s.start_rss_bytes
    True
    """

    seconds: float
    samples: int
    start_rss_bytes: int
    peak_rss_bytes: int
    peak_rise_bytes: int
    mean_cpu_percent: float
    cpu_seconds: float
    phases: dict[str, dict] = field(default_factory=dict)
    cpu_tick_seconds: float = 0.01


class ResourceMonitor:
    """Sample resident memory, CPU and (optionally) I/O of a process tree while a block runs.

    Parameters
    ----------
    interval : float, default 0.1
        Seconds between samples (10 Hz by default). Must be > 0.
    include_children : bool, default True
        Count the children of the process too (workers, kernels, subprocesses).
    pid : int, optional
        The process to watch; default this one.
    io : bool, default False
        Also sample cumulative bytes read and written (not available on macOS).

    Examples
    --------
    >>> with ResourceMonitor(interval=0.05) as mon:
    ...     mon.mark("allocate")
    ...     block = bytearray(20_000_000)
    >>> mon.peak_rss_bytes > 0
    True
    >>> "allocate" in mon.summary().phases
    True
    """

    def __init__(self, interval: float = 0.1, include_children: bool = True, *,
                 pid: int | None = None, io: bool = False):
        self.interval = check_positive("ResourceMonitor", "interval", interval,
                                       hint="seconds between samples, e.g. 0.1")
        self.include_children = bool(include_children)
        self.pid = os.getpid() if pid is None else check_int("ResourceMonitor", "pid", pid, low=1)
        self.io = bool(io)
        self.samples: list[Sample] = []
        self._marks: list[tuple[float, str]] = []
        self._mark_cpu: list[float] = []  # the tree's CPU seconds at each mark
        self._tree_size = 1  # the most processes seen in one sample (for the resolution)
        self._phase = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # One sample at a time: the sampling thread and mark() both take samples.
        self._sample_lock = threading.Lock()
        self._tree: ProcessTree | None = None
        self._cpu_first: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._t0 = 0.0
        self._t_end: float | None = None
        self._last_t = 0.0
        self._last_cpu_total = 0.0
        self._listeners: list = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> ResourceMonitor:
        """Take a first sample and start sampling in a background thread; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("this ResourceMonitor is already running; create a new one")
        try:
            self._tree = ProcessTree(self.pid, include_children=self.include_children)
        except psutil.NoSuchProcess:
            raise ValueError(f"ResourceMonitor(pid={self.pid}): expected the id of a running "
                             f"process, got {self.pid} (no such process)") from None
        self._t0 = time.perf_counter()
        self._last_t = 0.0
        self._last_cpu_total = self._read_tree(first=True)[1]
        self._take_sample()
        self._thread = threading.Thread(
            target=self._run, name="mlscale-ResourceMonitor", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> ResourceMonitor:
        """Stop sampling and take a final sample; returns ``self`` (safe to call twice)."""
        if self._thread is None:
            return self
        self._stop.set()
        self._thread.join()
        self._take_sample()  # a final reading, so short blocks have at least two
        self._t_end = time.perf_counter()
        return self

    def __enter__(self) -> ResourceMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the sampling thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- labelling ---------------------------------------------------------------------------
    def mark(self, phase: str) -> None:
        """Label the samples from now on with ``phase`` (an epoch, ``"fit"``, ``"predict"``).

        While the monitor runs, a sample is taken at the boundary (labelled with the phase that
        ends), so a phase shorter than ``interval`` still has a reading of its own.
        """
        sample = self._take_sample() if self.running else None
        t = sample.t if sample is not None else 0.0
        with self._lock:
            self._phase = str(phase)
            self._marks.append((t, self._phase))
            self._mark_cpu.append(sample.cpu_seconds if sample is not None else 0.0)

    def add_listener(self, callback) -> None:
        """Call ``callback(sample)`` from the sampling thread after every sample (for live views)."""
        self._listeners.append(callback)

    # -- sampling ----------------------------------------------------------------------------
    def _read_tree(self, first: bool = False) -> tuple[int, float, int | None, int | None]:
        rss = 0
        cpu_total = 0.0
        rb: int | None = 0 if self.io else None
        wb: int | None = 0 if self.io else None
        counted = 0
        for p in self._tree.refresh():
            try:
                with p.oneshot():
                    # A fork that has not exec'd adds only its own pages, not a copy of its parent.
                    rss += self._tree.resident_bytes(p)
                    ct = p.cpu_times()
                    # Not children_user/children_system: a reaped child would then count twice,
                    # once from its own samples and once in its parent's total.
                    cpu = ct.user + ct.system
                    if self.io:
                        try:
                            io = p.io_counters()
                            rb += io.read_bytes
                            wb += io.write_bytes
                        except (AttributeError, psutil.AccessDenied):
                            pass
            except psutil.Error:  # exited between listing and reading: keep what we had
                self._tree.forget(p.pid)
                continue
            if p.pid not in self._cpu_first:
                # A child born after the monitor started used all of its CPU inside the block.
                born_inside = (not first) and p.pid != self.pid
                self._cpu_first[p.pid] = 0.0 if born_inside else cpu
            self._cpu_last[p.pid] = cpu
            cpu_total += cpu
            counted += 1
        self._tree_size = max(self._tree_size, counted)
        return rss, cpu_total, rb, wb

    def _take_sample(self) -> Sample:
        with self._sample_lock:
            return self._take_sample_locked()

    def _take_sample_locked(self) -> Sample:
        rss, cpu_total, rb, wb = self._read_tree()
        t = time.perf_counter() - self._t0
        dt = t - self._last_t
        cpu_pct = max(0.0, (cpu_total - self._last_cpu_total) / dt * 100.0) if dt > 0 else 0.0
        self._last_t, self._last_cpu_total = t, cpu_total
        with self._lock:
            sample = Sample(t, rss, cpu_pct, rb, wb, self._phase, self.cpu_seconds)
            self.samples.append(sample)
        for callback in list(self._listeners):
            try:
                callback(sample)
            except Exception:  # a broken view must not stop the measurement
                self._listeners.remove(callback)
        return sample

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._tree.root.is_running():  # the watched process itself exited
                break
            try:
                self._take_sample()
            except psutil.NoSuchProcess:
                break

    # -- results -----------------------------------------------------------------------------
    @property
    def peak_rss_bytes(self) -> int:
        """Highest resident memory of the tree seen in any sample."""
        with self._lock:
            return max((s.rss_bytes for s in self.samples), default=0)

    @property
    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the tree used during the block."""
        return sum(self._cpu_last[pid] - self._cpu_first.get(pid, 0.0) for pid in self._cpu_last)

    def timeseries(self) -> dict[str, list]:
        """The samples as columns: ``t``, ``rss_bytes``, ``cpu_percent``, ``phase`` (and I/O)."""
        with self._lock:
            samples = list(self.samples)
        cols = {
            "t": [s.t for s in samples],
            "rss_bytes": [s.rss_bytes for s in samples],
            "cpu_percent": [s.cpu_percent for s in samples],
            "phase": [s.phase for s in samples],
        }
        if self.io:
            cols["read_bytes"] = [s.read_bytes for s in samples]
            cols["write_bytes"] = [s.write_bytes for s in samples]
        return cols

    @property
    def marks(self) -> list[tuple[float, str]]:
        """``(seconds since start, phase)`` for every :meth:`mark`."""
        return list(self._marks)

    def summary(self) -> MonitorSummary:
        """Totals for the block and, per phase, its duration, peak memory and mean CPU."""
        with self._lock:
            samples = list(self.samples)
        if not samples:
            raise RuntimeError(
                "no samples yet: use the monitor as a context manager or call start()"
            )
        end = (self._t_end - self._t0) if self._t_end else samples[-1].t
        tick = cpu_tick_seconds()
        phases: dict[str, dict] = {}
        for s in samples:
            if not s.phase:
                continue
            ph = phases.setdefault(s.phase, {"peak_rss_bytes": 0, "samples": 0, "seconds": 0.0,
                                             "cpu_seconds": 0.0})
            ph["peak_rss_bytes"] = max(ph["peak_rss_bytes"], s.rss_bytes)
            ph["samples"] += 1
        # A phase runs from its mark to the next mark (or the end); its CPU is the tree's CPU
        # time between the two, read at the samples taken at those boundaries.
        with self._lock:
            marks, mark_cpu = list(self._marks), list(self._mark_cpu)
        bounds = list(zip(marks, mark_cpu, strict=True)) + [((end, ""), samples[-1].cpu_seconds)]
        for ((t0, name), c0), ((t1, _), c1) in zip(bounds, bounds[1:], strict=False):
            if name in phases:
                phases[name]["seconds"] += t1 - t0
                phases[name]["cpu_seconds"] += max(0.0, c1 - c0)
        for ph in phases.values():
            secs = ph["seconds"]
            ph["mean_cpu_percent"] = 100.0 * ph["cpu_seconds"] / secs if secs > 0 else 0.0
            # each reading is truncated to a tick per process: the difference is off by < 1 tick
            ph["cpu_percent_resolution"] = (100.0 * tick * self._tree_size / secs
                                            if secs > 0 else float("inf"))
        cpu_seconds = self.cpu_seconds
        return MonitorSummary(
            seconds=end,
            samples=len(samples),
            start_rss_bytes=samples[0].rss_bytes,
            peak_rss_bytes=self.peak_rss_bytes,
            peak_rise_bytes=self.peak_rss_bytes - samples[0].rss_bytes,
            mean_cpu_percent=100.0 * cpu_seconds / end if end > 0 else 0.0,
            cpu_seconds=cpu_seconds,
            phases=phases,
            cpu_tick_seconds=tick,
        )
