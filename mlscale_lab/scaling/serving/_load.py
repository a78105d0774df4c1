"""Load generators for the model server: open loop (Poisson arrivals) and closed loop.

**Open loop** sends request *i* at its scheduled time, whether or not earlier requests have
been answered, as independent users do. Its latency is measured from the *scheduled* send
time, so time a request spends waiting because the generator or the server fell behind counts.
**Closed loop** has a fixed number of users, each sending its next request only after the
previous answer (at its pace, if it has one): when the server stalls, the users stop sending,
and the requests that would have arrived during the stall are never sent or measured. Timing
from the *actual* send hides exactly the slow period: coordinated omission (Gil Tene).

Both run their own asyncio loop in a helper thread (a notebook's kernel already runs one), one
TCP connection per request (so each request joins the server's accept queue, the queue its
workers share), and both refuse anything but a running :class:`ModelServer` this process
started on 127.0.0.1, with a bounded number of requests and duration.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.scaling.serving._server import HOST, ModelServer, live_servers
from mlscale_lab.validation import check_int, check_number

__all__ = ["MAX_DURATION", "MAX_RATE", "MAX_REQUESTS", "LoadResult", "closed_loop", "open_loop",
           "poisson_schedule"]

MAX_REQUESTS = 20_000
MAX_DURATION = 30.0
MAX_RATE = 5_000.0
MAX_USERS = 256


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
    """

    kind: str
    scheduled: np.ndarray
    sent: np.ndarray
    done: np.ndarray
    ok: np.ndarray
    user: np.ndarray
    target_rate: float | None
    pids: dict = field(default_factory=dict, repr=False)

    @property
    def latency(self) -> np.ndarray:
        """Seconds from the scheduled send to the answer: what a user waits (answered requests)."""
        return (self.done - self.scheduled)[self.ok]

    @property
    def service_latency(self) -> np.ndarray:
        """Seconds from the actual send to the answer: what a naive closed-loop tool reports."""
        return (self.done - self.sent)[self.ok]

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


def _check_server(func: str, server) -> ModelServer:
    if not isinstance(server, ModelServer):
        raise TypeError(
            f"{func}(server={server!r}): expected a running ModelServer started with serve() in this "
            "process, got something else; load generators only target the local server the lab "
            "started, never an address")
    if not server.running or server not in live_servers():
        raise ValueError(f"{func}(server={server!r}): expected a running server, got a stopped one; "
                         "start one with serve()")
    if HOST != "127.0.0.1":  # pragma: no cover  (a guard against editing HOST)
        raise ValueError(f"{func}: only the loopback address 127.0.0.1 may be loaded")
    return server


def _bodies(func: str, rows, n: int) -> list[bytes]:
    X = np.asarray(rows, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{func}(rows=array of shape {X.shape}): expected a 2-D array of feature "
                         "rows (cycled through, one per request)")
    return [b'{"x":' + json.dumps(X[i % X.shape[0]].tolist()).encode() + b"}" for i in range(n)]


