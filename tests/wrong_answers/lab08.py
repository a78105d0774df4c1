"""Plausible wrong answers to lab 08's exercises; only the reference may pass their tests."""

# -- exercise 1: gradient accumulation --------------------------------------------------------

_SUM_OF_MEANS = '''
def accumulate_gradients(model, X, y, micro_batches):
    # the misconception: accumulating is adding each slice's mean loss as it comes
    for rows in torch.arange(len(X)).tensor_split(int(micro_batches)):
        torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
'''

_OVER_M = '''
def accumulate_gradients(model, X, y, micro_batches):
    # each slice divided by the number of slices: right only when the slices are equal
    for rows in torch.arange(len(X)).tensor_split(int(micro_batches)):
        (torch.nn.functional.cross_entropy(model(X[rows]), y[rows]) / micro_batches).backward()
'''

_ZERO_INSIDE = '''
def accumulate_gradients(model, X, y, micro_batches):
    # gradients zeroed before every slice: only the last slice's survives
    n = len(X)
    for rows in torch.arange(n).tensor_split(int(micro_batches)):
        model.zero_grad()
        (torch.nn.functional.cross_entropy(model(X[rows]), y[rows]) * (len(rows) / n)).backward()
'''

_SKIPS_LAST = '''
def accumulate_gradients(model, X, y, micro_batches):
    # an off-by-one: the last slice never reaches backward()
    n = len(X)
    slices = torch.arange(n).tensor_split(int(micro_batches))
    for rows in slices[:-1]:
        (torch.nn.functional.cross_entropy(model(X[rows]), y[rows]) * (len(rows) / n)).backward()
    model(X[slices[-1]])
'''

_WHOLE_BATCH = '''
def accumulate_gradients(model, X, y, micro_batches):
    # the lazy answer: the whole batch at once (the memory accumulation exists to save)
    torch.nn.functional.cross_entropy(model(X), y).backward()
'''

_DELEGATES = '''
def accumulate_gradients(model, X, y, micro_batches):
    # hands the work to the library's reference
    n = len(X)
    for rows in torch.arange(n).tensor_split(int(micro_batches)):
        (torch.nn.functional.cross_entropy(model(X[rows]), y[rows]) * (len(rows) / n)).backward()
    dd.full_batch_gradient(SETUP, 2)
'''

# -- exercise 2: how many workers -------------------------------------------------------------

_ALWAYS_MORE = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # the misconception: more workers are always faster
    return int(max_workers)
'''

_FLAT_COMMUNICATION = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # one message per step, whatever the number of processes: no ring steps
    def step(n):
        return compute_s / n + (0.0 if n == 1 else alpha + gradient_bytes / bandwidth)
    return min(range(1, int(max_workers) + 1), key=lambda n: (step(n), n))
'''

_ALL_TO_ALL = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # every process sends the whole gradient at each ring step: 2(n-1) M, not 2(n-1)/n M
    def step(n):
        return compute_s / n + 2 * (n - 1) * (alpha + gradient_bytes / bandwidth)
    return min(range(1, int(max_workers) + 1), key=lambda n: (step(n), n))
'''

_OFF_BY_ONE = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # range() stops one short: max_workers itself is never tried
    def step(n):
        comm = 0.0 if n == 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * gradient_bytes / bandwidth
        return compute_s / n + comm
    return min(range(1, max(2, int(max_workers))), key=lambda n: (step(n), n))
'''

_WEAK_SCALING = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # weak scaling's step (compute not split): adding a worker never shortens it
    def step(n):
        comm = 0.0 if n == 1 else 2 * (n - 1) * alpha + 2 * (n - 1) / n * gradient_bytes / bandwidth
        return compute_s + comm
    return min(range(1, int(max_workers) + 1), key=lambda n: (step(n), n))
'''

_LAZY_WORKERS = '''
def best_worker_count(compute_s, gradient_bytes, alpha, bandwidth, max_workers):
    # the library's prediction, not the learner's
    model = dd.AlphaBeta(alpha, bandwidth)
    return min(range(1, int(max_workers) + 1),
               key=lambda n: (dd.predict_step_seconds(compute_s, gradient_bytes, model, n), n))
'''

# -- exercise 3: the bubble -------------------------------------------------------------------

_IDEAL_FORMULA = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    # the misconception: (p-1)/(m+p-1), whatever the stages and the messages
    p = len(forward_s)
    return (p - 1) / (m + p - 1)
'''

_NO_MESSAGES = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    # the schedule of unequal stages, but messages for free
    f, b = list(forward_s), list(backward_s)
    p = len(f)
    span = sum(f) + (m - 1) * max(f) + sum(b) + (m - 1) * max(b)
    return 1 - m * (sum(f) + sum(b)) / (p * span)
'''

_MESSAGE_IN_EVERY_OP = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    # every operation made longer by a message: the sender waits for each send to finish
    f = [x + message_s for x in forward_s]
    b = [x + message_s for x in backward_s]
    p = len(f)
    span = sum(f) + (m - 1) * max(f) + sum(b) + (m - 1) * max(b)
    return 1 - m * (sum(forward_s) + sum(backward_s)) / (p * span)
'''

_OFF_BY_ONE_SLOTS = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    # (p-1)/(m+p): one slot too many
    p = len(forward_s)
    return (p - 1) / (m + p)
'''

_MEAN_STAGE = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    # equal stages assumed: the mean stage time, messages per phase added once per stage
    p = len(forward_s)
    f, b = sum(forward_s) / p, sum(backward_s) / p
    span = (m + p - 1) * (f + b) + 2 * (p - 1) * message_s
    return 1 - m * p * (f + b) / (p * span)
'''

_LAZY_BUBBLE = '''
def predict_bubble(forward_s, backward_s, m, message_s):
    return dd.gpipe_schedule_bubble(forward_s, backward_s, m, message_s)
'''

WRONG_ANSWERS = {
    "lab08-accumulate": [_SUM_OF_MEANS, _OVER_M, _ZERO_INSIDE, _SKIPS_LAST, _WHOLE_BATCH, _DELEGATES],
    "lab08-workers": [_ALWAYS_MORE, _FLAT_COMMUNICATION, _ALL_TO_ALL, _OFF_BY_ONE, _WEAK_SCALING,
                      _LAZY_WORKERS],
    "lab08-bubble": [_IDEAL_FORMULA, _NO_MESSAGES, _MESSAGE_IN_EVERY_OP, _OFF_BY_ONE_SLOTS,
                     _MEAN_STAGE, _LAZY_BUBBLE],
}
