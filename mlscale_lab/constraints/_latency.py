"""Latency and throughput of a predict function, measured in this process.

:func:`measure_latency` times ``predict`` on batches of a few sizes after a warm-up and reports
percentiles: serving budgets are written against the tail (p95, p99), not the mean. What a
serving *machine* needs (worker processes under an open-loop load, their memory) is in
``_serving``.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from mlscale_lab.validation import check_int, check_positive

__all__ = ["LatencyResult", "measure_latency"]


@dataclass(frozen=True)
class LatencyResult:
    """Timings of ``calls`` calls of ``predict`` on batches of ``batch_size`` rows.

    Returned by :func:`measure_latency`; ``p95_ms`` is what serving budgets are written against.

    Attributes
    ----------
    batch_size : int
        Rows per call.
    p50_ms, p95_ms, p99_ms : float
        Percentiles of the per-call wall time, in milliseconds.
    mean_ms : float
        Mean per-call wall time, in milliseconds.
    throughput_per_s : float
        Rows predicted per second (``batch_size`` over the mean call time).
    calls : int
        Timed calls (after the warm-up).
    samples_ms : tuple of float
        Every timed call, in milliseconds: for an interval (a p95 from a few calls is one or
        two order statistics: :func:`mlscale_lab.evidence.quantile_interval` says so).
    """

    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    throughput_per_s: float
    calls: int
    samples_ms: tuple = field(default=(), repr=False)

    def median_interval(self, level: float = 0.95):
        """The median call time (ms) with its bootstrap interval."""
        from mlscale_lab.evidence import bootstrap_interval

        return bootstrap_interval(self.samples_ms, level=level)

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"measure_latency(X=...): expected rows (an array, tensor, DataFrame or list), "
            f"got a {type(X).__name__}"
        ) from None


def _take_rows(X, start: int, size: int, n: int):
    """``size`` rows of X from ``start``, wrapping around to the first row at the end."""
    import numpy as np  # in the functions, not at the top: `import mlscale_lab` stays light

    if start + size <= n:
        if hasattr(X, "iloc"):
            return X.iloc[start : start + size]
        return X[start : start + size]
    idx = (start + np.arange(size)) % n
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    if isinstance(X, np.ndarray):
        return X[idx]
    if type(X).__module__.startswith("torch"):
        import torch

        return X[torch.as_tensor(idx)]
    return [X[i] for i in idx]


def measure_latency(
    predict: Callable,
    X,
    batch_sizes: Sequence[int] = (1,),
    *,
    warmup: int = 5,
    repeats: int = 50,
    max_seconds: float | None = None,
) -> list[LatencyResult]:
    """Time ``predict(batch)`` for each batch size and report latency percentiles and throughput.

    For batch size ``b``, call ``i`` gets ``b`` consecutive rows of ``X`` starting where call
    ``i - 1`` stopped, wrapping around at the end, so a small ``X`` still serves big batches.
    The rows are sliced before the clock starts; only ``predict`` is timed.

    Parameters
    ----------
    predict : callable
        Takes a batch of rows (the same type as ``X``), e.g. ``model.predict``.
    X : array-like
        Rows to predict on: NumPy array, torch tensor, pandas DataFrame or list.
    batch_sizes : sequence of int, default (1,)
        Rows per call; one :class:`LatencyResult` each, in this order.
    warmup : int, default 5
        Untimed calls first (caches, lazy initialisation, thread pools).
    repeats : int, default 50
        Timed calls per batch size.
    max_seconds : float, optional
        Wall-clock budget for the whole measurement, shared equally by the batch sizes; a batch
        size stops early when its share is spent (after at least one timed call; ``calls`` says
        how many ran).

    Returns
    -------
    list of LatencyResult

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((10, 3))
    >>> [r.batch_size for r in measure_latency(lambda b: b.sum(axis=1), X, (1, 32), repeats=5)]
    [1, 32]
    """
    import numpy as np

    if not callable(predict):
        raise TypeError(
            f"measure_latency(predict={predict!r}): expected a callable such as model.predict, "
            f"got {type(predict).__name__}"
        )
    n = _n_rows(X)
    if n == 0:
        raise ValueError(
            "measure_latency(X=...): expected at least one row to predict on, got 0 rows"
        )
    if isinstance(batch_sizes, numbers.Integral):
        batch_sizes = (batch_sizes,)
    batch_sizes = [check_int("measure_latency", "batch_sizes", b, low=1) for b in batch_sizes]
    if not batch_sizes:
        raise ValueError(
            "measure_latency(batch_sizes=()): expected at least one batch size such as (1, 32), "
            "got none"
        )
    warmup = check_int("measure_latency", "warmup", warmup, low=0)
    repeats = check_int("measure_latency", "repeats", repeats, low=1)
    if max_seconds is not None:
        max_seconds = check_positive("measure_latency", "max_seconds", max_seconds,
                                     hint="a wall-clock budget in seconds, or None")
    share = None if max_seconds is None else max_seconds / len(batch_sizes)

    results = []
    for b in batch_sizes:
        started = time.perf_counter()
        start = 0
        for _ in range(warmup):
            predict(_take_rows(X, start, b, n))
            start = (start + b) % n
            if share is not None and time.perf_counter() - started > share / 2:
                break  # keep at least half of the share for timed calls
        times = []
        for _ in range(repeats):
            batch = _take_rows(X, start, b, n)
            t0 = time.perf_counter()
            predict(batch)
            times.append(time.perf_counter() - t0)
            start = (start + b) % n
            if share is not None and time.perf_counter() - started > share:
                break
        ms = np.asarray(times) * 1000.0
        mean_ms = float(ms.mean())
        p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
        results.append(
            LatencyResult(
                batch_size=b,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                mean_ms=mean_ms,
                throughput_per_s=b / (mean_ms / 1000.0) if mean_ms > 0 else math.inf,
                calls=len(times),
                samples_ms=tuple(float(v) for v in ms),
            )
        )
    return results