def _header(port: int, length: int) -> bytes:
    return (f"POST /predict HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


async def _one(port: int, body: bytes, timeout: float, clock) -> tuple[float, bool, int]:
    """Send one request on its own connection; (time answered, ok, worker pid)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(_header(port, len(body)) + body)
                data = await reader.read()  # the server closes after answering
            finally:
                writer.close()
        done = clock()
        head, _, payload = data.partition(b"\r\n\r\n")
        ok = head.startswith(b"HTTP/1.1 200")
        pid = json.loads(payload).get("pid", -1) if ok else -1
        return done, ok, pid
    except (OSError, TimeoutError, ValueError):
        return float("nan"), False, -1


def _run_in_thread(coro_factory):
    """Run a fresh event loop in a thread (a kernel's own loop is busy) and return its result."""
    box = {}

    def target():
        try:
            box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="mlscale-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _check_size(func: str, n: int | None, duration: float | None, rate: float) -> int:
    if (n is None) == (duration is None):
        raise ValueError(f"{func}(n_requests={n!r}, duration={duration!r}): expected exactly one of "
                         "n_requests and duration")
    if duration is not None:
        duration = check_number(func, "duration", duration, low=0, low_open=True, high=MAX_DURATION)
        n = max(1, round(rate * duration))
    return check_int(func, "n_requests", n, low=1, high=MAX_REQUESTS,
                     hint=f"at most {MAX_REQUESTS:,} requests per run (rate x duration)")


def open_loop(server, rate: float, *, rows, n_requests: int | None = None,
              duration: float | None = None, seed: int = 0, timeout: float = 10.0) -> LoadResult:
    """Send Poisson arrivals at ``rate`` per second to ``server``; time each from its schedule.

    Parameters
    ----------
    server : ModelServer
        A running server from :func:`serve` (nothing else is accepted).
    rate : float
        Mean requests per second, up to ``MAX_RATE``.
    rows : array-like, shape (n, features)
        Feature rows sent in turn.
    n_requests, duration : int or float
        How many requests, or for how many seconds (``rate * duration`` requests); exactly one,
        at most ``MAX_REQUESTS`` requests and ``MAX_DURATION`` seconds.
    seed : int
        Seeds the arrival times.
    timeout : float
        Seconds before a request counts as failed.

    Returns
    -------
    LoadResult
    """
    server = _check_server("open_loop", server)
    rate = check_number("open_loop", "rate", rate, low=0, low_open=True, high=MAX_RATE)
    n = _check_size("open_loop", n_requests, duration, rate)
    timeout = check_number("open_loop", "timeout", timeout, low=0, low_open=True, high=60)
    schedule = poisson_schedule(rate, n, seed)
    bodies = _bodies("open_loop", rows, n)
    port = server.port

    async def drive():
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.02
        clock = lambda: loop.time() - start  # noqa: E731
        sent = np.full(n, np.nan)
        tasks = []
        for i in range(n):
            delay = schedule[i] - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = clock()
            tasks.append(asyncio.create_task(_one(port, bodies[i], timeout, clock)))
        return sent, await asyncio.gather(*tasks)

    sent, answers = _run_in_thread(drive)
    return _result("open", schedule, sent, answers, np.full(n, -1), rate)


def closed_loop(server, users: int, *, rows, n_requests: int | None = None,
                duration: float | None = None, rate: float | None = None,
                timeout: float = 10.0) -> LoadResult:
    """``users`` clients, each sending its next request when its previous answer arrives.

    Parameters
    ----------
    server : ModelServer
        A running server from :func:`serve`.
    users : int
        Concurrent clients (at most ``users`` requests in flight), 1 to 256.
    rows : array-like
        Feature rows sent in turn.
    n_requests, duration : int or float
        Exactly one: total requests, or seconds (needs ``rate``, or runs ``users * 50`` per
        second as a cap when ``rate`` is None).
    rate : float, optional
        A pace: each user aims to send every ``users / rate`` seconds (like wrk2 or JMeter's
        constant throughput timer) but never before its previous answer. None: no pause at all.
    timeout : float
        Seconds before a request counts as failed.

    Returns
    -------
    LoadResult
        ``scheduled`` holds each request's paced send time, so the latency a user would have
        seen can be computed; ``p99`` reports what the closed-loop tool itself sees.
    """
    server = _check_server("closed_loop", server)
    users = check_int("closed_loop", "users", users, low=1, high=MAX_USERS)
    if rate is not None:
        rate = check_number("closed_loop", "rate", rate, low=0, low_open=True, high=MAX_RATE)
    n = _check_size("closed_loop", n_requests, duration, rate if rate is not None else 50.0 * users)
    timeout = check_number("closed_loop", "timeout", timeout, low=0, low_open=True, high=60)
    bodies = _bodies("closed_loop", rows, n)
    port = server.port
    interval = users / rate if rate is not None else 0.0
    deadline = duration if duration is not None else float("inf")

    async def drive():
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.02
        clock = lambda: loop.time() - start  # noqa: E731
        log: list[tuple] = []
        counter = iter(range(n))

        async def user(u: int):
            k = 0
            while True:
                planned = u * interval / users + k * interval if interval else None
                if planned is not None and planned >= deadline:
                    return
                i = next(counter, None)
                if i is None:
                    return
                now = clock()
                if planned is not None and planned > now:
                    await asyncio.sleep(planned - now)
                elif planned is None and now >= deadline:
                    return
                sent = clock()
                done, ok, pid = await _one(port, bodies[i], timeout, clock)
                log.append((sent if planned is None else planned, sent, done, ok, pid, u))
                k += 1

        await asyncio.gather(*(user(u) for u in range(users)))
        return log

    log = sorted(_run_in_thread(drive), key=lambda r: r[1])
    scheduled, sent, done, ok, pids, who = (np.array(col) for col in zip(*log, strict=True))
    answers = list(zip(done, ok, pids, strict=True))
    return _result("closed", scheduled, sent, answers, who, rate)


def _result(kind, scheduled, sent, answers, user, rate) -> LoadResult:
    done = np.array([a[0] for a in answers], dtype=float)
    ok = np.array([a[1] for a in answers], dtype=bool) & np.isfinite(done)
    pids: dict[int, int] = {}
    for a in answers:
        if a[1]:
            pids[int(a[2])] = pids.get(int(a[2]), 0) + 1
    return LoadResult(kind, np.asarray(scheduled, float), np.asarray(sent, float), done, ok,
                      np.asarray(user, int), rate, pids)
