"""Weight sharing: k-means quantization of a layer's weights to ``2**bits`` shared values.

Each weight is replaced by the nearest of ``2**bits`` centroids (a codebook per layer), so a
layer stores ``bits`` per weight plus the codebook instead of 32 bits per weight (Han, Mao and
Dally, *Deep Compression*, 2016). The centroids come from scikit-learn's ``KMeans`` in one
dimension, started from evenly spaced values between the smallest and largest weight (the
linear initialisation the paper found best: it keeps a few centroids for the rare large
weights). Zeros left by pruning stay exactly zero: only non-zero weights are clustered.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from mlscale_lab.validation import check_int

MAX_BITS = 16
_FIT_SAMPLE = 20_000


@dataclass(frozen=True)
class Codebook:
    """A layer after k-means: ``centroids[codes]`` are the shared weights.

    Attributes
    ----------
    centroids : numpy.ndarray
        The shared values, float32, sorted ascending (at most ``2**bits`` of them).
    codes : numpy.ndarray
        For each clustered weight, the index of its centroid (unsigned integers).
    bits : int
        Bits per code.
    """

    centroids: np.ndarray
    codes: np.ndarray
    bits: int

    def values(self) -> np.ndarray:
        """The shared weights, ``centroids[codes]``."""
        return self.centroids[self.codes]


def kmeans_codebook(values, bits: int, *, seed: int = 0, sample: int = _FIT_SAMPLE) -> Codebook:
    """Cluster 1-D ``values`` into at most ``2**bits`` shared values with k-means.

    The centroids are fitted on at most ``sample`` values drawn at random (seeded) and every
    value is then assigned to its nearest centroid: for a million weights this is the same
    codebook to within noise, at a fraction of the time.

    Parameters
    ----------
    values : array-like
        The weights (any shape; flattened).
    bits : int in [1, 16]
        Bits per code: at most ``2**bits`` centroids (fewer when there are fewer distinct values).
    seed : int, default 0
        Seeds the sample the centroids are fitted on.
    sample : int, default 20000
        Most values used to fit the centroids.

    Returns
    -------
    Codebook

    Examples
    --------
    >>> cb = kmeans_codebook([-1.0, -0.9, 1.0, 1.1, 1.2], bits=1)
    >>> cb.centroids.astype(float).round(2).tolist(), cb.codes.tolist()
    ([-0.95, 1.1], [0, 0, 1, 1, 1])
    """
    from sklearn.cluster import KMeans

    func = "kmeans_codebook"
    bits = check_int(func, "bits", bits, low=1, high=MAX_BITS)
    sample = check_int(func, "sample", sample, low=2)
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError(f"{func}(values=...): expected at least one finite value, got "
                         f"{x.size} values" + ("" if x.size == 0 else " with NaN or inf"))
    distinct = np.unique(x)
    k = min(2**bits, distinct.size)
    if k == distinct.size:  # nothing to cluster: every distinct value is a centroid
        centroids = distinct
    else:
        rng = np.random.default_rng(seed)
        fit = x if x.size <= sample else rng.choice(x, size=sample, replace=False)
        init = np.linspace(x.min(), x.max(), k).reshape(-1, 1)
        km = KMeans(n_clusters=k, init=init, n_init=1, random_state=seed).fit(fit.reshape(-1, 1))
        centroids = np.unique(km.cluster_centers_.ravel())
    centroids = np.unique(centroids.astype(np.float32))
    # Nearest centroid: the boundaries between neighbours are their midpoints.
    cuts = (centroids[:-1].astype(np.float64) + centroids[1:]) / 2.0
    codes = np.searchsorted(cuts, x).astype(np.uint8 if bits <= 8 else np.uint16)
    return Codebook(centroids, codes, bits)


def linear_layers(model) -> dict[str, object]:
    """The model's ``nn.Linear`` layers by module name, in order (``{"0": Linear, "2": ...}``).

    Examples
    --------
    >>> from torch import nn
    >>> list(linear_layers(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))))
    ['0', '2']
    """
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"linear_layers(model={type(model).__name__}): expected a torch nn.Module, "
                        f"got {type(model).__name__}")
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}


def _bits_per_layer(func: str, model, bits) -> dict[str, int | None]:
    layers = linear_layers(model)
    if not layers:
        raise ValueError(f"{func}(model=...): expected a model with nn.Linear layers, got none")
    if isinstance(bits, dict):
        unknown = set(bits) - set(layers)
        if unknown:
            raise ValueError(f"{func}(bits={bits!r}): expected keys among the Linear layers "
                             f"{list(layers)}, got {sorted(unknown)}")
        return {name: (None if bits.get(name) is None
                       else check_int(func, f"bits[{name!r}]", bits[name], low=1, high=MAX_BITS))
                for name in layers}
    b = check_int(func, "bits", bits, low=1, high=MAX_BITS)
    return dict.fromkeys(layers, b)


def share_weights(model, bits, *, seed: int = 0, sample: int = _FIT_SAMPLE):
    """A copy of ``model`` whose Linear weights are k-means shared (biases stay float32).

    Parameters
    ----------
    model : torch.nn.Module
        A trained model, possibly pruned (made permanent: zeros stay zero and are not clustered).
    bits : int or dict
        Bits per weight for every Linear layer, or ``{layer name: bits}`` (see
        :func:`linear_layers` for the names); a layer missing from the dict, or mapped to
        None, keeps its float32 weights.
    seed, sample : int
        Passed to :func:`kmeans_codebook`.

    Returns
    -------
    torch.nn.Module
        The copy; the original is untouched.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> torch.manual_seed(0) and None
    >>> m = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> shared = share_weights(m, {"0": 2})
    >>> len(torch.unique(shared[0].weight)), len(torch.unique(shared[2].weight))
    (4, 16)
    """
    import torch

    func = "share_weights"
    check_int(func, "sample", sample, low=2)
    plan = _bits_per_layer(func, model, bits)
    out = copy.deepcopy(model)
    layers = linear_layers(out)
    with torch.no_grad():
        for name, b in plan.items():
            if b is None:
                continue
            w = layers[name].weight
            flat = w.detach().cpu().numpy().ravel()
            nz = np.flatnonzero(flat)
            if nz.size == 0:
                continue
            cb = kmeans_codebook(flat[nz], b, seed=seed, sample=sample)
            new = np.zeros_like(flat)
            new[nz] = cb.values()
            w.copy_(torch.from_numpy(new.reshape(tuple(w.shape))))
    return out


def shared_layer_bytes(n_weights: int, bits: int, *, centroid_bytes: int = 4) -> int:
    """Bytes of one k-means-shared layer: packed codes plus the codebook.

    ``ceil(n_weights * bits / 8)`` bytes of codes and ``2**bits`` centroids of
    ``centroid_bytes`` each (float32 by default). The codebook is what makes 8 bits a poor
    choice for a small layer.

    Examples
    --------
    >>> shared_layer_bytes(1000, 4)   # 500 bytes of codes + 16 centroids * 4 bytes
    564
    >>> shared_layer_bytes(1000, 8)   # 1000 + 256 * 4: the codebook outweighs the codes
    2024
    """
    func = "shared_layer_bytes"
    n_weights = check_int(func, "n_weights", n_weights, low=0)
    bits = check_int(func, "bits", bits, low=1, high=MAX_BITS)
    centroid_bytes = check_int(func, "centroid_bytes", centroid_bytes, low=1)
    return math.ceil(n_weights * bits / 8) + 2**bits * centroid_bytes
