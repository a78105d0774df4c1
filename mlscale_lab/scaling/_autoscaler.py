"""Auto-scaling over a request-rate trace: static provisioning against the Kubernetes HPA rule.

The simulator is a fluid model stepped every ``step`` seconds: replicas serve
``1 / service_time`` requests per second each; arrivals beyond capacity queue up (and are dropped
past a per-replica queue limit); within capacity, the chance a request misses the latency SLO is
that of an M/M/c queue (Erlang C, from :mod:`mlscale_lab.queueing`) at that step's rate and
ready replicas.

The target-tracking controller follows the HPA algorithm: every ``sync_period`` it computes
``desired = ceil(current * metric / target)`` (no change while ``metric / target`` is within
``tolerance`` of 1), takes the highest recommendation of the last ``stabilization_window``
seconds before scaling down, limits a scale-up to ``max(scale_up_pods, scale_up_percent%)``
per period, and new replicas cost money at once but serve only after ``startup_delay``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.queueing._formulas import mmc_latency_exceeds_each
from mlscale_lab.scaling._traces import RateTrace
from mlscale_lab.validation import (
    check_choice,
    check_fraction,
    check_int,
    check_number,
    check_positive,
)

#: What :func:`simulate_autoscaler` can do: a fixed fleet for the peak or the mean, or the HPA.
STRATEGIES = ("static_peak", "static_mean", "hpa")


def hpa_desired_replicas(
    current_replicas: int, current_metric: float, target_metric: float, tolerance: float = 0.1
) -> int:
    """The Kubernetes HPA rule: ``ceil(current_replicas * current_metric / target_metric)``.

    No change while the ratio ``current_metric / target_metric`` is within ``tolerance`` of 1
    (the default 10% stops the replica count flapping on metric noise).

    Examples
    --------
    >>> hpa_desired_replicas(50, 90, 75)  # 50 * 1.2 = 60
    60
    >>> hpa_desired_replicas(10, 0.63, 0.6)  # ratio 1.05: within tolerance
    10
    >>> hpa_desired_replicas(4, 0.15, 0.6)
    1
    """
    func = "hpa_desired_replicas"
    current = check_int(func, "current_replicas", current_replicas, low=1,
                        hint="the HPA needs a running replica to measure (Kubernetes disables "
                             "autoscaling at 0)")
    metric = check_number(func, "current_metric", current_metric, low=0)
    target = check_positive(func, "target_metric", target_metric)
    tolerance = check_fraction(func, "tolerance", tolerance, high_open=True)
    return _desired(current, metric, target, tolerance)


def _desired(current: int, metric: float, target: float, tolerance: float) -> int:
    """The HPA rule on checked arguments (the simulator calls it every sync period)."""
    ratio = metric / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    # round() first: 3 * (0.7 / 0.35) is 6.000000000000001 in floating point, and ceil would say 7.
    return max(1, math.ceil(round(current * ratio, 9)))


@dataclass
class AutoscaleResult:
    """What a scaling strategy cost and how it served a trace.

    Attributes
    ----------
    strategy : str
    replica_seconds : float
        Cost: replicas paid for (starting ones included) times seconds.
    slo_violation_rate : float
        Fraction of requests slower than the SLO, dropped ones included.
    dropped_rate : float
        Fraction of requests dropped because the queues were full.
    mean_replicas, max_replicas : float, int
    t, rate, replicas, ready, violation : numpy.ndarray
        Per step: time, arrival rate, replicas paid for, replicas serving, and the fraction of
        that step's requests that missed the SLO.
    """

    strategy: str
    replica_seconds: float
    slo_violation_rate: float
    dropped_rate: float
    mean_replicas: float
    max_replicas: int
    t: np.ndarray = field(repr=False)
    rate: np.ndarray = field(repr=False)
    replicas: np.ndarray = field(repr=False)
    ready: np.ndarray = field(repr=False)
    violation: np.ndarray = field(repr=False)

    def as_dict(self) -> dict:
        """The summary figures as plain Python (no per-step arrays)."""
        return {
            "strategy": self.strategy,
            "replica_seconds": self.replica_seconds,
            "replica_hours": self.replica_seconds / 3600,
            "slo_violation_rate": self.slo_violation_rate,
            "dropped_rate": self.dropped_rate,
            "mean_replicas": self.mean_replicas,
            "max_replicas": self.max_replicas,
        }


def simulate_autoscaler(
    trace: RateTrace,
    strategy: str = "hpa",
    *,
    service_time: float = 0.1,
    slo_latency: float = 0.6,
    target_utilisation: float = 0.6,
    tolerance: float = 0.1,
    sync_period: float = 15.0,
    stabilization_window: float = 300.0,
    scale_up_pods: int = 4,
    scale_up_percent: float = 100.0,
    startup_delay: float = 30.0,
    min_replicas: int = 1,
    max_replicas: int = 500,
    queue_limit: int = 100,
) -> AutoscaleResult:
    """Serve ``trace`` with a scaling ``strategy`` and return its cost and SLO violations.

    Parameters
    ----------
    trace : RateTrace
        From :func:`make_request_trace` (or your own: ``t``, ``rate`` per second, ``step``).
    strategy : {"static_peak", "static_mean", "hpa"}
        ``static_peak``: a fixed fleet sized for the trace's peak at ``target_utilisation``;
        ``static_mean``: sized for its mean; ``hpa``: target tracking with the HPA rule.
    service_time : float
        Mean seconds one replica spends on a request (exponential); capacity ``1/service_time``.
    slo_latency : float
        A request violates the SLO when its response time exceeds this many seconds.
    target_utilisation : float
        The HPA's target average utilisation (CPU busy fraction), in (0, 1].
    tolerance, sync_period, stabilization_window : float
        The HPA's tolerance (0.1), control period (15 s) and scale-down window (300 s).
    scale_up_pods, scale_up_percent : int, float
        Scale-up limit per period: add at most ``max(pods, percent% of current)`` replicas
        (Kubernetes' defaults: 4 pods or 100%).
    startup_delay : float
        Seconds before a new replica serves (image pull, model load); it is paid for meanwhile.
    min_replicas, max_replicas : int
        Bounds on the replica count.
    queue_limit : int
        Requests queued per ready replica before new ones are dropped.

    Returns
    -------
    AutoscaleResult

    Examples
    --------
    >>> from mlscale_lab.scaling import make_request_trace
    >>> day = make_request_trace(hours=6, seed=0)
    >>> hpa = simulate_autoscaler(day, "hpa")
    >>> peak = simulate_autoscaler(day, "static_peak")
    >>> bool(hpa.replica_seconds < peak.replica_seconds)
    True
    """
    func = "simulate_autoscaler"
    check_choice(func, "strategy", strategy, STRATEGIES)
    s = check_positive(func, "service_time", service_time)
    slo = check_positive(func, "slo_latency", slo_latency)
    check_fraction(func, "target_utilisation", target_utilisation, low_open=True)
    tolerance = check_fraction(func, "tolerance", tolerance, high_open=True)
    check_int(func, "min_replicas", min_replicas, low=1)
    check_int(func, "max_replicas", max_replicas, low=min_replicas,
              hint=f"max_replicas must be at least min_replicas={min_replicas}")
    check_int(func, "scale_up_pods", scale_up_pods, low=0)
    check_number(func, "scale_up_percent", scale_up_percent, low=0)
    check_positive(func, "sync_period", sync_period)
    check_positive(func, "queue_limit", queue_limit)
    check_number(func, "stabilization_window", stabilization_window, low=0)
    check_number(func, "startup_delay", startup_delay, low=0)
    rate = np.asarray(trace.rate, dtype=float)
    step = float(trace.step)
    if rate.ndim != 1 or rate.size == 0 or np.any(rate < 0) or not np.all(np.isfinite(rate)):
        raise ValueError("simulate_autoscaler(trace=...): expected trace.rate, a non-empty 1-D "
                         "array of finite rates >= 0")
    mu = 1.0 / s
    n = rate.size

    def clamp(r):
        return int(min(max(r, min_replicas), max_replicas))

    if strategy == "static_peak":
        fixed = clamp(math.ceil(rate.max() / (mu * target_utilisation)))
    elif strategy == "static_mean":
        fixed = clamp(math.ceil(rate.mean() / (mu * target_utilisation)))
    else:
        fixed = clamp(math.ceil(rate[0] / (mu * target_utilisation)))

    # Python lists inside the loop (a NumPy scalar read or write costs more than the arithmetic).
    paid = [0] * n
    ready = [0] * n
    served_frac = [1.0] * n  # fraction of each step's arrivals served without queue overflow
    backlog_delay = [0.0] * n
    dropped = [0.0] * n
    rates = rate.tolist()
    backlog = 0.0
    replicas = fixed
    starting: deque[tuple[float, int]] = deque()  # (ready time, count)
    n_ready = fixed
    history: deque[tuple[float, int]] = deque()  # (time, recommendation) for stabilisation
    busy_acc, busy_steps = 0.0, 0
    steps_per_sync = max(1, round(sync_period / step))
    for i in range(n):
        now = i * step
        while starting and starting[0][0] <= now:
            n_ready += starting.popleft()[1]
        arrivals = rates[i] * step
        capacity = n_ready * mu * step
        work = backlog + arrivals
        served = min(work, capacity)
        backlog = work - served
        limit = queue_limit * n_ready
        drop = max(0.0, backlog - limit)
        backlog -= drop
        dropped[i] = drop
        if arrivals > 0:
            served_frac[i] = 1.0 - drop / arrivals
        backlog_delay[i] = backlog / (n_ready * mu)
        # What a metrics server would report: busy fraction of all replicas, unready ones at 0
        # (the HPA's own treatment of pods that are still starting when it scales up).
        busy_acc += min(work / step / mu, n_ready) / replicas
        busy_steps += 1
        paid[i] = replicas
        ready[i] = n_ready
        if strategy == "hpa" and (i + 1) % steps_per_sync == 0:
            metric = busy_acc / busy_steps
            busy_acc, busy_steps = 0.0, 0
            desired = clamp(_desired(replicas, metric, target_utilisation, tolerance))
            t_next = now + step
            history.append((t_next, desired))
            while history and history[0][0] < t_next - stabilization_window:
                history.popleft()
            if desired < replicas:
                # Scale down only as far as the highest recommendation of the window allows.
                desired = min(replicas, max(r for _, r in history))
            else:
                limit_up = max(scale_up_pods, math.ceil(replicas * scale_up_percent / 100))
                desired = min(desired, replicas + limit_up)
            if desired > replicas:
                starting.append((t_next + startup_delay, desired - replicas))
            elif desired < replicas:
                remove = replicas - desired
                # Cancel replicas still starting first, then stop ready ones.
                while remove and starting:
                    when, count = starting.pop()
                    take = min(count, remove)
                    remove -= take
                    if count > take:
                        starting.append((when, count - take))
                n_ready -= remove
            replicas = desired

    paid, ready = np.asarray(paid, dtype=np.int64), np.asarray(ready, dtype=np.int64)
    served_frac, backlog_delay = np.asarray(served_frac), np.asarray(backlog_delay)
    dropped = np.asarray(dropped)
    # Latency: past the backlog, a step's requests see M/M/c at that step's rate.
    c = ready.astype(float)
    lam = rate.copy()
    stable = lam < c * mu * 0.999
    p_miss = np.ones(n)
    if stable.any():
        p_miss[stable] = mmc_latency_exceeds_each(c[stable], lam[stable], s, slo)
    p_miss = np.where(backlog_delay > slo, 1.0, p_miss)
    violation = 1.0 - served_frac * (1.0 - p_miss)
    weights = rate * step
    total = float(weights.sum())
    viol_rate = float((violation * weights).sum() / total) if total > 0 else 0.0
    return AutoscaleResult(
        strategy=strategy,
        replica_seconds=float(paid.sum() * step),
        slo_violation_rate=viol_rate,
        dropped_rate=float(dropped.sum() / total) if total > 0 else 0.0,
        mean_replicas=float(paid.mean()),
        max_replicas=int(paid.max()),
        t=np.asarray(trace.t, dtype=float),
        rate=rate,
        replicas=paid,
        ready=ready,
        violation=violation,
    )
