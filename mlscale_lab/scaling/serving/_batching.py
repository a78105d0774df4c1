"""The micro-batcher as a queue: its cost per batch, measured, and its latency, simulated.

The server's batcher (``_app.MicroBatcher``) takes the first waiting request, waits up to
``max_wait`` for more (at most ``max_batch``), and predicts them in one call whose time grows
slowly with the rows: ``fixed + per_row * rows``, fitted to the batch times the worker reports.
:func:`simulate_batcher` replays arrivals through exactly that rule, so a window can be chosen
for a latency budget at a given rate *before* it is load-tested, and checked against the
load test after.
"""

from __future__ import annotations

import bisect

import numpy as np

from mlscale_lab.validation import check_int, check_number

__all__ = ["fit_batch_cost", "simulate_batcher"]


def fit_batch_cost(batch, seconds) -> tuple[float, float]:
    """``(fixed_s, per_row_s)``: a least-squares line through each batch's size and predict time.

    ``batch`` and ``seconds`` are per request (``LoadResult.batch``, ``LoadResult.service``);
    each batch counts once, whatever its size.

    >>> fit_batch_cost([1, 4, 4, 4, 4, 8], [0.002, 0.0035, 0.0035, 0.0035, 0.0035, 0.0055])
    (0.0015, 0.0005)
    """
    b = np.asarray(batch, dtype=float).ravel()
    t = np.asarray(seconds, dtype=float).ravel()
    ok = np.isfinite(b) & np.isfinite(t) & (b >= 1)
    b, t = b[ok], t[ok]
    if np.unique(b).size < 2:
        raise ValueError("fit_batch_cost(batch=...): expected batches of at least two sizes to "
                         "fit a line through (load the batcher harder, or with a longer window)")
    weight = 1.0 / b  # a batch of k rows answered k requests: count it once
    per_row, fixed = np.polyfit(b, t, 1, w=np.sqrt(weight))
    return round(float(max(fixed, 0.0)), 12), round(float(max(per_row, 0.0)), 12)


def simulate_batcher(arrivals, *, max_batch: int, max_wait_s: float, cost) -> np.ndarray:
    """Response times (answer minus arrival, seconds) of ``arrivals`` through the micro-batcher.

    Parameters
    ----------
    arrivals : array-like
        Arrival times, increasing (seconds).
    max_batch : int
        Rows per batch at most (1: no batching, a FIFO single server).
    max_wait_s : float
        How long the batcher waits for more rows after taking the first.
    cost : (float, float) or callable
        ``(fixed_s, per_row_s)`` from :func:`fit_batch_cost`, or ``cost(rows) -> seconds``.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> simulate_batcher([0.0, 0.001, 0.002], max_batch=1, max_wait_s=0.0, cost=(0.004, 0.0)).tolist()
    [0.004, 0.007, 0.01]
    >>> simulate_batcher([0.0, 0.001, 0.002], max_batch=4, max_wait_s=0.003, cost=(0.004, 0.001)).round(4).tolist()
    [0.01, 0.009, 0.008]
    """
    a = np.asarray(arrivals, dtype=float).ravel()
    if a.size and (np.any(np.diff(a) < 0) or not np.all(np.isfinite(a))):
        raise ValueError("simulate_batcher(arrivals=...): expected finite arrival times in increasing order")
    k_max = check_int("simulate_batcher", "max_batch", max_batch, low=1)
    wait = check_number("simulate_batcher", "max_wait_s", max_wait_s, low=0)
    if callable(cost):
        cost_of = cost
    else:
        fixed, per_row = (float(v) for v in cost)
        cost_of = lambda rows: fixed + per_row * rows  # noqa: E731
    n = a.size
    out = [0.0] * n
    free, i = 0.0, 0
    at = a.tolist()
    while i < n:
        t = at[i]
        start = free if free > t else t  # the batcher takes the first waiting row
        deadline = start + wait
        j = bisect.bisect_right(at, deadline, i + 1, min(n, i + k_max))  # rows in by the deadline
        # full: it starts when the last row arrives (or at once if all were waiting); else at the deadline
        begin = max(start, at[j - 1]) if j - i == k_max else (deadline if wait > 0 else start)
        end = begin + cost_of(j - i)
        for q in range(i, j):
            out[q] = end - at[q]
        free, i = end, j
    return np.asarray(out)
