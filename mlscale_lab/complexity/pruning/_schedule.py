"""Schedules: prune then fine-tune, step by step; and one-shot pruning without fine-tuning.

Every accuracy a schedule reports is measured on the split's *validation* rows (``X_val``,
``y_val``): a schedule, a sparsity or a method is chosen on them, and the chosen model is
then scored once on the test rows by the caller. A split without validation rows is refused.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from torch import nn

from mlscale_lab.complexity.pruning._masks import (
    check_amount,
    prune_global,
    prune_layerwise,
    prune_random,
)
from mlscale_lab.complexity.pruning._model import DigitsSplit, accuracy, train
from mlscale_lab.complexity.pruning._report import LayerSparsity, sparsity_report, weight_sparsity
from mlscale_lab.validation import check_choice, check_int

METHODS = ("global", "layerwise", "random")


def _prune_step(model: nn.Module, method: str, amount: float, seed: int) -> None:
    """Prune ``amount`` more of ``model`` by ``method`` (random pruning draws from ``seed``)."""
    if method == "random":
        prune_random(model, amount, seed=seed)
    else:
        {"global": prune_global, "layerwise": prune_layerwise}[method](model, amount)
"""How :func:`iterative_prune` chooses the weights to remove."""


@dataclass(frozen=True)
class ScheduleStep:
    """The model after one prune-then-fine-tune step.

    Attributes
    ----------
    step : int
        1 for the first step.
    sparsity : float
        Of the ``nn.Linear`` weights.
    accuracy_pruned : float
        Validation accuracy (percent) right after pruning, before fine-tuning.
    accuracy : float
        Validation accuracy (percent) after fine-tuning.

    Examples
    --------
    >>> ScheduleStep(1, 0.5, 80.0, 95.0).as_dict()["accuracy"]
    95.0
    """

    step: int
    sparsity: float
    accuracy_pruned: float
    accuracy: float

    def as_dict(self) -> dict:
        """The step as a plain dict."""
        return asdict(self)


def step_amounts(sparsity: float, steps: int) -> list[float]:
    """Per-step ``amount`` (of the weights still unpruned) so that ``steps`` steps reach ``sparsity``.

    Each step keeps the same fraction ``(1 - sparsity) ** (1 / steps)`` of what is left.

    Examples
    --------
    >>> [round(a, 3) for a in step_amounts(0.75, 2)]
    [0.5, 0.5]
    """
    sparsity = check_amount("step_amounts", sparsity, "sparsity")
    steps = check_int("step_amounts", "steps", steps, low=1)
    return [1.0 - (1.0 - sparsity) ** (1.0 / steps)] * steps


def _val(func: str, data) -> tuple:
    X, y = getattr(data, "X_val", None), getattr(data, "y_val", None)
    if X is None or y is None:
        raise ValueError(f"{func}(data=...): expected a split with validation rows (X_val, y_val) to "
                         "choose on, e.g. mlscale_lab.complexity.task.make_task(seed) or "
                         "load_digits_split(seed, val_size=0.2); the test rows never choose")
    return X, y


def iterative_prune(model: nn.Module, data: DigitsSplit, *, sparsity: float, steps: int = 5,
                    method: str = "global", epochs_per_step: int = 3, final_epochs: int = 12,
                    lr: float = 3e-3, batch_size: int = 128, seed: int = 0,
                    progress: Callable[[ScheduleStep], None] | None = None) -> list[ScheduleStep]:
    """Prune, fine-tune, repeat: ``steps`` steps up to ``sparsity`` of the Linear weights.

    Parameters
    ----------
    model : nn.Module
        A trained model; pruned in place (masks stay on; :func:`make_permanent` removes them).
    data : TaskSplit or DigitsSplit
        Training rows for fine-tuning, validation rows for the reported accuracy.
    sparsity : float in [0, 1)
        Final fraction of zero weights.
    steps : int
        Pruning steps, each removing the same fraction of what is left (:func:`step_amounts`).
    method : {"global", "layerwise", "random"}
        :func:`prune_global`, :func:`prune_layerwise` or :func:`prune_random`.
    epochs_per_step, final_epochs : int
        Fine-tuning epochs after each step; the last step gets ``final_epochs`` more.
    lr, batch_size : float, int
        As in :func:`train`.
    seed : int
        Seed of the mini-batches (and of the random baseline's masks).
    progress : callable, optional
        Called with each :class:`ScheduleStep` as it completes.

    Returns
    -------
    list of ScheduleStep
        Sparsity and validation accuracy after every step: the sparsity-accuracy curve.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import load_digits_split, make_mlp
    >>> full = load_digits_split(0, val_size=0.2)
    >>> d = DigitsSplit(full.X_train[:300], full.X_test[:100], full.y_train[:300], full.y_test[:100],
    ...                 full.X_val, full.y_val)
    >>> m = train(make_mlp((64, 16, 10)), d.X_train, d.y_train, epochs=2)
    >>> hist = iterative_prune(m, d, sparsity=0.75, steps=2, epochs_per_step=1, final_epochs=0)
    >>> [round(h.sparsity, 2) for h in hist]
    [0.5, 0.75]
    """
    check_choice("iterative_prune", "method", method, METHODS)
    check_amount("iterative_prune", sparsity, "sparsity")
    X_val, y_val = _val("iterative_prune", data)
    amounts = step_amounts(sparsity, steps)
    epochs_per_step = check_int("iterative_prune", "epochs_per_step", epochs_per_step, low=0)
    final_epochs = check_int("iterative_prune", "final_epochs", final_epochs, low=0)
    history = []
    for k, amount in enumerate(amounts):
        _prune_step(model, method, amount, seed * 1000 + k)
        before = accuracy(model, X_val, y_val)
        epochs = epochs_per_step + (final_epochs if k == steps - 1 else 0)
        train(model, data.X_train, data.y_train, epochs=epochs, lr=lr, batch_size=batch_size,
              seed=seed * 1000 + 100 + k)
        step = ScheduleStep(k + 1, weight_sparsity(model), before, accuracy(model, X_val, y_val))
        history.append(step)
        if progress is not None:
            progress(step)
    return history


def prune_schedule(model: nn.Module, data, sparsities: Sequence[float], *, method: str = "global",
                   epochs_per_step: int = 2, lr: float = 3e-3, seed: int = 0
                   ) -> tuple[list[ScheduleStep], list[dict]]:
    """Prune to each of ``sparsities`` in turn, fine-tuning after each step; keep every step.

    Like :func:`iterative_prune`, with the schedule given as the sparsities to pass through
    (gradual near the top, where each step costs the most) and a copy of the weights after
    each step, so the step chosen on validation rows can be loaded and scored once on test.

    Returns
    -------
    (list of ScheduleStep, list of dict)
        Validation accuracies per step; the effective state dict after each step (plain
        ``weight`` tensors, load them into a fresh copy of the model).

    Examples
    --------
    >>> from mlscale_lab.complexity.task import make_task
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> t = make_task(0, n_train=300, n_val=200, n_test=10)
    >>> m = train(make_mlp((64, 32, 10)), t.X_train, t.y_train, epochs=2)
    >>> steps, states = prune_schedule(m, t, [0.5, 0.9], epochs_per_step=1)
    >>> [round(s.sparsity, 2) for s in steps], sorted(states[1])[:2]
    ([0.5, 0.9], ['0.bias', '0.weight'])
    """
    from mlscale_lab.complexity.pruning._masks import effective_state_dict

    func = "prune_schedule"
    check_choice(func, "method", method, METHODS)
    sparsities = [check_amount(func, s, "sparsities[...]") for s in sparsities]
    if not sparsities or sorted(sparsities) != sparsities:
        raise ValueError(f"{func}(sparsities={sparsities!r}): expected an increasing schedule")
    epochs_per_step = check_int(func, "epochs_per_step", epochs_per_step, low=0)
    X_val, y_val = _val(func, data)
    done, steps, states = 0.0, [], []
    for k, target in enumerate(sparsities):
        amount = 1.0 - (1.0 - target) / (1.0 - done)
        done = target
        _prune_step(model, method, amount, seed * 1000 + k)
        before = accuracy(model, X_val, y_val)
        train(model, data.X_train, data.y_train, epochs=epochs_per_step, lr=lr,
              seed=seed * 1000 + 100 + k, anneal=True)
        steps.append(ScheduleStep(k + 1, weight_sparsity(model), before, accuracy(model, X_val, y_val)))
        states.append(effective_state_dict(model))
    return steps, states


@dataclass(frozen=True)
class CurveSummary:
    """One method's sparsity-accuracy curve over seeds: mean and spread at each step.

    Attributes
    ----------
    method : str
    seeds : int
        Runs averaged.
    sparsity, accuracy, accuracy_std : list of float
        Per step: mean sparsity, mean validation accuracy (percent) and its sample standard
        deviation over seeds (``ddof=1``).
    accuracy_low, accuracy_high : list of float
        Per step: the 95 % Student t interval of the mean over seeds (equal to the mean with
        one seed: nothing to say about the spread).
    """

    method: str
    seeds: int
    sparsity: list[float]
    accuracy: list[float]
    accuracy_std: list[float]
    accuracy_low: list[float]
    accuracy_high: list[float]


def summarise_curves(curves: dict[str, list[list[ScheduleStep]]]) -> list[CurveSummary]:
    """Mean and spread over seeds of each method's :func:`iterative_prune` histories.

    Parameters
    ----------
    curves : dict
        Method -> one history (list of ScheduleStep) per seed, all of the same length.

    Returns
    -------
    list of CurveSummary
        In the order of ``curves``.

    Examples
    --------
    >>> runs = [[ScheduleStep(1, 0.5, 90, 96)], [ScheduleStep(1, 0.5, 88, 94)]]
    >>> c = summarise_curves({"global": runs})[0]
    >>> c.accuracy, [round(v, 3) for v in c.accuracy_std], [round(v, 1) for v in c.accuracy_high]
    ([95.0], [1.414], [107.7])
    """
    from mlscale_lab.evidence import mean_interval

    out = []
    for method, runs in curves.items():
        sp = np.array([[s.sparsity for s in run] for run in runs])
        acc = np.array([[s.accuracy for s in run] for run in runs])
        mean = acc.mean(axis=0)
        if len(runs) > 1:
            ivs = [mean_interval(acc[:, j]) for j in range(acc.shape[1])]
            std = acc.std(axis=0, ddof=1)
            low, high = [iv.low for iv in ivs], [iv.high for iv in ivs]
        else:
            std, low, high = np.zeros_like(mean), mean.tolist(), mean.tolist()
        out.append(CurveSummary(method, len(runs), sp.mean(axis=0).tolist(), mean.tolist(),
                                np.asarray(std).tolist(), list(low), list(high)))
    return out


@dataclass(frozen=True)
class OneShotPoint:
    """A copy of a model pruned once by global magnitude, without fine-tuning.

    Attributes
    ----------
    amount : float
        Fraction of the weights removed.
    accuracy : float
        Validation accuracy in percent.
    report : list of LayerSparsity
        Where the cut fell.
    """

    amount: float
    accuracy: float
    report: list[LayerSparsity]


def one_shot_sweep(model: nn.Module, data: DigitsSplit,
                   amounts: Sequence[float]) -> list[OneShotPoint]:
    """Prune copies of ``model`` once to each amount (global magnitude, no fine-tuning).

    What :func:`mlscale_lab.views.pruning.sparsity_explorer` shows; ``model`` is untouched.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import load_digits_split, make_mlp
    >>> d = load_digits_split(0, val_size=0.2)
    >>> m = train(make_mlp((64, 16, 10)), d.X_train, d.y_train, epochs=2, lr=1e-2)
    >>> pts = one_shot_sweep(m, d, [0.0, 0.99])
    >>> pts[0].accuracy > pts[1].accuracy
    True
    """
    amounts = [check_amount("one_shot_sweep", a, "amounts[...]") for a in amounts]
    X_val, y_val = _val("one_shot_sweep", data)
    out = []
    for a in amounts:
        m = copy.deepcopy(model)
        if a > 0:
            prune_global(m, a)
        out.append(OneShotPoint(a, accuracy(m, X_val, y_val), sparsity_report(m)))
    return out
