"""The deep-compression file, as Han, Mao and Dally (2016) describe it.

Per weight matrix (positions counted row after row):

- **relative indices** of the non-zeros at ``index_bits`` bits, with filler entries for
  longer gaps (:func:`relative_indices`; the filler here is the index symbol 0 and carries no
  weight, where the paper stores a zero weight);
- a **codebook** (float32) and, per non-zero, its **code** (``ceil(log2(codebook size))``
  bits), when the matrix holds at most 65,536 distinct non-zero values (weight sharing made
  it so); a matrix that was not shared keeps float32 values at its positions;
- with ``huffman=True`` both streams are **Huffman-coded** (:mod:`._huffman`), each with its
  table of code lengths (one byte a symbol); without, they are packed at their fixed widths.

Other tensors (biases) are stored as ``bias_dtype``. No general-purpose compressor runs over
the file: every byte is accounted for by one of these parts. Loading gives back the tensors,
exactly when the biases are float32.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from mlscale_lab.complexity.compression._huffman import (
    huffman_decode,
    huffman_encode,
    huffman_lengths,
)
from mlscale_lab.complexity.compression._indices import positions_from_indices, relative_indices
from mlscale_lab.validation import check_choice, check_int

_MAGIC = b"MLDC2"
_MAX_CODEBOOK = 2**16
BIAS_DTYPES = ("float32", "float16")


def _pack_fixed(symbols: np.ndarray, bits: int) -> bytes:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.int64)
    planes = (symbols.astype(np.int64)[:, None] >> shifts) & 1
    return np.packbits(planes.astype(np.uint8).ravel()).tobytes()


def _unpack_fixed(raw: bytes, bits: int, n: int) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[: n * bits]
    return flat.reshape(n, bits).astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


def _stream(symbols: np.ndarray, alphabet: int, bits: int, huffman: bool) -> tuple[dict, list[bytes]]:
    if huffman:
        lengths = huffman_lengths(np.bincount(symbols, minlength=alphabet))
        data, nbits = huffman_encode(symbols, lengths)
        return {"nbits": nbits}, [lengths.astype(np.uint8).tobytes(), data]
    return {"nbits": int(symbols.size * bits)}, [_pack_fixed(symbols, bits)]


def _read_stream(parts: list[bytes], meta: dict, alphabet: int, bits: int, count: int,
                 huffman: bool) -> np.ndarray:
    if huffman:
        lengths = np.frombuffer(parts[0], dtype=np.uint8).astype(np.int64)
        return huffman_decode(parts[1], meta["nbits"], lengths, count)
    return _unpack_fixed(parts[0], bits, count)


def _state_dict(func: str, model) -> dict:
    from torch import nn

    if isinstance(model, nn.Module):
        sd = model.state_dict()
    elif isinstance(model, dict):
        sd = model
    else:
        raise TypeError(f"{func}(model={type(model).__name__}): expected a torch nn.Module or a "
                        f"state dict, got {type(model).__name__}")
    masked = [k for k in sd if k.endswith(("_orig", "_mask"))]
    if masked:
        raise ValueError(f"{func}(model=...): expected plain weights, got pruning masks "
                         f"({masked[0]!r}); call pruning.make_permanent(model) first")
    return sd


# The header is a compact JSON list per tensor (every byte of the file counts):
#   sparse: [name, shape, "s", lengths, index_bits, entries, nonzero, index_nbits,
#            codebook size (0: float32 values), code_bits, code_nbits]
#   other:  [name, shape, dtype, lengths]


def _matrix_entry(a: np.ndarray, index_bits: int, huffman: bool) -> tuple[list, list[bytes]]:
    flat = a.ravel()
    entries = relative_indices(flat, index_bits)
    values = flat[flat != 0]
    meta, parts = _stream(entries, 2**index_bits, index_bits, huffman)
    entry = ["s", None, index_bits, int(entries.size), int(values.size), meta["nbits"]]
    book, codes = np.unique(values, return_inverse=True)
    if 0 < book.size <= _MAX_CODEBOOK:
        bits = max(1, math.ceil(math.log2(book.size)))
        meta, code_parts = _stream(codes.astype(np.int64), book.size, bits, huffman)
        entry += [int(book.size), bits, meta["nbits"]]
        parts += [book.astype(np.float32).tobytes()] + code_parts
    else:
        entry += [0, 32, 32 * int(values.size)]
        parts.append(values.astype(np.float32).tobytes())
    return entry, parts


def save_deep_compressed(model, path: str | os.PathLike, *, index_bits: int = 4,
                         huffman: bool = True, bias_dtype: str = "float32") -> int:
    """Write ``model``'s tensors in the deep-compression format; return the bytes on disk.

    Parameters
    ----------
    model : torch.nn.Module or dict
        A model (or its state dict) with plain weights: pruned (made permanent) and, for the
        codes, shared with :func:`share_weights`.
    path : path-like
        Where to write; read back with :func:`load_deep_compressed`.
    index_bits : int, default 4
        Bits per relative index (gaps up to ``2**index_bits - 1`` in one entry).
    huffman : bool, default True
        Huffman-code the index and code streams (else fixed-width).
    bias_dtype : {"float32", "float16"}
        How the 1-D tensors are stored.

    Returns
    -------
    int
        The file's size in bytes.

    Examples
    --------
    >>> import tempfile, torch
    >>> w = torch.zeros(100, 100)
    >>> w[::10] = 0.5; w[5, :50] = -0.25        # 90 % zeros, two shared values
    >>> tmp = tempfile.TemporaryDirectory()  # removed with the object
    >>> path = tmp.name + "/m.dc"
    >>> save_deep_compressed({"w": w, "b": torch.ones(100)}, path) < 100 * 100 * 4 / 20
    True
    >>> torch.equal(load_deep_compressed(path)["w"], w)
    True
    """
    import torch

    func = "save_deep_compressed"
    index_bits = check_int(func, "index_bits", index_bits, low=1, high=16)
    bias_dtype = check_choice(func, "bias_dtype", bias_dtype, BIAS_DTYPES)
    header, chunks = [], []
    for name, tensor in _state_dict(func, model).items():
        if not isinstance(tensor, torch.Tensor):
            continue
        a = tensor.detach().cpu().to(torch.float32).numpy()
        if a.ndim == 2:
            entry, parts = _matrix_entry(a, index_bits, huffman)
        else:
            entry, parts = [bias_dtype, None], [a.ravel().astype(bias_dtype).tobytes()]
        entry[1] = [len(p) for p in parts]
        header.append([name, list(a.shape)] + entry)
        chunks.extend(parts)
    head = json.dumps([int(huffman), header], separators=(",", ":")).encode()
    Path(path).write_bytes(_MAGIC + struct.pack("<I", len(head)) + head + b"".join(chunks))
    return os.path.getsize(path)


def load_deep_compressed(path: str | os.PathLike) -> dict:
    """Read a :func:`save_deep_compressed` file back into float32 tensors (a state dict)."""
    import torch

    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC):
        raise ValueError(f"load_deep_compressed(path={os.fspath(path)!r}): expected a file written "
                         "by save_deep_compressed, got one without its header")
    pos = len(_MAGIC)
    (n_head,) = struct.unpack("<I", raw[pos:pos + 4])
    head = json.loads(raw[pos + 4:pos + 4 + n_head])
    pos += 4 + n_head
    huffman, out = bool(head[0]), {}
    for name, shape, kind, lengths, *extra in head[1]:
        parts = []
        for n in lengths:
            parts.append(raw[pos:pos + n])
            pos += n
        shape = tuple(shape)
        size = int(np.prod(shape)) if shape else 1
        if kind == "s":
            b, n_entries, nonzero, index_nbits, book_size, code_bits, code_nbits = extra
            split = 2 if huffman else 1
            entries = _read_stream(parts[:split], {"nbits": index_nbits}, 2**b, b, n_entries, huffman)
            where = positions_from_indices(entries, b, size)
            flat = np.zeros(size, np.float32)
            if book_size:
                book = np.frombuffer(parts[split], np.float32)
                codes = _read_stream(parts[split + 1:], {"nbits": code_nbits}, book_size, code_bits,
                                     nonzero, huffman)
                flat[where] = book[codes]
            else:
                flat[where] = np.frombuffer(parts[split], np.float32)
        else:
            flat = np.frombuffer(parts[0], kind).astype(np.float32)
        out[name] = torch.from_numpy(flat.reshape(shape).copy())
    return out
