"""Huffman coding: the last stage of deep compression, an optimal prefix code for each stream.

After pruning and k-means, a layer is two streams of small integers: the relative indices of
its non-zeros and their codebook codes. Neither is uniform (short gaps and the centroids near
the weights' mode are common), so a code that gives frequent symbols fewer bits saves bytes
without losing anything (Han, Mao and Dally 2016, section 4: 20-30 % on their networks).
Huffman's construction (merge the two least frequent subtrees until one is left) gives the
shortest average length any prefix code can have, between the entropy and the entropy plus one
bit. The code is *canonical* (codes assigned in order of length, then symbol), so a file only
needs each symbol's code length to rebuild it.
"""

from __future__ import annotations

import heapq
import itertools

import numpy as np

MAX_CODE_LENGTH = 31


def huffman_lengths(counts) -> np.ndarray:
    """Code length in bits of each symbol of an optimal prefix code for ``counts``.

    Symbols that never occur get length 0 (no code); a stream of one distinct symbol still
    needs one bit per symbol.

    Examples
    --------
    >>> huffman_lengths([5, 2, 1, 1]).tolist()
    [1, 2, 3, 3]
    >>> huffman_lengths([0, 7]).tolist()
    [0, 1]
    """
    c = np.asarray(counts, dtype=np.int64).ravel()
    if c.size == 0 or np.any(c < 0):
        raise ValueError("huffman_lengths(counts=...): expected non-negative symbol counts, got "
                         + ("none" if c.size == 0 else f"a minimum of {int(c.min())}"))
    lengths = np.zeros(c.size, dtype=np.int64)
    used = np.flatnonzero(c)
    if used.size == 1:
        lengths[used] = 1
        return lengths
    tie = itertools.count()  # equal weights merge in a fixed order: the code is deterministic
    heap = [(int(c[s]), next(tie), [int(s)]) for s in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        wa, _, a = heapq.heappop(heap)
        wb, _, b = heapq.heappop(heap)
        lengths[a + b] += 1  # every symbol under the merged node moves one level deeper
        heapq.heappush(heap, (wa + wb, next(tie), a + b))
    if lengths.max() > MAX_CODE_LENGTH:
        raise ValueError(f"huffman_lengths: a code longer than {MAX_CODE_LENGTH} bits was needed")
    return lengths


def canonical_codes(lengths) -> np.ndarray:
    """The canonical code of each symbol (as an integer read on its length's bits).

    Examples
    --------
    >>> [format(int(c), f"0{n}b") for c, n in zip(canonical_codes([1, 2, 3, 3]), [1, 2, 3, 3])]
    ['0', '10', '110', '111']
    """
    n = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(n.size, dtype=np.int64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(n), key=lambda s: (n[s], s)):
        code <<= int(n[s]) - prev
        codes[s], prev = code, int(n[s])
        code += 1
    return codes


def huffman_encode(symbols, lengths) -> tuple[bytes, int]:
    """Pack ``symbols`` with the canonical code of ``lengths``; return ``(bytes, bit count)``.

    Examples
    --------
    >>> data, nbits = huffman_encode([0, 0, 1, 3], [1, 2, 3, 3])
    >>> nbits, data.hex()   # 0 0 10 111 -> 0010111, padded to a byte
    (7, '2e')
    """
    s = np.asarray(symbols, dtype=np.int64).ravel()
    n = np.asarray(lengths, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() >= n.size or np.any(n[s] == 0)):
        raise ValueError("huffman_encode(symbols=...): a symbol has no code in `lengths`")
    codes, lens = canonical_codes(n)[s], n[s]
    width = int(lens.max()) if s.size else 0
    shifts = np.arange(width - 1, -1, -1)[None, :] - (width - lens)[:, None]
    bits = (codes[:, None] >> np.clip(shifts, 0, None)) & 1
    keep = shifts >= 0
    flat = bits[keep].astype(np.uint8)
    return np.packbits(flat).tobytes(), int(flat.size)


def huffman_decode(data: bytes, nbits: int, lengths, count: int) -> np.ndarray:
    """Read ``count`` symbols back from :func:`huffman_encode`'s bytes.

    Examples
    --------
    >>> data, nbits = huffman_encode([0, 0, 1, 3], [1, 2, 3, 3])
    >>> huffman_decode(data, nbits, [1, 2, 3, 3], 4).tolist()
    [0, 0, 1, 3]
    """
    n = np.asarray(lengths, dtype=np.int64)
    out = np.empty(count, dtype=np.int64)
    if count == 0:
        return out
    width = int(n.max())
    codes = canonical_codes(n)
    # a table on `width` bits: every bit pattern starting with a symbol's code points to it
    table_sym = np.zeros(2**width, dtype=np.int64)
    table_len = np.zeros(2**width, dtype=np.int64)
    for sym in np.flatnonzero(n):
        lo = int(codes[sym]) << (width - int(n[sym]))
        hi = lo + (1 << (width - int(n[sym])))
        table_sym[lo:hi], table_len[lo:hi] = sym, n[sym]
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:nbits]
    bits = np.concatenate([bits, np.zeros(width, dtype=np.uint8)]).astype(np.int64)
    # the window of `width` bits starting at every position, as an integer
    windows = np.zeros(nbits + 1, dtype=np.int64)
    for j in range(width):
        windows = (windows << 1) | bits[j:j + nbits + 1]
    pos = 0
    for i in range(count):
        w = windows[pos]
        out[i] = table_sym[w]
        pos += int(table_len[w])
    return out


def huffman_bits(counts) -> int:
    """Bits the Huffman-coded stream of ``counts`` takes (code lengths times counts).

    Examples
    --------
    >>> huffman_bits([5, 2, 1, 1])   # 5*1 + 2*2 + 1*3 + 1*3
    15
    """
    c = np.asarray(counts, dtype=np.int64).ravel()
    return int((huffman_lengths(c) * c).sum())
