"""Deep compression end to end, every choice made on validation rows and reported once on test.

The pipeline of Han, Mao and Dally (2016) on lab 03's pruning helpers: prune iteratively with
fine-tuning (global magnitude), keep the sparsest model whose *validation* accuracy stays
within ``tolerance`` points of the dense model's, share its weights with k-means and fine-tune
the centroids, keep the fewest bits that still pass on validation, and store the result with
relative indices and Huffman coding. Each stage is written to a file and its *test* accuracy
is measured on the model loaded back from that file, so the table shows where the bytes go
and what each stage costs, and the test rows never chose anything.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlscale_lab.complexity.compression._centroids import finetune_centroids
from mlscale_lab.complexity.compression._sharing import share_weights
from mlscale_lab.complexity.compression._storage import load_deep_compressed, save_deep_compressed
from mlscale_lab.validation import check_int, check_number


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline: its file's bytes on disk and its test accuracy (percent)."""

    name: str
    file_bytes: int
    accuracy: float

    def as_dict(self) -> dict:
        """The fields as a plain dict (for JSON and tables)."""
        return asdict(self)


@dataclass(frozen=True)
class DeepCompression:
    """What :func:`deep_compression` chose, on validation rows, and what it measured.

    Attributes
    ----------
    stages : list of Stage
        dense, pruned (relative indices), + k-means codes (fixed width), + Huffman coding;
        test accuracies of the models loaded from each file.
    sparsity, bits : float, int
        The choices.
    dense_val : float
        The dense model's validation accuracy (the reference of ``tolerance``).
    prune_curve : list of (float, float)
        (sparsity, validation accuracy) after each prune-and-fine-tune step.
    bits_curve : dict of int to float
        Validation accuracy of the chosen sparsity's model at each bit width tried (after
        centroid fine-tuning).
    pruned, model : torch.nn.Module
        The pruned model (plain weights) and the final one, as loaded from the file.
    """

    stages: list[Stage]
    sparsity: float
    bits: int
    dense_val: float
    prune_curve: list[tuple[float, float]]
    bits_curve: dict[int, float]
    pruned: object = field(repr=False)
    model: object = field(repr=False)

    @property
    def ratio(self) -> float:
        """Dense file bytes over the final file's bytes."""
        return self.stages[0].file_bytes / self.stages[-1].file_bytes

    @property
    def drop_points(self) -> float:
        """Test accuracy lost from the dense model to the final file (points)."""
        return self.stages[0].accuracy - self.stages[-1].accuracy


def _accuracy(model, X, y) -> float:
    from mlscale_lab.complexity import pruning as P

    return P.accuracy(model, X, y)


