"""A hyperparameter search spread over a Dask cluster through joblib's Dask backend.

scikit-learn parallelises with joblib; inside ``joblib.parallel_config(backend="dask")`` the
fits of a ``GridSearchCV`` become Dask tasks, so the same search code runs on a laptop's
processes or on a cluster's machines.
"""

from __future__ import annotations

import time

from mlscale_lab.validation import check_int

__all__ = ["dask_grid_search"]


def dask_grid_search(client, param_grid: dict | None = None, *, cv: int = 3, seed: int = 0):
    """``GridSearchCV`` of an SVC on the digits data, its fits spread over the cluster with
    joblib's Dask backend.

    Parameters
    ----------
    client : distributed.Client
    param_grid : dict, optional
        Grid over ``C`` and ``gamma``; a 3 x 3 grid by default.
    cv : int
        Folds (>= 2).
    seed : int
        Seed of the folds' shuffle.

    Returns
    -------
    search : GridSearchCV
        Fitted.
    seconds : float
    fits_per_worker : dict
        Tasks each worker ran (``{address: count}``).
    """
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.svm import SVC

    cv = check_int("dask_grid_search", "cv", cv, low=2)
    X, y = load_digits(return_X_y=True)
    grid = param_grid or {"C": [0.5, 5.0, 50.0], "gamma": [1e-4, 1e-3, 1e-2]}
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    search = GridSearchCV(SVC(), grid, cv=folds, n_jobs=-1)
    from distributed import get_task_stream

    start = time.perf_counter()
    with get_task_stream(client) as stream, joblib.parallel_config(backend="dask"):
        search.fit(X, y)
    seconds = time.perf_counter() - start
    per_worker: dict[str, int] = {}
    for task in stream.data:
        per_worker[task["worker"]] = per_worker.get(task["worker"], 0) + 1
    return search, seconds, per_worker
