"""Load generators for the model server: open loop (Poisson arrivals) and closed loop.

**Open loop** sends request *i* at its scheduled time, whether or not earlier requests have
been answered, as independent users do. Its latency is measured from the *scheduled* send
time, so time a request spends waiting because the generator or the server fell behind counts.
**Closed loop** has a fixed number of users, each sending its next request only after the
previous answer (at its pace, if it has one): when the server stalls, the users stop sending,
and the requests that would have arrived during the stall are never sent or measured. Timing
from the *actual* send hides exactly the slow period: coordinated omission (Gil Tene).

Both run their own asyncio loop in a helper thread (a notebook's kernel already runs one), one
TCP connection per request (so each request joins the listening socket's accept queue), and
both refuse anything but a running :class:`ModelServer` this process started on 127.0.0.1,
with a bounded number of requests and duration. Each answer carries the worker's own service
time (``LoadResult.service``), so occupancy never includes the client's work. ``cpus=`` pins the
generator's thread to its own CPU (see ``_affinity``), and ``stall=(at, seconds)`` pauses every
worker (SIGSTOP/SIGCONT through psutil, or the Windows equivalent) for a real stall.
"""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np

from mlscale_lab.scaling.serving._affinity import pin_thread
from mlscale_lab.scaling.serving._result import LoadResult, make_result, poisson_schedule
from mlscale_lab.scaling.serving._server import HOST, ModelServer, live_servers
from mlscale_lab.validation import check_int, check_number

__all__ = ["MAX_DURATION", "MAX_RATE", "MAX_REQUESTS", "LoadResult", "closed_loop", "open_loop",
           "poisson_schedule"]

MAX_REQUESTS = 20_000
MAX_DURATION = 30.0
MAX_RATE = 5_000.0
MAX_USERS = 256


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


_NO_ANSWER = {"pid": -1}


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("an answer without Content-Length")


async def _one(port: int, body: bytes, timeout: float, clock) -> tuple[float, bool, dict]:
    """Send one request on its own connection; (time answered, ok, the answer's fields).

    The answer is complete when its last byte arrives (``Content-Length``), as an HTTP client
    sees it, not when the server closes the connection: the worker's event loop closes the
    socket only after whatever callback runs next, often the next request's predict, and
    reading until the close would charge that predict to this request.
    """
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                writer.write(_header(port, len(body)) + body)
                head = await reader.readuntil(b"\r\n\r\n")
                payload = await reader.readexactly(_content_length(head))
                done = clock()
            finally:
                writer.close()
        ok = head.startswith(b"HTTP/1.1 200")
        return done, ok, json.loads(payload) if ok else _NO_ANSWER
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return float("nan"), False, _NO_ANSWER


def _check_stall(func: str, stall) -> tuple[float, float] | None:
    if stall is None:
        return None
    try:
        at, seconds = (float(v) for v in stall)
    except (TypeError, ValueError):
        raise TypeError(f"{func}(stall={stall!r}): expected (at, seconds): pause the workers "
                        "`at` seconds into the run for `seconds`") from None
    check_number(func, "stall", at, low=0, hint="the stall starts at a time >= 0 in the run")
    check_number(func, "stall", seconds, low=0, low_open=True, high=5.0,
                 hint="a stall of at most 5 s")
    return at, seconds


async def _stall_workers(server: ModelServer, at: float, seconds: float, clock, log: list) -> None:
    """Pause every worker ``at`` s into the run for ``seconds``; always resume them."""
    import psutil

    procs = []
    for info in server.worker_info():
        try:
            procs.append(psutil.Process(info["pid"]))
        except psutil.Error:
            pass
    await asyncio.sleep(max(0.0, at - clock()))
    paused = []
    try:
        began = clock()
        for p in procs:
            try:
                p.suspend()
                paused.append(p)
            except psutil.Error:
                pass
        await asyncio.sleep(seconds)
    finally:  # also when the run is cancelled or fails: a paused worker must not stay paused
        for p in paused:
            try:
                p.resume()
            except psutil.Error:
                pass
        if paused:
            log.append((began, clock()))


