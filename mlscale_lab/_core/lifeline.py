"""A child process that ends when the process that started it is gone.

A notebook kernel can die without running any clean-up (the out-of-memory killer, a kill -9,
"Restart kernel"). A model server or a training worker must not outlive it. Two mechanisms,
because neither is enough alone:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills us the instant the thread
  that forked us exits (instant, but tied to a *thread*, and Linux only);
- everywhere, a daemon thread that polls the parent's pid and, once the parent has changed
  (we were re-parented to init or a sub-reaper), kills our own children and exits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

__all__ = ["PR_SET_PDEATHSIG", "set_parent_death_signal", "watch_parent"]

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent thread exits; False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _parent_alive(parent_pid: int) -> bool:
    if os.getppid() != parent_pid:  # re-parented: the parent has exited
        return False
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch_parent(parent_pid: int, *, interval: float = 0.2, on_death=None,
                 remove=()) -> threading.Thread:
    """Start a daemon thread that calls ``on_death()`` (default: end this process tree at once,
    then remove the folders in ``remove``) as soon as ``parent_pid`` is no longer our parent."""

    def die():
        try:
            from mlscale_lab._core.processes import kill_descendants
            from mlscale_lab._core.tempdirs import remove_tempdir

            kill_descendants(os.getpid(), timeout=1.0)
            for folder in remove:
                remove_tempdir(folder)
        finally:
            os._exit(0)

    action = on_death or die

    def loop():
        while _parent_alive(parent_pid):
            time.sleep(interval)
        action()

    thread = threading.Thread(target=loop, name="mlscale-lifeline", daemon=True)
    thread.start()
    return thread
