"""Folders for a kernel's Unix sockets: paths short enough to bind, on every POSIX system.

A Unix socket's path has a hard limit (``sun_path``: 108 bytes on Linux, 104 on macOS), and a
deep temporary folder (a test's nested ``TMPDIR``, a long home) goes past it; ZeroMQ then fails
with ``File name too long``. :func:`socket_folder` makes a folder where the sockets fit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from mlscale_lab._core.tempdirs import owned_tempdir, remove_tempdir

__all__ = ["SOCKET_BASE", "SOCKET_PATH_MAX", "UNIX_SOCKETS", "socket_folder", "sockets_fit"]

#: Kernels talk over Unix sockets where the platform has them (POSIX). Elsewhere (Windows) a
#: launch's ``connection_dir`` only holds the connection file and the kernel listens on TCP.
UNIX_SOCKETS = os.name == "posix"

#: Bytes a Unix socket's path may have: ``sun_path`` holds 108 on Linux and 104 on macOS, the
#: final NUL included. A longer one fails at bind time (``ZMQError: File name too long``).
SOCKET_PATH_MAX = 103

#: The kernel's sockets are ``<folder>/kernel-<n>``, one per channel (jupyter_client numbers them).
SOCKET_BASE = "kernel"
_CHANNEL_SUFFIX = len("-99999")


def sockets_fit(folder: str | os.PathLike) -> bool:
    """Whether a kernel's Unix sockets in ``folder`` have paths short enough to bind.

    >>> sockets_fit("/tmp/mlscale-kernel-abcdefgh"), sockets_fit("/tmp/" + "x" * 100)
    (True, False)
    """
    path = os.path.join(os.path.realpath(folder), SOCKET_BASE)
    return len(os.fsencode(path)) + _CHANNEL_SUFFIX <= SOCKET_PATH_MAX


def socket_folder(name: str = "kernel") -> Path:
    """A new owned temporary folder for a kernel's connection file and Unix sockets.

    In the temporary folder when the sockets' paths fit there; under ``/tmp`` when that folder's
    path is too long for them (a deep ``TMPDIR``: a test's nested folder, a long home). The
    caller removes it (:func:`mlscale_lab._core.tempdirs.remove_tempdir`).

    Raises
    ------
    RuntimeError
        When no folder short enough can be made; the message says to set a shorter ``TMPDIR``.
    """
    path = owned_tempdir(name)
    if not UNIX_SOCKETS or sockets_fit(path):
        return path
    remove_tempdir(path)
    for root in ("/tmp", "/var/tmp"):
        if os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            path = owned_tempdir(name, parent=root)
            if sockets_fit(path):
                return path
            remove_tempdir(path)
    raise RuntimeError(
        f"no folder for a kernel's Unix sockets has a path under {SOCKET_PATH_MAX} bytes: the "
        f"temporary folder {tempfile.gettempdir()} is too deep and /tmp is not writable; set "
        "TMPDIR to a short folder")
