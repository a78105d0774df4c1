"""What the container enforces: cgroup v1 and v2 files, and the limits Binder announces.

``psutil`` reports the *host*; a container (Binder, Docker, Kubernetes) enforces its limits in
cgroup files. This module reads them, once for the package: the machine budget, the harness's
confinement and the evidence core's machine check all ask here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import psutil

from mlscale_lab._core.environment import CPU_LIMIT_ENV, MEM_LIMIT_ENV
from mlscale_lab.validation import check_choice

__all__ = ["CGROUP_ROOT", "affinity_cpus", "available_cpus", "cgroup_cpu_quota", "cgroup_dirs",
           "cgroup_memory_limit", "cgroup_memory_peak", "cgroup_oom_kills", "cgroup_path",
           "cpu_throttled_seconds", "env_limit", "read_text"]

#: Where Linux mounts the cgroup file systems.
CGROUP_ROOT = Path("/sys/fs/cgroup")
# A cgroup v1 "no limit" is a huge page-aligned number, not a sentinel string.
_V1_UNLIMITED = 1 << 60
_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "io")


def read_text(path: Path) -> str | None:
    """The stripped text of a small system file, or None where it is missing or unreadable."""
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


def cgroup_path(controller: str | None = None, *, proc_cgroup: str | None = None) -> str:
    """This process's cgroup for ``controller``, as ``/proc/self/cgroup`` names it.

    The one reader of ``/proc/self/cgroup`` in the package: the machine budget and the
    harness's confinement both ask it where they sit in the cgroup tree.

    Parameters
    ----------
    controller : str, optional
        A cgroup v1 controller (``"memory"``, ``"cpu"``); None (default) asks for the cgroup v2
        unified hierarchy (the ``0::`` line).
    proc_cgroup : str, optional
        The content of ``/proc/self/cgroup`` to parse instead of reading it (for tests).

    Returns
    -------
    str
        The path relative to the cgroup mount, starting with ``/``; ``"/"`` where the file
        is missing (macOS, Windows) or names no such controller.

    Examples
    --------
    >>> cgroup_path(proc_cgroup="0::/user.slice/pod\\n")
    '/user.slice/pod'
    >>> cgroup_path("memory", proc_cgroup="4:cpu,cpuacct:/a\\n3:memory:/b\\n")
    '/b'
    >>> cgroup_path("memory", proc_cgroup="")
    '/'
    """
    if controller is not None:
        check_choice("cgroup_path", "controller", controller, _V1_CONTROLLERS,
                     hint="pass None for the cgroup v2 unified hierarchy")
    if proc_cgroup is None:
        proc_cgroup = read_text(Path("/proc/self/cgroup"))
    for line in (proc_cgroup or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if controller is None and hierarchy == "0" and controllers == "":
            return path or "/"
        if controller is not None and controller in controllers.split(","):
            return path or "/"
    return "/"


def cgroup_dirs(cgroup_root: Path, proc_cgroup: str | None, controller: str | None) -> list[Path]:
    """Directories from this process's cgroup up to the root, innermost first."""
    base = cgroup_root if controller is None else cgroup_root / controller
    v1_name = None if controller is None else controller.split(",")[0]
    current = Path(cgroup_path(v1_name, proc_cgroup=proc_cgroup or ""))
    dirs = []
    while True:
        dirs.append(base / str(current).lstrip("/"))
        if current == current.parent:
            break
        current = current.parent
    return dirs


def cgroup_memory_limit(cgroup_root: Path, proc_cgroup: str | None) -> tuple[int, str, int | None] | None:
    """(limit, source, current usage) from cgroup files, or None when no limit is set."""
    best: tuple[int, str, int | None] | None = None
    for d in cgroup_dirs(cgroup_root, proc_cgroup, None):
        raw = read_text(d / "memory.max")
        if raw and raw != "max" and raw.isdigit():
            usage = read_text(d / "memory.current")
            limit = int(raw)
            if best is None or limit < best[0]:
                best = (limit, "cgroup v2 memory.max", int(usage) if usage and usage.isdigit() else None)
    if best is not None:
        return best
    for d in cgroup_dirs(cgroup_root, proc_cgroup, "memory"):
        raw = read_text(d / "memory.limit_in_bytes")
        if raw and raw.isdigit() and int(raw) < _V1_UNLIMITED:
            usage = read_text(d / "memory.usage_in_bytes")
            limit = int(raw)
            if best is None or limit < best[0]:
                best = (
                    limit,
                    "cgroup v1 memory.limit_in_bytes",
                    int(usage) if usage and usage.isdigit() else None,
                )
    return best


def cgroup_cpu_quota(cgroup_root: Path, proc_cgroup: str | None) -> tuple[float, str] | None:
    """(CPUs, source) of the tightest CPU quota from here up to the root, or None without one."""
    best: tuple[float, str] | None = None
    for d in cgroup_dirs(cgroup_root, proc_cgroup, None):
        raw = read_text(d / "cpu.max")
        if raw:
            quota, _, period = raw.partition(" ")
            if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
                cpus = int(quota) / int(period)
                if best is None or cpus < best[0]:
                    best = (cpus, "cgroup v2 cpu.max")
    if best is not None:
        return best
    for controller in ("cpu", "cpu,cpuacct"):
        for d in cgroup_dirs(cgroup_root, proc_cgroup, controller):
            quota = read_text(d / "cpu.cfs_quota_us")
            period = read_text(d / "cpu.cfs_period_us")
            if quota and period and quota.lstrip("-").isdigit() and period.isdigit():
                q, p = int(quota), int(period)
                if q > 0 and p > 0 and (best is None or q / p < best[0]):
                    best = (q / p, "cgroup v1 cpu.cfs_quota_us")
    return best


