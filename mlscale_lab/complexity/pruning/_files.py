"""Bytes on disk: ``torch.save`` files, and a compact sparse format whose size really shrinks."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlscale_lab.complexity.pruning._masks import effective_state_dict
from mlscale_lab.validation import check_choice

_SPARSE_MAGIC = b"MLSP1"


def saved_bytes(model: nn.Module, path: str | os.PathLike) -> int:
    """``torch.save(model.state_dict(), path)`` and return the file's size on disk in bytes.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     saved_bytes(nn.Linear(100, 10), Path(tmp) / "m.pt") > 1010 * 4
    True
    """
    torch.save(model.state_dict(), path)
    return os.path.getsize(path)


def torch_save_bytes(obj) -> int:
    """Bytes ``torch.save`` writes for ``obj`` (in memory; no file).

    Examples
    --------
    >>> torch_save_bytes(torch.zeros(1000)) > 4000
    True
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


def _index_dtype(n: int) -> np.dtype:
    # The smallest unsigned integer type that holds the n values 0 .. n-1.
    if n <= 256:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16) if n <= 65536 else np.dtype(np.uint32)


def save_sparse(model: nn.Module, path: str | os.PathLike, *, value_dtype: str = "float32",
                compress: bool = True) -> int:
    """Write the model's effective parameters in a compact sparse format; return bytes on disk.

    Each 2-D tensor is stored in CSR form (compressed sparse rows): per row the count of
    non-zeros and the column index of each non-zero, in the smallest unsigned integer that holds
    them (``uint8`` up to 256 columns, else ``uint16``), and the non-zero values in
    ``value_dtype`` (``"float32"`` loses nothing, ``"float16"`` halves the values). Other
    tensors are stored dense. The whole payload is zlib-compressed when ``compress``.
    Read it back with :func:`load_sparse`.

    Examples
    --------
    >>> import tempfile
    >>> lin = nn.Linear(100, 10)
    >>> with torch.no_grad():
    ...     _ = lin.weight[:, 5:].zero_()
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     sparse = save_sparse(lin, Path(tmp) / "m.sparse")
    ...     back = load_sparse(Path(tmp) / "m.sparse")
    ...     dense = saved_bytes(lin, Path(tmp) / "m.pt")
    >>> sparse < dense / 5
    True
    >>> torch.equal(back["weight"], lin.weight.detach())
    True
    """
    check_choice("save_sparse", "value_dtype", value_dtype, ("float32", "float16"))
    header, chunks = [], []
    for name, t in effective_state_dict(model).items():
        a = t.detach().cpu().numpy()
        entry = {"name": name, "shape": list(a.shape)}
        if a.ndim == 2:
            rows, cols = a.shape
            r, c = np.nonzero(a)
            counts = np.bincount(r, minlength=rows).astype(_index_dtype(cols + 1))  # 0..cols
            parts = [counts, c.astype(_index_dtype(cols)), a[r, c].astype(value_dtype)]
            entry.update(kind="csr", dtypes=[str(p.dtype) for p in parts],
                         lengths=[p.size for p in parts])
        else:
            parts = [a.astype(value_dtype).ravel()]
            entry.update(kind="dense", dtypes=[str(parts[0].dtype)], lengths=[parts[0].size])
        header.append(entry)
        chunks.extend(p.tobytes() for p in parts)
    head = json.dumps(header, separators=(",", ":")).encode()
    payload = struct.pack("<I", len(head)) + head + b"".join(chunks)
    if compress:
        payload = zlib.compress(payload, 9)
    with open(path, "wb") as fh:
        fh.write(_SPARSE_MAGIC + bytes([int(compress)]) + payload)
    return os.path.getsize(path)


def load_sparse(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a :func:`save_sparse` file back into dense float32 tensors.

    Returns
    -------
    dict of str to torch.Tensor
        A state dict for the model after :func:`make_permanent` (see :func:`save_sparse`).
    """
    raw = Path(path).read_bytes()
    if not raw.startswith(_SPARSE_MAGIC):
        raise ValueError(f"load_sparse(path={os.fspath(path)!r}): expected a file written by "
                         "save_sparse, got a file without its header")
    payload = raw[len(_SPARSE_MAGIC) + 1:]
    if raw[len(_SPARSE_MAGIC)]:
        payload = zlib.decompress(payload)
    (n_head,) = struct.unpack("<I", payload[:4])
    header = json.loads(payload[4:4 + n_head])
    buf, pos, out = memoryview(payload), 4 + n_head, {}
    for entry in header:
        parts = []
        for dt, n in zip(entry["dtypes"], entry["lengths"], strict=True):
            size = np.dtype(dt).itemsize * n
            parts.append(np.frombuffer(buf[pos:pos + size], dtype=dt))
            pos += size
        if entry["kind"] == "csr":
            counts, cols, values = parts
            dense = np.zeros(entry["shape"], dtype=np.float32)
            rows = np.repeat(np.arange(len(counts)), counts.astype(np.int64))
            dense[rows, cols.astype(np.int64)] = values
        else:
            dense = parts[0].astype(np.float32).reshape(entry["shape"])
        out[entry["name"]] = torch.from_numpy(dense.copy())
    return out
