"""Pruning masks on ``nn.Linear`` weights with ``torch.nn.utils.prune``, and making them permanent."""

from __future__ import annotations

import torch
import torch.nn.utils.prune as prune
from torch import nn

from mlscale_lab.validation import check_fraction

_AMOUNT_HINT = ("the fraction of the still unpruned weights to remove: for 90% pass 0.9 "
                "(1.0 would remove every weight)")


def check_amount(func: str, amount, name: str = "amount") -> float:
    """A pruning fraction in [0, 1) as a float, or a clear error naming ``func`` and ``name``.

    Examples
    --------
    >>> check_amount("prune_global", 0.9)
    0.9
    >>> check_amount("prune_global", 1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: prune_global(amount=1.0): expected a finite number >= 0 and < 1, got 1.0; ...
    """
    return check_fraction(func, name, amount, high_open=True, hint=_AMOUNT_HINT)


def _linear_layers(func: str, model: nn.Module) -> list[nn.Linear]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise TypeError(f"{func}(model={type(model).__name__}): expected a model holding at "
                        f"least one nn.Linear layer to prune, got a {type(model).__name__} "
                        "without one")
    return layers


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The ``(module, "weight")`` pairs of every ``nn.Linear`` layer, as ``prune`` expects them.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> len(prunable_weights(make_mlp((4, 3, 2))))
    2
    """
    return [(m, "weight") for m in _linear_layers("prunable_weights", model)]


def prune_global(model: nn.Module, amount: float) -> None:
    """Global magnitude pruning, ranked across all ``nn.Linear`` layers together.

    Removes the ``amount`` fraction of the *still unpruned* weights with the smallest absolute
    value (``prune.global_unstructured`` with ``L1Unstructured``), so layers end at different
    sparsities. Masks stay on (see :func:`make_permanent`).

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, weight_sparsity
    >>> m = make_mlp((8, 16, 4))
    >>> prune_global(m, 0.5)
    >>> round(weight_sparsity(m), 2)
    0.5
    """
    amount = check_amount("prune_global", amount)
    prune.global_unstructured(prunable_weights(model), pruning_method=prune.L1Unstructured,
                              amount=amount)


def prune_layerwise(model: nn.Module, amount: float) -> None:
    """Layer-wise magnitude pruning: remove ``amount`` of each layer's unpruned weights.

    ``prune.l1_unstructured`` per layer, so every layer ends at the same sparsity.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, sparsity_report
    >>> m = make_mlp((8, 16, 4))
    >>> prune_layerwise(m, 0.5)
    >>> [round(r.sparsity, 2) for r in sparsity_report(m) if r.name.endswith("weight")]
    [0.5, 0.5]
    """
    amount = check_amount("prune_layerwise", amount)
    for module, name in prunable_weights(model):
        prune.l1_unstructured(module, name, amount=amount)


def prune_random(model: nn.Module, amount: float, seed: int = 0) -> None:
    """The baseline a sound pruning study reports: remove ``amount`` of the unpruned weights at
    random (``RandomUnstructured`` over all layers), seeded.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, weight_sparsity
    >>> m = make_mlp((8, 16, 4))
    >>> prune_random(m, 0.25, seed=1)
    >>> round(weight_sparsity(m), 2)
    0.25
    """
    amount = check_amount("prune_random", amount)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        prune.global_unstructured(prunable_weights(model), pruning_method=prune.RandomUnstructured,
                                  amount=amount)


def prune_structured(model: nn.Module, amount: float, *, n: int | float = 1) -> None:
    """Structured pruning of whole neurons in every ``nn.Linear`` layer but the last.

    Removes the ``amount`` fraction of weight rows with the smallest L-``n`` norm
    (``prune.ln_structured`` with ``dim=0``); the last layer's rows are the model's outputs and
    stay. :func:`shrink_linear_stack` then builds the physically smaller model.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> m = make_mlp((8, 16, 4))
    >>> prune_structured(m, 0.5)
    >>> int((m[0].weight_mask.sum(dim=1) == 0).sum())
    8
    """
    amount = check_amount("prune_structured", amount)
    for module, name in prunable_weights(model)[:-1]:
        prune.ln_structured(module, name, amount=amount, n=n, dim=0)


def make_permanent(model: nn.Module) -> nn.Module:
    """``prune.remove`` on every pruned parameter: zeros stay, masks and ``*_orig`` copies go.

    Returns
    -------
    torch.nn.Module
        The same model, changed in place.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> m = make_mlp((4, 2))
    >>> prune_global(m, 0.5)
    >>> sorted(make_permanent(m).state_dict())
    ['0.bias', '0.weight']
    """
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, prune.BasePruningMethod):
                prune.remove(module, hook._tensor_name)
    return model


def effective_tensor(module: nn.Module, name: str) -> torch.Tensor | None:
    """The tensor a forward pass would use now, detached: ``orig * mask`` when masked.

    After training, a masked module's ``weight`` attribute is stale until the next forward
    pass, so the product is recomputed. ``None`` for a missing bias.

    Examples
    --------
    >>> lin = nn.Linear(2, 1)
    >>> _ = prune.l1_unstructured(lin, "weight", amount=1.0)
    >>> bool((effective_tensor(lin, "weight") == 0).all())
    True
    """
    if hasattr(module, name + "_orig"):
        return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach().clone()
    t = getattr(module, name)
    return None if t is None else t.detach().clone()


def effective_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors the model computes with, masks applied, under their plain names.

    ``*_orig``/``*_mask`` pairs are folded back into ``weight``, so a pruned model and its
    :func:`make_permanent` twin give the same dict.

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp
    >>> m = make_mlp((4, 2))
    >>> prune_global(m, 0.5)
    >>> list(effective_state_dict(m))
    ['0.weight', '0.bias']
    """
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
