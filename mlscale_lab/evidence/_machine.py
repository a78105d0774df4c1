"""Is this machine quiet enough to trust a timing? Watched while the timing is taken.

A measurement on a laptop with a browser open, a Binder pod on a crowded node or a CI runner
next to another job is a measurement of the neighbours too. :class:`MachineCheck` samples, in a
background thread while the block inside it runs:

- **CPU taken by other processes**: the CPUs' busy time minus what this process and everything
  it started used, and the idle capacity left; other processes only slow us down when they
  leave no CPU idle;
- **steal**: time the hypervisor gave this virtual machine's CPUs to other guests;
- **CPU quota throttling**: time the container's cgroup held this process back;
- and any outside signal the measurement itself adds (:meth:`MachineCheck.flag`), such as the
  load generator sending late.

Its :class:`MachineReport` says whether the machine can be trusted, and if not, why, in words
a learner can act on. The evidence core's :func:`~mlscale_lab.evidence.judge` takes it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

import psutil

from mlscale_lab._core.cgroups import available_cpus, cpu_throttled_seconds
from mlscale_lab._core.processes import descendant_pids
from mlscale_lab.validation import check_positive

__all__ = ["MachineCheck", "MachineReport", "machine_cpus"]

# Thresholds of an untrusted machine. Other processes must take a quarter of a CPU on average
# *and* leave less than half a CPU idle (on a 64-core host others may run all day without
# touching our share); or take half a CPU with none idle in over a fifth of the samples (a
# burst during a short timing). Steal and throttling: over 5 % of the time.
OTHERS_CORES_LIMIT = 0.25
IDLE_CORES_FLOOR = 0.5
BURST_SHARE_LIMIT = 0.2
STEAL_LIMIT = 0.05
THROTTLE_LIMIT = 0.05

_BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq")


def machine_cpus() -> float:
    """CPUs this process may use: the affinity set, the cgroup quota and ``CPU_LIMIT``, tightest.

    >>> machine_cpus() > 0
    True
    """
    return available_cpus()[0]


@dataclass(frozen=True)
class MachineReport:
    """What the machine did while a measurement ran.

    Attributes
    ----------
    trusted : bool
        No sign that something outside the measurement set its numbers.
    reasons : tuple of str
        Why not, in words (empty when trusted).
    seconds : float
        How long the check watched.
    cpus : float
        CPUs this process may use (:func:`machine_cpus`).
    ours_cores, others_cores, idle_cores : float
        Average CPUs used by this process tree, by everything else, and left idle (on the CPUs
        this process may run on).
    burst_share : float
        Share of samples in which others took half a CPU or more and left none idle.
    steal_fraction : float
        Share of CPU time stolen by the hypervisor (0 where not reported).
    throttled_fraction : float
        Seconds of cgroup CPU throttling per second watched (0 where not reported).
    """

    trusted: bool
    reasons: tuple[str, ...]
    seconds: float
    cpus: float
    ours_cores: float
    others_cores: float
    idle_cores: float
    burst_share: float
    steal_fraction: float
    throttled_fraction: float

    def __str__(self) -> str:
        state = "quiet enough to trust" if self.trusted else "not to be trusted: " + "; ".join(self.reasons)
        return (f"machine {state} (over {self.seconds:.1f} s: this measurement used "
                f"{self.ours_cores:.2f} CPUs, other processes {self.others_cores:.2f}, idle "
                f"{self.idle_cores:.2f}, of {self.cpus:g} available)")

    def as_record(self) -> dict:
        """A plain dict for :func:`mlscale_lab.record`."""
        d = asdict(self)
        d["reasons"] = list(self.reasons)
        return d


class _TreeCPU:
    """CPU seconds used by a process and its descendants, counting the ones that have ended."""

    def __init__(self, root: int):
        self.root = root
        self._procs: dict[int, psutil.Process] = {}
        self._last: dict[int, float] = {}
        self._start: dict[int, float] = {}

    def _proc(self, pid: int) -> psutil.Process | None:
        proc = self._procs.get(pid)
        if proc is None:
            try:
                proc = psutil.Process(pid)
            except psutil.Error:
                return None
            self._procs[pid] = proc
        return proc

    def total(self, *, first: bool = False) -> float:
        for pid in [self.root, *descendant_pids(self.root)]:
            proc = self._proc(pid)
            if proc is None:
                continue
            try:
                t = proc.cpu_times()
                used = t.user + t.system
            except psutil.Error:
                continue
            if pid not in self._start:
                # a process already running when the check began only counts from then on;
                # one that started since counts from its start
                self._start[pid] = used if first else 0.0
            self._last[pid] = used
        return sum(self._last[p] - self._start[p] for p in self._last)


def _cpu_ids() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _system_times(ids: list[int] | None) -> tuple[float, float, float, float]:
    """(busy, idle, steal, total) CPU seconds since boot over the CPUs in ``ids`` (all if None)."""
    per_cpu = psutil.cpu_times(percpu=True)
    if ids is not None and max(ids, default=-1) < len(per_cpu):
        per_cpu = [per_cpu[i] for i in ids]
    busy = idle = steal = total = 0.0
    for t in per_cpu:
        b = sum(getattr(t, f, 0.0) for f in _BUSY_FIELDS)
        i = t.idle + getattr(t, "iowait", 0.0)
        s = getattr(t, "steal", 0.0)
        busy, idle, steal, total = busy + b, idle + i, steal + s, total + b + i + s
    return busy, idle, steal, total


class MachineCheck:
    """Watch the machine while the block inside ``with`` measures; read :attr:`report` after.

    Parameters
    ----------
    interval : float, default 0.1
        Seconds between samples (each costs well under a millisecond of CPU).
    pid : int, optional
        The root of "our" process tree (default: this process; its children, a model server's
        workers or a load generator, count as ours).

    Examples
    --------
    >>> with MachineCheck() as mc:
    ...     _ = sum(i * i for i in range(200_000))
    >>> mc.report.seconds > 0 and mc.report.cpus > 0
    True
    >>> mc.flag("the load generator sent 30 % of requests over 5 ms late")
    >>> mc.report.trusted
    False
    """

    def __init__(self, *, interval: float = 0.1, pid: int | None = None):
        self.interval = check_positive("MachineCheck", "interval", interval)
        self._tree = _TreeCPU(os.getpid() if pid is None else int(pid))
        self._ids = _cpu_ids()
        self._flags: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._samples: list[tuple[float, float, float, float, float, float]] = []
        self._report: MachineReport | None = None
        self._throttle0: float | None = None

    def _sample(self, *, first: bool = False) -> None:
        ours = self._tree.total(first=first)
        busy, idle, steal, total = _system_times(self._ids)
        self._samples.append((time.perf_counter(), ours, busy, idle, steal, total))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MachineCheck:
        self._report = None
        self._samples.clear()
        self._throttle0 = cpu_throttled_seconds()
        self._sample(first=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mlscale-machine-check", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        throttle1 = cpu_throttled_seconds()
        throttled = (throttle1 - self._throttle0
                     if throttle1 is not None and self._throttle0 is not None else 0.0)
        self._report = self._summarise(max(0.0, throttled))

    def flag(self, reason: str) -> None:
        """Add an outside reason not to trust the measurement (the caller's own check)."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"MachineCheck.flag(reason={reason!r}): expected a sentence saying "
                             "what went wrong")
        self._flags.append(reason.strip())
        if self._report is not None:
            r = self._report
            self._report = MachineReport(False, (*r.reasons, reason.strip()), r.seconds, r.cpus,
                                         r.ours_cores, r.others_cores, r.idle_cores,
                                         r.burst_share, r.steal_fraction, r.throttled_fraction)

    @property
    def report(self) -> MachineReport:
        """The report of the last ``with`` block (raises while it is still running)."""
        if self._report is None:
            raise RuntimeError("MachineCheck.report: read it after the `with` block has ended")
        return self._report

    def _summarise(self, throttled_s: float) -> MachineReport:
        s = self._samples
        seconds = max(s[-1][0] - s[0][0], 1e-9)
        ours = max(0.0, s[-1][1] - s[0][1])
        busy, idle = s[-1][2] - s[0][2], s[-1][3] - s[0][3]
        steal, total = s[-1][4] - s[0][4], s[-1][5] - s[0][5]
        others = max(0.0, busy - ours)
        bursts = 0
        for a, b in zip(s, s[1:], strict=False):
            dt = max(b[0] - a[0], 1e-9)
            other_i = max(0.0, (b[2] - a[2]) - (b[1] - a[1])) / dt
            if other_i >= 0.5 and (b[3] - a[3]) / dt < 0.25:
                bursts += 1
        burst_share = bursts / max(1, len(s) - 1)
        report = dict(seconds=seconds, cpus=machine_cpus(), ours_cores=ours / seconds,
                      others_cores=others / seconds, idle_cores=max(0.0, idle) / seconds,
                      burst_share=burst_share,
                      steal_fraction=steal / total if total > 0 else 0.0,
                      throttled_fraction=throttled_s / seconds)
        reasons = list(self._reasons(**report))
        return MachineReport(not reasons, tuple(reasons), **report)

    def _reasons(self, *, seconds, cpus, ours_cores, others_cores, idle_cores, burst_share,
                 steal_fraction, throttled_fraction):
        if others_cores > OTHERS_CORES_LIMIT and idle_cores < IDLE_CORES_FLOOR:
            yield (f"other processes took {others_cores:.2f} CPUs on average and left "
                   f"{idle_cores:.2f} idle (close other programs, or run again later)")
        elif burst_share > BURST_SHARE_LIMIT:
            yield (f"other processes took half a CPU or more with none idle during "
                   f"{burst_share * 100:.0f} % of the measurement")
        if steal_fraction > STEAL_LIMIT:
            yield (f"the hypervisor took {steal_fraction * 100:.0f} % of the CPU time (steal: "
                   "a crowded virtual machine host)")
        if throttled_fraction > THROTTLE_LIMIT:
            yield (f"the container's CPU quota held this process back {throttled_fraction * 100:.0f} % "
                   f"of the time ({cpus:g} CPUs allowed)")
        yield from self._flags

