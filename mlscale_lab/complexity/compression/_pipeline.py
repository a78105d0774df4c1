"""Deep compression end to end, and measuring a recipe: bytes, latency, accuracy.

The pipeline of Han, Mao and Dally (2016) on lab 03's pruning helpers: prune iteratively
with fine-tuning, make the zeros permanent, share the surviving weights with k-means, and
store the result in the deep-compression file. Each stage reports its bytes on disk and its
test accuracy, so the table shows where the bytes go.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mlscale_lab.complexity.compression._profiles import Recipe
from mlscale_lab.complexity.compression._sharing import share_weights
from mlscale_lab.complexity.compression._storage import save_deep_compressed
from mlscale_lab.validation import check_fraction, check_int, check_number


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: its file's bytes on disk and its test accuracy (percent)."""

    name: str
    file_bytes: int
    accuracy: float

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


def deep_compression(model, data, folder: str | os.PathLike, *, sparsity: float = 0.97,
                     bits: int = 4, steps: int = 3, epochs_per_step: int = 2,
                     final_epochs: int = 6, lr: float = 1e-3, seed: int = 0):
    """Prune, share and store ``model``; return the stages and the pruned model.

    Parameters
    ----------
    model : torch.nn.Sequential
        A trained model of ``nn.Linear`` layers (left untouched: a copy is compressed).
    data : pruning.DigitsSplit
        Training rows for fine-tuning, test rows for the accuracies.
    folder : path-like
        Where the stage files are written (``dense.pt``, ``pruned.pt``, ``pruned.sparse``,
        ``shared.dc``).
    sparsity : float in [0, 1)
        Fraction of Linear weights pruned (global magnitude, ``steps`` prune-and-fine-tune steps).
    bits : int
        k-means bits per surviving weight.
    steps, epochs_per_step, final_epochs, lr, seed
        Passed to ``pruning.iterative_prune``.

    Returns
    -------
    (list of Stage, torch.nn.Module)
        Stages ``dense fp32``, ``pruned (torch.save)``, ``pruned, sparse file``,
        ``pruned + k-means, deep-compression file``; and the pruned model before sharing
        (plain weights), so other bit widths can be tried on it:
        ``share_weights(pruned, bits, seed=seed)`` gives the last stage's model again.
    """
    import torch

    from mlscale_lab.complexity import pruning as P

    func = "deep_compression"
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{func}(model={type(model).__name__}): expected a torch nn.Module, "
                        f"got {type(model).__name__}")
    check_fraction(func, "sparsity", sparsity, high_open=True)
    check_int(func, "bits", bits, low=1, high=16)
    check_int(func, "steps", steps, low=1)  # the rest checked here too, so errors name this function
    check_int(func, "epochs_per_step", epochs_per_step, low=0)
    check_int(func, "final_epochs", final_epochs, low=0)
    check_number(func, "lr", lr, low=0, low_open=True)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    test = (data.X_test, data.y_test)
    stages = [Stage("dense fp32", P.saved_bytes(model, folder / "dense.pt"), P.accuracy(model, *test))]
    pruned = copy.deepcopy(model)
    P.iterative_prune(pruned, data, sparsity=sparsity, steps=steps, epochs_per_step=epochs_per_step,
                      final_epochs=final_epochs, lr=lr, seed=seed)
    P.make_permanent(pruned)
    acc = P.accuracy(pruned, *test)
    stages.append(Stage("pruned (torch.save)", P.saved_bytes(pruned, folder / "pruned.pt"), acc))
    stages.append(Stage("pruned, sparse file", P.save_sparse(pruned, folder / "pruned.sparse"), acc))
    shared = share_weights(pruned, bits, seed=seed)
    stages.append(Stage(f"pruned + {bits}-bit k-means, deep-compression file",
                        save_deep_compressed(shared, folder / "shared.dc"), P.accuracy(shared, *test)))
    return stages, pruned


def measure_recipe(name: str, predict, X, y, *, file_bytes: int, memory_bytes: int,
                   repeats: int = 40) -> Recipe:
    """Measure ``predict`` (rows -> logits or labels) as a :class:`Recipe`.

    Accuracy on ``(X, y)``; median latency at batch 1 and throughput at batch 256 with
    :func:`mlscale_lab.constraints.measure_latency` (``repeats`` timed calls each, after warm-up).

    Examples
    --------
    >>> X, y = np.eye(3, dtype=np.float32), np.arange(3)
    >>> r = measure_recipe("identity", lambda b: b, X, y, file_bytes=36, memory_bytes=36, repeats=3)
    >>> r.accuracy, r.throughput > 0
    (100.0, True)
    """
    from mlscale_lab.constraints import measure_latency

    repeats = check_int("measure_recipe", "repeats", repeats, low=1)
    out = np.asarray(predict(X))
    labels = out.argmax(axis=1) if out.ndim == 2 else out
    accuracy = float((labels == np.asarray(y)).mean() * 100.0)
    one, many = measure_latency(predict, X, (1, 256), warmup=5, repeats=repeats)
    return Recipe(name, int(file_bytes), int(memory_bytes), one.p50_ms,
                  256 / (many.p50_ms / 1000.0), accuracy)


def compare_latency(predictors: dict, X, batch_sizes=(1, 256), *, rounds: int = 3,
                    repeats: int = 40, inputs: dict | None = None) -> dict:
    """Median latency of several predictors, measured in interleaved rounds, best round kept.

    On a shared machine a burst of load can slow one measurement and not the next; measuring
    the predictors in turn, ``rounds`` times, and keeping each one's fastest median gives every
    predictor the same chance of a quiet moment (noise only ever adds time).

    Parameters
    ----------
    predictors : dict
        ``{name: predict}``; each ``predict`` takes a batch of rows.
    X : array-like
        Rows (see :func:`mlscale_lab.constraints.measure_latency`), unless ``inputs`` gives a
        predictor its own (a NumPy copy for ONNX Runtime, say).
    batch_sizes : sequence of int
    rounds, repeats : int
        Interleaved rounds; timed calls per batch size in each round.
    inputs : dict, optional
        ``{name: rows}`` for predictors that need other rows than ``X``.

    Returns
    -------
    dict
        ``{name: {batch size: best median ms}}``.

    Examples
    --------
    >>> X = np.ones((8, 3))
    >>> out = compare_latency({"sum": lambda b: b.sum(1), "max": lambda b: b.max(1)}, X, (1, 4),
    ...                       rounds=2, repeats=3)
    >>> sorted(out), sorted(out["sum"])
    (['max', 'sum'], [1, 4])
    """
    from mlscale_lab.constraints import measure_latency

    func = "compare_latency"
    rounds = check_int(func, "rounds", rounds, low=1)
    repeats = check_int(func, "repeats", repeats, low=1)
    if not isinstance(predictors, dict) or not predictors:
        raise TypeError(f"{func}(predictors={predictors!r}): expected a non-empty dict "
                        f"{{name: predict}}, got {type(predictors).__name__}")
    inputs = inputs or {}
    best: dict = {name: {} for name in predictors}
    for _ in range(rounds):
        for name, predict in predictors.items():
            for r in measure_latency(predict, inputs.get(name, X), batch_sizes, warmup=3,
                                     repeats=repeats):
                old = best[name].get(r.batch_size)
                best[name][r.batch_size] = r.p50_ms if old is None else min(old, r.p50_ms)
    return best

