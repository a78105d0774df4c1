"""Latency and throughput of a predict function, and whether a serving machine meets them.

:func:`measure_latency` times ``predict`` on batches of a few sizes after a warm-up and reports
percentiles: serving budgets are written against the tail (p95, p99), not the mean.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyResult:
    """Timings of ``calls`` calls of ``predict`` on batches of ``batch_size`` rows.

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
    """

    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    throughput_per_s: float
    calls: int

    def as_dict(self) -> dict:
        return asdict(self)


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(X)
    except TypeError:
        raise TypeError(
            f"measure_latency(X=...): X must have rows (an array, tensor, DataFrame or list), "
            f"got {type(X).__name__}"
        ) from None


def _take_rows(X, start: int, size: int, n: int):
    """``size`` rows of X from ``start``, wrapping around to the first row at the end."""
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


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"measure_latency({name}=...): expected an integer >= {minimum}, got {value!r}"
        )
    return int(value)


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
    >>> X = np.ones((10, 3))
    >>> [r.batch_size for r in measure_latency(lambda b: b.sum(axis=1), X, (1, 32), repeats=5)]
    [1, 32]
    """
    if not callable(predict):
        raise TypeError(
            f"measure_latency(predict=...): expected a callable, got {type(predict).__name__}"
        )
    n = _n_rows(X)
    if n == 0:
        raise ValueError(
            "measure_latency(X=...): X has no rows; pass at least one row to predict on"
        )
    if isinstance(batch_sizes, numbers.Integral):
        batch_sizes = (batch_sizes,)
    batch_sizes = [_check_int("batch_sizes", b, 1) for b in batch_sizes]
    if not batch_sizes:
        raise ValueError(
            "measure_latency(batch_sizes=...): give at least one batch size, e.g. (1, 32)"
        )
    warmup = _check_int("warmup", warmup, 0)
    repeats = _check_int("repeats", repeats, 1)
    if max_seconds is not None and not (
        isinstance(max_seconds, numbers.Real) and math.isfinite(max_seconds) and max_seconds > 0
    ):
        raise ValueError(
            f"measure_latency(max_seconds=...): expected seconds > 0 or None, got {max_seconds!r}"
        )
    share = None if max_seconds is None else float(max_seconds) / len(batch_sizes)

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
            )
        )
    return results


# -- serving requirements ----------------------------------------------------------------------
_MB = 1024**2
_GB = 1024**3


@dataclass(frozen=True)
class MachineSize:
    """A serving machine on offer: CPUs, memory and an (illustrative) hourly price."""

    name: str
    cpus: float
    memory_bytes: int
    price_per_hour: float

    def __str__(self) -> str:
        return f"{self.name} ({self.cpus:g} CPU, {self.memory_bytes / _MB:,.0f} MB, {self.price_per_hour:.3f}/h)"


def example_machines(
    price_per_cpu_hour: float = 0.02, price_per_gb_hour: float = 0.005
) -> list[MachineSize]:
    """A small table of machine sizes priced per CPU and per GB, as cloud providers do.

    The prices are illustrative parameters, not any provider's: change them and see whether the
    choice changes.

    Examples
    --------
    >>> [m.name for m in example_machines()][:3]
    ['nano', 'micro', 'small']
    """
    for name, value in (
        ("price_per_cpu_hour", price_per_cpu_hour),
        ("price_per_gb_hour", price_per_gb_hour),
    ):
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0):
            raise ValueError(f"example_machines({name}=...): expected a price >= 0, got {value!r}")
    shapes = [
        ("nano", 1, 0.5),
        ("micro", 1, 1),
        ("small", 1, 2),
        ("medium", 2, 4),
        ("large", 4, 8),
        ("xlarge", 8, 16),
    ]
    return [
        MachineSize(
            name, cpus, int(gb * _GB), round(cpus * price_per_cpu_hour + gb * price_per_gb_hour, 4)
        )
        for name, cpus, gb in shapes
    ]


@dataclass(frozen=True)
class ServingRequirements:
    """What serving a model needs, measured in a fresh process on one CPU.

    Attributes
    ----------
    memory_bytes : int
        Peak resident memory of a fresh Python process that loads the model and serves
        requests (interpreter and libraries included: that is what the machine must hold).
    p50_ms, p95_ms, p99_ms : float
        Latency percentiles per request of ``batch_size`` rows, on one thread.
    batch_size : int
        Rows per request.
    throughput_per_cpu : float
        Rows per second one CPU serves.
    """

    memory_bytes: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    batch_size: int
    throughput_per_cpu: float

    def as_dict(self) -> dict:
        return asdict(self)


def _serve_in_child(model, X, batch_size, repeats, method):
    from threadpoolctl import threadpool_limits

    if type(model).__module__.startswith("torch") or any(
        c.__module__.startswith("torch.nn") for c in type(model).__mro__
    ):
        import torch

        torch.set_num_threads(1)
        X = torch.as_tensor(X)
        model.eval()

        def predict(batch):
            with torch.no_grad():
                return model(batch)
    else:
        predict = getattr(model, method)
    with threadpool_limits(1):
        (res,) = measure_latency(predict, X, (batch_size,), warmup=10, repeats=repeats)
    return res


