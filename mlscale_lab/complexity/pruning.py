"""Pruning that really shrinks models: helpers behind lab 03, built on ``torch.nn.utils.prune``.

The masks come from torch's own pruning module (``global_unstructured``, ``l1_unstructured``,
``random_unstructured``, ``ln_structured``, ``prune.remove``); this module adds what a learner
needs around them: a per-layer sparsity report, an iterative prune-and-fine-tune schedule, a
sparse file format whose bytes on disk really shrink, physically smaller ``nn.Linear`` layers
after structured pruning, a sparse-against-dense matmul timing, and cost-complexity pruning of
a decision tree.

Importing this module imports torch; ``import mlscale_lab`` does not import it.

>>> model = make_mlp((8, 16, 4), seed=0)
>>> prune_global(model, 0.75)
>>> round(weight_sparsity(model), 2)
0.75
"""

from __future__ import annotations

import copy
import io
import json
import math
import numbers
import os
import struct
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.utils.prune as prune
from torch import nn

LENET_DIGITS_SIZES = (64, 300, 100, 10)
"""LeNet-300-100 adapted to the 8x8 digits: 64 inputs, 300 and 100 hidden units, 10 classes."""

_METHODS = ("global", "layerwise", "random")
# Modules that act element-wise (or not at all, in eval mode) between two Linear layers: a
# removed neuron's constant output passes through them unchanged in shape, so it can be folded
# into the next layer's bias exactly.
_ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
    nn.Softplus, nn.Identity, nn.Dropout,
)
_SPARSE_MAGIC = b"MLSP1"


# --------------------------------------------------------------------------- checks


def _check_amount(amount, name: str = "amount") -> float:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not math.isfinite(amount):
        raise TypeError(f"{name} must be a number in [0, 1), the fraction of weights to prune; got {amount!r}")
    if not 0.0 <= float(amount) < 1.0:
        raise ValueError(
            f"{name} must be in [0, 1), the fraction of weights to prune; got {amount!r}. "
            f"For 90% sparsity pass {name}=0.9 (1.0 would remove every weight)."
        )
    return float(amount)


def _check_positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise TypeError(f"model must hold at least one nn.Linear layer to prune; got a {type(model).__name__} without one")
    return layers


# --------------------------------------------------------------------------- data and model


@dataclass(frozen=True)
class DigitsSplit:
    """The digits set split and standardised with the training statistics (float32 tensors)."""

    X_train: torch.Tensor
    X_test: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor


def load_digits_split(seed: int = 0, test_size: float = 0.25) -> DigitsSplit:
    """scikit-learn's bundled 8x8 digits, split (stratified, seeded) and standardised.

    The scale adds 1 to each pixel's standard deviation so that near-constant border pixels
    are not blown up into noise.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)
    mu, sd = X_tr.mean(axis=0), X_tr.std(axis=0) + 1.0

    def as_tensor(a):
        return torch.tensor((a - mu) / sd, dtype=torch.float32)

    return DigitsSplit(as_tensor(X_tr), as_tensor(X_te), torch.tensor(y_tr), torch.tensor(y_te))


def make_mlp(sizes: Sequence[int] = LENET_DIGITS_SIZES, seed: int = 0) -> nn.Sequential:
    """A ReLU multilayer perceptron ``Linear, ReLU, ..., Linear`` with seeded initial weights."""
    sizes = [_check_positive_int(s, "sizes[...]") for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output size, got {sizes!r}")
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float = 3e-3,
          batch_size: int = 128, seed: int = 0, anneal: bool = False) -> nn.Module:
    """Train with Adam on cross-entropy, seeded mini-batches; a pruned model keeps its masks.

    With ``anneal`` the learning rate follows a cosine from ``lr`` down to zero over the run,
    which settles a freshly pruned network better than a constant rate.

    Masked weights stay zero while training: ``prune`` multiplies the mask in on every forward
    pass, so their gradient is zero. Returns the model, in eval mode.
    """
    _check_positive_int(epochs, "epochs", minimum=0)
    _check_positive_int(batch_size, "batch_size")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(X) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs * steps_per_epoch)) if anneal else None
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
    model.eval()
    _refresh_masked(model)
    return model


@torch.no_grad()
def _refresh_masked(model: nn.Module) -> None:
    # A masked module's `weight` is recomputed (orig * mask) by a forward pre-hook; after the
    # last optimiser step it is stale and still tied to the autograd graph, which breaks
    # copy.deepcopy. Recompute it now, outside autograd, as the hook would.
    for module in model.modules():
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, prune.BasePruningMethod):
                setattr(module, hook._tensor_name, hook.apply_mask(module))


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy in percent."""
    model.eval()
    return float((model(X).argmax(dim=1) == y).float().mean()) * 100.0


