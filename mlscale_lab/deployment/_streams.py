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

from mlscale_lab.validation import check_choice, check_int, check_number

#: The kinds of stream :func:`make_stream` draws.
KINDS = ("stationary", "sudden", "gradual", "recurring")


@dataclass(frozen=True)
class Stream:
    """A finite stream of labelled samples, in arrival order.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The inputs, in arrival order.
    y : ndarray of shape (n_samples,)
        The labels, 0 or 1.
    kind : str
        ``"stationary"``, ``"sudden"``, ``"gradual"`` or ``"recurring"``.
    drift_points : tuple of int
        Indices where a new concept starts (the centre of the change for gradual drift).
    concept_id : ndarray of shape (n_samples,)
        Which concept generated each sample (0, 1, ...); for gradual drift, the one drawn.
    width : int
        Width of each gradual transition in samples (0 for a sudden change).

    Examples
    --------
    >>> s = make_stream("recurring", 400, [100, 200, 300], seed=1)
    >>> len(s), s.segments()
    (400, [(0, 100), (100, 200), (200, 300), (300, 400)])
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
        """The stream cut into consecutive batches, in arrival order.

        Parameters
        ----------
        batch_size : int
            Samples per batch (>= 1); the last batch may be shorter.

        Yields
        ------
        tuple of (int, ndarray, ndarray)
            ``(start, X_batch, y_batch)``, ``start`` being the position of the batch's first sample.

        Examples
        --------
        >>> s = make_stream("stationary", 250, seed=0)
        >>> [(start, len(yb)) for start, _, yb in s.batches(100)]
        [(0, 100), (100, 100), (200, 50)]
        """
        check_int("Stream.batches", "batch_size", batch_size, low=1)
        for start in range(0, len(self), batch_size):
            yield start, self.X[start : start + batch_size], self.y[start : start + batch_size]

    def segments(self) -> list[tuple[int, int]]:
        """The stretches between drift points, each drawn from one concept (gradual aside).

        Returns
        -------
        list of (int, int)
            ``(start, stop)`` of each stretch; the whole stream when it has no drift point.

        Examples
        --------
        >>> make_stream("sudden", 1000, [400], seed=0).segments()
        [(0, 400), (400, 1000)]
        """
        bounds = [0, *self.drift_points, len(self)]
        return list(zip(bounds[:-1], bounds[1:], strict=True))



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

    Examples
    --------
    >>> s = make_stream("gradual", 3000, [1500], width=1000, seed=0)
    >>> s.width, float(s.concept_id[:1000].mean()), float(s.concept_id[2000:].mean())
    (1000, 0.0, 1.0)
    >>> make_stream("sideways")
    Traceback (most recent call last):
    ...
    ValueError: make_stream(kind='sideways'): expected one of 'stationary', 'sudden', 'gradual', 'recurring', got 'sideways'
    """
    fn = "make_stream"
    check_choice(fn, "kind", kind, KINDS)
    n_samples = check_int(fn, "n_samples", n_samples, low=1)
    n_features = check_int(fn, "n_features", n_features, low=1)
    n_informative = check_int(
        fn, "n_informative", n_informative, low=1, high=n_features,
        hint=f"the concepts can use at most the n_features={n_features} features",
    )
    label_noise = check_number(
        fn, "label_noise", label_noise, low=0, high=0.5,
        hint="beyond 0.5 the labels say the opposite of the concept",
    )

    if drift_points is None:
        drift_points = () if kind == "stationary" else (n_samples // 2,)
    points = tuple(int(p) for p in drift_points)

    def bad_points(allowed: str):
        return ValueError(f"{fn}(drift_points={points!r}): expected {allowed}, got {points!r}")

    if kind == "stationary" and points:
        raise bad_points("no drift point for kind='stationary'")
    if kind != "stationary" and not points:
        raise bad_points(f"at least one index for kind={kind!r}")
    if any(not 0 < p < n_samples for p in points):
        raise bad_points(
            f"indices in (0, n_samples={n_samples}); shorten the list or make the stream longer"
        )
    if any(b <= a for a, b in zip(points, points[1:], strict=False)):
        raise bad_points("strictly increasing indices")
    if kind == "gradual":
        width = check_int(fn, "width", width, low=1)
        widest = 2 * int(np.diff([0, *points, n_samples]).min())
        check_int(
            fn, "width", width, high=widest,
            hint=f"wider transitions around drift_points={points} would overlap or leave the stream",
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
