"""Load points in steady state, held to queueing theory and to a replay of their own trace.

A load point sends Poisson arrivals at a utilisation ``rho`` of one worker's measured capacity,
repeated with different seeds. Each run starts from an empty queue, so its first part is a
transient: the runs are long enough to hold many relaxation times
(:func:`~mlscale_lab.queueing.relaxation_time`), and what comes before the warm-up is dropped.
The measured mean response time (answer minus the request's actual send) is compared with

- **M/G/c by Allen-Cunneen** on the realised arrival rate and the measured occupancy's mean and
  variability (for one worker it is the Pollaczek-Khinchine formula, exact), plus the client's
  measured delay;
- **M/M/c**, the same with exponential service: what a model that ignores the near-constant
  predict says;
- a **replay** of the run's own arrivals and occupancies through an ideal FCFS queue
  (:func:`~mlscale_lab.queueing.fcfs_waits`, or :func:`~mlscale_lab.queueing.dispatch_replay`):
  the same sample path, so what is left between it and the measurement is dispatch and
  contention, not the luck of the draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlscale_lab.evidence import Interval, mean_interval
from mlscale_lab.queueing import ServiceTime, dispatch_replay, ggc_mean_wait, relaxation_time
from mlscale_lab.scaling.serving._load import open_loop
from mlscale_lab.scaling.serving._service import flag_late_sends, occupancy
from mlscale_lab.validation import check_fraction, check_int, check_number

__all__ = ["LoadPoint", "measure_load_point", "run_length"]

#: Batches per run for the batch-means interval of a run's mean response time: few and long,
#: so that neighbouring batches are nearly independent and each batch mean nearly normal (with
#: ten short ones the wait's skew and autocorrelation make a 95 % interval cover about 88 %).
BATCHES = 5


def run_length(servers: int, rate: float, service_s: float, *, requests: int,
               relaxations: float = 40.0) -> tuple[float, float]:
    """(warm-up, measured window) in seconds for a run at ``rate``.

    The warm-up is 10 relaxation times (0.2 s at least); the window holds ``requests`` arrivals
    and at least ``relaxations`` relaxation times, so the mean is a steady-state one.

    >>> warm, window = run_length(1, 150.0, 0.004, requests=500)
    >>> round(warm, 2), round(window, 2)
    (0.79, 3.33)
    """
    tau = relaxation_time(servers, rate, service_s)
    return max(0.2, 10 * tau), max(requests / rate, relaxations * tau)


@dataclass
class LoadPoint:
    """Runs at one utilisation and what theory and replay say of them.

    Attributes
    ----------
    rho : float
        Utilisation asked for (of ``servers`` workers at the profiled occupancy).
    rate : float
        Arrivals per second asked for.
    servers : int
    runs : list of LoadResult
    occupancy : list of numpy.ndarray
        Each run's per-request occupancy (seconds).
    warmup_s : float
        Seconds dropped at the start of each run.
    delay_s : float
        The client's delay added to every prediction.
    late_share : float
        Largest share of late sends over the runs.
    planned : int
        Requests it was asked to measure after the warm-ups (over all runs).
    capped : bool
        True when the time it was allowed (``max_seconds``) held it to fewer than ``planned``.
    """

    rho: float
    rate: float
    servers: int
    runs: list
    occupancy: list
    warmup_s: float
    delay_s: float
    late_share: float
    planned: int = 0
    capped: bool = False

    def _window(self, r) -> np.ndarray:
        return r.ok & (r.sent >= self.warmup_s) & np.isfinite(r.service)

    @property
    def responses(self) -> np.ndarray:
        """Measured response times (answer minus actual send) after the warm-up, all runs."""
        return np.concatenate([(r.done - r.sent)[self._window(r)] for r in self.runs])

    @property
    def service(self) -> ServiceTime:
        """The measured occupancy after the warm-up, all runs."""
        return ServiceTime.measured(np.concatenate(
            [o[self._window(r)] for r, o in zip(self.runs, self.occupancy, strict=True)]))

    @property
    def realised_rate(self) -> float:
        """Arrivals per second the runs really sent (after the warm-up)."""
        n = span = 0.0
        for r in self.runs:
            s = r.sent[r.sent >= self.warmup_s]
            n, span = n + s.size - 1, span + (s.max() - s.min())
        return n / span

    @property
    def realised_rho(self) -> float:
        """Realised rate times mean occupancy, over the workers."""
        return self.realised_rate * self.service.mean / self.servers

    def measured(self, level: float = 0.95) -> Interval:
        """Mean response time with a batch-means interval (``BATCHES`` a run, pooled, Student t)."""
        means = []
        for r in self.runs:
            x = (r.done - r.sent)[self._window(r)]
            means.extend(b.mean() for b in np.array_split(x, BATCHES) if b.size)
        iv = mean_interval(means, level)
        return Interval(float(self.responses.mean()), iv.low, iv.high, level,
                        f"batch means, {len(self.runs)} runs", int(self.responses.size))

    def predicted(self, *, exponential: bool = False) -> float:
        """Mean response time by Allen-Cunneen (M/G/c) on the realised rate and occupancy, or
        by M/M/c (``exponential=True``), plus the client's delay; inf if unstable."""
        s = self.service
        lam = self.realised_rate
        if lam * s.mean >= self.servers:
            return float("inf")
        wait = ggc_mean_wait(self.servers, lam, s.mean, service_scv=1.0 if exponential else s.scv)
        return wait + s.mean + self.delay_s

    def replayed(self, policy: str = "central") -> float:
        """Mean response time of the runs' own arrivals and occupancies replayed through
        ``policy`` (see :func:`~mlscale_lab.queueing.dispatch_replay`), plus the delay."""
        out = []
        for r, o in zip(self.runs, self.occupancy, strict=True):
            ok = r.ok & np.isfinite(o)
            waits, _ = dispatch_replay(r.sent[ok], o[ok], self.servers, policy)
            keep = r.sent[ok] >= self.warmup_s
            out.append(waits[keep] + o[ok][keep])
        return float(np.concatenate(out).mean() + self.delay_s)

    def error(self, level: float = 0.95) -> Interval:
        """The M/G/c prediction's relative error, measured / predicted - 1, with its interval."""
        m, p = self.measured(level), self.predicted()
        return Interval(m.estimate / p - 1, m.low / p - 1, m.high / p - 1, level, m.method, m.n)


