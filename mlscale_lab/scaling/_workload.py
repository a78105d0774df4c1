"""The workload of lab 05's vertical-scaling section: batch inference over CSV rows.

Its two parts scale differently on more threads (parsing holds the GIL, the MLP's matrix
products use BLAS threads), and its memory follows the rows processed at once, so a batch
too big for a machine can run there in chunks.
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np

from mlscale_lab.validation import check_int

__all__ = ["BatchRun", "CsvMlpWorkload"]


@dataclass(frozen=True)
class BatchRun:
    """One pass of a workload over its rows, in one go or in chunks.

    Attributes
    ----------
    rows, chunk_rows : int
        Rows processed, and rows per chunk (``rows`` for one go).
    seconds : float
        Wall-clock time of the pass.
    peak_bytes : int
        Peak memory Python and NumPy allocated during the pass (``tracemalloc``): the batch's
        working set, without the interpreter and the libraries already loaded.
    """

    rows: int
    chunk_rows: int
    seconds: float
    peak_bytes: int

    @property
    def rows_per_second(self) -> float:
        """Throughput of the pass."""
        return self.rows / self.seconds


class CsvMlpWorkload:
    """Batch inference as a service does it: parse CSV rows in Python (serial: one thread
    holds the GIL), then a 3-layer MLP in NumPy (parallel: BLAS uses every thread allowed).

    Calling the object runs one batch over all its rows and returns the class probabilities.
    :attr:`bytes_per_row` is measured from the arrays the last call allocated (input,
    activations, output), so ``rows * bytes_per_row`` is the batch's working memory.

    Parameters
    ----------
    rows, features, hidden, classes : int
        Batch size and the MLP's shape.
    seed : int
        Seed of the data and the weights.

    Examples
    --------
    >>> w = CsvMlpWorkload(rows=200, features=8, hidden=16, seed=0)
    >>> w().shape
    (200, 10)
    >>> w.bytes_per_row > 0
    True
    """

    def __init__(self, rows: int = 8000, features: int = 64, hidden: int = 512, classes: int = 10,
                 seed: int = 0):
        func = "CsvMlpWorkload"
        rows = check_int(func, "rows", rows, low=1)
        features = check_int(func, "features", features, low=1)
        hidden = check_int(func, "hidden", hidden, low=1)
        classes = check_int(func, "classes", classes, low=2)
        rng = np.random.default_rng(seed)
        data = rng.normal(size=(rows, features))
        self.lines = [",".join(f"{v:.5f}" for v in row) for row in data]
        scale = 1 / np.sqrt([features, hidden, hidden])
        self.weights = [
            rng.normal(size=(features, hidden)) * scale[0],
            rng.normal(size=(hidden, hidden)) * scale[1],
            rng.normal(size=(hidden, classes)) * scale[2],
        ]
        self.rows = rows
        self.bytes_per_row = 0.0

    def parse(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the CSV text as a float array (the serial part)."""
        return np.array([line.split(",") for line in self.lines[start:stop]], dtype=float)

    def predict(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Class probabilities of rows ``start:stop``; sets :attr:`bytes_per_row`."""
        x = self.parse(start, stop)
        allocated = x.nbytes
        h = x
        for w in self.weights[:-1]:
            h = np.maximum(h @ w, 0.0)
            allocated += h.nbytes
        z = h @ self.weights[-1]
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        allocated += z.nbytes + p.nbytes
        self.bytes_per_row = allocated / len(x)
        return p

    def __call__(self) -> np.ndarray:
        return self.predict()

    def run(self, chunk_rows: int | None = None) -> BatchRun:
        """One timed pass over every row, in one go or in chunks of ``chunk_rows``.

        Each chunk's probabilities are reduced to its predicted classes before the next chunk
        is read, as an out-of-core job writes its results out: only one chunk's arrays are
        alive at a time, so the peak follows the chunk, not the batch.

        Parameters
        ----------
        chunk_rows : int, optional
            Rows per chunk (>= 1); None processes the whole batch at once.

        Returns
        -------
        BatchRun

        Examples
        --------
        >>> w = CsvMlpWorkload(rows=400, features=8, hidden=64, seed=0)
        >>> whole, chunked = w.run(), w.run(chunk_rows=50)
        >>> chunked.peak_bytes < whole.peak_bytes / 3
        True
        """
        step = self.rows if chunk_rows is None else check_int("CsvMlpWorkload.run", "chunk_rows",
                                                               chunk_rows, low=1)
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        labels = np.empty(self.rows, dtype=np.int64)
        try:
            for start in range(0, self.rows, step):
                labels[start:start + step] = self.predict(start, start + step).argmax(axis=1)
            seconds = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            if not tracing:
                tracemalloc.stop()
        return BatchRun(self.rows, min(step, self.rows), seconds, int(peak))
