"""The data and the model lab 03 prunes: digits, a seeded ReLU MLP, training, accuracy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.utils.prune as prune
from torch import nn

from mlscale_lab.validation import check_fraction, check_int, check_positive

LENET_DIGITS_SIZES = (64, 300, 100, 10)
"""LeNet-300-100 adapted to the 8x8 digits: 64 inputs, 300 and 100 hidden units, 10 classes."""


@dataclass(frozen=True)
class DigitsSplit:
    """The digits set split and standardised with the training statistics (float32 tensors).

    Attributes
    ----------
    X_train, X_test : torch.Tensor
        Standardised pixels, float32.
    y_train, y_test : torch.Tensor
        Class labels 0-9, int64.

    Examples
    --------
    >>> d = load_digits_split(0)
    >>> tuple(d.X_train.shape), d.X_train.dtype
    ((1347, 64), torch.float32)
    """

    X_train: torch.Tensor
    X_test: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor
    X_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None


def load_digits_split(seed: int = 0, test_size: float = 0.25, val_size: float = 0.0) -> DigitsSplit:
    """scikit-learn's bundled 8x8 digits, split (stratified, seeded) and standardised.

    The scale adds 1 to each pixel's standard deviation so that near-constant border pixels
    are not blown up into noise.

    Parameters
    ----------
    seed : int
        Seed of the split.
    test_size : float in (0, 1)
        Fraction of the rows held out for testing.
    val_size : float in [0, 1)
        Fraction of the remaining rows held out for validation (none by default): choices
        are made on them, never on the test rows.

    Returns
    -------
    DigitsSplit

    Examples
    --------
    >>> d = load_digits_split(seed=1)
    >>> len(d.X_train) + len(d.X_test)
    1797
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    test_size = check_fraction("load_digits_split", "test_size", test_size,
                               low_open=True, high_open=True)
    val_size = check_fraction("load_digits_split", "val_size", val_size, high_open=True)
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, random_state=seed,
                                              stratify=y)
    X_va = y_va = None
    if val_size > 0:
        X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=val_size,
                                                  random_state=seed, stratify=y_tr)
    mu, sd = X_tr.mean(axis=0), X_tr.std(axis=0) + 1.0

    def as_tensor(a):
        return None if a is None else torch.tensor((a - mu) / sd, dtype=torch.float32)

    return DigitsSplit(as_tensor(X_tr), as_tensor(X_te), torch.tensor(y_tr), torch.tensor(y_te),
                       as_tensor(X_va), None if y_va is None else torch.tensor(y_va))


def make_mlp(sizes: Sequence[int] = LENET_DIGITS_SIZES, seed: int = 0) -> nn.Sequential:
    """A ReLU multilayer perceptron ``Linear, ReLU, ..., Linear`` with seeded initial weights.

    Parameters
    ----------
    sizes : sequence of int
        Inputs, hidden widths, outputs (at least two sizes, each >= 1).
    seed : int
        Seed of the initial weights (the global torch generator is left as it was).

    Returns
    -------
    torch.nn.Sequential

    Examples
    --------
    >>> make_mlp((4, 3, 2))
    Sequential(
      (0): Linear(in_features=4, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=2, bias=True)
    )
    """
    sizes = [check_int("make_mlp", "sizes[...]", s, low=1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"make_mlp(sizes={sizes!r}): expected at least an input and an output "
                         f"size, got {sizes!r}")
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

    Masked weights stay zero while training: ``prune`` multiplies the mask in on every forward
    pass, so their gradient is zero.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place.
    X, y : torch.Tensor
        Inputs and class labels.
    epochs : int
        Passes over the data (0 trains nothing).
    lr : float
        Adam's learning rate.
    batch_size : int
        Rows per step.
    seed : int
        Seed of the mini-batch order.
    anneal : bool
        Follow a cosine from ``lr`` down to zero over the run, which settles a freshly pruned
        network better than a constant rate.

    Returns
    -------
    torch.nn.Module
        The model, in eval mode.

    Examples
    --------
    >>> X = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    >>> y = (X[:, 0] > 0).long()  # the sign of the first input
    >>> m = train(make_mlp((4, 8, 2)), X, y, epochs=20, lr=1e-2)
    >>> accuracy(m, X, y) > 90
    True
    """
    epochs = check_int("train", "epochs", epochs, low=0)
    batch_size = check_int("train", "batch_size", batch_size, low=1)
    lr = check_positive("train", "lr", lr)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = max(1, epochs * math.ceil(len(X) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if anneal else None
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
    """Accuracy of ``model`` on ``X, y``, in percent (the model is put in eval mode).

    Examples
    --------
    >>> m = make_mlp((2, 2))
    >>> 0 <= accuracy(m, torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])) <= 100
    True
    """
    model.eval()
    return float((model(X).argmax(dim=1) == y).float().mean()) * 100.0
