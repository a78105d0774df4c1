"""Estimate the memory a torch training step needs, before running it; and measure it.

Training memory has four parts a learner can reason about:

- **weights**: the parameters and buffers, as stored;
- **gradients**: one value per trainable parameter;
- **optimizer state**: Adam keeps two running moments per parameter, SGD with momentum one,
  plain SGD none;
- **activations**: what the forward pass saves for the backward pass. It grows with the batch
  size, the only part that does. :func:`estimate_training_memory` counts it exactly, by running
  one forward pass on a sample batch and recording every tensor autograd saves;
- and **temporaries**: scratch tensors alive during the backward pass or the optimizer update.

:func:`measure_training_peak` trains a few steps in a fresh child process and reports how far
its resident memory rose, so the estimate can be held against a measurement.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

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
        Scratch memory alive for part of the step, whichever is bigger: the backward pass's
        gradients of the activations (about the size of the saved activations), or the
        optimizer update's intermediate (torch's multi-tensor Adam/AdamW/RMSprop compute one
        parameter-sized tensor, such as the square root of the second moment, in one go).
    optimizer_tensors_per_param : int
        How many parameter-sized tensors the optimizer keeps.
    """

    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    batch_bytes: int
    temporaries_bytes: int
    optimizer_tensors_per_param: int

    @property
    def total_bytes(self) -> int:
        """The sum of the parts."""
        return (
            self.weights_bytes
            + self.gradients_bytes
            + self.optimizer_bytes
            + self.activations_bytes
            + self.batch_bytes
            + self.temporaries_bytes
        )

    def parts(self) -> dict[str, int]:
        """The parts by name, in bytes (for a table or a stacked bar)."""
        return {
            "weights": self.weights_bytes,
            "gradients": self.gradients_bytes,
            "optimizer state": self.optimizer_bytes,
            "activations": self.activations_bytes,
            "batch": self.batch_bytes,
            "temporaries": self.temporaries_bytes,
        }

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_bytes"] = self.total_bytes
        return d

    def __str__(self) -> str:
        rows = [f"{name:>16}: {b / _MB:9.1f} MB" for name, b in self.parts().items()]
        rows.append(f"{'total':>16}: {self.total_bytes / _MB:9.1f} MB")
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
            f"optimizer=...: expected a torch.optim.Optimizer or its class, got {type(optimizer).__name__}"
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
        f"optimizer=...: no rule for {cls.__name__}; supported: Adam, AdamW, Adamax, NAdam, "
        "RAdam, SGD, RMSprop, Adagrad, Adadelta. Take one optimizer step and count "
        "optimizer.state's tensors instead"
    )


def _nbytes(t) -> int:
    return t.numel() * t.element_size()


def _activation_bytes(model, inputs, targets, loss_fn, exclude_storages: set[int]) -> int:
    """Bytes of distinct storages autograd saves in one forward pass (parameters excluded)."""
    import torch
    counted: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            key, size = storage.data_ptr(), storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. sparse or wrapper tensors
            key, size = id(t), _nbytes(t)
        if key not in exclude_storages:
            counted[key] = max(counted.get(key, 0), size)
        return t

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(inputs)
            if loss_fn is not None and targets is not None:
                out = loss_fn(out, targets)
        outputs = out if isinstance(out, (tuple, list)) else [out]
        for o in outputs:
            if isinstance(o, torch.Tensor):
                key = o.untyped_storage().data_ptr()
                if key not in exclude_storages:
                    counted[key] = max(counted.get(key, 0), o.untyped_storage().nbytes())
    finally:
        model.train(was_training)
    return sum(counted.values())




def _default_loss(targets):
    import torch
    if targets is None:
        return None
    if not (targets.dtype.is_floating_point or targets.dtype.is_complex):
        return torch.nn.CrossEntropyLoss()
    return torch.nn.MSELoss()


