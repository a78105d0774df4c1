"""What a deployment feels: one prediction's latency and the time to load the model from disk."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from mlscale_lab.constraints import measure_latency
from mlscale_lab.validation import check_int


def predictor(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model``'s forward pass without autograd: what serving calls per request.

    Examples
    --------
    >>> predict = predictor(nn.Linear(3, 2))
    >>> predict(torch.zeros(4, 3)).requires_grad
    False
    """
    def predict(xb):
        with torch.no_grad():
            return model(xb)
    return predict


def load_seconds(load: Callable[[], object], *, repeats: int = 15, warmup: int = 2) -> float:
    """Median wall seconds of ``load()``: reading a model file and building the model.

    Parameters
    ----------
    load : callable
        Does the whole load, e.g. ``lambda: model.load_state_dict(torch.load(path))``.
    repeats, warmup : int
        Timed calls, and untimed calls before them (the first read fills the OS page cache;
        a cold start from a slow disk is slower still).

    Returns
    -------
    float

    Examples
    --------
    >>> load_seconds(lambda: sum(range(1000)), repeats=3) < 1
    True
    """
    repeats = check_int("load_seconds", "repeats", repeats, low=1)
    warmup = check_int("load_seconds", "warmup", warmup, low=0)
    for _ in range(warmup):
        load()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        load()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass(frozen=True)
class ServingCost:
    """One deployable form of a model, as a phone or a server meets it.

    Attributes
    ----------
    name : str
    file_bytes : int
        Size of the file shipped.
    load_ms : float
        Median time to read the file and build a model ready to predict.
    batch1_ms : float
        Median latency of one prediction (batch of one row).
    """

    name: str
    file_bytes: int
    load_ms: float
    batch1_ms: float

    def as_dict(self) -> dict:
        """The row as a plain dict."""
        return asdict(self)


def serving_cost(name: str, file_bytes: int, load: Callable[[], nn.Module], X, *,
                 repeats: int = 200, load_repeats: int = 15) -> ServingCost:
    """Load time and batch-1 latency of one deployable form of a model.

    Parameters
    ----------
    name : str
        A label for the row.
    file_bytes : int
        The file's size on disk.
    load : callable
        Reads the file and returns the model, ready to predict.
    X : torch.Tensor
        Rows to predict, one at a time.
    repeats, load_repeats : int
        Timed predictions and timed loads.

    Returns
    -------
    ServingCost

    Examples
    --------
    >>> c = serving_cost("tiny", 64, lambda: nn.Linear(3, 2), torch.zeros(5, 3), repeats=5,
    ...                  load_repeats=2)
    >>> c.batch1_ms > 0 and c.load_ms > 0
    True
    """
    model = load()
    lat = measure_latency(predictor(model), X, (1,), warmup=10, repeats=repeats)[0]
    return ServingCost(name, int(file_bytes), 1e3 * load_seconds(load, repeats=load_repeats),
                       lat.p50_ms)
