"""Measure what training really holds: a few steps in a fresh child process, and the baseline.

A fresh process makes the measurement honest: a notebook kernel's memory already holds earlier
work, and freed memory is not always handed back to the operating system. The estimate to hold
it against is :func:`~mlscale_lab.constraints.estimate_training_memory`.

The allocator decides how much of what training frees stays resident. glibc's malloc raises its
mmap threshold as large blocks are freed (up to 32 MB): after that, tensors come from the heap
and freed ones stay resident for reuse, in amounts that depend on the order blocks happen to be
freed in (the same step of lab 01 rose 37-72 MB from run to run). The child fixes the threshold
(:data:`TIGHT_ALLOCATOR`), so that a freed tensor goes back to the system at once and the rise
is what training holds, the same in every run. Where that cannot be done (macOS, Windows, musl),
the peak says so (:attr:`TrainingPeak.repeatable`).
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass

from mlscale_lab.validation import check_int

__all__ = ["DEFAULT_ALLOCATOR", "TIGHT_ALLOCATOR", "TrainingPeak", "library_baseline_bytes",
           "measure_training_peak", "training_baseline_bytes"]

#: Blocks at least this big are mapped on their own and unmapped when freed (glibc's starting
#: value, 128 KiB, held fixed instead of raised as big blocks are freed).
MMAP_THRESHOLD_BYTES = 128 * 1024
#: The allocator of a child whose mmap threshold is fixed: freed tensors leave the process.
TIGHT_ALLOCATOR = f"glibc malloc, mmap threshold fixed at {MMAP_THRESHOLD_BYTES // 1024} KiB"
#: The allocator as the platform sets it up: freed blocks may stay resident, by varying amounts.
DEFAULT_ALLOCATOR = "the platform's default allocator"
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


@dataclass(frozen=True)
class TrainingPeak:
    """How far a fresh process's memory rose while it trained (from :func:`measure_training_peak`).

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
    allocator : str
        :data:`TIGHT_ALLOCATOR` when the child fixed glibc's mmap threshold (the rise then
        repeats from run to run), else :data:`DEFAULT_ALLOCATOR`.

    Examples
    --------
    >>> peak = TrainingPeak(peak_rise_bytes=40, before_bytes=360, peak_bytes=400, steps=2)
    >>> peak.peak_bytes, peak.repeatable
    (400, False)
    """

    peak_rise_bytes: int
    before_bytes: int
    peak_bytes: int
    steps: int
    allocator: str = DEFAULT_ALLOCATOR

    @property
    def repeatable(self) -> bool:
        """True when the allocator returned freed tensors at once: another fresh process would
        measure the same rise (with the default allocator it varies by tens of percent)."""
        return self.allocator == TIGHT_ALLOCATOR


def _tighten_allocator() -> str:
    """Fix glibc's mmap threshold in this process; the allocator it leaves in place."""
    import platform

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return DEFAULT_ALLOCATOR
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return DEFAULT_ALLOCATOR
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    return TIGHT_ALLOCATOR if ok else DEFAULT_ALLOCATOR


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


def _warm_up(opt_cls, opt_settings, loss_fn, target_dtype, threads) -> None:
    """One step of the optimizer and loss on a tiny model: torch's first forward, backward and
    optimizer step load kernels and allocate one-off buffers (tens of MB) that are no model's."""
    import torch

    torch.set_num_threads(threads)
    tiny = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    tiny_opt = opt_cls(tiny.parameters(), **opt_settings)
    tiny_out = tiny(torch.zeros(2, 4))
    if loss_fn is not None and target_dtype is not None and not target_dtype.is_floating_point:
        loss_fn(tiny_out, torch.zeros(2, dtype=target_dtype)).backward()
    else:
        tiny_out.pow(2).mean().backward()
    tiny_opt.step()


def _warmed_up_rss(opt_cls, opt_settings, loss_fn, target_dtype, threads) -> int:
    import psutil

    _warm_up(opt_cls, opt_settings, loss_fn, target_dtype, threads)
    return psutil.Process().memory_info().rss


