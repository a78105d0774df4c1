"""What one request costs the server, measured inside it, and what the client adds on top.

A queueing model needs each request's **occupancy** of a worker: the time the worker can serve
nobody else. The worker times its own handler (parse, predict, answer) with ``perf_counter`` and
sends it back with the answer, with its own CPU seconds at the handler's start and end; what
the handler does not see (uvicorn's HTTP parsing, the socket's accept, read, write and close)
shows in the CPU the worker used between one handler's end and the next one's start, so each
request's occupancy is measured on its own, not spread as an average. The client's own work (connecting, parsing the answer) and the network are a **delay**
on top of the server's response time, never occupancy: it is measured on requests that reach
an idle worker, as latency minus occupancy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlscale_lab.queueing import ServiceTime
from mlscale_lab.scaling.serving._load import closed_loop
from mlscale_lab.validation import check_int, check_number

__all__ = ["ServiceProfile", "flag_late_sends", "measure_service", "occupancy"]


@dataclass(frozen=True)
class ServiceProfile:
    """One worker's cost per request, and the client's delay, measured on a running server.

    Attributes
    ----------
    handler : numpy.ndarray
        The handler's own times of requests sent back to back (seconds, as the worker measured).
    occupancy : numpy.ndarray
        The same requests' occupancy of the worker (seconds): the handler plus the worker's
        HTTP and socket work for it (see :func:`occupancy`).
    delay_s : float
        Client and network: mean latency minus occupancy of requests reaching an idle worker.
    idle_latency_s : float
        Mean latency a client saw for those requests.
    pinned : bool
        Whether the generator ran on a CPU of its own.
    """

    handler: np.ndarray
    occupancy: np.ndarray
    delay_s: float
    idle_latency_s: float
    pinned: bool

    @property
    def framework_s(self) -> float:
        """The worker's mean cost per request beyond its handler (HTTP and socket work), seconds."""
        return float(self.occupancy.mean() - self.handler.mean())

    @property
    def service(self) -> ServiceTime:
        """Occupancy per request, as measured: its mean, scv and distribution."""
        return ServiceTime.measured(self.occupancy)

    @property
    def mean_s(self) -> float:
        """Mean occupancy per request, seconds."""
        return float(self.occupancy.mean())

    def __str__(self) -> str:
        s = self.service
        return (f"occupancy {s.mean * 1000:.2f} ms a request (handler {self.handler.mean() * 1000:.2f}"
                f" + framework {self.framework_s * 1000:.2f}; scv {s.scv:.3f}), client and network "
                f"{self.delay_s * 1000:.2f} ms on top")


def occupancy(result, cpu_seconds: float | None = None) -> np.ndarray:
    """Each request's occupancy of its worker in a run (seconds; NaN where not answered).

    A request occupies its worker for its handler's wall time (parse, predict, answer: a
    handler that waits for the CPU still holds the worker) plus the HTTP and socket work the
    handler does not see: the CPU the worker used between the end of its previous answer's
    handler and the start of this one's (the write and close of the one, the accept, read and
    parse of the other), which each answer carries (``cpu0``, ``cpu``). The first answer of each
    worker in the run gets the median of the others' share. Where the worker's CPU clock is too
    coarse to time one request (Windows), each request gets an equal share of ``cpu_seconds``,
    the workers' CPU time over the run (:meth:`ModelServer.worker_cpu_seconds` after minus
    before), less the handlers' mean, clipped at 0: on a busy machine a handler's wall time can
    exceed its CPU time (it waited for the CPU).
    """
    ok = result.ok & np.isfinite(result.service)
    if not ok.any():
        raise ValueError("occupancy(result=...): no answered request reported its service time")
    n = result.ok.size
    cpu = result.cpu if result.cpu is not None else np.full(n, np.nan)
    cpu0 = result.cpu0 if result.cpu0 is not None else np.full(n, np.nan)
    out = np.full(n, np.nan)
    if np.all(np.isfinite(cpu[ok]) & np.isfinite(cpu0[ok])):
        for pid in np.unique(result.worker[ok]):
            idx = np.flatnonzero(ok & (result.worker == pid))
            idx = idx[np.argsort(cpu[idx], kind="stable")]
            # a handler that began before the previous one ended (the batcher) adds nothing
            share = np.maximum(cpu0[idx[1:]] - cpu[idx[:-1]], 0.0)
            first = float(np.median(share)) if share.size else 0.0
            out[idx] = result.service[idx] + np.concatenate([[first], share])
        return out
    if cpu_seconds is None:
        raise ValueError("occupancy(cpu_seconds=None): this worker's CPU clock cannot time one request; "
                         "pass the workers' CPU seconds over the run (server.worker_cpu_seconds() after "
                         "minus before)")
    share = max(0.0, float(cpu_seconds) / int(ok.sum()) - float(result.service[ok].mean()))
    return np.where(ok, result.service + share, np.nan)