def measure_load_point(server, rho: float, profile, *, rows, requests: int = 600, repeats: int = 3,
                       relaxations: float = 40.0, seed: int = 0, cpus=None, check=None,
                       max_seconds: float | None = None) -> LoadPoint:
    """Run ``repeats`` open-loop runs at utilisation ``rho`` of the server's measured capacity.

    Parameters
    ----------
    server : ModelServer
    rho : float
        Target utilisation, strictly between 0 and 1.
    profile : ServiceProfile
        From :func:`measure_service` (occupancy and client delay).
    rows : array-like
    requests : int, default 600
        Requests measured after the warm-up, over all repeats.
    repeats : int, default 3
    relaxations : float, default 40
        Relaxation times each run's measured window holds at least (see :func:`run_length`).
    seed : int
    cpus : sequence of int, optional
        The generator's CPUs.
    check : MachineCheck, optional
        Flagged when the generator sends late.
    max_seconds : float, optional
        Seconds all the runs may take together, warm-ups included. A slower service than the
        profile's (a busy machine) never makes the point overrun it: the measured windows
        shrink instead, and the point says so (``capped``; ``check`` is flagged).

    Returns
    -------
    LoadPoint
    """
    rho = check_fraction("measure_load_point", "rho", rho, low_open=True, high_open=True)
    repeats = check_int("measure_load_point", "repeats", repeats, low=1, high=20)
    requests = check_int("measure_load_point", "requests", requests, low=repeats * BATCHES * 2)
    if max_seconds is not None:
        max_seconds = check_number("measure_load_point", "max_seconds", max_seconds, low=0, low_open=True)
    c = server.workers
    rate = rho * c / profile.mean_s
    warm, window = run_length(c, rate, profile.mean_s, requests=requests / repeats,
                              relaxations=relaxations)
    capped = False
    if max_seconds is not None and repeats * (warm + window) > max_seconds:
        # the fewest requests a run's batch-means interval needs, whatever the time
        window = max(max_seconds / repeats - warm, 2 * BATCHES / rate)
        capped = True
        if check is not None:
            check.flag(f"the lab's time allowed {rate * window * repeats:.0f} of the {requests} requests "
                       f"planned at rho {rho:g} (the service is slower than measured at the start)")
    runs, occ = [], []
    for k in range(repeats):
        before = server.worker_cpu_seconds()
        r = open_loop(server, rate, rows=rows, duration=warm + window, seed=seed + k, cpus=cpus)
        occ.append(occupancy(r, server.worker_cpu_seconds() - before))
        runs.append(r)
    worst = max(runs, key=lambda r: float(np.mean(r.send_lag > 0.005)))
    late = flag_late_sends(check, worst) if check is not None else float(np.mean(worst.send_lag > 0.005))
    return LoadPoint(rho, rate, c, runs, occ, warm, profile.delay_s, late, requests, capped)