# --------------------------------------------------------------------------- pruning wrappers


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The ``(module, "weight")`` pairs of every ``nn.Linear`` layer, as ``prune`` expects them."""
    return [(m, "weight") for _, m in _linear_layers(model)]


def prune_global(model: nn.Module, amount: float) -> None:
    """Global magnitude pruning: remove the ``amount`` fraction of the *still unpruned* Linear
    weights with the smallest absolute value, ranked across all layers together
    (``prune.global_unstructured`` with ``L1Unstructured``)."""
    amount = _check_amount(amount)
    prune.global_unstructured(prunable_weights(model), pruning_method=prune.L1Unstructured, amount=amount)


def prune_layerwise(model: nn.Module, amount: float) -> None:
    """Layer-wise magnitude pruning: remove ``amount`` of each layer's unpruned weights
    (``prune.l1_unstructured`` per layer), so every layer ends at the same sparsity."""
    amount = _check_amount(amount)
    for module, name in prunable_weights(model):
        prune.l1_unstructured(module, name, amount=amount)


def prune_random(model: nn.Module, amount: float, seed: int = 0) -> None:
    """The baseline a sound pruning study reports: remove ``amount`` of the unpruned weights
    chosen at random (``RandomUnstructured`` over all layers), seeded."""
    amount = _check_amount(amount)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prune.global_unstructured(prunable_weights(model), pruning_method=prune.RandomUnstructured, amount=amount)


def prune_structured(model: nn.Module, amount: float, *, n: int | float = 1) -> None:
    """Structured pruning of whole neurons: in every Linear layer but the last (whose rows are
    the model's outputs), remove the ``amount`` fraction of weight rows with the smallest L-``n``
    norm (``prune.ln_structured`` with ``dim=0``)."""
    amount = _check_amount(amount)
    layers = prunable_weights(model)
    for module, name in layers[:-1]:
        prune.ln_structured(module, name, amount=amount, n=n, dim=0)


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned parameter: zeros stay, masks and ``*_orig`` copies go."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors the model computes with: masks applied, ``*_orig``/``*_mask`` folded back
    into plain names, so a pruned model and its ``make_permanent`` twin give the same dict."""
    sd = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.endswith("_mask"):
            continue
        if key.endswith("_orig"):
            base = key[: -len("_orig")]
            out[base] = (value * sd[base + "_mask"]).detach().clone()
        else:
            out[key] = value.detach().clone()
    # Pruning re-registers `weight` as `weight_orig` after `bias`; restore the usual order.
    prefixes = list(dict.fromkeys(k.rpartition(".")[0] for k in out))
    return dict(sorted(out.items(), key=lambda kv: (prefixes.index(kv[0].rpartition(".")[0]),
                                                    kv[0].rpartition(".")[2] != "weight")))


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class LayerSparsity:
    """One parameter tensor's sparsity."""

    name: str
    shape: tuple[int, ...]
    parameters: int
    nonzero: int

    @property
    def sparsity(self) -> float:
        return 1.0 - self.nonzero / self.parameters if self.parameters else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "sparsity": self.sparsity}