def measure_service(server, rows, *, n_requests: int = 300, idle_requests: int = 60,
                    cpus=None) -> ServiceProfile:
    """Measure a one-worker server's occupancy per request and the client's delay.

    Requests sent back to back (one user, after a warm-up of 30) give the handler's times and
    each request's occupancy (:func:`occupancy`); requests paced at a fifth of one worker's
    capacity reach an idle worker and give the client's delay: their latency minus their
    occupancy.

    Parameters
    ----------
    server : ModelServer
        Running, with one worker (on its own CPU where possible).
    rows : array-like
        Feature rows.
    n_requests, idle_requests : int
        Requests back to back, and paced.
    cpus : sequence of int, optional
        The load generator's CPUs (see :func:`cpu_split`).

    Returns
    -------
    ServiceProfile
    """
    n = check_int("measure_service", "n_requests", n_requests, low=20, high=20_000)
    m = check_int("measure_service", "idle_requests", idle_requests, low=10, high=2_000)
    closed_loop(server, 1, rows=rows, n_requests=30, cpus=cpus)  # warm caches and code paths
    before = server.worker_cpu_seconds()
    alone = closed_loop(server, 1, rows=rows, n_requests=n, cpus=cpus)
    busy = occupancy(alone, server.worker_cpu_seconds() - before)
    keep = alone.ok & np.isfinite(busy)
    handler, busy = alone.service[keep], busy[keep]
    before = server.worker_cpu_seconds()
    idle = closed_loop(server, 1, rows=rows, n_requests=m, rate=0.2 / float(busy.mean()), cpus=cpus)
    occ = occupancy(idle, server.worker_cpu_seconds() - before)
    lat = (idle.done - idle.sent)[idle.ok]
    delay = max(0.0, float(np.nanmean((idle.done - idle.sent) - occ)))
    return ServiceProfile(np.asarray(handler, float), np.asarray(busy, float), delay, float(lat.mean()),
                          bool(alone.pinned))


def flag_late_sends(check, result, *, late_s: float = 0.005, share: float = 0.02) -> float:
    """Flag ``check`` (a :class:`~mlscale_lab.evidence.MachineCheck`) when the generator ran late.

    An open-loop generator that sends more than ``share`` of its requests over ``late_s`` after
    their scheduled time is not sending the load it claims (it was starved of CPU): the
    measurement then says so. Returns the share of late sends.
    """
    late_s = check_number("flag_late_sends", "late_s", late_s, low=0, low_open=True)
    share = check_number("flag_late_sends", "share", share, low=0, high=1)
    lag = result.send_lag
    lag = lag[np.isfinite(lag)]
    late = float((lag > late_s).mean()) if lag.size else 0.0
    if late > share:
        check.flag(f"the load generator sent {late:.0%} of its requests over {late_s * 1000:g} ms late "
                   f"(p99 {np.percentile(lag, 99) * 1000:.1f} ms): short of CPU, it did not send the load asked for")
    return late
