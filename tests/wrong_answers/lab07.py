"""Plausible wrong answers to lab 07's exercises; only the reference may pass their tests."""

# -- exercise 1: latency from the scheduled send times ----------------------------------------

_FROM_SEND = '''
def intended_latencies_ms(sent, done, start, interval):
    # coordinated omission itself: timed from the actual send, as the closed-loop tool does
    return (np.asarray(done, float) - np.asarray(sent, float)) * 1000.0
'''

_K_FROM_ONE = '''
def intended_latencies_ms(sent, done, start, interval):
    # off by one: the first request planned one interval after the start
    done = np.asarray(done, float)
    return (done - (start + interval * np.arange(1, done.size + 1))) * 1000.0
'''

_FROM_FIRST_SEND = '''
def intended_latencies_ms(sent, done, start, interval):
    # the plan anchored at the first actual send instead of the planned start
    sent, done = np.asarray(sent, float), np.asarray(done, float)
    return (done - (sent[0] + interval * np.arange(done.size))) * 1000.0
'''

_SECONDS = '''
def intended_latencies_ms(sent, done, start, interval):
    # right times, wrong unit: seconds
    done = np.asarray(done, float)
    return done - (start + interval * np.arange(done.size))
'''

_LATER_OF_PLAN_AND_PREVIOUS = '''
def intended_latencies_ms(sent, done, start, interval):
    # "corrects" only up to the previous answer: still omits the time the user was blocked
    sent, done = np.asarray(sent, float), np.asarray(done, float)
    planned = start + interval * np.arange(done.size)
    return (done - np.maximum(planned, sent)) * 1000.0
'''

# -- exercise 2: the batching setting for a p99 target ----------------------------------------

_FASTEST = '''
def best_batching(results, p99_target_ms):
    # the misconception: more throughput is always better, whatever the tail
    return max(results, key=lambda r: r["throughput"])
'''

_BIGGEST_BATCH = '''
def best_batching(results, p99_target_ms):
    # assumes the biggest batch that meets the target is the fastest
    ok = [r for r in results if r["p99_ms"] <= p99_target_ms]
    return max(ok, key=lambda r: r["max_batch"]) if ok else None
'''

_STRICT = '''
def best_batching(results, p99_target_ms):
    # off by one at the boundary: a p99 equal to the target counted as a miss
    ok = [r for r in results if r["p99_ms"] < p99_target_ms]
    return max(ok, key=lambda r: r["throughput"]) if ok else None
'''

_LOWEST_P99 = '''
def best_batching(results, p99_target_ms):
    # the safest-looking choice: the lowest tail, throughput ignored
    ok = [r for r in results if r["p99_ms"] <= p99_target_ms]
    return min(ok, key=lambda r: r["p99_ms"]) if ok else None
'''

_NO_NONE = '''
def best_batching(results, p99_target_ms):
    # never admits that nothing meets the target: falls back to the lowest p99
    ok = [r for r in results if r["p99_ms"] <= p99_target_ms] or [min(results, key=lambda r: r["p99_ms"])]
    return max(ok, key=lambda r: r["throughput"])
'''

# -- exercise 3: the capacity plan ------------------------------------------------------------

_NO_SPARE = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # forgets N+1: sized with every machine up
    best = None
    for m in machines:
        c = min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))
        if c < 1:
            continue
        for n in range(max(1, int(rate * service_time_s / c)), 100_000):
            lam = rate / n
            if lam * service_time_s < c and sv.mmc_latency_quantile(c, lam, service_time_s, 0.99) * 1000 <= p99_target_ms:
                if best is None or n * m.usd_per_hour < best[0]:
                    best = (n * m.usd_per_hour, m.name, n)
                break
    return best[1], best[2]
'''

_IGNORES_MEMORY = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # one worker per vCPU, whether or not the memory holds them
    best = None
    for m in machines:
        c = m.vcpus
        for n in range(max(2, int(rate * service_time_s / c)), 100_000):
            lam = rate / (n - 1)
            if lam * service_time_s < c and sv.mmc_latency_quantile(c, lam, service_time_s, 0.99) * 1000 <= p99_target_ms:
                if best is None or n * m.usd_per_hour < best[0]:
                    best = (n * m.usd_per_hour, m.name, n)
                break
    return best[1], best[2]
'''

_NO_POOLING = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # every worker its own M/M/1 queue: no pooling inside a machine, so big machines look bad
    best = None
    for m in machines:
        c = min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))
        if c < 1:
            continue
        for n in range(max(2, int(rate * service_time_s / c)), 100_000):
            lam = rate / (n - 1) / c
            if lam * service_time_s < 1 and sv.mmc_latency_quantile(1, lam, service_time_s, 0.99) * 1000 <= p99_target_ms:
                if best is None or n * m.usd_per_hour < best[0]:
                    best = (n * m.usd_per_hour, m.name, n)
                break
    return best[1], best[2]
'''

_MEAN_NOT_P99 = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # the mean response time held to the p99 target
    best = None
    for m in machines:
        c = min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))
        if c < 1:
            continue
        for n in range(max(2, int(rate * service_time_s / c)), 100_000):
            lam = rate / (n - 1)
            if lam * service_time_s < c and (sc.mmc_mean_wait(c, lam, service_time_s) + service_time_s) * 1000 <= p99_target_ms:
                if best is None or n * m.usd_per_hour < best[0]:
                    best = (n * m.usd_per_hour, m.name, n)
                break
    return best[1], best[2]
'''

_LAZY = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # hands the work to the answer key
    best = sv.plan_capacity(rate, p99_target_ms / 1000, service_time_s,
                            memory_per_worker_bytes=memory_per_worker_mb * MB, machines=machines)[0]
    return best.machine.name, best.replicas
'''

_LAZY_IMPORTED = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # the same hand-off, imported inside the function
    from mlscale_lab.scaling.serving import plan_capacity
    best = plan_capacity(rate, p99_target_ms / 1000, service_time_s,
                         memory_per_worker_bytes=memory_per_worker_mb * MB, machines=machines)[0]
    return best.machine.name, best.replicas
'''

_CHEAPEST_MACHINE_FIRST = '''
def capacity_plan(rate, p99_target_ms, service_time_s, memory_per_worker_mb, machines):
    # stops at the first size that works (cheapest per hour), not the cheapest plan
    for m in sorted(machines, key=lambda m: m.usd_per_hour):
        c = min(m.vcpus, int((m.memory_bytes - 512 * MB) // (memory_per_worker_mb * MB)))
        if c < 1:
            continue
        for n in range(max(2, int(rate * service_time_s / c)), 100_000):
            lam = rate / (n - 1)
            if lam * service_time_s < c and sv.mmc_latency_quantile(c, lam, service_time_s, 0.99) * 1000 <= p99_target_ms:
                return m.name, n
    return None
'''

WRONG_ANSWERS = {
    "lab07-intended-latency": [_FROM_SEND, _K_FROM_ONE, _FROM_FIRST_SEND, _SECONDS,
                               _LATER_OF_PLAN_AND_PREVIOUS],
    "lab07-batching-choice": [_FASTEST, _BIGGEST_BATCH, _STRICT, _LOWEST_P99, _NO_NONE],
    "lab07-capacity-plan": [_NO_SPARE, _IGNORES_MEMORY, _NO_POOLING, _MEAN_NOT_P99, _LAZY, _LAZY_IMPORTED,
                            _CHEAPEST_MACHINE_FIRST],
}
