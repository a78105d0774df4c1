"""Data streams with known drift points: sudden, gradual and recurring concept drift.

A *concept* is a random linear rule ``y = 1 if x @ w + b > 0``; drift swaps the rule while the
inputs keep their distribution, so only a model that learns again can follow it. Each stream
knows where its drifts are (``drift_points``), which is what lets a lab measure how fast a
detector or a strategy reacts.

>>> s = make_stream("sudden", n_samples=2000, drift_points=[1000], seed=0)
>>> s.X.shape, s.y.shape, s.drift_points
((2000, 10), (2000,), (1000,))
>>> float(s.concept_id[999]), float(s.concept_id[1000])
(0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

KINDS = ("stationary", "sudden", "gradual", "recurring")


@dataclass(frozen=True)
class Stream:
    """A finite stream of labelled samples, in arrival order.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,), labels 0/1
    kind : str
        ``"stationary"``, ``"sudden"``, ``"gradual"`` or ``"recurring"``.
    drift_points : tuple of int
        Indices where a new concept starts (the centre of the change for gradual drift).
    concept_id : ndarray of shape (n_samples,)
        Which concept generated each sample (0, 1, ...); for gradual drift, the one drawn.
    width : int
        Width of each gradual transition in samples (0 for a sudden change).
    """

    X: np.ndarray
    y: np.ndarray
    kind: str
    drift_points: tuple[int, ...]
    concept_id: np.ndarray
    width: int = 0

    def __len__(self) -> int:
        return len(self.y)

    def batches(self, batch_size: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(start, X_batch, y_batch)`` in arrival order; the last batch may be short."""
        _check_positive_int("batch_size", batch_size)
        for start in range(0, len(self), batch_size):
            yield start, self.X[start : start + batch_size], self.y[start : start + batch_size]

    def segments(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each stretch between drift points (the whole stream if none)."""
        bounds = [0, *self.drift_points, len(self)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_fraction(name: str, value, *, upper: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number in [0, {upper}], got {value!r}")
    if not 0.0 <= float(value) <= upper:
        raise ValueError(f"{name} must be in [0, {upper}], got {value!r}")
    return float(value)


def _concepts(rng: np.random.Generator, n_concepts: int, n_features: int, n_informative: int):
    """Random unit-norm rules over the first ``n_informative`` features; the rest are noise."""
    weights = np.zeros((n_concepts, n_features))
    weights[:, :n_informative] = rng.normal(size=(n_concepts, n_informative))
    weights /= np.linalg.norm(weights, axis=1, keepdims=True)
    # A small offset keeps classes roughly balanced while making each rule distinct.
    offsets = rng.normal(scale=0.1, size=n_concepts)
    return weights, offsets


def make_stream(
    kind: str = "sudden",
    n_samples: int = 10_000,
    drift_points: Sequence[int] | None = None,
    *,
    n_features: int = 10,
    n_informative: int = 5,
    width: int = 1000,
    label_noise: float = 0.05,
    seed: int | None = 0,
) -> Stream:
    """Generate a binary classification stream whose concept changes at known points.

    Parameters
    ----------
    kind : {"stationary", "sudden", "gradual", "recurring"}
        ``"sudden"``: concept k+1 replaces concept k at each drift point.
        ``"gradual"``: around each drift point, over ``width`` samples, the new concept's share
        rises linearly from 0 to 1 (samples are drawn from one or the other).
        ``"recurring"``: like sudden, but two concepts alternate (A, B, A, B, ...).
        ``"stationary"``: one concept; ``drift_points`` must be empty or None.
    n_samples : int
        Length of the stream.
    drift_points : sequence of int, optional
        Strictly increasing indices in ``(0, n_samples)``. Default: the middle of the stream
        (no drift for ``"stationary"``).
    n_features, n_informative : int
        Input dimension, and how many features the concepts use (the others are pure noise).
    width : int
        Samples over which a gradual drift happens (ignored for other kinds).
    label_noise : float in [0, 0.5]
        Share of labels flipped at random: the best possible accuracy is ``1 - label_noise``.
    seed : int or None
        Seed of the generator; the same seed gives the same stream.

    Returns
    -------
    Stream
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n_samples = _check_positive_int("n_samples", n_samples)
    n_features = _check_positive_int("n_features", n_features)
    n_informative = _check_positive_int("n_informative", n_informative)
    if n_informative > n_features:
        raise ValueError(f"n_informative={n_informative} must be <= n_features={n_features}")
    label_noise = _check_fraction("label_noise", label_noise, upper=0.5)

    if drift_points is None:
        drift_points = () if kind == "stationary" else (n_samples // 2,)
    points = tuple(int(p) for p in drift_points)
    if kind == "stationary" and points:
        raise ValueError(f"drift_points must be empty for a stationary stream, got {points}")
    if kind != "stationary" and not points:
        raise ValueError(f"drift_points must hold at least one index for kind={kind!r}")
    for p in points:
        if not 0 < p < n_samples:
            raise ValueError(
                f"drift_points: {p} is outside the stream; each drift point must be in "
                f"(0, n_samples={n_samples}). Shorten the list or make the stream longer."
            )
    if any(b <= a for a, b in zip(points, points[1:], strict=False)):
        raise ValueError(f"drift_points must be strictly increasing, got {points}")
    if kind == "gradual":
        width = _check_positive_int("width", width)
        gaps = np.diff([0, *points, n_samples])
        if width > 2 * int(gaps.min()):
            raise ValueError(
                f"width={width} is too wide for drift_points={points}: transitions would overlap "
                f"or leave the stream; use width <= {2 * int(gaps.min())}"
            )
    else:
        width = 0

    rng = np.random.default_rng(seed)
    n_concepts = 2 if kind == "recurring" else len(points) + 1
    weights, offsets = _concepts(rng, n_concepts, n_features, n_informative)
    X = rng.normal(size=(n_samples, n_features))

    # Segment index of each sample: 0 before the first drift point, 1 after it, ...
    segment = np.searchsorted(np.asarray(points, dtype=int), np.arange(n_samples), side="right")
    if kind == "gradual":
        # Before its transition window, a sample belongs to the previous concept; inside the
        # window it belongs to the next one with probability rising linearly from 0 to 1.
        segment = np.zeros(n_samples, dtype=int)
        u = rng.random(n_samples)
        idx = np.arange(n_samples)
        for k, p in enumerate(points, start=1):
            share = np.clip((idx - (p - width / 2)) / width, 0.0, 1.0)
            segment = np.where(u < share, k, segment)
    concept = segment % 2 if kind == "recurring" else segment

    scores = np.einsum("ij,ij->i", X, weights[concept]) + offsets[concept]
    y = (scores > 0).astype(np.int64)
    flip = rng.random(n_samples) < label_noise
    y[flip] = 1 - y[flip]
    return Stream(X=X, y=y, kind=kind, drift_points=points, concept_id=concept, width=width)
