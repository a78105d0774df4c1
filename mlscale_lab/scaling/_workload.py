"""The workload of lab 05's vertical-scaling section: batch inference over CSV rows.

Its two parts scale differently on more threads (parsing holds the GIL, the MLP's matrix
products use BLAS threads), and its memory follows the rows processed at once, so a batch
too big for a machine can run there in chunks. Memory is traced (``tracemalloc``) in passes of
its own, never while a pass is timed: tracing slows every allocation (a traced pass here takes
about 1.7x as long).
"""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass

import numpy as np

from mlscale_lab.validation import check_int

__all__ = ["BatchRun", "CsvMlpWorkload"]


@dataclass(frozen=True)
class BatchRun:
    """The memory of one pass of a workload over its rows, in one go or in chunks.

    Attributes
    ----------
    rows, chunk_rows : int
        Rows processed, and rows per chunk (``rows`` for one go).
    peak_bytes : int
        Peak memory Python and NumPy allocated during the pass (``tracemalloc``): the batch's
        working set, without the interpreter and the libraries already loaded.
    """

    rows: int
    chunk_rows: int
    peak_bytes: int


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

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The MLP on parsed rows ``x`` (the parallel part): class probabilities; sets
        :attr:`bytes_per_row`."""
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

    def predict(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Class probabilities of rows ``start:stop``: parse, then the MLP."""
        return self.forward(self.parse(start, stop))

    def __call__(self) -> np.ndarray:
        return self.predict()

    def labels(self, chunk_rows: int | None = None) -> np.ndarray:
        """Predicted classes of every row, in one go or in chunks of ``chunk_rows``.

        Each chunk's probabilities are reduced to its classes before the next chunk is read,
        as an out-of-core job writes its results out: only one chunk's arrays are alive at a
        time. This is the pass :meth:`run` traces and a timing times.
        """
        step = self.rows if chunk_rows is None else check_int("CsvMlpWorkload", "chunk_rows",
                                                               chunk_rows, low=1)
        out = np.empty(self.rows, dtype=np.int64)
        for start in range(0, self.rows, step):
            out[start:start + step] = self.predict(start, start + step).argmax(axis=1)
        return out

    def serial_share(self, *, rounds: int = 7, level: float = 0.95):
        """The share of one pass spent parsing (the serial part), at one thread: an Interval.

        Parsing and the MLP are timed separately in interleaved rounds (BLAS pinned to one
        thread, garbage collection off while timing); the share is the paired bootstrap
        interval of ``median(parse) / median(parse + MLP)``. It is what Amdahl's law calls
        ``s`` if the matrix products scaled perfectly, so ``1 / (s + (1 - s) / p)`` bounds the
        speedup on ``p`` threads from above; on one CPU it is still measurable.

        Examples
        --------
        >>> w = CsvMlpWorkload(rows=200, features=8, hidden=16, seed=0)
        >>> share = w.serial_share(rounds=3)
        >>> 0 < share.low <= share.estimate <= share.high < 1
        True
        """
        from mlscale_lab.evidence import interleave, ratio_interval
        from mlscale_lab.scaling._vertical import threads_limited

        rounds = check_int("CsvMlpWorkload.serial_share", "rounds", rounds, low=2)
        x = self.parse()
        with threads_limited(1):
            t = interleave({"parse": self.parse, "mlp": lambda: self.forward(x)}, rounds=rounds)
        parse, mlp = t.samples["parse"], t.samples["mlp"]
        iv = ratio_interval(parse, parse + mlp, level)
        method = "share of parse in parse + MLP, " + iv.method
        return type(iv)(iv.estimate, iv.low, iv.high, iv.level, method, iv.n)

    def run(self, chunk_rows: int | None = None) -> BatchRun:
        """The peak memory of one pass over every row, in one go or in chunks of ``chunk_rows``.

        The pass is :meth:`labels`, traced by ``tracemalloc`` (started for the pass if it is not
        running); only one chunk's arrays are alive at a time, so the peak follows the chunk,
        not the batch. Time passes apart from this one: tracing slows them.

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
        try:
            self.labels(step)
            peak = tracemalloc.get_traced_memory()[1] - base
        finally:
            if not tracing:
                tracemalloc.stop()
        return BatchRun(self.rows, min(step, self.rows), int(peak))