def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Per-tensor parameters, non-zeros and sparsity of the effective (masked) parameters."""
    return [
        LayerSparsity(name, tuple(t.shape), t.numel(), int(torch.count_nonzero(t)))
        for name, t in effective_state_dict(model).items()
    ]


def format_sparsity_report(report: list[LayerSparsity]) -> str:
    """A plain-text table of :func:`sparsity_report`, with a total row."""
    rows = [f"{'tensor':<12}{'shape':>12}{'params':>9}{'nonzero':>9}{'sparsity':>10}"]
    for r in report:
        rows.append(f"{r.name:<12}{'x'.join(map(str, r.shape)):>12}{r.parameters:>9}{r.nonzero:>9}{r.sparsity:>10.1%}")
    total, nz = sum(r.parameters for r in report), sum(r.nonzero for r in report)
    rows.append(f"{'total':<12}{'':>12}{total:>9}{nz:>9}{1 - nz / total:>10.1%}")
    return "\n".join(rows)


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of the Linear layers' weights that are zero (biases not counted)."""
    ws = [_effective(m, "weight") for m, _ in prunable_weights(model)]
    total = sum(w.numel() for w in ws)
    return 1.0 - sum(int(torch.count_nonzero(w)) for w in ws) / total


def compression_ratio(model: nn.Module) -> float:
    """All parameters (weights and biases) of the dense model over the non-zero ones."""
    report = sparsity_report(model)
    nonzero = sum(r.nonzero for r in report)
    return sum(r.parameters for r in report) / max(nonzero, 1)


# --------------------------------------------------------------------------- iterative schedule


@dataclass(frozen=True)
class ScheduleStep:
    """The model after one prune-then-fine-tune step."""

    step: int
    sparsity: float  # of the Linear weights
    accuracy_pruned: float  # right after pruning, before fine-tuning
    accuracy: float  # after fine-tuning

    def as_dict(self) -> dict:
        return asdict(self)


def step_amounts(sparsity: float, steps: int) -> list[float]:
    """Per-step ``amount`` (of the weights still unpruned) so that ``steps`` steps reach
    ``sparsity``: each step keeps the same fraction ``(1 - sparsity) ** (1 / steps)``.

    >>> [round(a, 3) for a in step_amounts(0.75, 2)]
    [0.5, 0.5]
    """
    sparsity = _check_amount(sparsity, "sparsity")
    steps = _check_positive_int(steps, "steps")
    return [1.0 - (1.0 - sparsity) ** (1.0 / steps)] * steps


def iterative_prune(model: nn.Module, data: DigitsSplit, *, sparsity: float, steps: int = 5,
                    method: str = "global", epochs_per_step: int = 3, final_epochs: int = 12,
                    lr: float = 3e-3, batch_size: int = 128, seed: int = 0,
                    progress: Callable[[ScheduleStep], None] | None = None) -> list[ScheduleStep]:
    """Prune, fine-tune, repeat: ``steps`` steps up to ``sparsity`` of the Linear weights.

    Parameters
    ----------
    model : nn.Module
        A trained model; pruned in place (masks stay on; :func:`make_permanent` removes them).
    data : DigitsSplit
        Training data for fine-tuning, test data for the reported accuracy.
    sparsity : float in [0, 1)
        Final fraction of zero weights.
    method : {"global", "layerwise", "random"}
        :func:`prune_global`, :func:`prune_layerwise` or :func:`prune_random`.
    epochs_per_step, final_epochs : int
        Fine-tuning epochs after each step; the last step gets ``final_epochs`` more.

    Returns
    -------
    list of ScheduleStep
        Sparsity and test accuracy after every step: the sparsity-accuracy curve.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    amounts = step_amounts(sparsity, steps)
    _check_positive_int(epochs_per_step, "epochs_per_step", minimum=0)
    _check_positive_int(final_epochs, "final_epochs", minimum=0)
    history = []
    for k, amount in enumerate(amounts):
        if method == "global":
            prune_global(model, amount)
        elif method == "layerwise":
            prune_layerwise(model, amount)
        else:
            prune_random(model, amount, seed=seed * 1000 + k)
        before = accuracy(model, data.X_test, data.y_test)
        epochs = epochs_per_step + (final_epochs if k == steps - 1 else 0)
        train(model, data.X_train, data.y_train, epochs=epochs, lr=lr, batch_size=batch_size,
              seed=seed * 1000 + 100 + k)
        step = ScheduleStep(k + 1, weight_sparsity(model), before, accuracy(model, data.X_test, data.y_test))
        history.append(step)
        if progress is not None:
            progress(step)
    return history


# --------------------------------------------------------------------------- bytes on disk


def saved_bytes(model: nn.Module, path: str | os.PathLike) -> int:
    """``torch.save(model.state_dict(), path)`` and return the file's size on disk in bytes."""
    torch.save(model.state_dict(), path)
    return os.path.getsize(path)


