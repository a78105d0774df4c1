"""Where the non-zeros are: relative indices with filler entries, and what a mask really costs.

A pruned matrix stores, besides its surviving values, their positions. Han, Mao and Dally (2016,
section 2) store each non-zero's *distance* from the previous one (positions counted row
after row), in a few bits: at 10 % density the gaps are about 10, so 4 bits hold most of them.
A gap longer than the largest the bits hold is bridged by *filler* entries. Here the symbol 0
is the filler (it advances ``2**bits - 1`` positions and carries no weight; the paper stores
a zero weight instead), and the symbols ``1 .. 2**bits - 1`` are the gaps themselves, so a
matrix costs ``(non-zeros + fillers) * bits`` bits of positions before Huffman coding.

A one-bit-per-position mask costs ``1 / density`` bits per non-zero (20 at 5 % density); zlib
shrinks it but, measured on lab 06's masks, not to the relative indices' few bits:
:func:`mask_cost` puts the four side by side.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import numpy as np

from mlscale_lab.complexity.compression._huffman import huffman_bits
from mlscale_lab.validation import check_int

MAX_INDEX_BITS = 16


def _positions(func: str, mask) -> tuple[np.ndarray, int]:
    m = np.asarray(mask.detach() if hasattr(mask, "detach") else mask)
    if m.ndim == 0:
        raise ValueError(f"{func}(mask=...): expected an array of positions (a weight matrix or "
                         "its mask), got a scalar")
    return np.flatnonzero(m.ravel() != 0), int(m.size)


def relative_indices(mask, bits: int) -> np.ndarray:
    """The index stream of ``mask``'s non-zeros (row-major): gaps, with 0 as the filler.

    Parameters
    ----------
    mask : array-like
        A weight matrix or its mask (non-zero = kept).
    bits : int in [1, 16]
        Bits per index entry: gaps up to ``2**bits - 1`` fit in one entry.

    Returns
    -------
    numpy.ndarray of int64
        One entry per non-zero plus one per filler; ``entries != 0`` marks the non-zeros.

    Examples
    --------
    >>> relative_indices([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1], bits=2)  # gaps 1, 3, 7
    array([1, 3, 0, 0, 1])
    """
    bits = check_int("relative_indices", "bits", bits, low=1, high=MAX_INDEX_BITS)
    pos, _ = _positions("relative_indices", mask)
    gaps = np.diff(np.concatenate([[-1], pos]))
    top = 2**bits - 1
    fillers = (gaps - 1) // top  # full strides of `top` before the last, shorter one
    last = gaps - fillers * top
    out = np.zeros(int(fillers.sum()) + gaps.size, dtype=np.int64)
    ends = np.cumsum(fillers + 1) - 1  # where each non-zero's own entry lands
    out[ends] = last
    return out


def positions_from_indices(entries, bits: int, size: int) -> np.ndarray:
    """Invert :func:`relative_indices`: the flat positions of the non-zeros.

    Examples
    --------
    >>> positions_from_indices([1, 3, 0, 0, 1], bits=2, size=11).tolist()
    [0, 3, 10]
    """
    e = np.asarray(entries, dtype=np.int64)
    step = np.where(e == 0, 2**bits - 1, e)
    pos = np.cumsum(step) - 1
    out = pos[e != 0]
    if out.size and out[-1] >= size:
        raise ValueError(f"positions_from_indices: the entries run past the matrix's {size} positions")
    return out


@dataclass(frozen=True)
class MaskCost:
    """Bits per non-zero weight spent on *where* the non-zeros are, four ways, measured.

    Attributes
    ----------
    nonzero, positions : int
        Non-zeros and positions of the matrices counted.
    bitmask, bitmask_zlib : float
        One bit per position; the same mask packed and zlib-compressed (level 9).
    relative, relative_huffman : float
        Relative indices at ``index_bits`` (fillers included); Huffman-coded.
    index_bits : int
    """

    nonzero: int
    positions: int
    bitmask: float
    bitmask_zlib: float
    relative: float
    relative_huffman: float
    index_bits: int

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def mask_cost(masks, index_bits: int = 4) -> MaskCost:
    """Measure what storing the positions of ``masks``' non-zeros costs, per non-zero.

    Parameters
    ----------
    masks : array-like or list of them
        Weight matrices (or masks); each is encoded on its own and the bits are added.
    index_bits : int
        For the relative indices.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = rng.random((300, 100)) < 0.05            # 5 % dense
    >>> c = mask_cost(m, index_bits=5)
    >>> round(c.bitmask), bool(c.relative_huffman < c.bitmask_zlib < c.bitmask)
    (20, True)
    """
    index_bits = check_int("mask_cost", "index_bits", index_bits, low=1, high=MAX_INDEX_BITS)
    items = masks if isinstance(masks, (list, tuple)) else [masks]
    nnz = size = 0
    zbits = rbits = hbits = 0
    for m in items:
        pos, n = _positions("mask_cost", m)
        flags = np.zeros(n, dtype=bool)
        flags[pos] = True
        nnz, size = nnz + pos.size, size + n
        zbits += 8 * len(zlib.compress(np.packbits(flags).tobytes(), 9))
        entries = relative_indices(flags, index_bits)
        rbits += entries.size * index_bits
        hbits += huffman_bits(np.bincount(entries, minlength=2**index_bits))
    if nnz == 0:
        raise ValueError("mask_cost(masks=...): expected at least one non-zero to locate")
    return MaskCost(nnz, size, size / nnz, zbits / nnz, rbits / nnz, hbits / nnz, index_bits)
