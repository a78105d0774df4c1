"""Entering a waiting sandbox (:mod:`._holder`) from a fork, and giving up every privilege.

Linux only (``setns(2)``, ``capset(2)``, ``prctl(2)`` through ctypes). The caller is a freshly
forked, single-threaded process: it joins the holder's user namespace first (so what it may do
is what that namespace allows), then its cgroup, IPC, UTS, network, PID and mount namespaces;
the PID namespace takes effect for its children, so it forks once more, and the child drops
its capabilities (bounding, ambient, effective, permitted, inheritable), sets no-new-privileges
as bubblewrap does, and checks that ``/proc/self/status`` says so before going on.
"""

from __future__ import annotations

import ctypes
import os

_ORDER = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAP_VERSION_3 = 0x20080522


class EnterError(OSError):
    """The sandbox could not be entered, or privileges could not be dropped."""


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def enter_namespaces(pid: int) -> None:
    """Join the namespaces of process ``pid`` that differ from this process's own."""
    libc = _libc()
    fds = []
    try:
        for ns in _ORDER:
            try:
                if os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}"):
                    continue
                fds.append((ns, os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                if ns in ("user", "cgroup"):
                    continue  # a kernel without them: bubblewrap did not make them either
                raise
        for ns, fd in fds:
            if libc.setns(fd, 0) != 0:
                err = ctypes.get_errno()
                raise EnterError(err, f"setns({ns}) failed: {os.strerror(err)}")
    finally:
        for _, fd in fds:
            os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges() -> None:
    """Give up every capability for good and set no-new-privileges; raise if any remains."""
    libc = _libc()
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if libc.capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), ctypes.byref((_CapData * 2)())) != 0:
        err = ctypes.get_errno()
        raise EnterError(err, f"capset failed: {os.strerror(err)}")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise EnterError(err, f"no-new-privileges failed: {os.strerror(err)}")
    with open("/proc/self/status") as fh:
        caps = {k: v.strip() for k, _, v in (line.partition(":") for line in fh) if k.startswith("Cap")}
    if not caps or any(int(v, 16) for v in caps.values()):
        raise EnterError(1, f"capabilities remain after dropping them: {caps}")
