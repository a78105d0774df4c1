"""The training problem every measurement of lab 08 shares, defined once for every process.

A synthetic classification task (rows labelled by a fixed random "teacher" network, so it is
learnable and needs no download) and a multi-layer perceptron. Every process builds the same
data and the same initial weights from the seed, and the rows of a step depend only on the
step number, so a run resumed from a checkpoint sees exactly the rows it would have seen.

The one-process reference lives here too: :func:`train_one_process` trains in the calling
process, with gradient accumulation over ``micro_batches`` slices of each global batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlscale_lab.validation import check_int, check_positive

__all__ = ["TrainSetup", "all_reduce_gradient", "batch_rows", "flat_gradient",
           "full_batch_gradient", "make_data", "make_model", "max_abs_difference",
           "parameter_arrays", "rank_loss", "set_gradient", "shard_bounds", "shard_loss_scale",
           "train_one_process"]


@dataclass(frozen=True)
class TrainSetup:
    """One training problem: data, model shape and optimiser.

    Parameters
    ----------
    features, hidden, depth, classes : int
        Input width, hidden width, hidden ``hidden x hidden`` layers, and classes.
    rows : int
        Rows in the data set.
    batch : int
        Global batch: rows per optimiser step, over all processes together.
    lr : float
        SGD learning rate.
    seed : int

    Examples
    --------
    >>> s = TrainSetup(features=8, hidden=16, depth=1, classes=3)
    >>> s.parameters  # 8*16+16, 16*16+16, 16*3+3
    467
    >>> s.gradient_bytes
    1868
    """

    features: int = 64
    hidden: int = 512
    depth: int = 2
    classes: int = 10
    rows: int = 4096
    batch: int = 512
    lr: float = 0.05
    seed: int = 0

    def __post_init__(self):
        for name in ("features", "hidden", "classes", "rows", "batch"):
            check_int("TrainSetup", name, getattr(self, name), low=1)
        check_int("TrainSetup", "depth", self.depth, low=0)
        check_int("TrainSetup", "seed", self.seed, low=0)
        check_positive("TrainSetup", "lr", self.lr)
        if self.batch > self.rows:
            raise ValueError(f"TrainSetup(batch={self.batch}): expected at most rows={self.rows}, "
                             f"got {self.batch}")

    @property
    def widths(self) -> list[int]:
        """Layer widths from input to output."""
        return [self.features] + [self.hidden] * (self.depth + 1) + [self.classes]

    @property
    def parameters(self) -> int:
        """Trainable parameters of the model."""
        w = self.widths
        return sum(a * b + b for a, b in zip(w, w[1:], strict=False))

    @property
    def gradient_bytes(self) -> int:
        """Bytes of one full gradient in float32: what data parallelism all-reduces per step."""
        return 4 * self.parameters

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def make_data(setup: TrainSetup):
    """``(X, y)`` tensors: Gaussian rows labelled by a random two-layer teacher network."""
    import torch

    g = torch.Generator().manual_seed(setup.seed)
    X = torch.randn(setup.rows, setup.features, generator=g)
    w1 = torch.randn(setup.features, 32, generator=g)
    w2 = torch.randn(32, setup.classes, generator=g)
    y = (torch.tanh(X @ w1) @ w2).argmax(1)
    return X, y


def make_model(setup: TrainSetup):
    """The MLP of ``setup``, with the same initial weights in every process (from the seed).

    The global random state of the caller is left as it was.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(setup.seed + 1)
        layers = []
        w = setup.widths
        for i, (a, b) in enumerate(zip(w, w[1:], strict=False)):
            layers.append(torch.nn.Linear(a, b))
            if i < len(w) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)


def batch_rows(setup: TrainSetup, step: int, batch: int | None = None):
    """Row indices of the global batch of optimiser step ``step`` (a function of the step only).

    Each epoch walks a fresh permutation of the rows, drawn from the seed and the epoch.
    """
    import torch

    b = setup.batch if batch is None else batch
    per_epoch = setup.rows // b
    epoch, k = divmod(int(step), per_epoch)
    g = torch.Generator().manual_seed(setup.seed * 100_003 + epoch)
    order = torch.randperm(setup.rows, generator=g)
    return order[k * b:(k + 1) * b]


