"""What serving a model needs, and which machine on a price list serves it at the least cost.

:func:`measure_serving` measures a model as a serving box runs it: a fresh process, one thread,
its peak memory (interpreter and libraries included) and its latency percentiles.
:func:`check_machine` and :func:`choose_machine` hold those requirements against machines from
:mod:`mlscale_lab.prices`, the way a serving fleet really runs:

- **one worker process per vCPU**, each holding its own interpreter and model, so memory is
  needed *per worker*, and a machine runs only as many workers as its memory holds;
- **requests queue**: at 90 % utilisation a request waits for the ones before it, so the tail
  latency is the service time *plus the wait*. The wait comes from the M/M/c queue (Erlang's C
  formula, :func:`mlscale_lab.scaling.erlang_c`, lab 05): a machine sized to 100 % of the load
  meets no latency budget at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from mlscale_lab.constraints._latency import measure_latency
from mlscale_lab.prices import Machine
from mlscale_lab.validation import check_fraction, check_int, check_number, check_positive

__all__ = ["MachineFit", "ServingRequirements", "check_machine", "choose_machine",
           "measure_serving", "wait_quantile_ms"]

_MB = 1024**2


@dataclass(frozen=True)
class ServingRequirements:
    """What serving a model needs, measured in a fresh process on one CPU.

    Attributes
    ----------
    memory_bytes : int
        Peak resident memory of a fresh Python process that loads the model and serves
        requests (interpreter and libraries included): what each worker process holds.
    p50_ms, p95_ms, p99_ms : float
        Latency percentiles per request of ``batch_size`` rows, on one thread, with no queue.
    batch_size : int
        Rows per request.
    throughput_per_cpu : float
        Rows per second one CPU serves.

    Examples
    --------
    >>> req = ServingRequirements(200 * 1024**2, 4.0, 6.0, 8.0, 1, 200.0)
    >>> req.service_time_s  # one request of one row at 200 rows/s
    0.005
    """

    memory_bytes: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    batch_size: int
    throughput_per_cpu: float

    @property
    def service_time_s(self) -> float:
        """Mean seconds one worker spends on one request (``batch_size / throughput_per_cpu``)."""
        return self.batch_size / self.throughput_per_cpu

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


def _serve_in_child(model, X, batch_size, repeats, method):
    from threadpoolctl import threadpool_limits

    if any(c.__module__.startswith("torch.nn") for c in type(model).__mro__):
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


def measure_serving(model, X, *, batch_size: int = 1, repeats: int = 200,
                    method: str = "predict", timeout_s: float = 120) -> ServingRequirements:
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
    timeout_s : float, default 120
        Wall-time limit for the child.

    Returns
    -------
    ServingRequirements

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> import numpy as np
    >>> model = DummyClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> req = measure_serving(model, np.zeros((10, 2)), repeats=20)  # doctest: +SKIP
    >>> req.memory_bytes > 20 * 1024**2  # doctest: +SKIP
    True
    """
    from mlscale_lab.constraints._limits import run_measured

    batch_size = check_int("measure_serving", "batch_size", batch_size, low=1)
    repeats = check_int("measure_serving", "repeats", repeats, low=1)
    timeout_s = check_positive("measure_serving", "timeout_s", timeout_s)
    if not hasattr(model, method) and not callable(model):
        raise ValueError(f"measure_serving(method={method!r}): expected a method of "
                         f"{type(model).__name__} such as 'predict', got {method!r}")
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


def wait_quantile_ms(workers: int, requests_per_s: float, service_time_s: float,
                     quantile: float = 0.95) -> float:
    """The wait in the queue that ``quantile`` of requests stay under, in an M/M/c queue.

    ``P(wait > t) = C(c, a) * exp(-(c / s - rate) * t)`` (Erlang C), solved for ``t``; 0 when
    fewer than ``1 - quantile`` of requests wait at all, infinite when the workers cannot keep
    up (utilisation ``rate * s / c >= 1``).

    Parameters
    ----------
    workers : int
        Worker processes sharing one queue (``c``).
    requests_per_s : float
        Arrival rate.
    service_time_s : float
        Mean seconds a worker spends on a request.
    quantile : float, default 0.95

    Returns
    -------
    float
        Milliseconds.

    Examples
    --------
    >>> round(wait_quantile_ms(2, 150.0, 0.01), 1)  # 75 % busy: the tail waits 51 ms
    51.1
    >>> wait_quantile_ms(4, 150.0, 0.01) < 2
    True
    >>> wait_quantile_ms(1, 100.0, 0.01)
    inf
    """
    c = check_int("wait_quantile_ms", "workers", workers, low=1)
    rate = check_number("wait_quantile_ms", "requests_per_s", requests_per_s, low=0)
    s = check_positive("wait_quantile_ms", "service_time_s", service_time_s)
    q = check_fraction("wait_quantile_ms", "quantile", quantile, low_open=True, high_open=True)
    if rate == 0:
        return 0.0
    if rate * s >= c:
        return math.inf
    from mlscale_lab.scaling import erlang_c  # section 4's queueing; imported here: no cycle

    p_wait = erlang_c(c, rate * s)
    if p_wait <= 1 - q:
        return 0.0
    return math.log(p_wait / (1 - q)) / (c / s - rate) * 1000.0


