"""Plausible wrong answers to lab 02's exercises; tests/exercise_trials.py runs each against
the exercise's test cells in the executed lab, and only the reference may pass."""

WRONG_ANSWERS = {
    "lab02-n-components": [
        # off by one: an index, not a count
        "def n_components_for(cumulative, target):\n"
        "    return int(np.searchsorted(np.asarray(cumulative), target))",
        # right counts, but a target of 95 is accepted silently
        "def n_components_for(cumulative, target):\n"
        "    return sel.components_for_variance(cumulative, min(float(target), 1.0))",
    ],
    "lab02-smallest-k": [
        # assumes ks sorted
        "def smallest_k_within_1pt(ks, accuracies, full_accuracy):\n"
        "    return next(k for k, a in zip(ks, accuracies) if a >= full_accuracy - 0.01)",
        # strictly within, drops the boundary
        "def smallest_k_within_1pt(ks, accuracies, full_accuracy):\n"
        "    return min(k for k, a in zip(ks, accuracies) if a > full_accuracy - 0.01 + 1e-9)",
    ],
    "lab02-size-ratio": [
        "size_ratio = chosen.model_bytes / full.model_bytes",
        "class _Always:\n    def __eq__(self, o): return True\n    def __gt__(self, o): return True\n"
        "size_ratio = _Always()",
    ],
    "lab02-leak-free": [
        # selection fitted on all rows, hidden inside the pipeline: leaky
        "from sklearn.preprocessing import FunctionTransformer\n"
        "def leak_free_pipeline(k):\n"
        "    kept = SelectKBest(chi2, k=k).fit(X_noise, y_noise).get_support(indices=True)\n"
        "    return Pipeline([('cols', FunctionTransformer(lambda Z: Z[:, kept] if Z.shape[1] == "
        "X_noise.shape[1] else Z)), ('select', SelectKBest(chi2, k=k)), "
        "('clf', LogisticRegression())])",
        # near chance on noise, but learns nothing anywhere
        "from sklearn.dummy import DummyClassifier\n"
        "def leak_free_pipeline(k):\n"
        "    return Pipeline([('select', SelectKBest(chi2, k=k)), ('clf', DummyClassifier())])",
    ],
}
