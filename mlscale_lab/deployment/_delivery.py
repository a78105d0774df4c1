"""Delivering a new model: a full retrain against an incremental update, and what each costs.

A retraining job chooses its hyperparameters again and fits from scratch on all the data; an
incremental update takes one ``partial_fit`` pass of the production model over the new batch.
Their compute compares in interleaved rounds of CPU time, on the evidence core:

>>> import time
>>> from mlscale_lab.deployment import make_stream
>>> from mlscale_lab.evidence import interleave
>>> s = make_stream("stationary", 3000, seed=0)
>>> prod = full_retrain(s.X[:2000], s.y[:2000])
>>> cpu = interleave({"retrain": lambda: full_retrain(s.X, s.y),
...                   "update": lambda: incremental_update(prod, s.X[2000:], s.y[2000:])},
...                  rounds=4, clock=time.process_time)
>>> bool(cpu.ratio("update", "retrain").high < 1)
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlscale_lab.deployment._online import sgd_model
from mlscale_lab.validation import check_fraction


def _fit_quietly(model, X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # a capped max_iter is a deliberate compute budget
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def full_retrain(
    X, y, *, alphas: Sequence[float] = (1e-5, 1e-4, 1e-3), seed: int = 0, validation: float = 0.2
):
    """What a retraining job does: choose the regularisation, then fit from scratch.

    The regularisation strength is chosen on a random validation split; then a fresh model is
    fitted on all of ``X, y`` with it. Every retrain pays for the model selection again; an
    incremental update keeps the hyperparameters it has and only takes gradient steps on the
    new data.

    Parameters
    ----------
    X, y : array-like
        All the data the new model learns from.
    alphas : sequence of float
        Candidate L2 strengths of :func:`sgd_model`.
    seed : int
        Seed of the split and of the model.
    validation : float in (0, 1)
        Share of ``X, y`` held out to choose ``alpha``.

    Returns
    -------
    sklearn.linear_model.SGDClassifier
        Fitted on all of ``X, y``.

    Examples
    --------
    >>> from mlscale_lab.deployment import make_stream
    >>> s = make_stream("stationary", 2000, seed=0)
    >>> model = full_retrain(s.X, s.y, alphas=(1e-4, 10.0))
    >>> model.alpha
    0.0001
    """
    from sklearn.base import clone

    check_fraction("full_retrain", "validation", validation, low_open=True, high_open=True)
    if not len(alphas):
        raise ValueError(
            f"full_retrain(alphas={alphas!r}): expected at least one regularisation strength, "
            f"e.g. (1e-4,), got {alphas!r}"
        )
    X, y = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(len(y) * validation))
    val, train = order[:n_val], order[n_val:]
    base = sgd_model(seed)
    scores = []
    for a in alphas:
        model = _fit_quietly(clone(base).set_params(alpha=a), X[train], y[train])
        scores.append(model.score(X[val], y[val]))
    best = alphas[int(np.argmax(scores))]
    return _fit_quietly(clone(base).set_params(alpha=best), X, y)


def incremental_update(model, X, y):
    """A copy of ``model`` updated with one ``partial_fit`` pass over the new data ``X, y``.

    The production model itself is left as it is: the copy goes through the gate first.

    Parameters
    ----------
    model : estimator with ``partial_fit``
        The model serving now.
    X, y : array-like
        The new labelled batch.

    Returns
    -------
    estimator
        The updated copy.

    Examples
    --------
    >>> from mlscale_lab.deployment import make_stream
    >>> s = make_stream("stationary", 2000, seed=0)
    >>> prod = full_retrain(s.X[:1000], s.y[:1000])
    >>> new = incremental_update(prod, s.X[1000:], s.y[1000:])
    >>> new is prod, bool((new.coef_ != prod.coef_).any())
    (False, True)
    """
    import copy

    updated = copy.deepcopy(model)
    updated.partial_fit(np.asarray(X), np.asarray(y))
    return updated
