"""Timing compressed models fairly: interleaved rounds on one machine state, with intervals.

Two models timed one after the other compare each with a different moment of a shared
machine. :func:`time_predictors` builds the arms for the evidence core's
:func:`~mlscale_lab.evidence.interleave` (A B A B, warm-up dropped), so every ratio comes
with a paired interval; :func:`measure_recipe` turns one model's timings into a
:class:`Recipe` row.
"""

from __future__ import annotations

import numpy as np

from mlscale_lab.complexity.compression._profiles import Recipe
from mlscale_lab.validation import check_int


def _rows(X, b: int):
    return X[:b] if len(X) >= b else X[np.arange(b) % len(X)]


def time_predictors(predictors: dict, X, *, batch: int = 1, rounds: int = 20, number: int = 20,
                    inputs: dict | None = None):
    """Time each ``predict`` of ``predictors`` on ``batch`` rows, interleaved; return Timings.

    Parameters
    ----------
    predictors : dict
        ``{name: predict}``; each takes a batch of rows.
    X : array-like
        The rows (a torch tensor or NumPy array), unless ``inputs`` gives a predictor its own.
    batch : int
        Rows per call.
    rounds, number : int
        Interleaved rounds (samples per predictor) and calls per round (their mean is one sample).
    inputs : dict, optional
        ``{name: rows}`` for predictors that need other rows (NumPy for ONNX Runtime, say).

    Returns
    -------
    mlscale_lab.evidence.Timings
        ``.median(name)`` seconds per call, ``.ratio(slow, fast)`` a paired interval.

    Examples
    --------
    >>> X = np.ones((8, 300))
    >>> t = time_predictors({"sum": lambda b: b.sum(1), "copy": lambda b: b.copy()}, X, rounds=5, number=5)
    >>> sorted(t.samples), t.rounds
    (['copy', 'sum'], 5)
    """
    from mlscale_lab.evidence import interleave

    func = "time_predictors"
    batch = check_int(func, "batch", batch, low=1)
    if not isinstance(predictors, dict) or not predictors:
        raise TypeError(f"{func}(predictors={predictors!r}): expected a non-empty dict "
                        f"{{name: predict}}, got {type(predictors).__name__}")
    inputs = inputs or {}
    arms = {}
    for name, predict in predictors.items():
        rows = _rows(inputs.get(name, X), batch)
        arms[name] = (lambda p=predict, r=rows: p(r))
    return interleave(arms, rounds=rounds, warmup=2, number=number)


def measure_recipe(name: str, predict, X, y, *, file_bytes: int, memory_bytes: int,
                   rounds: int = 10, number: int = 20) -> Recipe:
    """Measure ``predict`` (rows -> logits or labels) as a :class:`Recipe`.

    Accuracy on ``(X, y)``; median seconds per call at batch 1 and at batch 256 from
    :func:`time_predictors` (throughput: 256 rows over the batch-256 median).

    Examples
    --------
    >>> X, y = np.eye(3, dtype=np.float32), np.arange(3)
    >>> r = measure_recipe("identity", lambda b: b, X, y, file_bytes=36, memory_bytes=36, rounds=3, number=2)
    >>> r.accuracy, r.throughput > 0
    (100.0, True)
    """
    rounds = check_int("measure_recipe", "rounds", rounds, low=2)
    out = np.asarray(predict(X))
    labels = out.argmax(axis=1) if out.ndim == 2 else out
    accuracy = float((labels == np.asarray(y)).mean() * 100.0)
    one = time_predictors({name: predict}, X, batch=1, rounds=rounds, number=number).median(name)
    many = time_predictors({name: predict}, X, batch=256, rounds=rounds,
                           number=max(1, number // 10)).median(name)
    return Recipe(name, int(file_bytes), int(memory_bytes), 1e3 * one, 256 / many, accuracy)
