"""Queueing theory, once for every lab: the formulas, and queues replayed where formulas end.

Lab 01 sizes a serving machine with it, lab 05 holds its load-balancer simulator to it, lab 07
holds a real model server to it. All times are in seconds.

- closed forms: :func:`erlang_c` (the probability of waiting), :func:`mm1_mean_wait`,
  :func:`mmc_mean_wait`, :func:`mmc_wait_exceeds`, response-time tails
  :func:`mm1_latency_quantile`, :func:`mmc_latency_exceeds`, :func:`mmc_latency_quantile`;
  service that is not exponential, :func:`ggc_mean_wait` (Allen-Cunneen); how long a queue
  takes to reach steady state, :func:`relaxation_time`;
- service as measured: :class:`ServiceTime` (samples, or a mean and its scv) and the G/G/c
  response-time tail by Allen-Cunneen, :func:`ggc_latency_exceeds`, :func:`ggc_latency_quantile`;
- replayed and simulated: :func:`fcfs_waits` (a measured trace through an ideal FCFS queue),
  :func:`dispatch_replay` (the same trace through a central queue, uvicorn's greedy accept,
  join-the-shortest-queue or random dispatch),
  :func:`lindley_waits`, :func:`simulate_mgc` and :func:`mgc_latency_quantile` (M/G/c on
  measured service times).

Importing it is light (no numpy until a replay runs).

>>> from mlscale_lab.queueing import erlang_c, mmc_mean_wait
>>> round(erlang_c(2, 1.0), 4), round(mmc_mean_wait(2, 1.0, 1.0), 4)
(0.3333, 0.3333)
"""

from mlscale_lab.queueing._formulas import (
    erlang_c,
    ggc_mean_wait,
    mm1_latency_quantile,
    mm1_mean_wait,
    mmc_latency_exceeds,
    mmc_latency_quantile,
    mmc_mean_wait,
    mmc_wait_exceeds,
    relaxation_time,
)
from mlscale_lab.queueing._general import ServiceTime, ggc_latency_exceeds, ggc_latency_quantile

__all__ = [
    "DISPATCH",
    "ServiceTime",
    "dispatch_replay",
    "erlang_c",
    "fcfs_waits",
    "ggc_latency_exceeds",
    "ggc_latency_quantile",
    "ggc_mean_wait",
    "lindley_waits",
    "mgc_latency_quantile",
    "mm1_latency_quantile",
    "mm1_mean_wait",
    "mmc_latency_exceeds",
    "mmc_latency_quantile",
    "mmc_mean_wait",
    "mmc_wait_exceeds",
    "relaxation_time",
    "simulate_mgc",
]

_REPLAY = {"DISPATCH", "dispatch_replay", "fcfs_waits", "lindley_waits", "mgc_latency_quantile", "simulate_mgc"}


def __getattr__(name):
    # the replays need numpy; `import mlscale_lab.constraints` (which uses the formulas) must not
    if name in _REPLAY:
        from mlscale_lab.queueing import _replay

        return getattr(_replay, name)
    raise AttributeError(f"module 'mlscale_lab.queueing' has no attribute {name!r}")
