"""Plausible wrong answers to lab 06's exercises; only the reference may pass their tests."""

# --------------------------------------------------------------------------- exercise 1: kd_loss

_KD_NO_T_SQUARED = '''
def kd_loss(student_logits, teacher_logits, labels, T, alpha):
    # misconception: the soft term without its T**2 factor (it fades as T grows)
    p_t = torch.softmax(teacher_logits / T, dim=1)
    log_p_s = torch.log_softmax(student_logits / T, dim=1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(dim=1).mean()
    return alpha * kl + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)
'''

_KD_MEAN_OVER_CLASSES = '''
def kd_loss(student_logits, teacher_logits, labels, T, alpha):
    # slip: kl_div's default reduction averages over examples *and* classes
    soft = torch.nn.functional.kl_div(torch.log_softmax(student_logits / T, dim=1),
                                      torch.softmax(teacher_logits / T, dim=1), reduction="mean")
    return alpha * T * T * soft + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)
'''

_KD_REVERSED = '''
def kd_loss(student_logits, teacher_logits, labels, T, alpha):
    # the KL divergence the wrong way round: from the student to the teacher
    p_s = torch.softmax(student_logits / T, dim=1)
    kl = (p_s * (torch.log_softmax(student_logits / T, dim=1)
                 - torch.log_softmax(teacher_logits / T, dim=1))).sum(dim=1).mean()
    return alpha * T * T * kl + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)
'''

_KD_TEACHER_NOT_SOFTENED = '''
def kd_loss(student_logits, teacher_logits, labels, T, alpha):
    # the temperature applied to the student only
    p_t = torch.softmax(teacher_logits, dim=1)
    log_p_s = torch.log_softmax(student_logits / T, dim=1)
    kl = (p_t * (torch.log(p_t) - log_p_s)).sum(dim=1).mean()
    return alpha * T * T * kl + (1 - alpha) * torch.nn.functional.cross_entropy(student_logits, labels)
'''

_KD_DELEGATES = '''
def kd_loss(student_logits, teacher_logits, labels, T, alpha):
    # the lazy answer: the package's helper
    return C.distillation_loss(student_logits, teacher_logits, labels, temperature=T, alpha=alpha)
'''

# --------------------------------------------------------------------------- exercise 2: choose_bits

_BITS_NO_CODEBOOK = '''
def choose_bits(layer_sizes, layer_accuracy, baseline, budget_bytes):
    # misconception: only the codes cost bytes; the 2**bits centroids are forgotten
    import itertools, math
    layers = list(layer_sizes)
    best, best_key = None, None
    for combo in itertools.product(*(sorted(layer_accuracy[n]) for n in layers)):
        cost = sum(math.ceil(layer_sizes[n] * b / 8) for n, b in zip(layers, combo))
        if cost > budget_bytes:
            continue
        key = (round(sum(baseline - layer_accuracy[n][b] for n, b in zip(layers, combo)), 9), cost)
        if best_key is None or key < best_key:
            best, best_key = dict(zip(layers, combo)), key
    return best
'''

_BITS_FLOOR = '''
def choose_bits(layer_sizes, layer_accuracy, baseline, budget_bytes):
    # off by one: the codes' bits rounded down to whole bytes
    import itertools
    layers = list(layer_sizes)
    best, best_key = None, None
    for combo in itertools.product(*(sorted(layer_accuracy[n]) for n in layers)):
        cost = sum(layer_sizes[n] * b // 8 + 2 ** b * 4 for n, b in zip(layers, combo))
        if cost > budget_bytes:
            continue
        key = (round(sum(baseline - layer_accuracy[n][b] for n, b in zip(layers, combo)), 9), cost)
        if best_key is None or key < best_key:
            best, best_key = dict(zip(layers, combo)), key
    return best
'''

_BITS_UNIFORM = '''
def choose_bits(layer_sizes, layer_accuracy, baseline, budget_bytes):
    # the lazy plan: the same bits for every layer, as many as fit
    common = sorted(set.intersection(*(set(a) for a in layer_accuracy.values())), reverse=True)
    for b in common:
        if sum(C.shared_layer_bytes(n, b) for n in layer_sizes.values()) <= budget_bytes:
            return {name: b for name in layer_sizes}
    return None
'''

