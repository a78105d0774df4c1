"""Serving requirements and the machine that serves them: memory per worker, queueing, prices."""

import math

import numpy as np
import pytest

from mlscale_lab.constraints import (
    ServingRequirements,
    check_machine,
    choose_machine,
    measure_serving,
    wait_quantile_ms,
)
from mlscale_lab.prices import EXAMPLE_MACHINES, Machine, example_machines

MB = 1024**2


def req(memory_mb=300, p95=5.0, throughput=1000.0, batch=1):
    return ServingRequirements(int(memory_mb * MB), p95 / 2, p95, p95 * 1.2, batch, throughput)


def test_memory_is_needed_per_worker_process():
    box = Machine("box", 4, 1024 * MB, 0.1)
    fit = check_machine(req(memory_mb=300), box, p95_budget_ms=10)  # 375 MB a worker
    assert fit.fits and fit.workers == 2, "1024 MB holds two 375 MB workers, not four"
    fit = check_machine(req(memory_mb=900), box, p95_budget_ms=10)
    assert not fit.fits and fit.reasons[0].startswith("memory") and fit.workers == 0
    assert check_machine(req(memory_mb=900), box, p95_budget_ms=10, memory_headroom=1.0).fits
    # Load that four workers would carry, but only two fit in memory: the machine fails.
    fit = check_machine(req(memory_mb=300, throughput=100), box, p95_budget_ms=100,
                        requests_per_s=250)
    assert not fit.fits and "only 2 worker(s) fit in memory" in fit.reasons[0]


def test_queueing_makes_the_latency_budget_bind():
    r = req(p95=12.0, throughput=100.0)  # 10 ms a request
    medium, xlarge = Machine("m", 2, 8192 * MB, 0.1), Machine("x", 4, 16384 * MB, 0.2)
    # 150 requests/s on 2 workers: 75 % busy, enough capacity, but the tail waits ~51 ms.
    slow = check_machine(r, medium, p95_budget_ms=30, requests_per_s=150)
    assert not slow.fits and slow.reasons[0].startswith("latency")
    assert slow.utilisation == pytest.approx(0.75)
    assert slow.p95_ms == pytest.approx(12.0 + wait_quantile_ms(2, 150, 0.01))
    assert check_machine(r, xlarge, p95_budget_ms=30, requests_per_s=150).fits
    # No load: no queue, the service p95 alone decides.
    assert check_machine(r, medium, p95_budget_ms=13).fits
    assert not check_machine(r, medium, p95_budget_ms=11).fits


def test_wait_quantile_against_erlang_c():
    from mlscale_lab.scaling import erlang_c

    t = wait_quantile_ms(3, 200.0, 0.012) / 1000
    c, lam, s = 3, 200.0, 0.012
    assert erlang_c(c, lam * s) * math.exp(-(c / s - lam) * t) == pytest.approx(0.05)
    assert wait_quantile_ms(8, 10.0, 0.01) == 0.0  # almost nobody waits
    assert wait_quantile_ms(2, 200.0, 0.01) == math.inf  # 100 % busy
    with pytest.raises(ValueError, match=r"wait_quantile_ms\(quantile=1"):
        wait_quantile_ms(2, 1.0, 0.01, quantile=1)


def test_choose_cheapest_that_fits_from_the_one_price_list():
    machines = EXAMPLE_MACHINES
    assert choose_machine(req(memory_mb=300), machines, p95_budget_ms=10).name == "nano"
    assert choose_machine(req(memory_mb=700), machines, p95_budget_ms=10).name == "micro"
    big = choose_machine(req(throughput=400), machines, p95_budget_ms=10, requests_per_s=1000)
    assert big.vcpus >= 4, "1000 requests/s at 400 per worker needs 3 workers and room to queue"
    assert choose_machine(req(p95=50), machines, p95_budget_ms=10) is None
    # Prices are parameters: with free memory, a bigger box is no dearer than a smaller one.
    free_mem = example_machines(usd_per_gib_hour=0)
    assert choose_machine(req(memory_mb=700), free_mem, p95_budget_ms=10).name == "micro"
    assert free_mem[0].usd_per_hour == free_mem[2].usd_per_hour
    with pytest.raises(ValueError, match=r"check_machine\(p95_budget_ms=0\)"):
        choose_machine(req(), machines, p95_budget_ms=0)
    with pytest.raises(TypeError, match=r"check_machine\(requests_per_s='10'\)"):
        choose_machine(req(), machines, p95_budget_ms=1, requests_per_s="10")


def test_measure_serving_in_a_fresh_process():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=200).fit(X, y)
    r = measure_serving(model, X[:100], batch_size=4, repeats=30)
    assert 20 * MB < r.memory_bytes < 1024 * MB  # an interpreter with scikit-learn loaded
    assert 0 < r.p50_ms <= r.p95_ms <= r.p99_ms
    assert r.batch_size == 4 and r.throughput_per_cpu > 0
    assert r.service_time_s == pytest.approx(4 / r.throughput_per_cpu)
    with pytest.raises(ValueError, match=r"measure_serving\(method='transmogrify'\)"):
        measure_serving(model, X[:10], method="transmogrify")


@pytest.mark.parametrize("bad, kind", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_measure_serving_errors_name_measure_serving(bad, kind):
    # It used to blame measure_latency, a function the caller never called.
    with pytest.raises(kind, match=rf"^measure_serving\(batch_size={bad}\): expected"):
        measure_serving(object(), np.zeros((3, 2)), batch_size=bad)
