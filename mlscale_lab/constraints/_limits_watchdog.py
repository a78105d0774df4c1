"""The parent side of :func:`~mlscale_lab.constraints.run_limited`: watch the child, stop it.

A thread in the parent reads the resident memory (RSS) of the child and its own children every
few milliseconds with psutil (a fork counts only its own pages: :mod:`mlscale_lab._core.memory`) and kills the whole tree (:func:`kill_process_tree`) when it passes
the cap or the time limit. psutil reads RSS on Linux, macOS and Windows alike, and RSS is what
the out-of-memory killer and container limits count.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from mlscale_lab._core.memory import ProcessTree
from mlscale_lab._core.processes import kill_process_tree

__all__ = ["STARTUP_TIMEOUT_S", "Watchdog", "pump"]

_POLL_S = 0.004  # watchdog period; at ~5 GB/s of page touching this bounds overshoot to ~20 MB
_TREE_SCAN_S = 0.05  # how often to look for grandchildren (a full /proc scan is costlier)
#: A child that cannot even load its function within this (plus the time limit) is stuck.
STARTUP_TIMEOUT_S = 120.0


def pump(stream, sink_name: str) -> None:
    """Copy a child's output to this process's ``sys.stdout``/``sys.stderr`` (the notebook cell).

    Parameters
    ----------
    stream : binary file
        The child's stdout or stderr pipe; read until it closes.
    sink_name : {"stdout", "stderr"}
        Which of this process's streams to write to (looked up at each write, so a notebook's
        per-cell stream is used).
    """
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        sink = getattr(sys, sink_name)
        try:
            sink.write(chunk.decode("utf-8", errors="replace"))
            sink.flush()
        except Exception:
            pass


class Watchdog:
    """Polls the RSS of a child process tree; kills it over the cap or over time.

    Parameters
    ----------
    proc : subprocess.Popen
        The child.
    cap : int or None
        Memory cap in bytes; None watches without capping.
    timeout_s : float or None
        Wall-time limit counted from the moment the child writes ``ready_file``.
    ready_file : Path
        Appears when the child has loaded its job and is about to call the function.
    startup_allowance : int
        While loading, the child may pass a small cap by up to this much, so that it can report
        the real minimum it needs.

    Attributes
    ----------
    peak : int
        Highest RSS of the tree seen.
    verdict : str or None
        Why the child was killed: ``"memory"``, ``"memory-before-start"``, ``"time"``,
        ``"startup"``; None when it ended by itself.
    unreadable : str or None
        Why the child's memory could not be read (the cap was then not enforced).
    """

    def __init__(self, proc, cap: int | None, timeout_s: float | None, ready_file: Path,
                 startup_allowance: int = 0):
        self.proc, self.cap, self.timeout_s, self.ready_file = proc, cap, timeout_s, ready_file
        self.startup_allowance = max(cap or 0, startup_allowance)
        self.peak = 0
        self.verdict: str | None = None
        self.started_at: float | None = None
        self.unreadable: str | None = None

    def _stop(self, verdict: str) -> None:
        self.verdict = verdict
        kill_process_tree(self.proc.pid)

    def run(self) -> None:
        """Watch until the child exits or is killed (call from the thread that waits for it)."""
        t_spawn = time.perf_counter()
        try:
            tree = ProcessTree(self.proc.pid)
        except psutil.Error:
            return
        last_scan = 0.0
        while self.proc.poll() is None:
            now = time.perf_counter()
            if now - last_scan > _TREE_SCAN_S:
                last_scan = now
                tree.refresh()
            rss = tree.rss()
            if tree.unreadable:
                self.unreadable = tree.unreadable
            self.peak = max(self.peak, rss)
            if self.started_at is None and self.ready_file.exists():
                self.started_at = time.perf_counter()
            if self.cap is not None and rss > self.cap:
                if self.started_at is not None:
                    return self._stop("memory")
                # Still loading: let it finish so the child can report the real minimum,
                # unless loading alone runs away (then kill it and report what it reached).
                if rss > self.startup_allowance:
                    return self._stop("memory-before-start")
            if self.started_at is None:
                if now - t_spawn > STARTUP_TIMEOUT_S + (self.timeout_s or 0):
                    return self._stop("startup")
            elif self.timeout_s is not None and now - self.started_at > self.timeout_s:
                return self._stop("time")
            time.sleep(_POLL_S)