def _index_dtype(n: int) -> np.dtype:
    # The smallest unsigned integer type that holds the n values 0 .. n-1.
    return np.dtype(np.uint8) if n <= 256 else np.dtype(np.uint16) if n <= 65536 else np.dtype(np.uint32)


def save_sparse(model: nn.Module, path: str | os.PathLike, *, value_dtype: str = "float32",
                compress: bool = True) -> int:
    """Write the model's effective parameters in a compact sparse format; return bytes on disk.

    Each 2-D tensor is stored in CSR form (compressed sparse rows): per row the count of
    non-zeros and the column index of each non-zero, in the smallest unsigned integer that holds
    them (``uint8`` up to 255 or 256 columns, else ``uint16``), and the non-zero values in
    ``value_dtype`` (``"float32"`` loses nothing, ``"float16"`` halves the values). Other
    tensors are stored dense. The whole payload is zlib-compressed when ``compress``.
    Read it back with :func:`load_sparse`.
    """
    if value_dtype not in ("float32", "float16"):
        raise ValueError(f"value_dtype must be 'float32' or 'float16', got {value_dtype!r}")
    header, chunks = [], []
    for name, t in effective_state_dict(model).items():
        a = t.detach().cpu().numpy()
        entry = {"name": name, "shape": list(a.shape)}
        if a.ndim == 2:
            rows, cols = a.shape
            r, c = np.nonzero(a)
            counts = np.bincount(r, minlength=rows).astype(_index_dtype(cols + 1))  # 0..cols
            parts = [counts, c.astype(_index_dtype(cols)), a[r, c].astype(value_dtype)]
            entry.update(kind="csr", dtypes=[str(p.dtype) for p in parts], lengths=[p.size for p in parts])
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
    """Read a :func:`save_sparse` file back into dense float32 tensors (a state dict for the
    model after :func:`make_permanent`)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(_SPARSE_MAGIC):
        raise ValueError(f"{os.fspath(path)!r} is not a file written by save_sparse")
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
            dense[np.repeat(np.arange(len(counts)), counts.astype(np.int64)), cols.astype(np.int64)] = values
        else:
            dense = parts[0].astype(np.float32).reshape(entry["shape"])
        out[entry["name"]] = torch.from_numpy(dense.copy())
    return out


def torch_save_bytes(obj) -> int:
    """Bytes ``torch.save`` writes for ``obj`` (in memory; no file)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getbuffer().nbytes


# --------------------------------------------------------------------------- structured shrink


