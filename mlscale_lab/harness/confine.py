"""Confinement: start a kernel inside a memory and CPU limit (cgroups, else rlimits).

mybinder.org gives each learner a container with a memory limit (about 2 GB: past it the
kernel is killed) and a CPU limit (about one core), and tells the notebook about both in
``MEM_LIMIT`` and ``CPU_LIMIT``. A lab that fits this machine's 24 GB may not fit there.

:class:`Confinement` starts a lab's kernel inside the same limits, the strongest way the machine
allows:

- **cgroup** (v1 or v2, needs root or a delegated cgroup): a child cgroup with the memory limit
  and a CPU quota of ``cpus`` cores, which is exactly how Binder's Kubernetes enforces them.
  The kernel joins it before Python starts (a small launcher writes its own pid into the
  cgroup, then ``exec``s the kernel), so every byte and every child process is counted.
- **rlimit** (anywhere else): an address-space cap (``RLIMIT_AS``) on the kernel and its
  children and, for one CPU, pinning to one core. An address-space cap counts reserved, not
  resident, memory (torch alone reserves about 1 GB it never touches), so it is set at
  ``as_factor`` times the memory limit and the resident peak is held to the limit afterwards.

Either way the kernel's environment gets ``MEM_LIMIT`` and ``CPU_LIMIT``, so the labs'
:func:`~mlscale_lab.constraints.machine_budget` plans for the pod, not the host. Where neither
works (macOS, Windows) entering a confinement raises :class:`ConfinementUnavailableError`.

The limits are applied by :func:`launch_prefix`, the one kernel-launch helper: a prefix that
sets them on its own process and then ``exec``s the kernel (grading caps its kernels with it too).
:func:`mlscale_lab.harness.runner.run_lab_binder_sized` runs a lab this way.

>>> BinderLimits().env()
{'MEM_LIMIT': '2147483648', 'CPU_LIMIT': '1'}
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Only the standard library at import time: the launcher runs this file as a script, with
# ``python -S``, before the kernel's Python (and its site-packages) exists.

BINDER_MEMORY_BYTES = 2 * 1024**3
BINDER_CPUS = 1.0
MIN_HEADROOM = 0.25  # the share of the limit a lab leaves free: room for the learner's own cells
_CFS_PERIOD_US = 100_000
_MB = 1024**2


@dataclass(frozen=True)
class BinderLimits:
    """The budget of a Binder pod.

    Parameters
    ----------
    memory_bytes : int
        Memory limit of the kernel's whole process tree (default 2 GiB, Binder's).
    cpus : float
        CPU limit in cores (default 1, Binder's).
    """

    memory_bytes: int = BINDER_MEMORY_BYTES
    cpus: float = BINDER_CPUS

    def __post_init__(self):
        from mlscale_lab.validation import check_int, check_number

        check_int("BinderLimits", "memory_bytes", self.memory_bytes, low=64 * _MB,
                  hint=f"Binder's limit is {BINDER_MEMORY_BYTES} (2 GiB)")
        check_number("BinderLimits", "cpus", self.cpus, low=0, low_open=True, high=1024)

    def env(self) -> dict[str, str]:
        """``MEM_LIMIT`` and ``CPU_LIMIT`` as Binder sets them."""
        from mlscale_lab._core.environment import CPU_LIMIT_ENV, MEM_LIMIT_ENV

        return {MEM_LIMIT_ENV: str(self.memory_bytes), CPU_LIMIT_ENV: f"{self.cpus:g}"}


class ConfinementUnavailableError(OSError):
    """This machine cannot hold a kernel to a memory limit; the message says what is missing."""


def can_cap_address_space() -> bool:
    """True where a process's address space can be capped and the cap is enforced.

    That takes the ``resource`` module with ``RLIMIT_AS`` (absent on Windows); macOS has both
    but does not enforce the cap, so it counts as not able.

    Examples
    --------
    >>> isinstance(can_cap_address_space(), bool)
    True
    """
    if sys.platform == "darwin":
        return False
    try:
        import resource
    except ImportError:
        return False
    return hasattr(resource, "RLIMIT_AS")


def can_pin_cpus() -> bool:
    """True where a process can be pinned to some CPUs (``os.sched_setaffinity``: Linux)."""
    return hasattr(os, "sched_getaffinity") and hasattr(os, "sched_setaffinity")


def launch_prefix(*, join: Sequence[str] = (), as_bytes: int | None = None, pin_cpus: int | None = None,
                  core_dumps: bool = True, default_sigint: bool = False,
                  unset_env: Sequence[str] = ()) -> list[str]:
    """A command-line prefix that applies limits to itself, then runs the command after it.

    The one kernel-launch helper: Binder-sized runs and grading both start their kernels behind
    it. It is this module run as a script (``python -m mlscale_lab.harness.confine [options] --
    COMMAND``), started with ``-S`` from its file so it costs milliseconds, not a package import.

    Parameters
    ----------
    join : sequence of str
        ``cgroup.procs`` files to write the process's own pid into (join those cgroups).
    as_bytes : int, optional
        Address-space cap (``RLIMIT_AS``), inherited by every process the command starts.
    pin_cpus : int, optional
        Pin to this many of the allowed CPUs.
    core_dumps : bool
        False disables core dumps (a crashing kernel leaves no file).
    default_sigint : bool
        Restore SIGINT's default action (a sandbox wrapper may have ignored it; the kernel needs
        it to be interruptible).
    unset_env : sequence of str
        Environment variables removed before the command runs.

    Returns
    -------
    list of str
        Empty when there is nothing to apply.

    Raises
    ------
    ConfinementUnavailableError
        When a limit asked for cannot be applied on this platform.

    Examples
    --------
    >>> launch_prefix()
    []
    >>> launch_prefix(unset_env=["JPY_PARENT_PID"])[-3:]
    ['--unset-env', 'JPY_PARENT_PID', '--']
    """
    opts: list[str] = []
    for f in join:
        opts += ["--join", str(f)]
    if as_bytes is not None:
        if not can_cap_address_space():
            raise ConfinementUnavailableError(
                f"launch_prefix(as_bytes={as_bytes!r}): this platform ({sys.platform}) cannot cap "
                "a process's memory (no enforced RLIMIT_AS)")
        opts += ["--as-bytes", str(int(as_bytes))]
    if pin_cpus is not None:
        if not can_pin_cpus():
            raise ConfinementUnavailableError(
                f"launch_prefix(pin_cpus={pin_cpus!r}): this platform ({sys.platform}) cannot "
                "pin a process to CPUs (no os.sched_setaffinity)")
        opts += ["--pin-cpus", str(int(pin_cpus))]
    if not core_dumps and can_cap_address_space():
        opts.append("--no-core-dumps")
    if default_sigint:
        opts.append("--default-sigint")
    for name in unset_env:
        opts += ["--unset-env", name]
    if not opts:
        return []
    python = os.path.normpath(os.path.abspath(sys.executable))
    return [python, "-S", os.path.abspath(__file__), *opts, "--"]


class Confinement:
    """Kernel launches inside a Binder-sized box; use as a context manager.

    Parameters
    ----------
    limits : BinderLimits
    mechanism : {"auto", "cgroup", "rlimit"}
        ``auto`` takes a cgroup where the machine allows one, else rlimits. ``cgroup`` raises
        when none can be made.
    cgroup_root : path-like
        Where cgroups are mounted.
    as_factor : float
        For ``rlimit``: the address-space cap as a multiple of the memory limit.

    Attributes
    ----------
    mechanism : str
        What is enforced once entered: ``"cgroup v1"``, ``"cgroup v2"`` or ``"rlimit"``.
    """

    def __init__(
        self,
        limits: BinderLimits | None = None,
        *,
        mechanism: str = "auto",
        cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
        as_factor: float = 2.0,
    ):
        from mlscale_lab.validation import check_choice, check_number

        check_choice("Confinement", "mechanism", mechanism, ("auto", "cgroup", "rlimit"))
        check_number("Confinement", "as_factor", as_factor, low=1)
        self.limits = limits or BinderLimits()
        self.requested = mechanism
        self.cgroup_root = Path(cgroup_root)
        self.as_factor = as_factor
        self.mechanism: str | None = None
        self._dirs: list[Path] = []  # cgroups we made, memory first
        self._procs_files: list[Path] = []

    # -- setting up ------------------------------------------------------------------------
    def __enter__(self) -> Confinement:
        if self.requested in ("auto", "cgroup"):
            try:
                self._make_cgroups()
            except OSError as exc:
                self._remove_cgroups()
                if self.requested == "cgroup":
                    raise ConfinementUnavailableError(
                        f"cannot create a cgroup under {self.cgroup_root} ({exc}); run as root, "
                        "or use mechanism='rlimit'"
                    ) from exc
        if self.mechanism is None:
            missing = [what for what, ok in (("an enforced address-space cap (RLIMIT_AS)", can_cap_address_space()),
                                             ("CPU pinning (os.sched_setaffinity)", can_pin_cpus())) if not ok]
            if missing:
                raise ConfinementUnavailableError(
                    f"cannot hold a kernel to Binder's limits on this machine ({sys.platform}): no "
                    f"writable cgroup and no {' or '.join(missing)}; run on Linux (as root for "
                    "cgroups), or in a Linux container or VM")
            self.mechanism = "rlimit"
        return self

    def __exit__(self, *exc) -> None:
        self._remove_cgroups()

    def _name(self) -> str:
        return f"mlscale-binder-{os.getpid()}-{time.monotonic_ns()}"

    def _make_cgroups(self) -> None:
        from mlscale_lab._core.cgroups import cgroup_path

        if not sys.platform.startswith("linux"):
            raise OSError(f"no cgroups on {sys.platform}")
        name = self._name()
        if (self.cgroup_root / "cgroup.controllers").is_file():  # v2, unified
            parent = self.cgroup_root / cgroup_path(None).lstrip("/")
            d = parent / name
            d.mkdir()
            self._dirs.append(d)
            (d / "memory.max").write_text(str(self.limits.memory_bytes))
            (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
            quota = int(self.limits.cpus * _CFS_PERIOD_US)
            (d / "cpu.max").write_text(f"{quota} {_CFS_PERIOD_US}")
            self._procs_files = [d / "cgroup.procs"]
            self.mechanism = "cgroup v2"
            return
        mem = self.cgroup_root / "memory" / cgroup_path("memory").lstrip("/") / name
        mem.mkdir()
        self._dirs.append(mem)
        (mem / "memory.limit_in_bytes").write_text(str(self.limits.memory_bytes))
        memsw = mem / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # no swapping past the limit either, as in a pod
            memsw.write_text(str(self.limits.memory_bytes))
        cpu_root = next(
            (
                self.cgroup_root / c
                for c in ("cpu", "cpu,cpuacct")
                if (self.cgroup_root / c).is_dir()
            ),
            None,
        )
        if cpu_root is None:
            raise OSError("no cgroup v1 cpu controller mounted")
        cpu = cpu_root / cgroup_path("cpu").lstrip("/") / name
        cpu.mkdir()
        self._dirs.append(cpu)
        (cpu / "cpu.cfs_period_us").write_text(str(_CFS_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(self.limits.cpus * _CFS_PERIOD_US)))
        self._procs_files = [mem / "cgroup.procs", cpu / "cgroup.procs"]
        self.mechanism = "cgroup v1"

    def _remove_cgroups(self) -> None:
        for d in self._dirs:
            procs = d / "cgroup.procs"
            deadline = time.monotonic() + 10
            while True:
                try:
                    pids = [int(p) for p in procs.read_text().split()]
                except OSError:
                    pids = []
                if not pids or time.monotonic() > deadline:
                    break
                for pid in pids:  # leftovers of our own kernel (a dask worker, say)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.1)
            try:
                d.rmdir()
            except OSError:
                pass
        self._dirs = []

    # -- what the runner uses ---------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The kernel's extra environment: Binder's variables (and a tamer malloc for rlimit)."""
        env = self.limits.env()
        if self.mechanism == "rlimit":
            # glibc reserves 64 MB of address space per thread arena; that is not memory used,
            # but it counts against RLIMIT_AS.
            env["MALLOC_ARENA_MAX"] = "2"
        return env

    def launcher_prefix(self) -> list[str]:
        """Put in front of the kernel's command: joins the box, then execs the kernel."""
        if self.mechanism is None:
            raise RuntimeError("enter the Confinement (with ...) before launching a kernel")
        if self.mechanism != "rlimit":
            return launch_prefix(join=[str(f) for f in self._procs_files])
        return launch_prefix(as_bytes=int(self.limits.memory_bytes * self.as_factor),
                             pin_cpus=math.ceil(self.limits.cpus))

    def cgroup_peak_bytes(self) -> int | None:
        """Peak memory the cgroup charged (page cache included), or None without a cgroup."""
        from mlscale_lab._core.cgroups import cgroup_memory_peak

        return cgroup_memory_peak(self._dirs[0]) if self._dirs else None

    def oom_kills(self) -> int | None:
        """How many processes the cgroup's out-of-memory killer ended, or None if unknown."""
        from mlscale_lab._core.cgroups import cgroup_oom_kills

        return cgroup_oom_kills(self._dirs[0]) if self._dirs else None


