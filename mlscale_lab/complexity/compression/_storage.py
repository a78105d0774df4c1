"""The deep-compression file: pruned and k-means-shared weights in the fewest bytes.

Per weight matrix the file stores which positions are non-zero (one bit each), the codebook
of distinct non-zero values (float32) and, per non-zero, its code packed at
``ceil(log2(codebook size))`` bits; other tensors (biases) are stored as float32. The whole
payload is then zlib-compressed, which squeezes the long runs of zero bits a sparse mask is
made of (the role Huffman coding plays in Han et al.'s pipeline). Loading gives back exactly
the same tensors.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

_MAGIC = b"MLDC1"
_MAX_CODEBOOK = 2**16


def _pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint32)
    bitplanes = (codes.astype(np.uint32)[:, None] >> shifts) & 1
    return np.packbits(bitplanes.astype(np.uint8).ravel())


def _unpack_codes(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    flat = np.unpackbits(packed)[: n * bits].reshape(n, bits).astype(np.uint32)
    return flat @ (1 << np.arange(bits - 1, -1, -1, dtype=np.uint32))


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


def save_deep_compressed(model, path: str | os.PathLike) -> int:
    """Write ``model``'s tensors in the deep-compression format; return the bytes on disk.

    Parameters
    ----------
    model : torch.nn.Module or dict
        A model (or its state dict) whose 2-D weights hold few distinct non-zero values: pruned
        (made permanent) and shared with :func:`share_weights`. A matrix with more than 65,536
        distinct non-zero values is stored densely as float32 (it was not shared).
    path : path-like
        Where to write; read back with :func:`load_deep_compressed`.

    Returns
    -------
    int
        The file's size in bytes.

    Examples
    --------
    >>> import tempfile, torch
    >>> w = torch.zeros(100, 100)
    >>> w[::10] = 0.5; w[5, :50] = -0.25        # 95% zeros, two shared values
    >>> path = tempfile.mkdtemp() + "/m.dc"
    >>> save_deep_compressed({"w": w, "b": torch.ones(100)}, path) < 100 * 100 * 4 / 50
    True
    >>> torch.equal(load_deep_compressed(path)["w"], w)
    True
    """
    import torch

    func = "save_deep_compressed"
    header, chunks = [], []
    for name, tensor in _state_dict(func, model).items():
        if not isinstance(tensor, torch.Tensor):
            continue
        a = tensor.detach().cpu().to(torch.float32).numpy()
        entry = {"name": name, "shape": list(a.shape)}
        flat = a.ravel()
        nonzero = flat != 0
        book, codes = np.unique(flat[nonzero], return_inverse=True)
        if a.ndim == 2 and 0 < book.size <= _MAX_CODEBOOK:
            bits = max(1, math.ceil(math.log2(book.size)))
            parts = [np.packbits(nonzero), book.astype(np.float32), _pack_codes(codes, bits)]
            entry.update(kind="shared", bits=bits, nonzero=int(nonzero.sum()), codebook=int(book.size))
        else:
            parts = [flat.astype(np.float32)]
            entry.update(kind="dense")
        entry["lengths"] = [p.nbytes for p in parts]
        header.append(entry)
        chunks.extend(p.tobytes() for p in parts)
    head = json.dumps(header, separators=(",", ":")).encode()
    payload = zlib.compress(struct.pack("<I", len(head)) + head + b"".join(chunks), 9)
    Path(path).write_bytes(_MAGIC + payload)
    return os.path.getsize(path)


def load_deep_compressed(path: str | os.PathLike) -> dict:
    """Read a :func:`save_deep_compressed` file back into float32 tensors (a state dict)."""
    import torch

    raw = Path(path).read_bytes()
    if not raw.startswith(_MAGIC):
        raise ValueError(f"load_deep_compressed(path={os.fspath(path)!r}): expected a file written "
                         "by save_deep_compressed, got one without its header")
    payload = zlib.decompress(raw[len(_MAGIC):])
    (n_head,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4:4 + n_head])
    pos, out = 4 + n_head, {}
    for entry in header:
        parts = []
        for n in entry["lengths"]:
            parts.append(payload[pos:pos + n])
            pos += n
        shape = tuple(entry["shape"])
        size = int(np.prod(shape)) if shape else 1
        if entry["kind"] == "shared":
            mask = np.unpackbits(np.frombuffer(parts[0], np.uint8))[:size].astype(bool)
            book = np.frombuffer(parts[1], np.float32)
            codes = _unpack_codes(np.frombuffer(parts[2], np.uint8), entry["bits"], entry["nonzero"])
            flat = np.zeros(size, np.float32)
            flat[mask] = book[codes]
        else:
            flat = np.frombuffer(parts[0], np.float32).copy()
        out[entry["name"]] = torch.from_numpy(flat.reshape(shape))
    return out
