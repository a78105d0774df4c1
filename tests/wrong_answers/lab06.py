"""Plausible wrong answers to lab 06's exercises; only the reference may pass their tests."""

# --------------------------------------------------------------------------- exercise 1: position_bits

_POS_NO_FILLERS = '''
def position_bits(mask, bits):
    # misconception: one index per non-zero, whatever the gap
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask)
    return int(np.count_nonzero(m) * bits)
'''

_POS_GAP_OF_2_TO_THE_BITS = '''
def position_bits(mask, bits):
    # off by one: an entry taken to hold gaps up to 2**bits (as if 0 were not the filler)
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask).ravel() != 0
    gaps = np.diff(np.concatenate([[-1], np.flatnonzero(m)]))
    fillers = (gaps - 1) // (2 ** bits)
    return int((gaps.size + fillers.sum()) * bits)
'''

_POS_FIRST_GAP = '''
def position_bits(mask, bits):
    # off by one: the first gap counted from position 0, not from before the start
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask).ravel() != 0
    pos = np.flatnonzero(m)
    gaps = np.diff(np.concatenate([[0], pos]))
    gaps[0] = max(gaps[0], 1)
    fillers = (gaps - 1) // (2 ** bits - 1)
    return int((gaps.size + fillers.sum()) * bits)
'''

_POS_DELEGATES = '''
def position_bits(mask, bits):
    # the lazy answer: the package's encoder
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask)
    return int(C.relative_indices(m, bits).size * bits)
'''

_POS_BITMASK = '''
def position_bits(mask, bits):
    # misconception: a mask of one bit per position is what the positions cost
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask)
    return int(m.size)
'''

# --------------------------------------------------------------------------- exercise 2: huffman

_HUFF_ENTROPY = '''
def huffman_average_bits(counts):
    # misconception: Huffman coding reaches the entropy exactly
    c = np.asarray(counts, dtype=float)
    p = c[c > 0] / c.sum()
    return float(max(1.0, -(p * np.log2(p)).sum()))
'''

_HUFF_FIXED = '''
def huffman_average_bits(counts):
    # the lazy code: a fixed width for the symbols that occur
    import math
    k = int(np.count_nonzero(counts))
    return float(max(1, math.ceil(math.log2(k))))
'''

_HUFF_DEPTH_PLUS_ONE = '''
def huffman_average_bits(counts):
    # off by one: the root counted as a level (every code one bit too long)
    import heapq, itertools
    counts = [int(c) for c in np.asarray(counts).ravel()]
    used = [(c, i) for i, c in enumerate(counts) if c > 0]
    if len(used) == 1:
        return 1.0
    depth = [1] * len(counts)
    tie = itertools.count()
    heap = [(c, next(tie), [i]) for c, i in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        ca, _, a = heapq.heappop(heap)
        cb, _, b = heapq.heappop(heap)
        for i in a + b:
            depth[i] += 1
        heapq.heappush(heap, (ca + cb, next(tie), a + b))
    return sum(c * d for c, d in zip(counts, depth)) / sum(counts)
'''

_HUFF_MERGES_LARGEST = '''
def huffman_average_bits(counts):
    # merges the two MOST frequent nodes: a prefix code, not the optimal one
    import heapq, itertools
    counts = [int(c) for c in np.asarray(counts).ravel()]
    used = [(c, i) for i, c in enumerate(counts) if c > 0]
    if len(used) == 1:
        return 1.0
    depth = [0] * len(counts)
    tie = itertools.count()
    heap = [(-c, next(tie), [i]) for c, i in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        ca, _, a = heapq.heappop(heap)
        cb, _, b = heapq.heappop(heap)
        for i in a + b:
            depth[i] += 1
        heapq.heappush(heap, (ca + cb, next(tie), a + b))
    return sum(c * d for c, d in zip(counts, depth)) / sum(counts)
'''

_HUFF_DELEGATES = '''
def huffman_average_bits(counts):
    # the lazy answer: the package's Huffman helper
    c = np.asarray(counts)
    return C.huffman_bits(c) / c.sum()
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

WRONG_ANSWERS = {
    "lab06-position-bits": [_POS_NO_FILLERS, _POS_GAP_OF_2_TO_THE_BITS, _POS_FIRST_GAP, _POS_DELEGATES,
                            _POS_BITMASK],
    "lab06-huffman-bits": [_HUFF_ENTROPY, _HUFF_FIXED, _HUFF_DEPTH_PLUS_ONE, _HUFF_MERGES_LARGEST,
                           _HUFF_DELEGATES],
    "lab06-bits-budget": [_BITS_NO_CODEBOOK, _BITS_FLOOR, _BITS_UNIFORM, _BITS_GREEDY],
}
