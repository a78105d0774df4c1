"""Fine-tuning the shared values: Han et al.'s third step after pruning and k-means.

After k-means every weight of a layer points to one of ``2**bits`` centroids. Han, Mao and Dally
(2016, section 3.3) then train the *centroids*: the gradient of a centroid is the sum of the
gradients of the weights that share it, and the assignment of weights to centroids (and the
zeros pruning left) stays fixed. It recovers much of what rounding to a few values cost, at
no cost in bytes: the file still holds one code per non-zero and one codebook per layer.
"""

from __future__ import annotations

import copy
import math

from mlscale_lab.validation import check_int, check_positive


def finetune_centroids(model, X, y, *, epochs: int = 2, lr: float = 1e-3, batch_size: int = 128,
                       seed: int = 0):
    """A copy of the shared ``model`` with its centroids (and biases) trained on ``X, y``.

    Parameters
    ----------
    model : torch.nn.Module
        A model whose ``Linear`` weights hold few distinct values (after :func:`share_weights`,
        pruned or not); zeros stay zero and every weight keeps its centroid.
    X, y : torch.Tensor
        Training rows and labels.
    epochs, lr, batch_size, seed
        Adam on cross-entropy, seeded mini-batches, learning rate annealed to zero.

    Returns
    -------
    torch.nn.Module
        The copy, in eval mode; each layer has at most as many distinct weights as before.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from mlscale_lab.complexity.compression import share_weights
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(256, 8, generator=g); y = (X[:, 0] > 0).long()
    >>> m = share_weights(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)), 2)
    >>> tuned = finetune_centroids(m, X, y, epochs=3, lr=0.01)
    >>> [int(torch.unique(layer.weight).numel()) <= 4 for layer in (tuned[0], tuned[2])]
    [True, True]
    """
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call

    from mlscale_lab.complexity.compression._sharing import linear_layers

    func = "finetune_centroids"
    epochs = check_int(func, "epochs", epochs, low=0)
    batch_size = check_int(func, "batch_size", batch_size, low=1)
    lr = check_positive(func, "lr", lr)
    if len(X) != len(y):
        raise ValueError(f"{func}(y=...): expected {len(X)} labels, one per row of X, got {len(y)}")
    out = copy.deepcopy(model).eval()
    books, plans, params = {}, {}, {}
    for name, layer in linear_layers(out).items():
        w = layer.weight.detach()
        nz = w != 0
        values, codes = torch.unique(w[nz], return_inverse=True)
        books[name] = torch.nn.Parameter(values.clone())
        plans[name] = (nz, codes)
        if layer.bias is not None:
            params[f"{name}.bias"] = layer.bias
    trainable = list(books.values()) + list(params.values())
    opt = torch.optim.Adam(trainable, lr=lr)
    steps = max(1, epochs * math.ceil(len(X) / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)

    def weights():
        ws = {}
        for name, (nz, codes) in plans.items():
            w = torch.zeros(nz.shape, dtype=books[name].dtype)
            ws[f"{name}.weight"] = w.masked_scatter(nz, books[name][codes])
        return ws

    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), batch_size):
            idx = order[start:start + batch_size]
            opt.zero_grad()
            logits = functional_call(out, {**weights(), **params}, (X[idx],))
            F.cross_entropy(logits, y[idx]).backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        for key, w in weights().items():
            out.get_parameter(key).copy_(w)
    return out.eval()
