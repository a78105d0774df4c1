"""What serving a model needs, measured under load: worker processes, an open-loop stream of
requests, and enough of them for the tail.

A serving machine runs **one worker process per vCPU**; each holds its own interpreter,
libraries and model (memory is needed *per worker*) and answers one request at a time, and the
workers share one queue. :func:`measure_serving_load` builds that on this machine: ``workers``
fresh processes (spawned, one thread each), fed by an **open-loop** generator that sends
requests at Poisson times fixed in advance, whether or not the workers keep up (a closed loop,
which waits for each answer before sending the next, never builds a queue and hides the tail).
Each request's latency runs from the moment it was *due* to be sent to its answer, so a
generator running late counts against the latency, not in its favour.

What comes back (:class:`ServingLoad`) is the raw material of the queueing lesson: each
request's latency, wait and in-worker service time, the workers' peak memory, and how late the
generator sent. Percentiles come with intervals that respect the queue's bursts (a moving-block bootstrap),
and a p99 from too few requests is refused (:func:`mlscale_lab.evidence.quantile_interval`).
Which machine serves that is :mod:`mlscale_lab.capacity`'s question (one planner for every lab).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field

from mlscale_lab._core.tempdirs import temporary_folder
from mlscale_lab.constraints._serving_pool import check_alive, next_message, stop_workers
from mlscale_lab.validation import check_fraction, check_int, check_positive

__all__ = ["ServingLoad", "measure_serving_load"]

_CALIBRATION_CALLS = 60  # per worker, side by side, to pick the rate for the utilisation asked for
_PILOT_REQUESTS = 150  # open-loop requests that measure service under load before the run
_PILOT_ROUNDS = 3  # pilots at most: each sets the next one's rate, until it moves under 5 %


@dataclass(frozen=True)
class ServingLoad:
    """One open-loop load run against worker processes (from :func:`measure_serving_load`).

    Attributes
    ----------
    workers : int
        Worker processes sharing the queue.
    rate : float
        Requests per second offered (Poisson).
    utilisation : float
        ``rate * mean service / workers``, from the service measured during the run.
    memory_bytes : int
        The largest worker's peak resident memory: interpreter, libraries and model, what each
        worker of a serving machine holds.
    latencies_s, waits_s, service_s : numpy.ndarray
        Per request kept (after the warm-up), in arrival order: due-to-answer latency, time from
        due to the start of its predict (queue and dispatch), and the predict itself.
    arrivals_s : numpy.ndarray
        When each kept request was due, seconds from the start.
    send_lag_s : numpy.ndarray
        How late the generator sent each kept request.
    dropped : int
        Requests dropped from the start (the queue starts empty).
    """

    workers: int
    rate: float
    utilisation: float
    memory_bytes: int
    latencies_s: object = field(repr=False)
    waits_s: object = field(repr=False)
    service_s: object = field(repr=False)
    arrivals_s: object = field(repr=False)
    send_lag_s: object = field(repr=False)
    dropped: int = 0

    @property
    def requests(self) -> int:
        """Requests kept."""
        return int(len(self.latencies_s))

    def service(self):
        """The measured service distribution, a :class:`mlscale_lab.queueing.ServiceTime`."""
        from mlscale_lab.queueing import ServiceTime

        return ServiceTime.measured(self.service_s)

    def latency_quantile(self, q: float, level: float = 0.95):
        """The ``q`` quantile of latency, with its interval (an Interval).

        Latencies in a queue come in bursts (one slow stretch delays many requests in a row),
        so the interval is a moving-block bootstrap over the requests in order, not order
        statistics that assume them independent; too few requests for the quantile at all
        raise :class:`~mlscale_lab.evidence.NotEnoughData`, as
        :func:`~mlscale_lab.evidence.quantile_interval` does.
        """
        import numpy as np

        from mlscale_lab.evidence import block_bootstrap_interval, quantile_interval

        quantile_interval(self.latencies_s, q, level)  # refuses a tail from too few requests
        return block_bootstrap_interval(self.latencies_s, lambda v: np.quantile(v, q), level,
                                        n_resamples=1000)

    def service_quantile(self, q: float, level: float = 0.95):
        """The ``q`` quantile of the in-worker service time, with its interval."""
        from mlscale_lab.evidence import quantile_interval

        return quantile_interval(self.service_s, q, level)

    def late_share(self, late_s: float = 0.002) -> float:
        """Share of requests the generator sent more than ``late_s`` after they were due."""
        import numpy as np

        return float(np.mean(np.asarray(self.send_lag_s) > late_s))


def _predictor(model, method):
    """One-row predictions on one thread, for scikit-learn estimators and torch modules."""
    if any(c.__module__.startswith("torch.nn") for c in type(model).__mro__):
        import torch

        torch.set_num_threads(1)
        model.eval()

        def predict(batch):
            with torch.no_grad():
                return model(torch.as_tensor(batch))
        return predict
    return getattr(model, method)


def _worker(payload_path: str, tasks, results) -> None:
    """A serving worker: load the model, calibrate, then answer requests until told to stop."""
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from mlscale_lab.constraints._limits_child import own_peak_rss

    model, X, method = pickle.loads(Path(payload_path).read_bytes())
    predict = _predictor(model, method)
    n = len(X)
    with threadpool_limits(1):
        for i in range(20):  # warm-up: caches, lazy initialisation
            predict(X[i % n: i % n + 1])
        results.put(("loaded", None))
        while True:
            i = tasks.get()
            if i is None:
                break
            if i == "calibrate":  # every worker at once, as they will run under load
                times = []
                for j in range(_CALIBRATION_CALLS):
                    t0 = time.perf_counter()
                    predict(X[j % n: j % n + 1])
                    times.append(time.perf_counter() - t0)
                results.put(("ready", times))
                continue
            start = time.perf_counter()
            predict(X[i % n: i % n + 1])
            results.put((i, start, time.perf_counter()))
    import psutil

    results.put(("memory", own_peak_rss() or psutil.Process().memory_info().rss))


def measure_serving_load(model, X, *, workers: int = 1, utilisation: float = 0.75,
                         requests: int = 1500, warmup: int = 50, method: str = "predict",
                         seed: int = 0, timeout_s: float = 120) -> ServingLoad:
    """Serve ``model`` from ``workers`` fresh processes under an open-loop Poisson load.

    Each worker loads the model and warms it up; then all the workers time 60 predicts side by
    side, and take one-row requests from a shared queue, one at a time on one thread. Pilots of
    150 open-loop requests (at most three, each at the rate the one before suggests) measure the
    service time as a load sees it (back-to-back predicts run faster than predicts that wait for
    work), and the rate is set from them so the workers are ``utilisation`` busy; the generator then sends
    ``requests`` requests at Poisson times drawn up front (``seed``), sleeping until each is
    due. The first ``warmup`` requests are dropped from the statistics.

    Parameters
    ----------
    model : fitted scikit-learn estimator or torch.nn.Module
        Pickled to the workers (as to a serving box).
    X : array-like
        Request rows, cycled through.
    workers : int, default 1
        Worker processes (one per CPU you can give them: more measure CPUs taking turns).
    utilisation : float, default 0.75
        The share of the workers' time the load keeps busy, in (0, 1).
    requests : int, default 1500
        Requests sent and measured, after the pilot (a p99 needs at least 368 kept to be
        bounded at 95 %).
    warmup : int, default 50
    method : str, default "predict"
        The estimator's method to call; ignored for torch modules.
    seed : int, default 0
    timeout_s : float, default 120
        For the workers to start and for every answer; the workers are stopped either way.

    The workers are started with ``spawn`` (a fresh interpreter each, on every platform): from
    a script, call this under ``if __name__ == "__main__":``, as multiprocessing requires. A
    worker that dies (on start or later) raises :class:`RuntimeError` within a fraction of a
    second, and every worker is stopped before this returns or raises.

    Returns
    -------
    ServingLoad

    Examples
    --------
    >>> from sklearn.dummy import DummyClassifier
    >>> import numpy as np
    >>> m = DummyClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1])
    >>> load = measure_serving_load(m, np.zeros((10, 2)), requests=200)  # doctest: +SKIP
    >>> load.requests, load.memory_bytes > 20 * 1024**2  # doctest: +SKIP
    (150, True)
    """
    import numpy as np

    func = "measure_serving_load"
    workers = check_int(func, "workers", workers, low=1)
    rho = check_fraction(func, "utilisation", utilisation, low_open=True, high_open=True)
    requests = check_int(func, "requests", requests, low=2)
    warmup = check_int(func, "warmup", warmup, low=0, high=requests - 2)
    timeout_s = check_positive(func, "timeout_s", timeout_s)
    if not hasattr(model, method) and not callable(model):
        raise ValueError(f"{func}(method={method!r}): expected a method of "
                         f"{type(model).__name__} such as 'predict', got {method!r}")
    X = np.asarray(X) if not hasattr(X, "iloc") else X.to_numpy()
    if len(X) == 0:
        raise ValueError(f"{func}(X=...): expected at least one request row, got 0")
    with temporary_folder("serving") as folder:
        # The model goes to the workers in a file, not through spawn's start-up pipe: Python
        # 3.11 writes a child's start-up data with both ends of that pipe open in the parent
        # (CPython gh-118981), so a child that died before reading more than the pipe holds
        # (64 KiB; a forest is megabytes) left Process.start() blocked for good. What the
        # pipe carries now is a path and two queues: it fits, whatever the model weighs.
        payload = folder / "model.pickle"
        payload.write_bytes(pickle.dumps((model, X, method)))
        run = _run_workers(str(payload), workers, rho, requests, seed, timeout_s, func)
    rate, t0, due, sent, start, end, memory = run
    keep = slice(warmup, None)
    due_abs = t0 + due
    service = (end - start)[keep]
    return ServingLoad(
        workers=workers, rate=float(rate),
        utilisation=float(rate * service.mean() / workers),
        memory_bytes=max(memory),
        latencies_s=(end - due_abs)[keep], waits_s=(start - due_abs)[keep], service_s=service,
        arrivals_s=due[keep], send_lag_s=(sent - due_abs)[keep], dropped=warmup,
    )


def _run_workers(payload, workers, rho, requests, seed, timeout_s, func):
    """Start the workers, calibrate them, send the open-loop load and collect the answers; the
    workers are stopped and the queues released however this ends."""
    import multiprocessing as mp

    import numpy as np

    ctx = mp.get_context("spawn")  # a fresh interpreter per worker, as on a serving box
    tasks, results = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(payload, tasks, results), daemon=True)
             for _ in range(workers)]
    finished = False
    try:
        for p in procs:
            p.start()
        deadline = time.perf_counter() + timeout_s
        for _ in procs:
            next_message(results, deadline, procs, func, "to start")
        for _ in procs:  # all loaded: now they time themselves side by side
            tasks.put("calibrate")
        calibrated = []
        while len(calibrated) < workers:
            tag, value = next_message(results, deadline, procs, func, "to start")
            calibrated.append(value)
        # a mean of the middle 80 % of their calls keeps one slow call from setting the rate
        rate = rho * workers / _trimmed_mean(np.concatenate(calibrated))
        # Back-to-back predicts run faster than predicts that wait for work between them
        # (caches go cold, the generator takes its share of the CPUs, more of it the higher the
        # rate): short open-loop pilots measure service as the load sees it and set the rate
        # from its mean (utilisation is rate x mean service), until the rate settles.
        rng = np.random.default_rng(seed)
        pilot = min(_PILOT_REQUESTS, requests)
        ids = -1 - np.arange(pilot)  # negative ids: rows still cycle, answers tell themselves apart
        for _ in range(_PILOT_ROUNDS):
            _send_open_loop(tasks, procs, _poisson_due(rng, rate, pilot), ids, func)
            start, end = _collect(results, timeout_s, procs, func, ids)
            settled = rho * workers / float(np.mean(end - start))
            rate, previous = settled, rate
            if abs(settled / previous - 1) < 0.05:
                break
        due = _poisson_due(rng, rate, requests)
        t0, sent = _send_open_loop(tasks, procs, due, np.arange(requests), func)
        for _ in procs:
            tasks.put(None)
        memory: list[int] = []
        start, end = _collect(results, timeout_s, procs, func, np.arange(requests), memory=memory,
                              workers=workers)
        for p in procs:
            p.join(timeout=10)
        finished = True
    finally:
        stop_workers(procs, tasks, results, finished)
    return rate, t0, due, sent, start, end, memory


def _poisson_due(rng, rate: float, n: int):
    """When each of ``n`` Poisson requests is due, seconds after the first."""
    gaps = rng.exponential(1 / rate, n)
    return gaps.cumsum() - gaps[0]


def _send_open_loop(tasks, procs, due, ids, func):
    """Send request ``ids[i]`` at ``t0 + due[i]`` whether or not the workers keep up."""
    import numpy as np

    sent = np.empty(len(due))
    t0 = time.perf_counter() + 0.02
    for i, (d, request) in enumerate(zip(due, ids, strict=True)):
        wait = t0 + d - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent[i] = time.perf_counter()
        tasks.put(int(request))
        if i % 64 == 0:
            check_alive(procs, func, "under load")
    return t0, sent


def _collect(results, timeout_s, procs, func, ids, *, memory=None, workers=0):
    """Each request's (start, end), in the order of ``ids``; with ``memory``, also every
    worker's peak memory report, which the workers send once told to stop."""
    import numpy as np

    where = {int(r): i for i, r in enumerate(ids)}
    start, end = np.full(len(ids), np.nan), np.full(len(ids), np.nan)
    got, reports = 0, memory if memory is not None else []
    deadline = time.perf_counter() + timeout_s
    while got < len(ids) or len(reports) < workers:
        tag, *rest = next_message(results, deadline, procs, func, "to answer",
                          stopping=len(reports) > 0 or (memory is not None and got == len(ids)))
        if tag == "memory":
            reports.append(int(rest[0]))
        else:
            start[where[tag]], end[where[tag]] = rest
            got += 1
    return start, end


def _trimmed_mean(x, cut: float = 0.1) -> float:
    import numpy as np

    x = np.sort(np.asarray(x, dtype=float))
    k = int(len(x) * cut)
    return float(x[k: len(x) - k].mean())