def deep_compression(model, data, folder: str | os.PathLike, *,
                     sparsities=(0.5, 0.75, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96), bits=(2, 3, 4, 5),
                     tolerance: float = 0.5, epochs_per_step: int = 2, centroid_epochs: int = 2,
                     lr: float = 2e-3, index_bits: int = 4, bias_dtype: str = "float16",
                     seed: int = 0) -> DeepCompression:
    """Prune, share and store ``model``, choosing sparsity and bits on validation rows.

    Parameters
    ----------
    model : torch.nn.Sequential
        A trained model of ``nn.Linear`` layers (left untouched: a copy is compressed).
    data : TaskSplit or DigitsSplit with ``X_val``
        Training rows for fine-tuning, validation rows for the choices, test rows to report.
    folder : path-like
        Where the stage files are written.
    sparsities : increasing sequence of float in [0, 1)
        The schedule: global magnitude pruning to each in turn, fine-tuned after each step.
    bits : sequence of int
        k-means bit widths tried on the chosen sparsity's model.
    tolerance : float
        Validation points a choice may lose against the dense model.
    epochs_per_step, centroid_epochs, lr, index_bits, bias_dtype, seed
        Fine-tuning epochs after each pruning step and for the centroids; Adam's rate; bits
        per relative index and the biases' format in the file (the accuracies are measured
        on the model loaded back, so float16 biases are paid for); seed of the mini-batches.

    Returns
    -------
    DeepCompression
    """
    import torch

    from mlscale_lab.complexity import pruning as P

    func = "deep_compression"
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{func}(model={type(model).__name__}): expected a torch nn.Module, "
                        f"got {type(model).__name__}")
    if getattr(data, "X_val", None) is None or getattr(data, "y_val", None) is None:
        raise TypeError(f"{func}(data=...): expected a split with validation rows (X_val, y_val) "
                        "to choose on, e.g. mlscale_lab.complexity.task.make_task(seed)")
    sparsities = [P.check_amount(func, s, "sparsities[...]") for s in sparsities]
    if not sparsities or sorted(sparsities) != sparsities:
        raise ValueError(f"{func}(sparsities={sparsities!r}): expected an increasing schedule")
    bits = sorted(check_int(func, "bits[...]", b, low=1, high=16) for b in bits)
    tolerance = check_number(func, "tolerance", tolerance, low=0)
    check_int(func, "epochs_per_step", epochs_per_step, low=0)
    check_int(func, "centroid_epochs", centroid_epochs, low=0)
    check_number(func, "lr", lr, low=0, low_open=True)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    val, test = (data.X_val, data.y_val), (data.X_test, data.y_test)
    dense_val = _accuracy(model, *val)
    floor = dense_val - tolerance

    work, done, curve, snapshots = copy.deepcopy(model), 0.0, [], []
    for k, target in enumerate(sparsities):
        P.prune_global(work, 1.0 - (1.0 - target) / (1.0 - done))
        done = target
        P.train(work, data.X_train, data.y_train, epochs=epochs_per_step, lr=lr,
                seed=seed * 1000 + k, anneal=True)
        curve.append((P.weight_sparsity(work), _accuracy(work, *val)))
        snapshots.append(P.effective_state_dict(work))
    passing = [i for i, (_, acc) in enumerate(curve) if acc >= floor]
    pick = passing[-1] if passing else 0
    pruned = copy.deepcopy(model)
    pruned.load_state_dict(snapshots[pick])

    tried, bits_curve = {}, {}
    for b in bits:
        shared = finetune_centroids(share_weights(pruned, b, seed=seed), data.X_train, data.y_train,
                                    epochs=centroid_epochs, lr=lr / 2, seed=seed)
        tried[b], bits_curve[b] = shared, _accuracy(shared, *val)
    ok = [b for b in bits if bits_curve[b] >= floor]
    chosen_bits = ok[0] if ok else bits[-1]
    shared = tried[chosen_bits]

    def from_file(path):
        m = copy.deepcopy(model)
        m.load_state_dict(load_deep_compressed(path))
        return m.eval()

    files = {"pruned": folder / "pruned.dc", "codes": folder / "codes.dc", "huffman": folder / "huffman.dc"}
    opts = dict(index_bits=index_bits, bias_dtype=bias_dtype)
    sizes = {"pruned": save_deep_compressed(pruned, files["pruned"], huffman=False, **opts),
             "codes": save_deep_compressed(shared, files["codes"], huffman=False, **opts),
             "huffman": save_deep_compressed(shared, files["huffman"], huffman=True, **opts)}
    final = from_file(files["huffman"])
    s = curve[pick][0]
    stages = [
        Stage("dense fp32 (torch.save)", P.saved_bytes(model, folder / "dense.pt"), _accuracy(model, *test)),
        Stage(f"pruned {s:.0%}: {index_bits}-bit relative indices, fp32 values, {bias_dtype} biases", sizes["pruned"],
              _accuracy(from_file(files["pruned"]), *test)),
        Stage(f"+ {chosen_bits}-bit k-means codes, centroids fine-tuned", sizes["codes"],
              _accuracy(from_file(files["codes"]), *test)),
        Stage("+ Huffman coding of indices and codes", sizes["huffman"], _accuracy(final, *test)),
    ]
    return DeepCompression(stages, float(s), chosen_bits, dense_val, curve, bits_curve, pruned, final)