def _train_and_measure(meta_model, opt_cls, opt_settings, inputs, targets, loss_fn, steps, threads):
    import threading

    import psutil
    import torch

    allocator = _tighten_allocator()  # before the warm-up, so its buffers follow the same rule
    _warm_up(opt_cls, opt_settings, loss_fn, None if targets is None else targets.dtype, threads)
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
    return before, max(peak, before), allocator


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
        With :attr:`TrainingPeak.allocator`: on Linux with glibc the child fixes malloc's mmap
        threshold, so that the rise is what training holds and repeats from run to run.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(256, 10)
    >>> peak = measure_training_peak(net, torch.optim.SGD, torch.zeros(8, 256))  # doctest: +SKIP
    >>> peak.peak_bytes > peak.before_bytes  # doctest: +SKIP
    True
    """

    from mlscale_lab.constraints._limits import run_limited
    from mlscale_lab.constraints._training_memory import default_loss

    steps = check_int("measure_training_peak", "steps", steps, low=1)
    threads = check_int("measure_training_peak", "threads", threads, low=1)
    opt_cls, settings = _optimizer_recipe("measure_training_peak", optimizer)
    meta_model = copy.deepcopy(model).to("meta")
    if loss_fn is None:
        loss_fn = default_loss(targets)
    before, peak, allocator = run_limited(
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
    return TrainingPeak(int(peak - before), int(before), int(peak), steps, allocator)


def _optimizer_recipe(func: str, optimizer) -> tuple[type, dict]:
    """The optimizer's class and settings, to rebuild it in a child process."""
    import torch

    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        opt_cls, settings = optimizer, {}
    elif isinstance(optimizer, torch.optim.Optimizer):
        opt_cls = type(optimizer)
        settings = {k: v for k, v in optimizer.defaults.items() if not isinstance(v, torch.Tensor)}
    else:
        raise TypeError(f"{func}(optimizer={optimizer!r}): expected a torch.optim.Optimizer or "
                        f"its class, got {type(optimizer).__name__}")
    settings.setdefault("lr", 1e-3)
    return opt_cls, settings


def training_baseline_bytes(optimizer=None, targets=None, *, loss_fn=None, threads: int = 1,
                            timeout_s: float = 120) -> int:
    """Resident memory of a fresh training process before its model: interpreter, torch, warm.

    A fresh Python imports torch, then trains a tiny model one step with ``optimizer`` (torch
    loads kernels and allocates one-off buffers on its first forward, backward and optimizer
    step), and reports its resident memory: the part of every training process that is
    neither model nor data. It is measured once per machine (torch's build and the BLAS it
    loads differ), never from the model being estimated.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer or its class, default torch.optim.Adam
    targets : torch.Tensor, optional
        Sample targets: their dtype picks the loss, as in :func:`measure_training_peak`.
    loss_fn : callable, optional
    threads : int, default 1
        torch threads (each thread keeps its own buffers).
    timeout_s : float, default 120

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> import torch
    >>> training_baseline_bytes(torch.optim.SGD) > 50 * 1024**2  # doctest: +SKIP
    True
    """
    import torch

    from mlscale_lab.constraints._limits import run_limited
    from mlscale_lab.constraints._training_memory import default_loss

    threads = check_int("training_baseline_bytes", "threads", threads, low=1)
    opt_cls, settings = _optimizer_recipe("training_baseline_bytes",
                                          torch.optim.Adam if optimizer is None else optimizer)
    if loss_fn is None:
        loss_fn = default_loss(targets)
    dtype = None if targets is None else targets.dtype
    return int(run_limited(_warmed_up_rss, opt_cls, settings, loss_fn, dtype, threads,
                           timeout_s=timeout_s))


def _rss_after_import(modules: tuple[str, ...]) -> int:
    import importlib

    import psutil

    for name in modules:
        importlib.import_module(name)
    return psutil.Process().memory_info().rss


def library_baseline_bytes(*modules: str, timeout_s: float = 120) -> int:
    """Resident memory of a fresh Python process after it imports ``modules``.

    The part of every training or serving process that is neither model nor data: the
    interpreter and the libraries. It differs from machine to machine (torch's build, the BLAS
    it loads), so it is measured, in a child process, rather than guessed.

    Parameters
    ----------
    *modules : str
        Module names to import, e.g. ``"torch"``.
    timeout_s : float, default 120

    Returns
    -------
    int
        Bytes.

    Examples
    --------
    >>> library_baseline_bytes() > 5 * 1024**2  # a bare interpreter
    True
    """
    from mlscale_lab.constraints._limits import run_limited

    for name in modules:
        if not isinstance(name, str):
            raise TypeError(f"library_baseline_bytes(modules={modules!r}): expected module names "
                            f"such as 'torch', got {name!r}")
    return int(run_limited(_rss_after_import, tuple(modules), timeout_s=timeout_s))