@torch.no_grad()
def shrink_linear_stack(model: nn.Module) -> nn.Sequential:
    """A new, physically smaller ``nn.Sequential`` without the neurons whose weight rows are all
    zero (e.g. after :func:`prune_structured`).

    A removed neuron's output does not vanish: it is the constant ``act(bias)``. That constant
    times the next layer's column for the neuron is folded into the next layer's bias, so the
    shrunk model computes the same outputs as the masked one (up to float rounding). The last
    Linear layer keeps all its rows: they are the model's outputs.

    Parameters
    ----------
    model : nn.Sequential
        Linear layers with element-wise activations (ReLU, Tanh, GELU, Dropout, ...) between
        them, masked or made permanent.

    Raises
    ------
    TypeError
        For a model that is not an ``nn.Sequential``, or that holds a layer this function
        cannot shrink (the message names the layer and its type).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"shrink_linear_stack needs an nn.Sequential of Linear layers and activations, got a {type(model).__name__}")
    for name, module in model.named_children():
        if not isinstance(module, (nn.Linear, *_ELEMENTWISE)):
            raise TypeError(
                f"shrink_linear_stack cannot shrink layer {name!r} of type {type(module).__name__}: it handles "
                "nn.Linear layers with element-wise activations between them "
                f"({', '.join(c.__name__ for c in _ELEMENTWISE)})"
            )
    children = list(model.children())
    linear_at = [i for i, m in enumerate(children) if isinstance(m, nn.Linear)]
    if not linear_at:
        raise TypeError("shrink_linear_stack: the model holds no nn.Linear layer")
    weights = {i: _effective(children[i], "weight") for i in linear_at}
    biases = {i: _effective(children[i], "bias") for i in linear_at}
    for a, b in zip(linear_at[:-1], linear_at[1:], strict=True):
        keep = weights[a].abs().sum(dim=1) != 0
        if biases[a] is not None and not bool(keep.all()):
            # The constant output of each removed neuron, through the activations in between.
            const = biases[a].unsqueeze(0)
            for between in children[a + 1:b]:
                if not isinstance(between, nn.Dropout | nn.Identity):
                    const = between(const)
            gone = ~keep
            if biases[b] is None:
                biases[b] = torch.zeros(weights[b].shape[0])
            biases[b] = biases[b] + weights[b][:, gone] @ const.squeeze(0)[gone]
        weights[a] = weights[a][keep]
        biases[a] = biases[a][keep] if biases[a] is not None else None
        weights[b] = weights[b][:, keep]
    new_children = []
    for i, m in enumerate(children):
        if isinstance(m, nn.Linear):
            lin = nn.Linear(weights[i].shape[1], weights[i].shape[0], bias=biases[i] is not None)
            lin.weight.copy_(weights[i])
            if biases[i] is not None:
                lin.bias.copy_(biases[i])
            new_children.append(lin)
        else:
            new_children.append(copy.deepcopy(m))  # activations keep their settings
    return nn.Sequential(*new_children).eval()


def _effective(module: nn.Module, name: str) -> torch.Tensor | None:
    # The tensor a forward pass would use now: after training, a masked module's `weight`
    # attribute is stale until the next forward, so recompute orig * mask.
    if hasattr(module, name + "_orig"):
        return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach().clone()
    t = getattr(module, name)
    return None if t is None else t.detach().clone()


# --------------------------------------------------------------------------- sparse vs dense matmul


@dataclass(frozen=True)
class MatmulTiming:
    """Median latency of ``W @ X`` with ``W`` dense and ``W`` in CSR, at one sparsity."""

    sparsity: float
    dense_ms: float
    sparse_ms: float

    @property
    def speedup(self) -> float:
        """Dense time over sparse time: above 1, the sparse product is faster."""
        return self.dense_ms / self.sparse_ms

    def as_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def sparse_matmul_timings(sparsities: Sequence[float], *, size: int = 1024, batch: int = 64,
                          repeats: int = 15, seed: int = 0) -> list[MatmulTiming]:
    """Time a ``size x size`` weight matrix times a ``size x batch`` input, dense
    (``torch.mm``) against compressed sparse rows (``torch.sparse_csr`` tensor), with random
    magnitude-free masks at each sparsity. Uses :func:`mlscale_lab.constraints._latency.measure_latency`
    (median of ``repeats`` calls after warm-up)."""
    from mlscale_lab.constraints._latency import measure_latency

    sparsities = [_check_amount(s, "sparsities[...]") for s in sparsities]
    _check_positive_int(size, "size")
    _check_positive_int(batch, "batch")
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(size, size, generator=gen)
    X = torch.randn(size, batch, generator=gen)
    rand = torch.rand(size, size, generator=gen)
    out = []
    for s in sparsities:
        Wd = W * (rand >= s)
        with warnings.catch_warnings():  # torch flags its CSR layout as beta on every conversion
            warnings.simplefilter("ignore", UserWarning)
            Ws = Wd.to_sparse_csr()
        # measure_latency slices rows X[:b]; pass a one-row stand-in so each call uses all of X.
        one = np.zeros((1, 1))
        dense = measure_latency(lambda _x, Wd=Wd: torch.mm(Wd, X), one, (1,), warmup=3, repeats=repeats)[0]
        sparse = measure_latency(lambda _x, Ws=Ws: Ws @ X, one, (1,), warmup=3, repeats=repeats)[0]
        out.append(MatmulTiming(s, dense.p50_ms, sparse.p50_ms))
    return out


def crossover_sparsity(timings: Sequence[MatmulTiming]) -> float | None:
    """The lowest measured sparsity from which on the sparse product is faster at every
    measured point (``None`` if it never is)."""
    ordered = sorted(timings, key=lambda t: t.sparsity)
    for i, t in enumerate(ordered):
        if all(u.sparse_ms < u.dense_ms for u in ordered[i:]):
            return t.sparsity
    return None


# --------------------------------------------------------------------------- decision trees


@dataclass(frozen=True)
class TreePruningPath:
    """Cost-complexity pruning of a decision tree: one fitted tree per ``ccp_alpha``."""

    alphas: list[float]
    nodes: list[int]
    train_accuracy: list[float]
    test_accuracy: list[float]
    cv_accuracy: list[float]
    chosen_alpha: float  # best mean cross-validated accuracy on the training set

    @property
    def chosen_index(self) -> int:
        return self.alphas.index(self.chosen_alpha)

    def as_dict(self) -> dict:
        return asdict(self)


def tree_pruning_path(seed: int = 0, *, max_points: int = 12, cv: int = 5) -> TreePruningPath:
    """Decision trees on the breast-cancer set along ``cost_complexity_pruning_path``.

    Fits one tree per ``ccp_alpha`` (at most ``max_points`` of the path's alphas, evenly spread
    over it), records node count and train/test accuracy (percent), and picks the alpha by
    ``cv``-fold cross-validation on the training set only: the test set never chooses.
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import cross_val_score, train_test_split
    from sklearn.tree import DecisionTreeClassifier

    _check_positive_int(max_points, "max_points", minimum=2)
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    path = DecisionTreeClassifier(random_state=seed).cost_complexity_pruning_path(X_tr, y_tr)
    alphas = np.unique(np.clip(path.ccp_alphas[:-1], 0.0, None))  # the last alpha leaves one node
    if len(alphas) > max_points:
        alphas = alphas[np.unique(np.linspace(0, len(alphas) - 1, max_points).round().astype(int))]
    nodes, tr, te, cvs = [], [], [], []
    for a in alphas:
        tree = DecisionTreeClassifier(random_state=seed, ccp_alpha=float(a)).fit(X_tr, y_tr)
        nodes.append(int(tree.tree_.node_count))
        tr.append(100.0 * tree.score(X_tr, y_tr))
        te.append(100.0 * tree.score(X_te, y_te))
        cvs.append(100.0 * float(cross_val_score(
            DecisionTreeClassifier(random_state=seed, ccp_alpha=float(a)), X_tr, y_tr, cv=cv).mean()))
    best = int(np.argmax(np.round(cvs, 9)))  # ties go to the smaller alpha (first)
    alphas = [float(a) for a in alphas]
    return TreePruningPath(alphas, nodes, tr, te, cvs, alphas[best])
