"""The task labs 03 and 06 compress: overlapping clusters in 16 dimensions, hidden among 48 noise.

A compression lesson needs a task on which compression can fail. scikit-learn's digits is
not one: an MLP reaches 97-98 % on it and keeps that accuracy with every layer shared at one
bit, so every method looks free. This generated task is harder in a controlled way:

- ten classes, each a mixture of ``clusters_per_class`` Gaussian clusters in ``informative``
  dimensions (unit variance, centres drawn once per ``task_seed`` with spread ``separation``):
  the classes overlap, so even the Bayes-optimal classifier errs, and its accuracy (the
  *ceiling*, computed exactly from the generator's own densities by :meth:`TaskSplit.ceiling_correct`)
  says how far a trained model is from perfect;
- ``noise_features`` more inputs of pure noise, as most pixels of an image carry nothing:
  a network must learn to ignore them, and pruning can remove their weights;
- a few thousand labelled rows, so a dense MLP of LeNet-300-100's shape overfits and sits
  several points below the ceiling; a validation split to choose on and a test split to report
  on; and a pool of unlabelled rows (inputs only) for distillation.

With the defaults a 64-300-100-10 MLP trained for a few seconds on one CPU reaches about
86-88 % against a ceiling near 92 %; 1-bit weights, or 97 % of the weights pruned, cost it
more than ten points (the cliff the labs show). Everything is generated with NumPy from the
seeds: nothing is downloaded, and the same seeds give the same rows on every machine.

>>> t = make_task(seed=0, n_train=200, n_val=100, n_test=100)
>>> tuple(t.X_train.shape), t.X_train.dtype, int(t.y_train.max())
((200, 64), torch.float32, 9)
>>> bool(0.8 < t.ceiling_correct("test").mean() < 1.0)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlscale_lab.validation import check_choice, check_int, check_positive

__all__ = ["TaskSpec", "TaskSplit", "make_task"]

CLASSES = 10
_SPLITS = ("train", "val", "test", "pool")


@dataclass(frozen=True)
class TaskSpec:
    """The generator's parameters: the distribution every split is drawn from.

    Attributes
    ----------
    informative, noise_features, clusters_per_class : int
        Dimensions that carry the class, dimensions of pure noise, clusters per class.
    separation : float
        Spread of the cluster centres (in units of the clusters' own standard deviation);
        smaller overlaps the classes more and lowers the ceiling.
    task_seed : int
        Seeds the cluster centres: the same task for every ``seed`` of :func:`make_task`.
    """

    informative: int = 16
    noise_features: int = 48
    clusters_per_class: int = 2
    separation: float = 1.0
    task_seed: int = 0

    @property
    def n_features(self) -> int:
        """Inputs per row: informative plus noise."""
        return self.informative + self.noise_features

    def centres(self) -> np.ndarray:
        """Cluster centres, shape ``(classes * clusters_per_class, informative)``; cluster ``k``
        belongs to class ``k // clusters_per_class``."""
        rng = np.random.default_rng([self.task_seed, 0x7A5C])
        k = CLASSES * self.clusters_per_class
        return rng.standard_normal((k, self.informative)) * self.separation

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` rows ``(X, y)``: float32 inputs and int64 labels, classes equally likely."""
        centres = self.centres()
        cluster = rng.integers(0, len(centres), n)
        signal = centres[cluster] + rng.standard_normal((n, self.informative))
        noise = rng.standard_normal((n, self.noise_features))
        X = np.concatenate([signal, noise], axis=1).astype(np.float32)
        return X, (cluster // self.clusters_per_class).astype(np.int64)

    def bayes_predict(self, X) -> np.ndarray:
        """The Bayes-optimal class of each row: the largest posterior under the true densities.

        The noise features are independent of the class, so only the informative ones count;
        each class's density is the mean of its clusters' unit Gaussians.
        """
        Z = np.asarray(X, dtype=np.float64)[:, : self.informative]
        centres = self.centres()
        d2 = (Z * Z).sum(1)[:, None] - 2 * Z @ centres.T + (centres * centres).sum(1)[None]
        logp = (-0.5 * d2).reshape(len(Z), CLASSES, self.clusters_per_class)
        top = logp.max(axis=2, keepdims=True)
        return (np.log(np.exp(logp - top).sum(axis=2)) + top[..., 0]).argmax(axis=1)


@dataclass(frozen=True)
class TaskSplit:
    """One seed's rows of the task, as float32 / int64 torch tensors.

    ``X_train, y_train`` train; ``X_val, y_val`` choose (bits, sparsity, a schedule);
    ``X_test, y_test`` report, once; ``X_pool`` holds unlabelled inputs (no labels exist for
    them: a distillation teacher may label them, nothing else can). The attribute names match
    :class:`mlscale_lab.complexity.pruning.DigitsSplit`, so the pruning helpers take either.
    """

    X_train: object
    y_train: object
    X_val: object
    y_val: object
    X_test: object
    y_test: object
    X_pool: object
    spec: TaskSpec = field(default_factory=TaskSpec)
    seed: int = 0

    def ceiling_correct(self, split: str = "test") -> np.ndarray:
        """Per row of ``split`` ("train", "val" or "test"), whether the Bayes-optimal classifier
        is right: the ceiling no model can beat on average, row by row for paired comparisons."""
        split = check_choice("TaskSplit.ceiling_correct", "split", split, _SPLITS[:3])
        X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
        return self.spec.bayes_predict(X.numpy()) == y.numpy()


def make_task(seed: int = 0, *, n_train: int = 4000, n_val: int = 2000, n_test: int = 4000,
              n_pool: int = 0, spec: TaskSpec | None = None) -> TaskSplit:
    """Draw one seed's train, validation, test and unlabelled rows of the task.

    Parameters
    ----------
    seed : int
        Seeds the rows (each seed a fresh sample of the same task; ``spec.task_seed`` fixes
        the task itself).
    n_train, n_val, n_test : int
        Labelled rows per split (at least one each).
    n_pool : int, default 0
        Unlabelled rows for distillation.
    spec : TaskSpec, optional
        The task (the default: 16 informative and 48 noise inputs, 2 clusters per class).

    Returns
    -------
    TaskSplit

    Examples
    --------
    >>> a, b = make_task(seed=1, n_train=50), make_task(seed=1, n_train=50)
    >>> bool((a.X_train == b.X_train).all()), bool((a.X_train == make_task(seed=2, n_train=50).X_train).all())
    (True, False)
    """
    import torch

    func = "make_task"
    seed = check_int(func, "seed", seed)
    sizes = {name: check_int(func, f"n_{name}", n, low=1)
             for name, n in (("train", n_train), ("val", n_val), ("test", n_test))}
    sizes["pool"] = check_int(func, "n_pool", n_pool, low=0)
    spec = TaskSpec() if spec is None else spec
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"{func}(spec={spec!r}): expected a TaskSpec, got {type(spec).__name__}")
    for name in ("informative", "noise_features", "clusters_per_class"):
        check_int(f"{func}(spec=...)", name, getattr(spec, name), low=0 if name == "noise_features" else 1)
    check_positive(f"{func}(spec=...)", "separation", spec.separation)
    rng = np.random.default_rng([seed, 0xC1FF])
    rows = {}
    for name in _SPLITS:  # drawn in a fixed order, so a split's rows do not depend on the others' sizes
        sub = np.random.default_rng(rng.integers(2**63))
        rows[name] = spec.sample(sizes[name], sub)
    t = {name: (torch.from_numpy(X), torch.from_numpy(y)) for name, (X, y) in rows.items()}
    return TaskSplit(t["train"][0], t["train"][1], t["val"][0], t["val"][1], t["test"][0],
                     t["test"][1], t["pool"][0], spec, seed)
