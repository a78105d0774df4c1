"""Structured pruning made real: physically smaller ``nn.Linear`` layers, same outputs."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mlscale_lab.complexity.pruning._masks import effective_tensor

ELEMENTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
    nn.Softplus, nn.Identity, nn.Dropout,
)
"""Modules that act element-wise (or not at all, in eval mode) between two Linear layers: a
removed neuron's constant output passes through them unchanged in shape, so it can be folded
into the next layer's bias exactly."""


def _check_stack(model) -> list[nn.Module]:
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"shrink_linear_stack(model={type(model).__name__}): expected an "
                        f"nn.Sequential of Linear layers and activations, got a "
                        f"{type(model).__name__}")
    for name, module in model.named_children():
        if not isinstance(module, (nn.Linear, *ELEMENTWISE)):
            raise TypeError(
                f"shrink_linear_stack cannot shrink layer {name!r} of type "
                f"{type(module).__name__}: it handles nn.Linear layers with element-wise "
                f"activations between them ({', '.join(c.__name__ for c in ELEMENTWISE)})"
            )
    children = list(model.children())
    if not any(isinstance(m, nn.Linear) for m in children):
        raise TypeError("shrink_linear_stack(model=Sequential): expected at least one "
                        "nn.Linear layer, got none")
    return children


@torch.no_grad()
def shrink_linear_stack(model: nn.Module) -> nn.Sequential:
    """A new, physically smaller ``nn.Sequential`` without the neurons whose weight rows are all zero.

    A removed neuron's output does not vanish: it is the constant ``act(bias)``. That constant
    times the next layer's column for the neuron is folded into the next layer's bias, so the
    shrunk model computes the same outputs as the masked one (up to float rounding). The last
    Linear layer keeps all its rows: they are the model's outputs.

    Parameters
    ----------
    model : nn.Sequential
        Linear layers with element-wise activations (ReLU, Tanh, GELU, Dropout, ...) between
        them, masked (e.g. after :func:`prune_structured`) or made permanent.

    Returns
    -------
    torch.nn.Sequential
        New layers, in eval mode; ``model`` is untouched.

    Raises
    ------
    TypeError
        For a model that is not an ``nn.Sequential``, or that holds a layer this function
        cannot shrink (the message names the layer and its type).

    Examples
    --------
    >>> from mlscale_lab.complexity.pruning import make_mlp, prune_structured
    >>> m = make_mlp((8, 16, 4))
    >>> prune_structured(m, 0.5)
    >>> small = shrink_linear_stack(m)
    >>> small[0].out_features, small[2].in_features
    (8, 8)
    >>> x = torch.randn(5, 8)
    >>> bool(torch.allclose(small(x), m(x), atol=1e-6))
    True
    """
    children = _check_stack(model)
    linear_at = [i for i, m in enumerate(children) if isinstance(m, nn.Linear)]
    weights = {i: effective_tensor(children[i], "weight") for i in linear_at}
    biases = {i: effective_tensor(children[i], "bias") for i in linear_at}
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
