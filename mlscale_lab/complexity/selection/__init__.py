"""Shrink a model's inputs with feature selection or PCA, and measure what it buys and costs.

Lab 02's helpers, imported as a module: ``from mlscale_lab.complexity import selection as sel``.
Each sweep returns a table (a list of :class:`SweepPoint`, one row per ``k``): cross-validated
accuracy, the bytes a deployment must hold, fit time and prediction latency, all measured.
Plots and the explorer widget live in :mod:`mlscale_lab.views.selection`.

One idea per private module:

- ``_checks``: arguments checked at the door (chi-squared on negative features says why not);
- ``_pca``: how many components keep how much variance;
- ``_data``: generated wide counts and pure noise;
- ``_pipelines``: :func:`selection_pipeline` and what a fitted one costs to serve;
- ``_sweep``: cross-validated, timed sweeps over ``k``;
- ``_choose``: choosing ``k`` (one-standard-error rule, corrected for overlapping folds),
  comparing rows fold by fold, and reporting the choice on held-out rows;
- ``_compare``: selectors side by side, and their per-column scores;
- ``_leakage``: the selection-leakage trap.

Importing this package imports scikit-learn; ``import mlscale_lab`` does not import it.

>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> pipe = selection_pipeline("chi2", 2).fit(X, y)
>>> features_to_collect(pipe, X.shape[1])
2
"""

from mlscale_lab.complexity.selection._checks import (
    CHI2_HINT,
    check_k,
    check_nonnegative,
    check_variance_target,
)
from mlscale_lab.complexity.selection._choose import (
    accuracy_difference,
    held_out_accuracy,
    held_out_correct,
    one_standard_error_k,
    smallest_k_within,
)
from mlscale_lab.complexity.selection._compare import compare_selectors, feature_scores
from mlscale_lab.complexity.selection._data import make_wide_counts, noise_data
from mlscale_lab.complexity.selection._leakage import LeakageResult, leakage_demo
from mlscale_lab.complexity.selection._pca import (
    components_for_variance,
    components_table,
    explained_variance_curve,
)
from mlscale_lab.complexity.selection._pipelines import (
    METHODS,
    SELECTORS,
    default_classifier,
    features_to_collect,
    mutual_info_scores,
    selection_pipeline,
    serving_bytes,
)
from mlscale_lab.complexity.selection._sweep import (
    SweepPoint,
    by_method,
    evaluate,
    evaluate_many,
    sweep,
)

__all__ = [
    "CHI2_HINT", "METHODS", "SELECTORS", "LeakageResult", "SweepPoint", "accuracy_difference",
    "by_method",
    "check_k", "check_nonnegative", "check_variance_target", "compare_selectors",
    "components_for_variance", "components_table", "default_classifier", "evaluate",
    "evaluate_many", "explained_variance_curve", "feature_scores", "features_to_collect",
    "held_out_accuracy", "held_out_correct", "leakage_demo", "make_wide_counts", "mutual_info_scores", "noise_data",
    "one_standard_error_k", "selection_pipeline", "serving_bytes", "smallest_k_within", "sweep",
]