def shard_bounds(rows: int, world_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each rank's slice of a batch of ``rows``: as equal as they can be,
    the first ``rows % world_size`` ranks one row longer.

    >>> shard_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    rows = check_int("shard_bounds", "rows", rows, low=0)
    world_size = check_int("shard_bounds", "world_size", world_size, low=1)
    base, extra = divmod(rows, world_size)
    bounds, start = [], 0
    for r in range(world_size):
        stop = start + base + (1 if r < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def shard_loss_scale(local_rows: int, global_rows: int, world_size: int) -> float:
    """The factor on a rank's mean loss that makes DDP's gradient *average* equal the gradient
    of the mean loss over the whole global batch, when shards differ in size.

    DDP divides the sum of the ranks' gradients by ``world_size``; a rank whose shard holds
    ``local_rows`` of ``global_rows`` rows must weigh in by ``local_rows / global_rows``, so its
    loss is scaled by ``world_size * local_rows / global_rows`` (1 when the shards are equal).

    >>> shard_loss_scale(3, 5, 2), shard_loss_scale(4, 8, 2)
    (1.2, 1.0)
    """
    return world_size * local_rows / global_rows


def rank_loss(model, X, y, setup: TrainSetup, step: int, rank: int, world_size: int, *,
              exact: bool = True):
    """Rank ``rank``'s loss on its slice (:func:`shard_bounds`) of step ``step``'s global batch.

    With ``exact`` it is scaled by :func:`shard_loss_scale`, so that the average of the ranks'
    gradients is the gradient of the mean loss over the whole batch; without, it is the plain
    mean over the slice, as a plain DDP script has it.
    """
    rows = batch_rows(setup, step)
    lo, hi = shard_bounds(len(rows), world_size)[rank]
    loss = _loss(model, X, y, rows[lo:hi])
    return loss * shard_loss_scale(hi - lo, len(rows), world_size) if exact else loss


def flat_gradient(params):
    """The gradients of ``params`` as one flat tensor (a new one, in their order)."""
    import torch

    return torch.cat([p.grad.reshape(-1) for p in params])


def all_reduce_gradient(params, world_size: int):
    """The ranks' gradients of ``params`` averaged: one ``all_reduce`` of the flattened gradient.

    The arithmetic DDP does bucket by bucket (the sum over ranks over ``world_size``), done in
    one piece after the backward pass; returns the flat average, for :func:`set_gradient`.
    """
    import torch.distributed as dist

    flat = flat_gradient(params)
    dist.all_reduce(flat)
    flat /= world_size
    return flat


def set_gradient(params, flat) -> None:
    """Copy the flat gradient ``flat`` (from :func:`flat_gradient`'s order) back into ``params``."""
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p))
        offset += n


def parameter_arrays(model) -> dict:
    """The model's parameters as ``{name: numpy array}`` (copies)."""
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def max_abs_difference(a: dict, b: dict) -> float:
    """The largest absolute difference between two ``{name: array}`` dicts of the same arrays."""
    import numpy as np

    if set(a) != set(b):
        raise ValueError(f"max_abs_difference: the two hold different arrays: {sorted(set(a) ^ set(b))}")
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


def _loss(model, X, y, rows):
    import torch

    return torch.nn.functional.cross_entropy(model(X[rows]), y[rows])


def train_one_process(setup: TrainSetup, steps: int, *, micro_batches: int = 1,
                      start: dict | None = None) -> dict:
    """Train ``steps`` SGD steps in this process; return the parameters.

    With ``micro_batches > 1`` each global batch is cut into that many slices (the slices ranks
    would get, :func:`shard_bounds`); each slice's gradient is accumulated, weighted by its share
    of the batch's rows, before one optimiser step: gradient accumulation, which gives the
    gradient of the whole batch.

    Parameters
    ----------
    setup : TrainSetup
    steps : int
    micro_batches : int
    start : dict, optional
        Parameters to start from (``{name: array}``) instead of the seed's initial weights.

    Returns
    -------
    dict of str to ndarray
    """
    import torch

    steps = check_int("train_one_process", "steps", steps, low=0)
    micro_batches = check_int("train_one_process", "micro_batches", micro_batches, low=1,
                              high=setup.batch)
    X, y = make_data(setup)
    model = make_model(setup)
    if start is not None:
        model.load_state_dict({k: torch.as_tensor(v) for k, v in start.items()})
    opt = torch.optim.SGD(model.parameters(), lr=setup.lr)
    for step in range(steps):
        rows = batch_rows(setup, step)
        opt.zero_grad()
        for lo, hi in shard_bounds(len(rows), micro_batches):
            (_loss(model, X, y, rows[lo:hi]) * ((hi - lo) / len(rows))).backward()
        opt.step()
    return parameter_arrays(model)


def full_batch_gradient(setup: TrainSetup, rows: int):
    """The gradient (flattened, numpy) of the mean loss over the first ``rows`` rows of step 0's
    order, at the initial weights: what every way of splitting that batch must reproduce."""
    X, y = make_data(setup)
    model = make_model(setup)
    idx = batch_rows(setup, 0, batch=rows)
    _loss(model, X, y, idx).backward()
    return flat_gradient(model.parameters()).numpy().copy()
