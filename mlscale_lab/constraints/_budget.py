"""The machine as the labs see it: CPUs, memory and disk, container limits included.

``psutil`` reports the *host*: in a container (Binder, Docker, Kubernetes) the host may have
64 GB while the pod is killed at 2 GB. The budget below reads the limits a container really
enforces (cgroup v2 and v1 files) and the variables Binder sets (``CPU_LIMIT``, ``MEM_LIMIT``),
takes the tightest, and says where each figure came from.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from mlscale_lab.validation import check_choice, check_int

__all__ = ["MachineBudget", "cgroup_path", "is_small_machine", "machine_budget"]

# A cgroup v1 "no limit" is a huge page-aligned number, not a sentinel string.
_V1_UNLIMITED = 1 << 60
_V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "io")


@dataclass(frozen=True)
class MachineBudget:
    """CPUs, memory and disk available to this process, and where each limit came from.

    Attributes
    ----------
    cpus : float
        Effective CPUs: the cgroup CPU quota or ``CPU_LIMIT`` if tighter than the host.
    memory_limit_bytes : int
        The memory this process tree may use before it is killed.
    memory_available_bytes : int
        What is left of that limit now.
    disk_free_bytes : int
        Free bytes on the disk holding ``path``.
    limit_source : str
        Where the memory limit came from: ``"cgroup v2 memory.max"``,
        ``"cgroup v1 memory.limit_in_bytes"``, ``"MEM_LIMIT"`` or ``"host (no container limit
        found)"``.
    cpu_source : str
        Where ``cpus`` came from, in the same words.
    host_cpus : int
        Logical CPUs of the host, as ``psutil`` sees it.
    host_memory_bytes : int
        Total memory of the host, as ``psutil`` sees it.
    """

    cpus: float
    memory_limit_bytes: int
    memory_available_bytes: int
    disk_free_bytes: int
    limit_source: str
    cpu_source: str
    host_cpus: int
    host_memory_bytes: int

    @property
    def usable_cpus(self) -> int:
        """Whole CPUs worth starting a worker or thread for (at least 1)."""
        return max(1, math.floor(self.cpus + 1e-9))

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


def _read(path: Path) -> str | None:
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
        proc_cgroup = _read(Path("/proc/self/cgroup"))
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


def _cgroup_dirs(cgroup_root: Path, proc_cgroup: str | None, controller: str | None) -> list[Path]:
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


def _cgroup_memory_limit(cgroup_root: Path, proc_cgroup: str | None) -> tuple[int, str, int | None] | None:
    """(limit, source, current usage) from cgroup files, or None when no limit is set."""
    best: tuple[int, str, int | None] | None = None
    for d in _cgroup_dirs(cgroup_root, proc_cgroup, None):
        raw = _read(d / "memory.max")
        if raw and raw != "max" and raw.isdigit():
            usage = _read(d / "memory.current")
            limit = int(raw)
            if best is None or limit < best[0]:
                best = (limit, "cgroup v2 memory.max", int(usage) if usage and usage.isdigit() else None)
    if best is not None:
        return best
    for d in _cgroup_dirs(cgroup_root, proc_cgroup, "memory"):
        raw = _read(d / "memory.limit_in_bytes")
        if raw and raw.isdigit() and int(raw) < _V1_UNLIMITED:
            usage = _read(d / "memory.usage_in_bytes")
            limit = int(raw)
            if best is None or limit < best[0]:
                best = (
                    limit,
                    "cgroup v1 memory.limit_in_bytes",
                    int(usage) if usage and usage.isdigit() else None,
                )
    return best


def _cgroup_cpu_quota(cgroup_root: Path, proc_cgroup: str | None) -> tuple[float, str] | None:
    best: tuple[float, str] | None = None
    for d in _cgroup_dirs(cgroup_root, proc_cgroup, None):
        raw = _read(d / "cpu.max")
        if raw:
            quota, _, period = raw.partition(" ")
            if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
                cpus = int(quota) / int(period)
                if best is None or cpus < best[0]:
                    best = (cpus, "cgroup v2 cpu.max")
    if best is not None:
        return best
    for controller in ("cpu", "cpu,cpuacct"):
        for d in _cgroup_dirs(cgroup_root, proc_cgroup, controller):
            quota = _read(d / "cpu.cfs_quota_us")
            period = _read(d / "cpu.cfs_period_us")
            if quota and period and quota.lstrip("-").isdigit() and period.isdigit():
                q, p = int(quota), int(period)
                if q > 0 and p > 0 and (best is None or q / p < best[0]):
                    best = (q / p, "cgroup v1 cpu.cfs_quota_us")
    return best


def _env_number(env: Mapping[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"{name}={raw!r} is not a number; set it to a number of "
            f"{'bytes' if name == 'MEM_LIMIT' else 'CPUs'} (e.g. {name}="
            f"{'2147483648' if name == 'MEM_LIMIT' else '1'}) or unset it"
        ) from None
    if value <= 0:
        return None  # Binder and repo2docker use 0 for "no limit".
    return value


def _host_cpus() -> int:
    try:
        return len(psutil.Process().cpu_affinity())  # respects taskset / cpusets
    except (AttributeError, psutil.Error, OSError):  # not on macOS
        return psutil.cpu_count(logical=True) or 1


def machine_budget(
    path: str | os.PathLike = ".",
    *,
    env: Mapping[str, str] | None = None,
    cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
    proc_cgroup: str | None = None,
) -> MachineBudget:
    """Measure the CPUs, memory and disk this process may use, container limits included.

    Parameters
    ----------
    path : path-like, default "."
        Where free disk is measured.
    env : mapping, optional
        Environment to read ``CPU_LIMIT`` and ``MEM_LIMIT`` from (default ``os.environ``).
    cgroup_root, proc_cgroup : optional
        Where the cgroup files live and the content of ``/proc/self/cgroup``; for tests.

    Returns
    -------
    MachineBudget

    Examples
    --------
    >>> b = machine_budget(env={"MEM_LIMIT": str(2 * 1024**3)}, cgroup_root="/nonexistent",
    ...                    proc_cgroup="")
    >>> b.memory_limit_bytes, b.limit_source
    (2147483648, 'MEM_LIMIT')
    """
    env = os.environ if env is None else env
    root = Path(cgroup_root)
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup"))  # None off Linux: no cgroups

    vm = psutil.virtual_memory()
    host_cpus = _host_cpus()

    mem_limit, mem_source, usage = vm.total, "host (no container limit found)", None
    found = _cgroup_memory_limit(root, proc_cgroup)
    if found and found[0] < mem_limit:
        mem_limit, mem_source, usage = found
    env_mem = _env_number(env, "MEM_LIMIT")
    if env_mem is not None and env_mem < mem_limit:
        mem_limit, mem_source, usage = int(env_mem), "MEM_LIMIT", None

    if mem_source.startswith("host"):
        available = vm.available
    else:
        if usage is None:  # MEM_LIMIT counts what this process tree holds, as Binder does.
            usage = _tree_rss(psutil.Process())
        available = min(vm.available, max(0, mem_limit - usage))

    cpus, cpu_source = float(host_cpus), "host (no container limit found)"
    quota = _cgroup_cpu_quota(root, proc_cgroup)
    if quota and quota[0] < cpus:
        cpus, cpu_source = quota
    env_cpu = _env_number(env, "CPU_LIMIT")
    if env_cpu is not None and env_cpu < cpus:
        cpus, cpu_source = env_cpu, "CPU_LIMIT"

    return MachineBudget(
        cpus=round(cpus, 3),
        memory_limit_bytes=int(mem_limit),
        memory_available_bytes=int(available),
        disk_free_bytes=int(psutil.disk_usage(os.fspath(path)).free),
        limit_source=mem_source,
        cpu_source=cpu_source,
        host_cpus=host_cpus,
        host_memory_bytes=int(vm.total),
    )


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        procs = [proc]
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def is_small_machine(budget: MachineBudget | None = None, *, memory_bytes: int = 4 * 1024**3) -> bool:
    """True where the labs should shrink their work: under ``memory_bytes`` or a single CPU.

    Binder's pods (1 CPU, 2 GB) are small; a laptop with 8 GB and 4 cores is not.

    Parameters
    ----------
    budget : MachineBudget, optional
        The budget to judge (default: :func:`machine_budget` of this process).
    memory_bytes : int, default 4 GiB
        Below this memory limit a machine counts as small.

    Returns
    -------
    bool

    Examples
    --------
    >>> pod = machine_budget(env={"MEM_LIMIT": str(2 * 1024**3), "CPU_LIMIT": "1"},
    ...                      cgroup_root="/nonexistent", proc_cgroup="")
    >>> is_small_machine(pod)
    True
    """
    check_int("is_small_machine", "memory_bytes", memory_bytes, low=1)
    b = budget or machine_budget()
    return b.memory_limit_bytes < memory_bytes or b.cpus < 2