def _run_in_thread(coro_factory, cpus=None):
    """Run a fresh event loop in a thread (a kernel's own loop is busy), pinned to ``cpus``
    where possible; return (its result, whether it was pinned)."""
    box = {"pinned": False}

    def target():
        try:
            with pin_thread(cpus) as pin:
                box["pinned"] = pin.pinned
                box["value"] = asyncio.run(coro_factory())
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="mlscale-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"], box["pinned"]


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
              duration: float | None = None, seed: int = 0, timeout: float = 10.0,
              cpus=None, stall=None, schedule=None) -> LoadResult:
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
    cpus : sequence of int, optional
        Pin the generator's thread to these CPUs where the platform allows (``result.pinned``).
    stall : (float, float), optional
        ``(at, seconds)``: pause every worker ``at`` seconds into the run, for ``seconds``.
    schedule : array-like, optional
        Send times (seconds from the start, increasing) instead of the Poisson ones; then
        ``rate`` is only the label of the run and ``n_requests``/``duration`` are not given.

    Returns
    -------
    LoadResult
    """
    server = _check_server("open_loop", server)
    rate = check_number("open_loop", "rate", rate, low=0, low_open=True, high=MAX_RATE)
    if schedule is None:
        n = _check_size("open_loop", n_requests, duration, rate)
        schedule = poisson_schedule(rate, n, seed)
    else:
        schedule = np.asarray(schedule, dtype=float).ravel()
        if (n_requests, duration) != (None, None) or schedule.size == 0 or np.any(np.diff(schedule) < 0) \
                or schedule[0] < 0 or schedule[-1] > MAX_DURATION or schedule.size > MAX_REQUESTS:
            raise ValueError("open_loop(schedule=...): expected increasing send times from 0 to at most "
                             f"{MAX_DURATION:g} s, at most {MAX_REQUESTS:,}, and no n_requests or duration")
        n = schedule.size
    timeout = check_number("open_loop", "timeout", timeout, low=0, low_open=True, high=60)
    stall = _check_stall("open_loop", stall)
    bodies = _bodies("open_loop", rows, n)
    port = server.port

    async def drive():
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.02
        clock = lambda: loop.time() - start  # noqa: E731
        stalls: list = []
        pause = (asyncio.create_task(_stall_workers(server, *stall, clock, stalls))
                 if stall else None)
        sent = np.full(n, np.nan)
        tasks = []
        try:
            for i in range(n):
                delay = schedule[i] - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                sent[i] = clock()
                tasks.append(asyncio.create_task(_one(port, bodies[i], timeout, clock)))
            answers = await asyncio.gather(*tasks)
        finally:
            if pause is not None:
                if not pause.done():
                    pause.cancel()
                await asyncio.gather(pause, return_exceptions=True)
        return sent, answers, start, stalls

    (sent, answers, start, stalls), pinned = _run_in_thread(drive, cpus)
    return make_result("open", schedule, sent, answers, np.full(n, -1), rate, start, stalls, pinned)


def closed_loop(server, users: int, *, rows, n_requests: int | None = None,
                duration: float | None = None, rate: float | None = None,
                timeout: float = 10.0, cpus=None, stall=None) -> LoadResult:
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
    cpus, stall
        As in :func:`open_loop`.

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
    stall = _check_stall("closed_loop", stall)
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
                done, ok, answer = await _one(port, bodies[i], timeout, clock)
                log.append((sent if planned is None else planned, sent, done, ok, answer, u))
                k += 1

        stalls: list = []
        pause = (asyncio.create_task(_stall_workers(server, *stall, clock, stalls))
                 if stall else None)
        try:
            await asyncio.gather(*(user(u) for u in range(users)))
        finally:
            if pause is not None:
                if not pause.done():
                    pause.cancel()
                await asyncio.gather(pause, return_exceptions=True)
        return log, start, stalls

    (log, start, stalls), pinned = _run_in_thread(drive, cpus)
    log.sort(key=lambda r: r[1])
    scheduled, sent, done, ok = (np.array([r[j] for r in log], dtype=float) for j in range(4))
    answers = [(r[2], r[3], r[4]) for r in log]
    who = np.array([r[5] for r in log], dtype=int)
    return make_result("closed", scheduled, sent, answers, who, rate, start, stalls, pinned)