def _launch(argv: list[str]) -> None:
    """``confine [--join F]... [--as-bytes N] [--pin-cpus K] [--no-core-dumps] [--default-sigint]
    [--unset-env NAME]... -- COMMAND...``: apply the limits to this process, then exec COMMAND."""
    if "--" not in argv:
        raise SystemExit("usage: python -m mlscale_lab.harness.confine [options] -- COMMAND ...")
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1 :]
    if not cmd:
        raise SystemExit("mlscale_lab.harness.confine: no command after --")
    flags = {"--no-core-dumps", "--default-sigint"}
    i = 0
    while i < len(opts):
        opt = opts[i]
        value = None
        if opt not in flags:
            if i + 1 >= len(opts):
                raise SystemExit(f"mlscale_lab.harness.confine: {opt} needs a value")
            value = opts[i + 1]
        if opt == "--join":
            with open(value, "w") as f:  # joining a cgroup: write our pid into cgroup.procs
                f.write(str(os.getpid()))
        elif opt in ("--as-bytes", "--no-core-dumps"):
            import resource

            which, limit = ((resource.RLIMIT_AS, int(value)) if opt == "--as-bytes"
                            else (resource.RLIMIT_CORE, 0))
            resource.setrlimit(which, (limit, limit))
        elif opt == "--pin-cpus":
            allowed = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, set(allowed[: max(1, int(value))]))
        elif opt == "--default-sigint":
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # SIG_IGN would survive the exec
        elif opt == "--unset-env":
            os.environ.pop(value, None)
        else:
            raise SystemExit(f"mlscale_lab.harness.confine: unknown option {opt}")
        i += 1 if value is None else 2
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _launch(sys.argv[1:])