_BITS_GREEDY = '''
def choose_bits(layer_sizes, layer_accuracy, baseline, budget_bytes):
    # greedy: start from the most bits, take bits off the biggest layer until it fits
    choice = {n: max(layer_accuracy[n]) for n in layer_sizes}
    def cost():
        return sum(C.shared_layer_bytes(layer_sizes[n], b) for n, b in choice.items())
    while cost() > budget_bytes:
        movable = [n for n in choice if min(layer_accuracy[n]) < choice[n]]
        if not movable:
            return None
        n = max(movable, key=lambda k: layer_sizes[k])
        choice[n] = max(b for b in layer_accuracy[n] if b < choice[n])
    return choice
'''

# --------------------------------------------------------------------------- exercise 3: recipe_for

_RECIPE_FILE_FOR_MEMORY = '''
def recipe_for(recipes, profile):
    # misconception: the file's size stands for the memory it needs
    def fits(r):
        return ((profile.max_file_bytes is None or r.file_bytes <= profile.max_file_bytes)
                and (profile.max_memory_bytes is None or r.file_bytes <= profile.max_memory_bytes)
                and (profile.max_latency_ms is None or r.latency_ms <= profile.max_latency_ms)
                and (profile.min_throughput is None or r.throughput >= profile.min_throughput))
    fitting = [r for r in recipes if fits(r)]
    return max(fitting, key=lambda r: (r.accuracy, -r.file_bytes)) if fitting else None
'''

_RECIPE_STRICT = '''
def recipe_for(recipes, profile):
    # off by one: a value exactly at a limit is taken as breaking it
    def fits(r):
        return ((profile.max_file_bytes is None or r.file_bytes < profile.max_file_bytes)
                and (profile.max_memory_bytes is None or r.memory_bytes < profile.max_memory_bytes)
                and (profile.max_latency_ms is None or r.latency_ms < profile.max_latency_ms)
                and (profile.min_throughput is None or r.throughput > profile.min_throughput))
    fitting = [r for r in recipes if fits(r)]
    return max(fitting, key=lambda r: (r.accuracy, -r.file_bytes)) if fitting else None
'''

_RECIPE_SMALLEST = '''
def recipe_for(recipes, profile):
    # compresses as much as possible instead of losing as little accuracy as possible
    def fits(r):
        return ((profile.max_file_bytes is None or r.file_bytes <= profile.max_file_bytes)
                and (profile.max_memory_bytes is None or r.memory_bytes <= profile.max_memory_bytes)
                and (profile.max_latency_ms is None or r.latency_ms <= profile.max_latency_ms)
                and (profile.min_throughput is None or r.throughput >= profile.min_throughput))
    fitting = [r for r in recipes if fits(r)]
    return min(fitting, key=lambda r: r.file_bytes) if fitting else None
'''

_RECIPE_DELEGATES = '''
def recipe_for(recipes, profile):
    # the lazy answer: the package's helper
    return C.choose_recipe(recipes, profile)
'''

_RECIPE_NO_TIE_BREAK = '''
def recipe_for(recipes, profile):
    # ties on accuracy go to whichever comes first, not to the smaller file
    best = None
    for r in recipes:
        if ((profile.max_file_bytes is None or r.file_bytes <= profile.max_file_bytes)
                and (profile.max_memory_bytes is None or r.memory_bytes <= profile.max_memory_bytes)
                and (profile.max_latency_ms is None or r.latency_ms <= profile.max_latency_ms)
                and (profile.min_throughput is None or r.throughput >= profile.min_throughput)
                and (best is None or r.accuracy > best.accuracy)):
            best = r
    return best
'''

WRONG_ANSWERS = {
    "lab06-kd-loss": [_KD_NO_T_SQUARED, _KD_MEAN_OVER_CLASSES, _KD_REVERSED, _KD_TEACHER_NOT_SOFTENED,
                      _KD_DELEGATES],
    "lab06-bits-budget": [_BITS_NO_CODEBOOK, _BITS_FLOOR, _BITS_UNIFORM, _BITS_GREEDY],
    "lab06-recipe": [_RECIPE_FILE_FOR_MEMORY, _RECIPE_STRICT, _RECIPE_SMALLEST, _RECIPE_DELEGATES,
                     _RECIPE_NO_TIE_BREAK],
}