@dataclass(frozen=True)
class MachineFit:
    """Whether one machine serves the requirements, and why not.

    Attributes
    ----------
    machine : Machine
    fits : bool
    reasons : tuple of str
        What fails (memory, load or latency), in words; empty when it fits.
    workers : int
        Worker processes the machine runs: one per vCPU, as many as its memory holds.
    utilisation : float
        Offered load over the workers (``rate * service time / workers``); inf with no worker.
    p95_ms : float
        Service p95 plus the p95 wait in the queue on this machine.
    """

    machine: Machine
    fits: bool
    reasons: tuple[str, ...]
    workers: int
    utilisation: float
    p95_ms: float


def check_machine(req: ServingRequirements, machine: Machine, *, p95_budget_ms: float,
                  requests_per_s: float = 0.0, memory_headroom: float = 1.25) -> MachineFit:
    """Check ``machine`` against measured requirements, a p95 latency budget and a load.

    - memory: each worker process needs ``req.memory_bytes * memory_headroom``; the machine
      runs ``min(vcpus, memory // that)`` workers and needs at least one;
    - load: the workers must keep up (utilisation below 100 %);
    - latency: the measured service p95 plus the p95 wait in the queue
      (:func:`wait_quantile_ms`) must meet ``p95_budget_ms``.

    Parameters
    ----------
    req : ServingRequirements
    machine : Machine
        From :data:`mlscale_lab.prices.EXAMPLE_MACHINES` or your own list.
    p95_budget_ms : float
        The latency 95 % of requests must meet, queueing included.
    requests_per_s : float, default 0
        Arrival rate of requests of ``req.batch_size`` rows.
    memory_headroom : float, default 1.25
        Spare memory per worker for request spikes and the operating system (1.25 = 25 %).

    Returns
    -------
    MachineFit

    Examples
    --------
    >>> from mlscale_lab.prices import machine
    >>> req = ServingRequirements(300 * _MB, 8.0, 12.0, 15.0, 1, 100.0)  # 10 ms a request
    >>> check_machine(req, machine("medium"), p95_budget_ms=30, requests_per_s=150).reasons
    ('latency: p95 63.1 ms (12.0 service + 51.1 queueing) over the budget of 30.0 ms',)
    >>> check_machine(req, machine("xlarge"), p95_budget_ms=30, requests_per_s=150).fits
    True
    """
    budget = check_positive("check_machine", "p95_budget_ms", p95_budget_ms)
    rate = check_number("check_machine", "requests_per_s", requests_per_s, low=0)
    headroom = check_number("check_machine", "memory_headroom", memory_headroom, low=1,
                            hint="a factor such as 1.25 (25 % spare)")
    per_worker = req.memory_bytes * headroom
    workers = min(int(machine.vcpus), int(machine.memory_bytes // per_worker))
    if workers < 1:
        reason = (f"memory: one worker needs {per_worker / _MB:,.0f} MB with headroom, "
                  f"has {machine.memory_bytes / _MB:,.0f} MB")
        return MachineFit(machine, False, (reason,), 0, math.inf, math.inf)
    s = req.service_time_s
    utilisation = rate * s / workers
    if utilisation >= 1:
        why = f"only {workers} worker(s) fit in memory; " if workers < machine.vcpus else ""
        reason = (f"load: {why}{workers} worker(s) serve {workers / s:,.0f} requests/s, "
                  f"needs {rate:,.0f}")
        return MachineFit(machine, False, (reason,), workers, utilisation, math.inf)
    wait = wait_quantile_ms(workers, rate, s)
    p95 = req.p95_ms + wait
    reasons = ()
    if p95 > budget:
        reasons = (f"latency: p95 {p95:.1f} ms ({req.p95_ms:.1f} service + {wait:.1f} queueing) "
                   f"over the budget of {budget:.1f} ms",)
    return MachineFit(machine, not reasons, reasons, workers, utilisation, p95)


def choose_machine(req: ServingRequirements, machines, *, p95_budget_ms: float,
                   requests_per_s: float = 0.0, memory_headroom: float = 1.25) -> Machine | None:
    """The cheapest machine in ``machines`` that meets the requirements, or None if none does.

    See :func:`check_machine` for the checks. Ties in price go to the first listed.

    Parameters
    ----------
    req, p95_budget_ms, requests_per_s, memory_headroom
        As in :func:`check_machine`.
    machines : iterable of Machine
        The price list, e.g. :data:`mlscale_lab.prices.EXAMPLE_MACHINES`.

    Returns
    -------
    Machine or None

    Examples
    --------
    >>> from mlscale_lab.prices import EXAMPLE_MACHINES
    >>> req = ServingRequirements(300 * _MB, 8.0, 12.0, 15.0, 1, 100.0)
    >>> choose_machine(req, EXAMPLE_MACHINES, p95_budget_ms=30, requests_per_s=150).name
    'xlarge'
    """
    fits = [m for m in machines
            if check_machine(req, m, p95_budget_ms=p95_budget_ms, requests_per_s=requests_per_s,
                             memory_headroom=memory_headroom).fits]
    return min(fits, key=lambda m: m.usd_per_hour) if fits else None