def measure_serving(
    model,
    X,
    *,
    batch_size: int = 1,
    repeats: int = 200,
    method: str = "predict",
    timeout_s: float = 120,
) -> ServingRequirements:
    """Measure serving memory and latency of ``model`` in a fresh process limited to one thread.

    The model travels to a new Python process (as it would to a serving box), which loads it,
    answers ``repeats`` requests of ``batch_size`` rows from ``X`` and reports its latency
    percentiles; its peak resident memory is the memory requirement.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
    X : array-like
        Request rows (a few hundred are plenty).
    batch_size : int, default 1
        Rows per request.
    repeats : int, default 200
        Timed requests.
    method : str, default "predict"
        The estimator's method to call (``"predict_proba"``...); ignored for torch modules.

    Returns
    -------
    ServingRequirements
    """
    from mlscale_lab.constraints import run_measured

    if not hasattr(model, method) and not callable(model):
        raise ValueError(
            f"measure_serving(method=...): {type(model).__name__} has no method {method!r}"
        )
    _check_int("batch_size", batch_size, 1)
    _check_int("repeats", repeats, 1)
    run = run_measured(_serve_in_child, model, X, batch_size, repeats, method, timeout_s=timeout_s)
    res = run.value
    return ServingRequirements(
        memory_bytes=run.peak_rss_bytes,
        p50_ms=res.p50_ms,
        p95_ms=res.p95_ms,
        p99_ms=res.p99_ms,
        batch_size=res.batch_size,
        throughput_per_cpu=res.throughput_per_s,
    )


@dataclass(frozen=True)
class MachineFit:
    """Whether one machine meets the serving requirements, and why not."""

    machine: MachineSize
    fits: bool
    reasons: tuple[str, ...]


def check_machine(
    req: ServingRequirements,
    machine: MachineSize,
    *,
    p95_budget_ms: float,
    requests_per_s: float = 0.0,
    memory_headroom: float = 1.25,
) -> MachineFit:
    """Check ``machine`` against measured requirements and a latency / load budget.

    - memory: ``req.memory_bytes * memory_headroom`` must fit in the machine (headroom for
      request spikes and the operating system);
    - latency: ``req.p95_ms`` (measured on one CPU) must meet ``p95_budget_ms``; a machine with
      less than one CPU is throttled, which stretches latency by ``1 / cpus``;
    - load: ``cpus * req.throughput_per_cpu`` rows per second must cover ``requests_per_s``
      requests of ``req.batch_size`` rows.
    """
    if not (isinstance(p95_budget_ms, numbers.Real) and p95_budget_ms > 0):
        raise ValueError(f"p95_budget_ms=...: expected milliseconds > 0, got {p95_budget_ms!r}")
    if not (isinstance(memory_headroom, numbers.Real) and memory_headroom >= 1):
        raise ValueError(
            f"memory_headroom=...: expected a factor >= 1 (1.25 = 25% spare), got {memory_headroom!r}"
        )
    if not (isinstance(requests_per_s, numbers.Real) and requests_per_s >= 0):
        raise ValueError(f"requests_per_s=...: expected a rate >= 0, got {requests_per_s!r}")
    reasons = []
    need = req.memory_bytes * memory_headroom
    if need > machine.memory_bytes:
        reasons.append(
            f"memory: needs {need / _MB:,.0f} MB with headroom, has {machine.memory_bytes / _MB:,.0f} MB"
        )
    p95 = req.p95_ms / min(1.0, machine.cpus)
    if p95 > p95_budget_ms:
        reasons.append(f"latency: p95 {p95:.2f} ms over the budget of {p95_budget_ms:g} ms")
    capacity = machine.cpus * req.throughput_per_cpu / req.batch_size
    if capacity < requests_per_s:
        reasons.append(f"load: serves {capacity:,.0f} requests/s, needs {requests_per_s:,.0f}")
    return MachineFit(machine, not reasons, tuple(reasons))


def choose_machine(
    req: ServingRequirements,
    machines,
    *,
    p95_budget_ms: float,
    requests_per_s: float = 0.0,
    memory_headroom: float = 1.25,
) -> MachineSize | None:
    """The cheapest machine in ``machines`` that meets the requirements, or None if none does.

    See :func:`check_machine` for the checks. Ties in price go to the first listed.
    """
    fits = [
        f.machine
        for f in (
            check_machine(
                req,
                m,
                p95_budget_ms=p95_budget_ms,
                requests_per_s=requests_per_s,
                memory_headroom=memory_headroom,
            )
            for m in machines
        )
        if f.fits
    ]
    return min(fits, key=lambda m: m.price_per_hour) if fits else None
