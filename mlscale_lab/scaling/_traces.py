"""Request-rate traces for the auto-scaling simulator: a day of traffic with a spike.

A trace is requests per second sampled every ``step`` seconds: a daily cycle, a spike that
ramps up and down, and noise that persists for about a minute. Seeds make traces repeatable;
varying the spike's hour, height and steepness draws days from the same family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlscale_lab.validation import check_int, check_number, check_positive

__all__ = ["RateTrace", "make_request_trace", "request_trace_family"]


@dataclass(frozen=True)
class RateTrace:
    """Requests per second over time, one value per ``step`` seconds.

    Attributes
    ----------
    t : numpy.ndarray
        Start of each step, in seconds.
    rate : numpy.ndarray
        Arrivals per second during each step.
    step : float
        Seconds per step.

    Examples
    --------
    >>> RateTrace(np.array([0.0, 5.0]), np.array([10.0, 20.0]), 5.0).total_requests
    150.0
    """

    t: np.ndarray
    rate: np.ndarray
    step: float

    @property
    def total_requests(self) -> float:
        """Requests in the whole trace."""
        return float(self.rate.sum() * self.step)


def make_request_trace(
    *,
    hours: float = 24.0,
    step: float = 5.0,
    low: float = 60.0,
    high: float = 400.0,
    peak_hour: float = 14.0,
    spike_hour: float | None = 20.0,
    spike_factor: float = 2.0,
    spike_minutes: float = 30.0,
    spike_ramp_minutes: float = 5.0,
    noise: float = 0.05,
    seed: int = 0,
) -> RateTrace:
    """A deterministic request-rate trace: a daily cycle between ``low`` and ``high`` requests
    per second peaking at ``peak_hour``, a spike that multiplies the rate by ``spike_factor``
    for ``spike_minutes`` (ramping up over ``spike_ramp_minutes``), and seeded noise.

    Parameters
    ----------
    hours, step : float
        Length of the trace and seconds per step.
    low, high : float
        Night-time and peak requests per second of the daily cycle.
    peak_hour : float
        Hour of the daily peak.
    spike_hour : float or None
        Hour the spike starts (None: no spike).
    spike_factor, spike_minutes, spike_ramp_minutes : float
        The spike multiplies the rate by ``spike_factor`` (>= 1) for ``spike_minutes``,
        reached over ``spike_ramp_minutes`` (steeper is harder to follow).
    noise : float
        Relative size of the noise, which persists for about a minute.
    seed : int
        Seed of the noise: the same seed gives the same trace.

    Returns
    -------
    RateTrace

    Examples
    --------
    >>> tr = make_request_trace(seed=0)
    >>> tr.rate.shape, tr.step
    ((17280,), 5.0)
    >>> bool(make_request_trace(seed=0).rate[100] == tr.rate[100])
    True
    """
    func = "make_request_trace"
    for name, v in (("hours", hours), ("step", step), ("high", high)):
        check_positive(func, name, v)
    check_number(func, "low", low, low=0, high=high, hint=f"low is the night's rate, <= high={high}")
    check_number(func, "spike_factor", spike_factor, low=1, hint="1 means no spike")
    for name, v in (("peak_hour", peak_hour), ("spike_minutes", spike_minutes),
                    ("spike_ramp_minutes", spike_ramp_minutes), ("noise", noise)):
        check_number(func, name, v, low=0)
    if spike_hour is not None:
        check_number(func, "spike_hour", spike_hour, low=0)
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, hours * 3600, step)
    phase = 2 * np.pi * (t / 3600 - peak_hour) / 24
    rate = low + (high - low) * (1 + np.cos(phase)) / 2
    if spike_hour is not None:
        start = spike_hour * 3600
        ramp = max(spike_ramp_minutes * 60, step)
        up = np.clip((t - start) / ramp, 0, 1)
        down = np.clip((start + spike_minutes * 60 + ramp - t) / ramp, 0, 1)
        rate *= 1 + (spike_factor - 1) * np.minimum(up, down)
    # Noise that persists for a minute or so, like real traffic, rather than white noise.
    eps = rng.normal(0, noise, t.size)
    alpha = min(1.0, step / 60)
    smooth = np.empty_like(eps)
    acc = 0.0
    for i, e in enumerate(eps):
        acc = (1 - alpha) * acc + alpha * e * math.sqrt(2 / alpha)
        smooth[i] = acc
    rate = np.maximum(rate * (1 + smooth), 0.0)
    return RateTrace(t=t, rate=rate, step=float(step))


def request_trace_family(n: int, *, seed: int = 0, spike_factor=(1.5, 3.0),
                         spike_ramp_minutes=(0.5, 5.0), spike_hour=(8.0, 21.0),
                         high=(350.0, 450.0), peak_hour=(12.0, 16.0), **kwargs) -> list[RateTrace]:
    """``n`` days of traffic drawn from one family: each day's spike hour, height and steepness,
    its peak rate and peak hour drawn uniformly from the given ``(low, high)`` ranges.

    Settings chosen on some days of a family are judged on other days of it: that is what
    validation days are for.

    Parameters
    ----------
    n : int
        Days to draw (>= 1).
    seed : int
        Seed of the draws and of each day's noise: the same seed gives the same days.
    spike_factor, spike_ramp_minutes, spike_hour, high, peak_hour : (float, float)
        Ranges of :func:`make_request_trace`'s parameters of the same names.
    **kwargs
        Passed unchanged to :func:`make_request_trace` (``hours``, ``step``, ``low``, ...).

    Returns
    -------
    list of RateTrace

    Examples
    --------
    >>> days = request_trace_family(3, seed=1, hours=2)
    >>> len(days), bool(days[0].rate[100] != days[1].rate[100])
    (3, True)
    """
    n = check_int("request_trace_family", "n", n, low=1)
    ranges = {"spike_factor": spike_factor, "spike_ramp_minutes": spike_ramp_minutes,
              "spike_hour": spike_hour, "high": high, "peak_hour": peak_hour}
    for name, r in ranges.items():
        if len(r) != 2 or r[0] > r[1]:
            raise ValueError(f"request_trace_family({name}={r!r}): expected a (low, high) range, "
                             f"got {r!r}")
    days = []
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        drawn = {name: float(rng.uniform(*r)) for name, r in ranges.items()}
        days.append(make_request_trace(seed=int(rng.integers(2**31)), **drawn, **kwargs))
    return days
