"""Temporary folders with one owner each, removed when the owner ends, however it ends.

A folder made by :func:`owned_tempdir` is named ``mlscale-<name>-<random>`` and holds a small
file naming its owner (this process: its pid, start time and pid namespace). It goes away

- when the owner removes it (:func:`remove_tempdir`, the usual way: a ``finally``),
- when the owner's interpreter exits (``atexit``; in a multiprocessing child, its exit hook),
- and, if the owner was killed first (SIGKILL, the out-of-memory killer, a kernel killed by
  JupyterLab), at the next :func:`owned_tempdir` in the same parent folder by any process:
  :func:`sweep_stale` removes every folder whose owner no longer runs.

Only folders this user owns and whose owner file names a process of this boot and pid
namespace are ever swept: another container's folders in a shared ``/tmp`` stay untouched.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["OWNER_FILE", "PREFIX", "owned_tempdir", "remove_tempdir", "sweep_stale", "temporary_folder",
           "work_folder"]

#: Every owned folder's name starts with this.
PREFIX = "mlscale-"
#: The file inside an owned folder that names its owner.
OWNER_FILE = ".mlscale-owner.json"


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):
        return ""


def _start_ticks(pid: int) -> float | None:
    """When ``pid`` started, on a clock that never jumps (Linux: ticks since boot); None when no
    such process runs (a zombie counts as ended).

    Not psutil's ``create_time()`` on Linux: it adds the wall-clock boot time, which moves when
    the clock is stepped, so a live owner could look like a new process."""
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return None if fields[0] == b"Z" else float(fields[19])
    import psutil

    try:
        proc = psutil.Process(pid)
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc.create_time()
    except psutil.NoSuchProcess:
        return None


def _owner() -> dict:
    return {"pid": os.getpid(), "start": _start_ticks(os.getpid()), "boot": _boot_id(),
            "pidns": _pid_namespace()}


def _owner_gone(owner: dict) -> bool:
    """True only when the owner surely no longer runs (a doubt keeps the folder)."""
    if owner.get("boot") and _boot_id() and owner["boot"] != _boot_id():
        return True  # the machine rebooted since
    if owner.get("pidns", "") != _pid_namespace():
        return False  # another container's process: not ours to judge
    pid, recorded = owner.get("pid"), owner.get("start")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(recorded, int | float):
        return False
    try:
        start = _start_ticks(pid)
    except Exception:  # noqa: BLE001 (access denied, an unreadable file: keep the folder)
        return False
    return start is None or abs(start - recorded) > 1.0  # ended, or the pid names another process


def owned_tempdir(name: str, *, parent: str | os.PathLike | None = None) -> Path:
    """Make a temporary folder owned by this process and return its path.

    Parameters
    ----------
    name : str
        What the folder is for, in its name (``mlscale-<name>-<random>``).
    parent : path-like, optional
        Where to make it; default the temporary folder (``TMPDIR``). Stale folders of dead
        owners there are swept first.

    Examples
    --------
    >>> d = owned_tempdir("example")
    >>> d.name.startswith("mlscale-example-"), (d / OWNER_FILE).is_file()
    (True, True)
    >>> remove_tempdir(d); d.exists()
    False
    """
    parent = Path(tempfile.gettempdir() if parent is None else parent)
    sweep_stale(parent)
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=parent))
    tmp = path / f"{OWNER_FILE}.part"
    tmp.write_text(json.dumps(_owner()), encoding="utf-8")
    os.replace(tmp, path / OWNER_FILE)  # a sweeper never reads half an owner
    owner = os.getpid()
    atexit.register(_remove_if_owner, path, owner)
    try:  # a multiprocessing child ends with os._exit: atexit never runs there, its finalizers do
        from multiprocessing import util

        util.Finalize(None, _remove_if_owner, args=(path, owner), exitpriority=0)
    except ImportError:
        pass
    return path


def _remove_if_owner(path: Path, owner: int) -> None:
    # A fork inherits its parent's exit handlers: only the owner removes the folder.
    if os.getpid() == owner:
        remove_tempdir(path)


def remove_tempdir(path: str | os.PathLike | None) -> None:
    """Remove an owned folder and everything in it (safe to call twice, or on None)."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def temporary_folder(name: str, *, parent: str | os.PathLike | None = None) -> Iterator[Path]:
    """An :func:`owned_tempdir` for the length of a ``with`` block, removed when it ends.

    Examples
    --------
    >>> with temporary_folder("example") as d:
    ...     _ = (d / "x").write_text("x")
    >>> d.exists()
    False
    """
    path = owned_tempdir(name, parent=parent)
    try:
        yield path
    finally:
        remove_tempdir(path)


def sweep_stale(parent: str | os.PathLike | None = None) -> list[Path]:
    """Remove the owned folders in ``parent`` (default ``TMPDIR``) whose owner no longer runs.

    Returns
    -------
    list of Path
        The folders removed.
    """
    parent = Path(tempfile.gettempdir() if parent is None else parent)
    removed = []
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
            owner = json.loads((Path(entry.path) / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # no owner file (yet): never ours to remove
        if isinstance(owner, dict) and _owner_gone(owner):
            remove_tempdir(entry.path)
            removed.append(Path(entry.path))
    return removed


def work_folder(name: str) -> Path:
    """A folder for the files a lab writes (models saved to measure their bytes, artifacts).

    It is removed when the notebook's kernel ends: at its exit, or, if the kernel is killed,
    by the next lab or server that starts. Under ``mlscale-lab run`` it lives inside the
    kernel's own temporary folder, which the runner removes with the kernel.

    Parameters
    ----------
    name : str
        A short name for the folder (the lab, e.g. ``"lab03"``).

    Examples
    --------
    >>> work = work_folder("lab99")
    >>> _ = (work / "model.pt").write_bytes(b"weights")
    >>> sorted(p.name for p in work.iterdir())
    ['.mlscale-owner.json', 'model.pt']
    >>> remove_tempdir(work)
    """
    return owned_tempdir(str(name))
