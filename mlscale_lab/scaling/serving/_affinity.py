"""Which CPU runs what: the load generator on a core of its own, the server on the others.

A load generator that shares a core with the server it loads measures itself: its sends run
late when a worker holds the CPU, and the worker's service stretches when the generator runs.
Where the platform allows it, the generator's thread is pinned to one CPU and the server's
processes to the rest. Linux pins a single thread (``sched_setaffinity`` on the calling
thread); Windows only whole processes (psutil), so there the generator's whole process moves
for the run and moves back after; macOS has no CPU affinity at all, and then nothing is pinned
and the lab says so.
"""

from __future__ import annotations

import os
import sys

__all__ = ["AFFINITY", "cpu_split", "pin_process", "pin_thread", "usable_cpus"]

#: How this platform pins: "thread" (Linux), "process" (Windows), or None (macOS and others).
AFFINITY = ("thread" if hasattr(os, "sched_setaffinity")
            else "process" if sys.platform == "win32" else None)


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on (all of them where the platform does not say)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    try:
        import psutil

        return sorted(psutil.Process().cpu_affinity())
    except (AttributeError, OSError, ImportError):
        return list(range(os.cpu_count() or 1))


def cpu_split(cpus: float) -> tuple[list[int], list[int]] | None:
    """(generator CPUs, server CPUs): the first usable CPU for the generator, the rest for the
    server; None with fewer than two whole CPUs (``cpus`` is what the quota allows) or where
    the platform cannot pin."""
    ids = usable_cpus()
    if AFFINITY is None or cpus < 2 or len(ids) < 2:
        return None
    return ids[:1], ids[1:]


def pin_process(cpus) -> bool:
    """Pin this process (and the threads and children it starts from now on) to ``cpus``."""
    cpus = sorted(int(c) for c in cpus)
    try:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)  # before other threads start, so all inherit it
            return True
        import psutil

        psutil.Process().cpu_affinity(cpus)
        return True
    except (AttributeError, OSError, ValueError, ImportError):
        return False


class pin_thread:  # noqa: N801  (a context manager used like a function)
    """Run the calling thread on ``cpus`` inside ``with``; restore the old affinity after.

    ``pinned`` says whether it worked (False on macOS, or with ``cpus=None``).
    """

    def __init__(self, cpus):
        self.cpus = None if cpus is None else sorted(int(c) for c in cpus)
        self.pinned = False
        self._old = None

    def __enter__(self) -> pin_thread:
        if self.cpus is None or AFFINITY is None:
            return self
        try:
            if AFFINITY == "thread":  # pid 0 is the calling thread on Linux
                self._old = os.sched_getaffinity(0)
                os.sched_setaffinity(0, self.cpus)
            else:
                import psutil

                proc = psutil.Process()
                self._old = proc.cpu_affinity()
                proc.cpu_affinity(self.cpus)
            self.pinned = True
        except (AttributeError, OSError, ValueError, ImportError):
            self.pinned = False
        return self

    def __exit__(self, *exc) -> None:
        if not self.pinned or self._old is None:
            return
        try:
            if AFFINITY == "thread":
                os.sched_setaffinity(0, self._old)
            else:
                import psutil

                psutil.Process().cpu_affinity(list(self._old))
        except (OSError, ValueError, ImportError):
            pass
