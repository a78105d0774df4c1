"""Run labs the size of a Binder pod: 2 GB of memory and one CPU.

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
:func:`~mlscale_lab.constraints.machine_budget` plans for the pod, not the host.

>>> BinderLimits().env()
{'MEM_LIMIT': '2147483648', 'CPU_LIMIT': '1'}
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BINDER_MEMORY_BYTES = 2 * 1024**3
BINDER_CPUS = 1.0
MIN_HEADROOM = 0.25  # the share of the limit a lab leaves free (issue 9: at least 25%)
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
        if not isinstance(self.memory_bytes, int) or self.memory_bytes < 64 * _MB:
            raise ValueError(
                f"memory_bytes must be an int of at least {64 * _MB} (64 MiB), got "
                f"{self.memory_bytes!r}; Binder's limit is {BINDER_MEMORY_BYTES}"
            )
        if not (isinstance(self.cpus, int | float) and 0 < self.cpus <= 1024):
            raise ValueError(f"cpus must be a number of cores in (0, 1024], got {self.cpus!r}")

    def env(self) -> dict[str, str]:
        """``MEM_LIMIT`` and ``CPU_LIMIT`` as Binder sets them."""
        return {"MEM_LIMIT": str(self.memory_bytes), "CPU_LIMIT": f"{self.cpus:g}"}


def _own_cgroup_path(controller: str | None) -> str:
    """This process's cgroup for ``controller`` (None: the v2 unified hierarchy)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        hier, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controller is None and hier == "0" and controllers == "":
            return path or "/"
        if controller is not None and controller in controllers.split(","):
            return path or "/"
    return "/"


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
        if mechanism not in ("auto", "cgroup", "rlimit"):
            raise ValueError(f"mechanism must be 'auto', 'cgroup' or 'rlimit', got {mechanism!r}")
        if not as_factor >= 1:
            raise ValueError(f"as_factor must be >= 1, got {as_factor!r}")
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
                    raise OSError(
                        f"cannot create a cgroup under {self.cgroup_root} ({exc}); run as root, "
                        "or use mechanism='rlimit'"
                    ) from exc
        if self.mechanism is None:
            self.mechanism = "rlimit"
        return self

    def __exit__(self, *exc) -> None:
        self._remove_cgroups()

    def _name(self) -> str:
        return f"mlscale-binder-{os.getpid()}-{time.monotonic_ns()}"

    def _make_cgroups(self) -> None:
        name = self._name()
        if (self.cgroup_root / "cgroup.controllers").is_file():  # v2, unified
            parent = self.cgroup_root / _own_cgroup_path(None).lstrip("/")
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
        mem = self.cgroup_root / "memory" / _own_cgroup_path("memory").lstrip("/") / name
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
        cpu = cpu_root / _own_cgroup_path("cpu").lstrip("/") / name
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
        cmd = [sys.executable, "-m", "mlscale_lab.harness.confine"]
        for f in self._procs_files:
            cmd += ["--join", str(f)]
        if self.mechanism == "rlimit":
            cmd += ["--as-bytes", str(int(self.limits.memory_bytes * self.as_factor))]
            cmd += ["--pin-cpus", str(math.ceil(self.limits.cpus))]
        return [*cmd, "--"]

    def kernel_manager_class(self):
        """A jupyter_client kernel manager whose kernels start inside this box.

        Async, like nbclient's default: a blocking client would wait forever on a kernel the
        out-of-memory killer ended, where nbclient's async one notices the death.
        """
        from jupyter_client.manager import AsyncKernelManager

        prefix = self.launcher_prefix()

        class ConfinedKernelManager(AsyncKernelManager):
            def format_kernel_cmd(self, extra_arguments=None):
                return [*prefix, *super().format_kernel_cmd(extra_arguments)]

        return ConfinedKernelManager

    def cgroup_peak_bytes(self) -> int | None:
        """Peak memory the cgroup charged (page cache included), or None without a cgroup."""
        if not self._dirs:
            return None
        d = self._dirs[0]
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            try:
                return int((d / name).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return None

    def oom_kills(self) -> int | None:
        """How many processes the cgroup's out-of-memory killer ended, or None if unknown."""
        if not self._dirs:
            return None
        d = self._dirs[0]
        for name in ("memory.oom_control", "memory.events"):
            try:
                for line in (d / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except (OSError, ValueError):
                continue
        return None


@dataclass
class BinderRun:
    """One lab run inside Binder's limits."""

    name: str
    status: str
    seconds: float
    peak_memory_bytes: int  # resident peak of the kernel's process tree (the runner's figure)
    cgroup_peak_bytes: int | None  # what the cgroup charged, page cache included
    memory_limit_bytes: int
    cpus: float
    mechanism: str
    oom_kills: int | None
    error: str | None = None
    results: dict = field(default_factory=dict)  # what the lab recorded

    @property
    def headroom(self) -> float:
        """Share of the memory limit left free at the peak (0.25 = a quarter left)."""
        return 1.0 - self.peak_memory_bytes / self.memory_limit_bytes

    def as_dict(self) -> dict:
        return {**asdict(self), "headroom": round(self.headroom, 4)}


def run_lab_binder_sized(
    path,
    limits: BinderLimits | None = None,
    *,
    timeout: float = 600.0,
    mechanism: str = "auto",
    executed_dir=None,
) -> BinderRun:
    """Execute one lab with :func:`mlscale_lab.harness.runner.run_lab` inside Binder's limits."""
    from mlscale_lab.harness.runner import run_lab

    limits = limits or BinderLimits()
    with Confinement(limits, mechanism=mechanism) as box:
        run = run_lab(path, timeout=timeout, executed_dir=executed_dir, confinement=box)
        cgroup_peak, kills = box.cgroup_peak_bytes(), box.oom_kills()
        used = box.mechanism
    status, error = run.status, run.error
    if status == "ok" and run.peak_memory_bytes > limits.memory_bytes:
        status = "failed"
        error = (
            f"resident peak {run.peak_memory_bytes / _MB:.0f} MB is over the "
            f"{limits.memory_bytes / _MB:.0f} MB limit"
        )
    if kills:
        status = "failed"
        error = f"{error or ''} (the out-of-memory killer ended {kills} process(es))".strip()
    return BinderRun(
        run.name,
        status,
        run.seconds,
        run.peak_memory_bytes,
        cgroup_peak,
        limits.memory_bytes,
        limits.cpus,
        used or "?",
        kills,
        error,
        run.results,
    )


def format_binder_table(runs: list[BinderRun]) -> str:
    """lab, status, seconds, peak MB, headroom to the limit (and the cgroup's own peak)."""
    if not runs:
        return "(no labs)"
    r0 = runs[0]
    head = (
        f"Binder-sized run: {r0.memory_limit_bytes / _MB:.0f} MB, {r0.cpus:g} CPU "
        f"({r0.mechanism}); headroom = share of the limit left at the resident peak"
    )
    rows = [("lab", "status", "seconds", "peak MB", "headroom", "cgroup peak MB")]
    for r in runs:
        cg = "-" if r.cgroup_peak_bytes is None else f"{r.cgroup_peak_bytes / _MB:.0f}"
        rows.append(
            (
                r.name,
                r.status,
                f"{r.seconds:.1f}",
                f"{r.peak_memory_bytes / _MB:.0f}",
                f"{r.headroom:.0%}",
                cg,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [head] + [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(2, "  ".join("-" * w for w in widths))
    for r in runs:
        if r.error:
            lines.append(f"\n{r.name} FAILED: {r.error}")
        elif r.headroom < MIN_HEADROOM:
            lines.append(
                f"\n{r.name}: only {r.headroom:.0%} headroom, under the {MIN_HEADROOM:.0%} wanted"
            )
    return "\n".join(lines)


def _launch(argv: list[str]) -> None:
    """``python -m mlscale_lab.harness.confine [--join F]... [--as-bytes N] [--pin-cpus K] -- CMD``"""
    if "--" not in argv:
        raise SystemExit("usage: python -m mlscale_lab.harness.confine [options] -- COMMAND ...")
    split = argv.index("--")
    opts, cmd = argv[:split], argv[split + 1 :]
    if not cmd:
        raise SystemExit("mlscale_lab.harness.confine: no command after --")
    i = 0
    while i < len(opts):
        opt, value = opts[i], opts[i + 1] if i + 1 < len(opts) else None
        if value is None:
            raise SystemExit(f"mlscale_lab.harness.confine: {opt} needs a value")
        if opt == "--join":
            with open(value, "w") as f:  # joining a cgroup: write our pid into cgroup.procs
                f.write(str(os.getpid()))
        elif opt == "--as-bytes":
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (int(value), int(value)))
        elif opt == "--pin-cpus":
            allowed = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, set(allowed[: max(1, int(value))]))
        else:
            raise SystemExit(f"mlscale_lab.harness.confine: unknown option {opt}")
        i += 2
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    _launch(sys.argv[1:])


def parse_bytes(text: str) -> int:
    """``"2G"``, ``"1536M"``, ``"2147483648"`` -> bytes (binary units, as Binder's limits are)."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    raw = str(text).strip().upper().removesuffix("IB").removesuffix("B")
    unit = raw[-1:] if raw[-1:] in units and raw[-1:] != "" else ""
    number = raw[: -len(unit)] if unit else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"memory limit {text!r} is not a size; write bytes or a number with K, M or G (e.g. 2G)"
        ) from None
    return int(value * units[unit])


def run_from_cli(paths, args) -> int:
    """``mlscale-lab run --binder``: run labs inside Binder's limits and print the table."""
    import json

    limits = BinderLimits(
        memory_bytes=parse_bytes(args.memory_limit) if args.memory_limit else BINDER_MEMORY_BYTES,
        cpus=float(args.cpus) if args.cpus else BINDER_CPUS,
    )
    runs = []
    for path in paths:
        if not args.json:
            print(
                f"running {Path(path).stem} inside {limits.memory_bytes / _MB:.0f} MB, "
                f"{limits.cpus:g} CPU ...",
                file=sys.stderr,
                flush=True,
            )
        runs.append(
            run_lab_binder_sized(path, limits, timeout=args.timeout, executed_dir=args.executed)
        )
    report = {
        "binder": {**asdict(limits), "min_headroom": MIN_HEADROOM},
        "labs": [r.as_dict() for r in runs],
    }
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else format_binder_table(runs))
    return 0 if all(r.status == "ok" for r in runs) else 1
