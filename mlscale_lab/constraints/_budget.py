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

from mlscale_lab._core.cgroups import (
    affinity_cpus,
    available_cpus,
    cgroup_memory_limit,
    env_limit,
    read_text,
)
from mlscale_lab._core.environment import MEM_LIMIT_ENV
from mlscale_lab._core.memory import tree_rss
from mlscale_lab.validation import check_int

__all__ = ["MachineBudget", "is_small_machine", "machine_budget"]


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
        proc_cgroup = read_text(Path("/proc/self/cgroup"))  # None off Linux: no cgroups

    vm = psutil.virtual_memory()
    host_cpus = affinity_cpus()

    mem_limit, mem_source, usage = vm.total, "host (no container limit found)", None
    found = cgroup_memory_limit(root, proc_cgroup)
    if found and found[0] < mem_limit:
        mem_limit, mem_source, usage = found
    env_mem = env_limit(env, MEM_LIMIT_ENV)
    if env_mem is not None and env_mem < mem_limit:
        mem_limit, mem_source, usage = int(env_mem), MEM_LIMIT_ENV, None

    if mem_source.startswith("host"):
        available = vm.available
    else:
        if usage is None:  # MEM_LIMIT counts what this process tree holds, as Binder does.
            usage = tree_rss()
        available = min(vm.available, max(0, mem_limit - usage))

    cpus, cpu_source = available_cpus(env=env, cgroup_root=root, proc_cgroup=proc_cgroup or "")
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
