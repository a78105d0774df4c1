"""Estimate the memory a torch training step needs, before running it.

Training memory has parts a learner can reason about:

- **weights**: the parameters and buffers, as stored;
- **gradients**: one value per trainable parameter;
- **optimizer state**: Adam keeps two running moments per parameter, SGD with momentum one,
  plain SGD none;
- **activations**: what the forward pass saves for the backward pass. It grows with the batch
  size, the only part that does. :func:`estimate_training_memory` counts it exactly, by running
  one forward pass on a sample batch and recording every tensor autograd saves;
- **temporaries**: what autograd and the optimizer allocate for part of the step and free
  again. The backward pass holds an output's gradient and its input's gradient at once (at
  most the two largest forward outputs); the update runs one parameter at a time on the CPU,
  and Adam computes ``sqrt(v)`` and its scaled copy for it (two tensors the size of the
  largest parameter). The two never overlap, so the larger one counts;
- the **baseline**: the interpreter and the libraries (torch alone is a few hundred MB),
  which the machine holds before the first weight (measure it with
  :func:`~mlscale_lab.constraints.training_baseline_bytes`).

:func:`~mlscale_lab.constraints.measure_training_peak` trains a few steps in a fresh child
process, so the estimate can be held against a measurement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlscale_lab.validation import check_int

__all__ = ["TrainingMemoryEstimate", "estimate_training_memory", "optimizer_tensors_per_param"]

_MB = 1024**2


@dataclass(frozen=True)
class TrainingMemoryEstimate:
    """Bytes one training step holds, part by part.

    Attributes
    ----------
    weights_bytes : int
        Parameters and buffers.
    gradients_bytes : int
        One gradient per trainable parameter.
    optimizer_bytes : int
        The optimizer's state (Adam: two tensors per parameter; SGD with momentum: one).
    activations_bytes : int
        Tensors the forward pass saves for backward, plus the output, for this batch.
    batch_bytes : int
        The input batch (and targets).
    temporaries_bytes : int
        Memory autograd and the optimizer hold for part of the step: the larger of the backward
        pass's gradient pair (an output's gradient and its input's, at most the two largest
        forward outputs) and the update's scratch (per parameter, up to two tensors of its size
        for an optimizer with state: Adam's ``sqrt(v)`` and its scaled copy; torch's CPU
        optimizers step one parameter at a time, so the largest parameter sets it).
    optimizer_tensors_per_param : int
        How many parameter-sized tensors the optimizer keeps.
    baseline_bytes : int
        The interpreter and libraries (as given to :func:`estimate_training_memory`; 0 when
        not given): with it, ``total_bytes`` is what the whole process peaks at.

    Examples
    --------
    >>> est = TrainingMemoryEstimate(400, 400, 800, 100, 50, 200, 2)
    >>> est.total_bytes, est.parts()["optimizer state"]
    (1950, 800)
    """

    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    batch_bytes: int
    temporaries_bytes: int
    optimizer_tensors_per_param: int
    baseline_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        """The sum of the parts (the baseline included when it was given)."""
        return sum(self.parts().values())

    @property
    def step_bytes(self) -> int:
        """What training adds on top of the baseline: the parts without it."""
        return self.total_bytes - self.baseline_bytes

    @property
    def training_bytes(self) -> int:
        """What a process allocates to train once its data is loaded: the step without the
        batch (weights, gradients, optimizer state, activations, temporaries). This is what
        :attr:`~mlscale_lab.constraints.TrainingPeak.peak_rise_bytes` measures."""
        return self.step_bytes - self.batch_bytes

    def parts(self) -> dict[str, int]:
        """The parts by name, in bytes (for a table or a stacked bar)."""
        parts = {
            "weights": self.weights_bytes,
            "gradients": self.gradients_bytes,
            "optimizer state": self.optimizer_bytes,
            "activations": self.activations_bytes,
            "batch": self.batch_bytes,
            "temporaries": self.temporaries_bytes,
        }
        if self.baseline_bytes:
            parts["interpreter + libraries"] = self.baseline_bytes
        return parts

    def as_dict(self) -> dict:
        """The fields and ``total_bytes`` as a plain dict."""
        d = asdict(self)
        d["total_bytes"] = self.total_bytes
        return d

    def __str__(self) -> str:
        rows = [f"{name:>24}: {b / _MB:9.1f} MB" for name, b in self.parts().items()]
        rows.append(f"{'total':>24}: {self.total_bytes / _MB:9.1f} MB")
        return "\n".join(rows)


def optimizer_tensors_per_param(optimizer) -> int:
    """How many parameter-sized state tensors ``optimizer`` keeps for each parameter.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer or its class
        An optimizer instance (its settings, such as ``momentum``, are read) or class
        (default settings).

    Examples
    --------
    >>> import torch
    >>> optimizer_tensors_per_param(torch.optim.Adam)
    2
    >>> p = [torch.nn.Parameter(torch.zeros(3))]
    >>> optimizer_tensors_per_param(torch.optim.SGD(p, lr=0.1, momentum=0.9))
    1
    >>> optimizer_tensors_per_param(torch.optim.SGD(p, lr=0.1))
    0
    """
    import torch
    if isinstance(optimizer, type):
        cls, settings = optimizer, {}
    elif isinstance(optimizer, torch.optim.Optimizer):
        cls, settings = type(optimizer), optimizer.defaults
    else:
        raise TypeError(
            f"optimizer_tensors_per_param(optimizer={optimizer!r}): expected a "
            f"torch.optim.Optimizer or its class, got {type(optimizer).__name__}"
        )
    optim = torch.optim
    if issubclass(cls, (optim.Adam, optim.AdamW, optim.Adamax, optim.NAdam, optim.RAdam)):
        return 2 + int(bool(settings.get("amsgrad", False)))  # exp_avg, exp_avg_sq (+ max)
    if issubclass(cls, optim.SGD):
        return int(settings.get("momentum", 0) != 0)  # momentum_buffer
    if issubclass(cls, optim.RMSprop):
        return (
            1 + int(settings.get("momentum", 0) != 0) + int(bool(settings.get("centered", False)))
        )
    if issubclass(cls, optim.Adagrad):
        return 1  # sum of squared gradients
    if issubclass(cls, optim.Adadelta):
        return 2  # square_avg, acc_delta
    raise ValueError(
        f"optimizer_tensors_per_param(optimizer={cls.__name__}): expected one of Adam, AdamW, "
        f"Adamax, NAdam, RAdam, SGD, RMSprop, Adagrad, Adadelta, got {cls.__name__}; no rule for "
        "it. Supported: Adam, AdamW, Adamax, NAdam, "
        "RAdam, SGD, RMSprop, Adagrad, Adadelta. Take one optimizer step and count "
        "optimizer.state's tensors instead"
    )


def _nbytes(t) -> int:
    return t.numel() * t.element_size()


def _forward_bytes(model, inputs, targets, loss_fn, exclude: set[int]) -> tuple[int, list[int]]:
    """One forward pass: (bytes autograd saves, the size of every output the modules produce).

    Storages are counted once each; parameters, buffers and the batch (``exclude``) not at all.
    """
    import torch

    saved: dict[int, int] = {}
    produced: dict[int, int] = {}
    keep: list = []  # held until the end, so no freed address is reused and counted twice

    def key_size(t) -> tuple[int, int]:
        try:
            storage = t.untyped_storage()
            return storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or wrapper tensors
            return id(t), _nbytes(t)

    def note(table: dict, t) -> None:
        if isinstance(t, torch.Tensor):
            key, size = key_size(t)
            if key not in exclude:
                table[key] = max(table.get(key, 0), size)

    def pack(t):
        note(saved, t)
        return t

    def on_output(_module, _inputs, out):
        for o in out if isinstance(out, (tuple, list)) else [out]:
            note(produced, o)
            keep.append(o)

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    hooks = [m.register_forward_hook(on_output) for m in leaves]
    was_training = model.training
    # A forward pass in training mode updates running statistics (BatchNorm's mean and
    # variance, its batch counter): keep copies and put them back, the model is not changed.
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(inputs)
            if loss_fn is not None and targets is not None:
                out = loss_fn(out, targets)
        for o in out if isinstance(out, (tuple, list)) else [out]:
            note(saved, o)  # the output lives until the step ends
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        for h in hooks:
            h.remove()
    return sum(saved.values()), list(produced.values())


def default_loss(targets):
    """The loss :func:`estimate_training_memory` assumes: cross-entropy for integer targets,
    mean squared error for float targets, None without targets.

    Examples
    --------
    >>> import torch
    >>> type(default_loss(torch.tensor([0, 1]))).__name__
    'CrossEntropyLoss'
    """
    import torch

    if targets is None:
        return None
    if not (targets.dtype.is_floating_point or targets.dtype.is_complex):
        return torch.nn.CrossEntropyLoss()
    return torch.nn.MSELoss()


def estimate_training_memory(
    model, optimizer, inputs, targets=None, *, loss_fn=None, baseline_bytes: int = 0
) -> TrainingMemoryEstimate:
    """Estimate the memory of one training step of ``model`` with ``optimizer`` on a batch.

    Weights, gradients and optimizer state follow from the parameters; activations are
    measured by one forward pass on ``inputs`` that records what autograd saves (no backward,
    no optimizer step: the model is not changed).

    Parameters
    ----------
    model : torch.nn.Module
    optimizer : torch.optim.Optimizer or its class
        Decides the optimizer state (Adam: 2 tensors per parameter, SGD+momentum: 1).
    inputs : torch.Tensor
        One batch, at the batch size you will train with.
    targets : torch.Tensor, optional
        The batch's targets; with them the loss's saved tensors count too.
    loss_fn : callable, optional
        Default: cross-entropy for integer targets, mean squared error otherwise.
    baseline_bytes : int, default 0
        Resident memory of the interpreter and libraries before training, measured with
        :func:`~mlscale_lab.constraints.training_baseline_bytes`; added as its own part so that
        ``total_bytes`` compares with a whole process's peak.

    Returns
    -------
    TrainingMemoryEstimate

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(1000, 10)
    >>> est = estimate_training_memory(net, torch.optim.Adam, torch.zeros(32, 1000))
    >>> est.weights_bytes == est.gradients_bytes == est.optimizer_bytes // 2 == 10010 * 4
    True
    """
    import torch

    func = "estimate_training_memory"
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{func}(model=...): expected a torch.nn.Module, got "
                        f"{type(model).__name__}")
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"{func}(inputs=...): expected a torch.Tensor batch, got {type(inputs).__name__}; "
            "convert with torch.as_tensor(X[:batch_size], dtype=torch.float32)"
        )
    baseline_bytes = check_int(func, "baseline_bytes", baseline_bytes, low=0)
    per_param = optimizer_tensors_per_param(optimizer)
    params = [p for p in model.parameters()]
    trainable = [p for p in params if p.requires_grad]
    weights = sum(_nbytes(p) for p in params) + sum(_nbytes(b) for b in model.buffers())
    grads = sum(_nbytes(p) for p in trainable)
    # Optimizer state is kept in the parameter's dtype (float32 moments for float32 weights).
    opt_bytes = per_param * grads
    batch = _nbytes(inputs) + (_nbytes(targets) if isinstance(targets, torch.Tensor) else 0)
    exclude = {p.untyped_storage().data_ptr() for p in params}
    exclude |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    exclude.add(inputs.untyped_storage().data_ptr())
    if isinstance(targets, torch.Tensor):
        exclude.add(targets.untyped_storage().data_ptr())
    if loss_fn is None:
        loss_fn = default_loss(targets)
    activations, outputs = _forward_bytes(model, inputs, targets, loss_fn, exclude)
    # Backward holds a gradient pair at a time; the update, later, a parameter's scratch.
    gradient_pair = sum(sorted(outputs)[-2:])
    largest = max((_nbytes(p) for p in trainable), default=0)
    update_scratch = min(per_param, 2) * largest
    temporaries = max(gradient_pair, update_scratch)
    return TrainingMemoryEstimate(
        weights_bytes=int(weights),
        gradients_bytes=int(grads),
        optimizer_bytes=int(opt_bytes),
        activations_bytes=int(activations),
        batch_bytes=int(batch),
        temporaries_bytes=int(temporaries),
        optimizer_tensors_per_param=per_param,
        baseline_bytes=baseline_bytes,
    )
