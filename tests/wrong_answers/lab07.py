"""Plausible wrong answers to lab 07's exercises; only the reference may pass their tests."""

import re

# -- exercise 1: predict the p99 before measuring ---------------------------------------------

_MM1 = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # the misconception: M/M/1's exponential tail with the measured mean
    mean = float(np.mean(service_times_s))
    return (-np.log(0.01) / (1 / mean - rate) + delay_s) * 1000
'''

_SERVICE_ONLY = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # no queue: the p99 of the service alone
    return (float(np.quantile(service_times_s, 0.99)) + delay_s) * 1000
'''

_NO_DELAY = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # the queue right, the client's delay forgotten
    rng = np.random.default_rng(0)
    n = 200_000
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    services = rng.choice(np.asarray(service_times_s, float), n)
    return float(np.quantile((fcfs_waits(arrivals, services, 1) + services)[n // 10:], 0.99)) * 1000
'''

_PK_MEAN = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # the Pollaczek-Khinchine mean, reported as if it were the p99
    x = np.asarray(service_times_s, float)
    rho = rate * x.mean()
    wait = rate * np.mean(x ** 2) / (2 * (1 - rho))
    return (wait + x.mean() + delay_s) * 1000
'''

_CONSTANT_SERVICE = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # the queue simulated, but every request given the mean service time
    rng = np.random.default_rng(0)
    n = 200_000
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    services = np.full(n, float(np.mean(service_times_s)))
    return (float(np.quantile((fcfs_waits(arrivals, services, 1) + services)[n // 10:], 0.99)) + delay_s) * 1000
'''

_PERCENT = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # np.percentile takes percent: 0.99 is the 1st-in-10,000 quantile, not the p99
    rng = np.random.default_rng(0)
    n = 200_000
    arrivals = np.cumsum(rng.exponential(1 / rate, n))
    services = rng.choice(np.asarray(service_times_s, float), n)
    return (float(np.percentile(fcfs_waits(arrivals, services, 1) + services, 0.99)) + delay_s) * 1000
'''

_LAZY_P99 = '''
def predict_p99_ms(rate, service_times_s, delay_s):
    # hands the work to the answer key
    return (mgc_latency_quantile(1, rate, service_times_s, 0.99) + delay_s) * 1000
'''

# -- exercise 2: find the stall in a trace ----------------------------------------------------

_LONGEST_SILENCE = '''
def find_stall(scheduled, done):
    # the longest time without an answer, whether or not anything was waiting
    d = np.sort(np.asarray(done, float)[np.isfinite(done)])
    k = int(np.argmax(np.diff(d)))
    return d[k], d[k + 1] - d[k]
'''

_SEND_GAP = '''
def find_stall(scheduled, done):
    # looks for the stall in the sends: an open loop keeps sending through it
    s = np.sort(np.asarray(scheduled, float))
    k = int(np.argmax(np.diff(s)))
    return s[k], s[k + 1] - s[k]
'''

_SLOWEST_REQUEST = '''
def find_stall(scheduled, done):
    # the slowest request's answer time and latency: the stall's end, not its start
    scheduled, done = np.asarray(scheduled, float), np.asarray(done, float)
    lat = np.where(np.isfinite(done), done - scheduled, -1)
    k = int(np.argmax(lat))
    return done[k], lat[k]
'''

_START_END = '''
def find_stall(scheduled, done):
    # the right stall, returned as (start, end) rather than (start, length)
    scheduled, done = np.asarray(scheduled, float), np.asarray(done, float)
    ok = np.isfinite(done)
    answers = np.sort(done[ok])
    best = (0.0, 0.0, 0.0)
    for before, after in zip(answers[:-1], answers[1:]):
        waiting = scheduled[(scheduled < after) & (~ok | (done >= after))]
        if waiting.size and after - max(before, waiting.min()) > best[1]:
            start = max(before, float(waiting.min()))
            best = (start, after - start, after)
    return best[0], best[2]
'''

_MILLISECONDS = '''
def find_stall(scheduled, done):
    # the right stall, its length in milliseconds
    scheduled, done = np.asarray(scheduled, float), np.asarray(done, float)
    ok = np.isfinite(done)
    answers = np.sort(done[ok])
    best = (0.0, 0.0)
    for before, after in zip(answers[:-1], answers[1:]):
        waiting = scheduled[(scheduled < after) & (~ok | (done >= after))]
        if waiting.size and after - max(before, waiting.min()) > best[1]:
            start = max(before, float(waiting.min()))
            best = (start, after - start)
    return best[0], best[1] * 1000
'''

# -- exercise 3: the capacity plan ------------------------------------------------------------

_PLAN = '''
def capacity_plan(rate, p99_target_s, service, memory_per_worker_mb, machines):
    best = None
    for m in machines:
        c = WORKERS
        if c < 1 or TAIL(c, 1e-9) > p99_target_s:
            continue
        n = max(FIRST, int(rate * service.mean / c) + FIRST)
        while TAIL(c, rate / (n - DOWN)) > p99_target_s:
            n += 1
        if best is None or n * m.usd_per_hour < best[0]:
            best = (n * m.usd_per_hour, m.name, n)
    return best[1], best[2]
'''
_WORKERS = "min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))"
_TAIL = "ggc_latency_quantile({c}, {lam}, service, 0.99)"


def _plan(comment, workers=_WORKERS, tail=_TAIL, first="2", down="1", imports=""):
    body = (_PLAN.replace("WORKERS", workers).replace("FIRST", first).replace("DOWN", down))
    if imports:
        body = body.replace("    best = None", f"    {imports}\n    best = None", 1)
    # TAIL(c, lam) -> the given expression
    body = re.sub(r"TAIL\(([^,]+), ([^)]+\)?)\)", lambda mt: tail.format(c=mt.group(1), lam=mt.group(2)), body)
    return body.replace("    best = None", f"    # {comment}\n    best = None", 1)


_NO_SPARE = _plan("forgets N+1: sized with every machine up", first="1", down="0")
_IGNORES_MEMORY = _plan("one worker per vCPU, whether or not the memory holds them", workers="m.vcpus")
_NO_POOLING = _plan("every worker its own queue: no pooling inside a machine",
                    tail="ggc_latency_quantile(1, ({lam}) / {c}, service, 0.99)")
_EXPONENTIAL = _plan("M/M/c: the mean of the measured service, its shape thrown away",
                     tail="mmc_latency_quantile({c}, max({lam}, 1e-9), service.mean, 0.99)",
                     imports="from mlscale_lab.queueing import mmc_latency_quantile")
_MEAN_NOT_P99 = _plan("the mean response time held to the p99 target",
                      tail="(ggc_mean_wait({c}, max({lam}, 1e-9), service.mean, service_scv=service.scv) "
                           "+ service.mean if ({lam}) * service.mean < {c} else float('inf'))",
                      imports="from mlscale_lab.queueing import ggc_mean_wait")

_LAZY_PLAN = '''
def capacity_plan(rate, p99_target_s, service, memory_per_worker_mb, machines):
    # hands the work to the answer key
    best = capacity.cheapest_plan(rate, service=service, latency_target_s=p99_target_s,
                                  worker_memory_bytes=memory_per_worker_mb * MB, machines=machines,
                                  spare=1, reserved_memory_bytes=512 * MB)
    return best.machine.name, best.replicas
'''

_CHEAPEST_MACHINE_FIRST = '''
def capacity_plan(rate, p99_target_s, service, memory_per_worker_mb, machines):
    # stops at the first size that works (cheapest per hour), not the cheapest plan
    for m in sorted(machines, key=lambda m: m.usd_per_hour):
        c = min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))
        if c < 1 or ggc_latency_quantile(c, 1e-9, service, 0.99) > p99_target_s:
            continue
        n = max(2, int(rate * service.mean / c) + 2)
        while ggc_latency_quantile(c, rate / (n - 1), service, 0.99) > p99_target_s:
            n += 1
        return m.name, n
'''

# -- exercise 4: a batching window for a latency budget ---------------------------------------

_WINDOW = '''
def choose_window(windows_ms, rates, budget_ms, cost, delay_s):
    rng = np.random.default_rng(1)
    meets = []
    for w in windows_ms:
        ok = True
        for rate in RATES:
            arrivals = np.cumsum(rng.exponential(1 / rate, 20_000))
            latency = sv.simulate_batcher(arrivals, max_batch=32, max_wait_s=w / 1000, cost=cost)
            p99 = (STAT + DELAY) * 1000
            ok = ok and p99 <= budget_ms
        if ok:
            meets.append(w)
    return PICK
'''


def _window(comment, rates="rates", stat="np.quantile(latency[2000:], 0.99)", delay="delay_s",
            pick="max(meets) if meets else None"):
    body = (_WINDOW.replace("RATES", rates).replace("STAT", stat).replace("DELAY", delay)
            .replace("PICK", pick))
    return body.replace("    rng =", f"    # {comment}\n    rng =", 1)


_NIGHT_ONLY = _window("the quiet hour is the hard one, so only it is checked", rates="[min(rates)]")
_MEAN_LATENCY = _window("the mean latency held to a p99 budget", stat="latency[2000:].mean()")
_NO_DELAY_WINDOW = _window("the server's latency only, the client's delay forgotten", delay="0.0")
_SHORTEST = _window("the safest-looking choice: the shortest window that meets the budget",
                    pick="min(meets) if meets else None")

_LONGEST_WINDOW = '''
def choose_window(windows_ms, rates, budget_ms, cost, delay_s):
    # the biggest batches, whatever the latency
    return max(windows_ms)
'''

WRONG_ANSWERS = {
    "lab07-predict-p99": [_MM1, _SERVICE_ONLY, _NO_DELAY, _PK_MEAN, _CONSTANT_SERVICE, _PERCENT, _LAZY_P99],
    "lab07-find-stall": [_LONGEST_SILENCE, _SEND_GAP, _SLOWEST_REQUEST, _START_END, _MILLISECONDS],
    "lab07-capacity-plan": [_NO_SPARE, _IGNORES_MEMORY, _NO_POOLING, _EXPONENTIAL, _MEAN_NOT_P99,
                            _LAZY_PLAN, _CHEAPEST_MACHINE_FIRST],
    "lab07-batching-window": [_NIGHT_ONLY, _MEAN_LATENCY, _NO_DELAY_WINDOW, _SHORTEST,
                              _LONGEST_WINDOW],
}