def env_limit(env: Mapping[str, str], name: str) -> float | None:
    """A limit Binder or repo2docker sets (``CPU_LIMIT``, ``MEM_LIMIT``); None when unset or 0."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{name}={raw!r} is not a number; set it to a number of "
            f"{'bytes' if name == MEM_LIMIT_ENV else 'CPUs'} (e.g. {name}="
            f"{'2147483648' if name == MEM_LIMIT_ENV else '1'}) or unset it"
        ) from None
    if value <= 0:
        return None  # Binder and repo2docker use 0 for "no limit".
    return value


def affinity_cpus() -> int:
    """Logical CPUs this process may be scheduled on (taskset, cpusets); all of them elsewhere."""
    try:
        return len(psutil.Process().cpu_affinity())  # respects taskset / cpusets
    except (AttributeError, psutil.Error, OSError):  # not on macOS
        return psutil.cpu_count(logical=True) or 1


def available_cpus(*, env: Mapping[str, str] | None = None, cgroup_root: str | os.PathLike = CGROUP_ROOT,
                   proc_cgroup: str | None = None) -> tuple[float, str]:
    """(CPUs, source): the tightest of the affinity set, the cgroup quota and ``CPU_LIMIT``.

    >>> cpus, source = available_cpus(env={"CPU_LIMIT": "0.5"})
    >>> cpus, source
    (0.5, 'CPU_LIMIT')
    """
    env = os.environ if env is None else env
    if proc_cgroup is None:
        proc_cgroup = read_text(Path("/proc/self/cgroup"))  # None off Linux: no cgroups
    cpus, source = float(affinity_cpus()), "host (no container limit found)"
    quota = cgroup_cpu_quota(Path(cgroup_root), proc_cgroup)
    if quota and quota[0] < cpus:
        cpus, source = quota
    limit = env_limit(env, CPU_LIMIT_ENV)
    if limit is not None and limit < cpus:
        cpus, source = limit, CPU_LIMIT_ENV
    return round(cpus, 3), source


def cpu_throttled_seconds(*, cgroup_root: str | os.PathLike = CGROUP_ROOT,
                          proc_cgroup: str | None = None) -> float | None:
    """Seconds this process's cgroup has been held back by its CPU quota, or None if unknown.

    cgroup v2 ``cpu.stat`` ``throttled_usec``, v1 ``cpu.stat`` ``throttled_time`` (ns). A
    counter: take it before and after a measurement; a rise means the quota, not the code, set
    part of the time measured.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()  # removed with the object
    >>> root = Path(tmp.name)
    >>> _ = (root / "cpu.stat").write_text("usage_usec 10\\nnr_throttled 3\\nthrottled_usec 250000\\n")
    >>> cpu_throttled_seconds(cgroup_root=root, proc_cgroup="0::/\\n")
    0.25
    """
    root = Path(cgroup_root)
    if proc_cgroup is None:
        proc_cgroup = read_text(Path("/proc/self/cgroup"))
    if not proc_cgroup:
        return None
    for d in cgroup_dirs(root, proc_cgroup, None):
        value = _stat_field(d / "cpu.stat", "throttled_usec")
        if value is not None:
            return value / 1e6
    for controller in ("cpu", "cpu,cpuacct"):
        for d in cgroup_dirs(root, proc_cgroup, controller):
            value = _stat_field(d / "cpu.stat", "throttled_time")
            if value is not None:
                return value / 1e9
    return None


def cgroup_memory_peak(directory: str | os.PathLike) -> int | None:
    """Peak bytes a cgroup's memory controller charged (page cache included), or None if unknown.

    cgroup v1 ``memory.max_usage_in_bytes``, v2 ``memory.peak`` (Linux 5.19 and later).
    """
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        raw = (read_text(Path(directory) / name) or "").split()
        if raw and raw[0].isdigit():
            return int(raw[0])
    return None


def cgroup_oom_kills(directory: str | os.PathLike) -> int | None:
    """Processes a cgroup's out-of-memory killer ended, or None if unknown.

    The ``oom_kill`` line of v2 ``memory.events`` or of v1 ``memory.oom_control``.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> d = Path(tmp.name)
    >>> _ = (d / "memory.events").write_text("low 0\\nhigh 0\\nmax 4\\noom 1\\noom_kill 1\\n")
    >>> cgroup_oom_kills(d), cgroup_memory_peak(d)
    (1, None)
    """
    for name in ("memory.oom_control", "memory.events"):
        value = _stat_field(Path(directory) / name, "oom_kill")
        if value is not None:
            return value
    return None


def _stat_field(path: Path, field: str) -> int | None:
    for line in (read_text(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if key == field and value.strip().isdigit():
            return int(value)
    return None