def estimate_training_memory(
    model, optimizer, inputs, targets=None, *, loss_fn=None
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
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model=...: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(
            f"inputs=...: expected a torch.Tensor batch, got {type(inputs).__name__}; "
            "convert with torch.as_tensor(X[:batch_size], dtype=torch.float32)"
        )
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
        loss_fn = _default_loss(targets)
    activations = _activation_bytes(model, inputs, targets, loss_fn, exclude)
    return TrainingMemoryEstimate(
        weights_bytes=int(weights),
        gradients_bytes=int(grads),
        optimizer_bytes=int(opt_bytes),
        activations_bytes=int(activations),
        batch_bytes=int(batch),
        temporaries_bytes=int(max(activations, grads if per_param else 0)),
        optimizer_tensors_per_param=per_param,
    )


# -- measuring -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingPeak:
    """How far a fresh process's memory rose while it trained.

    Attributes
    ----------
    peak_rise_bytes : int
        Peak resident memory during training minus the memory just before the model was built
        (interpreter, torch and the data already loaded).
    before_bytes : int
        Resident memory before the model was built.
    peak_bytes : int
        Peak resident memory of the process (the kernel's high-water mark).
    steps : int
        Training steps taken.
    """

    peak_rise_bytes: int
    before_bytes: int
    peak_bytes: int
    steps: int


def _reset_peak_rss() -> bool:
    """Reset this process's resident-memory high-water mark (Linux >= 4.0); True if it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_since_reset() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


def _train_and_measure(meta_model, opt_cls, opt_settings, inputs, targets, loss_fn, steps, threads):
    import threading

    import psutil
    import torch

    torch.set_num_threads(threads)
    # One step of the same optimizer and loss on a tiny model first: torch's first backward
    # and first optimizer step allocate one-off buffers (tens of MB) that are not the model's.
    tiny = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    tiny_opt = opt_cls(tiny.parameters(), **opt_settings)
    tiny_out = tiny(torch.zeros(2, 4))
    if targets is not None and loss_fn is not None and not targets.dtype.is_floating_point:
        loss_fn(tiny_out, torch.zeros(2, dtype=targets.dtype)).backward()
    else:
        tiny_out.pow(2).mean().backward()
    tiny_opt.step()
    del tiny, tiny_opt, tiny_out
    proc = psutil.Process()
    before = proc.memory_info().rss
    # Start-up (importing torch, unpickling the batch) may have peaked higher than training
    # will: reset the kernel's high-water mark where we can, and sample where we cannot.
    exact = _reset_peak_rss()
    sampled = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.002):
            sampled.append(proc.memory_info().rss)

    sampler = None
    if not exact:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    try:
        # The model arrives on the "meta" device (shapes, no data) and is materialised here,
        # after ``before``, so its weights count in the rise as they would in a real run.
        model = meta_model.to_empty(device="cpu")
        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                t.normal_(0.0, 0.02) if t.is_floating_point() else t.zero_()  # touch every page
        opt = opt_cls(model.parameters(), **opt_settings)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            out = model(inputs)
            loss = loss_fn(out, targets) if targets is not None else out.float().pow(2).mean()
            loss.backward()
            opt.step()
    finally:
        done.set()
        if sampler is not None:
            sampler.join()
    peak = _peak_rss_since_reset() if exact else max(sampled)
    return before, max(peak, before)


def measure_training_peak(
    model,
    optimizer,
    inputs,
    targets=None,
    *,
    loss_fn=None,
    steps: int = 3,
    threads: int = 1,
    memory_bytes: int | None = None,
    timeout_s: float | None = 120,
) -> TrainingPeak:
    """Train ``steps`` steps in a fresh child process and measure how far its memory rose.

    A fresh process makes the measurement honest: a notebook kernel's memory already holds
    earlier work, and freed memory is not always handed back to the operating system.

    Parameters
    ----------
    model : torch.nn.Module
        Copied to the child; the caller's model is not trained.
    optimizer : torch.optim.Optimizer or its class
        The child builds the same optimizer class with the same settings.
    inputs, targets : torch.Tensor
        One batch, used for every step.
    loss_fn : callable, optional
        As in :func:`estimate_training_memory`.
    steps : int, default 3
        Steps to take (Adam's state appears at the first step).
    threads : int, default 1
        torch threads in the child.
    memory_bytes, timeout_s : optional
        Limits, as in :func:`mlscale_lab.constraints.run_limited`.

    Returns
    -------
    TrainingPeak
    """
    import torch

    from mlscale_lab.constraints import run_limited

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps=...: expected an integer >= 1, got {steps!r}")
    if isinstance(optimizer, type):
        opt_cls, settings = optimizer, {}
    elif isinstance(optimizer, torch.optim.Optimizer):
        opt_cls = type(optimizer)
        settings = {k: v for k, v in optimizer.defaults.items() if not isinstance(v, torch.Tensor)}
    else:
        raise TypeError(
            f"optimizer=...: expected a torch.optim.Optimizer or its class, got {type(optimizer).__name__}"
        )
    if "lr" not in settings:
        settings["lr"] = 1e-3
    meta_model = copy.deepcopy(model).to("meta")
    if loss_fn is None:
        loss_fn = _default_loss(targets)
    before, peak = run_limited(
        _train_and_measure,
        meta_model,
        opt_cls,
        settings,
        inputs,
        targets,
        loss_fn,
        steps,
        threads,
        memory_bytes=memory_bytes,
        timeout_s=timeout_s,
    )
    return TrainingPeak(int(peak - before), int(before), int(peak), steps)
