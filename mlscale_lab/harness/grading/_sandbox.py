"""Run an untrusted submission's kernel where it cannot see the course's secrets.

The sandbox is Debian's ``bubblewrap`` (``bwrap``): a fresh mount namespace that starts empty
and gets, read-only, only what a kernel needs (the system's ``/usr``, a few ``/etc`` files, the
Python installation, the ``mlscale_lab`` package), plus, writable, the one folder that holds the
submission. Source notebooks, gradebooks, other students' work and the output folder are simply
not there; where one of them sits inside a folder the kernel needs (the labs packed inside the
installed wheel), an empty ``tmpfs`` is mounted over it. The kernel also gets its own PID, IPC,
UTS and network namespaces (it talks to the grader over Unix sockets), so killing the sandbox
kills every process the submission started.

The kernel's address space is capped with ``RLIMIT_AS``: an allocation over the cap raises
``MemoryError`` in that cell instead of waking the machine's out-of-memory killer.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The files of /etc a Python kernel reads (name resolution, dynamic linker, certificates,
#: Debian's alternatives symlinks, fonts for matplotlib). Everything else in /etc, such as
#: /etc/shadow or ssh host keys, stays out.
ETC_ALLOWED = (
    "alternatives", "ca-certificates", "ca-certificates.conf", "fonts", "group", "host.conf",
    "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "mime.types",
    "nsswitch.conf", "os-release", "passwd", "protocols", "services", "ssl", "timezone",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")

NO_SANDBOX_RISK = (
    "without a sandbox every submission runs with your permissions: it can read the source "
    "notebooks (hidden tests and solutions), the gradebook and other students' work, change "
    "files you can change, and use the network"
)


def python_executable() -> str:
    """This Python, as an absolute path without ``..`` (a venv's symlink is kept: resolving
    it would lose the venv)."""
    return os.path.normpath(os.path.abspath(sys.executable))


class SandboxUnavailableError(RuntimeError):
    """No sandbox mechanism on this machine; the message says how to get one or opt out."""


def find_bwrap() -> str | None:
    """The ``bwrap`` executable, or None if bubblewrap is not installed or cannot run here."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("bwrap")


def require_sandbox(no_sandbox: bool = False) -> str | None:
    """Return the sandbox mechanism to use (``"bwrap"``), or None when the caller opted out.

    Raises
    ------
    SandboxUnavailableError
        When no mechanism exists and ``no_sandbox`` is False.
    """
    if no_sandbox:
        return None
    if find_bwrap():
        return "bwrap"
    raise SandboxUnavailableError(
        "no sandbox for untrusted submissions on this machine: grading needs bubblewrap "
        "(Linux: `sudo apt-get install bubblewrap`, `dnf install bubblewrap`). On macOS or Windows, "
        "grade inside a Linux container or VM. To grade anyway, pass --no-sandbox, knowing that "
        + NO_SANDBOX_RISK + "."
    )


def _python_paths() -> list[Path]:
    """Folders the kernel's Python needs: its prefixes and every sys.path folder."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix)}
    exe = Path(python_executable())
    paths.add(exe.parent)
    paths.add(exe.resolve().parent)
    for entry in sys.path:
        if entry and Path(entry).is_dir():
            paths.add(Path(entry).resolve())
    return sorted(paths)


def _is_within(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


@dataclass
class SandboxSpec:
    """What the sandboxed kernel sees.

    Parameters
    ----------
    writable : list of Path
        Folders bound read-write at their own path (the submission's folder, the kernel's
        connection folder).
    hidden : list of Path
        Folders that must not be visible (source notebooks, gradebooks, submissions, output).
    workdir : Path
        The kernel's working folder and ``HOME``.
    """

    writable: list[Path]
    hidden: list[Path]
    workdir: Path
    readonly: list[Path] = field(default_factory=list)

    def bwrap_args(self, bwrap: str = "bwrap") -> list[str]:
        """The ``bwrap`` command line, up to and including ``--``.

        bubblewrap is started with SIGINT ignored: interrupting a cell over its timeout signals
        the kernel's whole process group, and bwrap dying of it would take the kernel along
        (the launch prefix restores SIGINT's default action before the kernel starts:
        ``launch_prefix(default_sigint=True)``).
        """
        hidden = [Path(os.path.realpath(h)) for h in self.hidden]
        # No --new-session: jupyter_client already starts the kernel in its own session (no
        # controlling terminal), and the kernel must stay in the process group that receives
        # the interrupt of a cell over its timeout.
        ignore_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                         "os.execv(sys.argv[1], sys.argv[1:])")
        args = [python_executable(), "-S", "-c", ignore_sigint, shutil.which(bwrap) or bwrap,
                "--die-with-parent", "--unshare-all", "--cap-drop", "ALL",
                # The fresh /tmp first: binds below may live under /tmp (a checkout and its
                # virtualenv in a temporary folder, as in CI) and must stay visible over it.
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for d in SYSTEM_DIRS:
            p = Path(d)
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), d]
            elif p.is_dir():
                args += ["--ro-bind", d, d]
        args += ["--dir", "/etc"]
        for name in ETC_ALLOWED:
            p = Path("/etc") / name
            if p.exists():
                args += ["--ro-bind", str(p), str(p)]
        bound: list[Path] = [Path(d) for d in SYSTEM_DIRS]
        prefixes = [Path(os.path.realpath(p)) for p in
                    (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)]
        for p in [*_python_paths(), *self.readonly]:
            real = Path(os.path.realpath(p))
            if any(_is_within(real, b) for b in bound):
                continue
            if p in self.readonly or any(_is_within(real, pre) for pre in prefixes):
                # The Python installation and its site-packages: bound whole (a secret inside,
                # such as labs packed in the wheel, gets a tmpfs over it below).
                args += ["--ro-bind", str(real), str(real)]
                bound.append(real)
                continue
            # A folder outside the installation on sys.path is an editable checkout: it also
            # holds labs/ and .git (the source notebooks' history). Bind only the packages
            # Python imports from it.
            for child in sorted(real.iterdir()):
                if child.is_dir() and (child / "__init__.py").exists() and not any(
                    _is_within(h, child) for h in hidden
                ):
                    args += ["--ro-bind", str(child), str(child)]
                    bound.append(child)
        for w in self.writable:
            real = os.path.realpath(w)
            args += ["--bind", real, real]
        for h in hidden:
            if any(_is_within(h, b) for b in bound) and h.is_dir():
                args += ["--tmpfs", str(h)]
        args += ["--chdir", os.path.realpath(self.workdir), "--setenv", "HOME", os.path.realpath(self.workdir)]
        return [*args, "--"]

