"""What a load run measured, request by request, and the Poisson schedule open loop sends on.

:class:`LoadResult` keeps, for every request, when it was meant to go, when it went, when its
answer came, which worker answered and the service time that worker measured; the latency
users see (from the schedule) and the one a closed-loop tool reports (from the send) are two
views of the same log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.validation import check_int, check_number

__all__ = ["LoadResult", "make_result", "poisson_schedule"]


@dataclass
class LoadResult:
    """What a load run measured, one entry per request, times in seconds from the run's start.

    Attributes
    ----------
    kind : str
        ``"open"`` or ``"closed"``.
    scheduled : numpy.ndarray
        When each request was meant to be sent (open loop: its Poisson arrival; closed loop: its
        user's pace, or the actual send when the users have no pace).
    sent, done : numpy.ndarray
        When it was really sent, and when its answer was complete (NaN if it failed).
    ok : numpy.ndarray of bool
        Answered with HTTP 200.
    user : numpy.ndarray of int
        The closed-loop user that sent it (-1 in open loop).
    target_rate : float or None
        The rate asked for (requests per second).
    pids : dict
        Answers per worker pid.
    service : numpy.ndarray
        Each request's service time as its worker measured it (seconds; NaN if not answered).
    worker : numpy.ndarray of int
        The pid of the worker that answered each request (-1 if none).
    batch : numpy.ndarray of int
        Rows predicted together with it (1 without the micro-batcher).
    queued : numpy.ndarray
        Seconds it waited in the micro-batcher (0 without one).
    t0 : float
        ``time.monotonic()`` at the run's time 0.
    stalls : list of (float, float)
        When the workers were paused and resumed (``stall=``), in seconds of the run.
    pinned : bool
        Whether the generator's thread ran pinned to the CPUs asked for.
    began : numpy.ndarray
        When the worker's handler began each request, in seconds of the run (the worker reads
        the same monotonic clock as the generator; NaN if not answered). With the batcher, when
        the handler took the request, before it joined a batch.
    cpu0, cpu : numpy.ndarray
        The answering worker's CPU seconds so far when its handler began and ended (NaN where
        the worker's CPU clock is too coarse to time one request, or not answered): see
        ``occupancy``.
    """

    kind: str
    scheduled: np.ndarray
    sent: np.ndarray
    done: np.ndarray
    ok: np.ndarray
    user: np.ndarray
    target_rate: float | None
    pids: dict = field(default_factory=dict, repr=False)
    service: np.ndarray | None = field(default=None, repr=False)
    worker: np.ndarray | None = field(default=None, repr=False)
    batch: np.ndarray | None = field(default=None, repr=False)
    queued: np.ndarray | None = field(default=None, repr=False)
    t0: float = float("nan")
    stalls: list = field(default_factory=list)
    pinned: bool = False
    began: np.ndarray | None = field(default=None, repr=False)
    cpu: np.ndarray | None = field(default=None, repr=False)
    cpu0: np.ndarray | None = field(default=None, repr=False)

    @property
    def latency(self) -> np.ndarray:
        """Seconds from the scheduled send to the answer: what a user waits (answered requests)."""
        return (self.done - self.scheduled)[self.ok]

    @property
    def service_latency(self) -> np.ndarray:
        """Seconds from the actual send to the answer: what a naive closed-loop tool reports."""
        return (self.done - self.sent)[self.ok]

    @property
    def send_lag(self) -> np.ndarray:
        """Seconds each request left after its scheduled time (open loop: the generator's own lag)."""
        return self.sent - self.scheduled

    def percentile(self, q: float, *, from_schedule: bool | None = None) -> float:
        """The ``q``-th percentile of latency in milliseconds.

        ``from_schedule`` defaults to True for open loop, False for closed loop (what each kind of
        tool reports); pass it to choose.
        """
        if from_schedule is None:
            from_schedule = self.kind == "open"
        lat = self.latency if from_schedule else self.service_latency
        return float(np.percentile(lat, q) * 1000.0) if lat.size else float("nan")

    @property
    def p50(self) -> float:
        """Median latency (ms), as this kind of generator reports it."""
        return self.percentile(50)

    @property
    def p95(self) -> float:
        """95th percentile latency (ms)."""
        return self.percentile(95)

    @property
    def p99(self) -> float:
        """99th percentile latency (ms)."""
        return self.percentile(99)

    @property
    def n_requests(self) -> int:
        """Requests sent."""
        return int(self.sent.size)

    @property
    def errors(self) -> int:
        """Requests not answered with HTTP 200."""
        return int((~self.ok).sum())

    @property
    def sent_rate(self) -> float:
        """Requests per second the generator really sent (gaps between first and last send)."""
        if self.sent.size < 2:
            return float("nan")
        return float((self.sent.size - 1) / (self.sent.max() - self.sent.min()))

    @property
    def throughput(self) -> float:
        """Answers per second over the run (first send to last answer)."""
        done = self.done[self.ok]
        if done.size == 0:
            return 0.0
        return float(done.size / (done.max() - self.sent.min()))


def poisson_schedule(rate: float, n_requests: int, seed: int = 0) -> np.ndarray:
    """Send times (s) of ``n_requests`` Poisson arrivals at ``rate`` per second, from 0.

    >>> t = poisson_schedule(100.0, 10_000, seed=1)
    >>> round(float(t[-1]), 0)  # about 10_000 / 100 seconds
    100.0
    """
    rate = check_number("poisson_schedule", "rate", rate, low=0, low_open=True)
    n = check_int("poisson_schedule", "n_requests", n_requests, low=1)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, n)
    gaps[0] = 0.0
    return np.cumsum(gaps)


def make_result(kind, scheduled, sent, answers, user, rate, start, stalls, pinned) -> LoadResult:
    """A :class:`LoadResult` from the generator's log: one (done, ok, answer fields) per request."""
    done = np.array([a[0] for a in answers], dtype=float)
    ok = np.array([a[1] for a in answers], dtype=bool) & np.isfinite(done)
    fields = [a[2] for a in answers]
    worker = np.array([int(f.get("pid", -1)) for f in fields], dtype=int)
    service = np.array([float(f.get("service_s", np.nan)) for f in fields], dtype=float)
    batch = np.array([int(f.get("batch", 1)) for f in fields], dtype=int)
    queued = np.array([float(f.get("queued_s", 0.0)) for f in fields], dtype=float)
    began = np.array([float(f.get("began", np.nan)) for f in fields], dtype=float) - start
    cpu = np.array([float(f.get("cpu", np.nan)) for f in fields], dtype=float)
    cpu0 = np.array([float(f.get("cpu0", np.nan)) for f in fields], dtype=float)
    pids: dict[int, int] = {}
    for w in worker[ok].tolist():
        pids[w] = pids.get(w, 0) + 1
    # asyncio's loop.time() is time.monotonic(), so `start` is the run's time 0 on that clock
    return LoadResult(kind, np.asarray(scheduled, float), np.asarray(sent, float), done, ok,
                      np.asarray(user, int), rate, pids, service, worker, batch, queued, start,
                      list(stalls), bool(pinned), began, cpu, cpu0)
