"""Plausible wrong answers to lab 05's exercises; only the reference may pass their tests."""

_SPEEDUP_OVER_FIRST = '''
def fit_serial_fraction(threads, seconds):
    # misconception: the first measurement is taken as the one-thread baseline
    p = np.asarray(threads, dtype=float)
    t = np.asarray(seconds, dtype=float)
    x = 1 - 1 / p
    if not np.any(x > 0):
        raise ValueError("nothing to fit")
    y = t / t[0] - 1 / p
    return float(np.clip((x @ y) / (x @ x), 0.0, 1.0))
'''

_SWAPPED = '''
def fit_serial_fraction(threads, seconds):
    # slip: the slope (the parallel part) taken for the serial part
    p = np.asarray(threads, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if np.unique(p).size < 2:
        raise ValueError("need two thread counts")
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p), 1 / p]), t, rcond=None)
    return float(np.clip(b / (a + b), 0.0, 1.0))
'''

_LINE_IN_P = '''
def fit_serial_fraction(threads, seconds):
    # the line fitted in p instead of 1/p
    p = np.asarray(threads, dtype=float)
    t = np.asarray(seconds, dtype=float)
    if np.unique(p).size < 2:
        raise ValueError("need two thread counts")
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p), p]), t, rcond=None)
    return float(np.clip(a / (a + b), 0.0, 1.0))
'''

_NO_GUARD = '''
def fit_serial_fraction(threads, seconds):
    # right fit, but one thread count goes through silently (lstsq picks some line)
    p = np.asarray(threads, dtype=float)
    t = np.asarray(seconds, dtype=float)
    (a, b), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(p), 1 / p]), t, rcond=None)
    return float(np.clip(a / (a + b), 0.0, 1.0))
'''

_DELEGATES = '''
def fit_serial_fraction(threads, seconds):
    t = np.asarray(seconds, dtype=float)
    return sc.fit_amdahl(threads, t[0] / t)
'''

_DELEGATES_IMPORTED = '''
def fit_serial_fraction(threads, seconds):
    from mlscale_lab.scaling import fit_amdahl
    t = np.asarray(seconds, dtype=float)
    return fit_amdahl(threads, t[0] / t)
'''

_FASTEST = '''
def shortest_expected_delay(queue_lengths, service_means):
    # misconception: always the fastest replica, whatever its queue
    return int(np.argmin(service_means))
'''

_NO_PLUS_ONE = '''
def shortest_expected_delay(queue_lengths, service_means):
    # off by one: the new request itself is not counted
    q = np.asarray(queue_lengths, dtype=float)
    return int(np.argmin(q * np.asarray(service_means, dtype=float)))
'''

_LEAST_CONNECTIONS = '''
def shortest_expected_delay(queue_lengths, service_means):
    # lazy: least connections, speeds ignored
    return int(np.argmin(queue_lengths))
'''

_ONE_DAY = '''
# misconception: tuned on one day (the first validation day)
ok = sweep_violation[0] <= 0.01
AUTOSCALER_SETTINGS = {"target_utilisation": float(targets[ok][np.argmin(sweep_cost[0][ok])])}
'''

_AVERAGE_DAY = '''
# misconception: the SLO met on the days' average, not on each day
ok = sweep_violation.mean(axis=0) <= 0.01
AUTOSCALER_SETTINGS = {"target_utilisation": float(targets[ok][np.argmin(sweep_cost.mean(axis=0)[ok])])}
'''

_ONE_STEP_TOO_FAR = '''
# off by one: the first target past the last one that holds on every day
last_ok = int(np.where(sweep_violation.max(axis=0) <= 0.01)[0].max())
AUTOSCALER_SETTINGS = {"target_utilisation": float(targets[last_ok + 1])}
'''

_DEFAULTS = '''
# lazy: the defaults (target 0.6), safe and expensive
AUTOSCALER_SETTINGS = {}
'''

WRONG_ANSWERS = {
    "lab05-amdahl-fit": [_SPEEDUP_OVER_FIRST, _SWAPPED, _LINE_IN_P, _NO_GUARD, _DELEGATES,
                         _DELEGATES_IMPORTED],
    "lab05-sed-policy": [_FASTEST, _NO_PLUS_ONE, _LEAST_CONNECTIONS],
    "lab05-autoscaler-settings": [_ONE_DAY, _AVERAGE_DAY, _ONE_STEP_TOO_FAR, _DEFAULTS],
}
