"""Plausible wrong answers to lab 02's exercises.

tests/exercise_trials.py runs each one against its exercise's test cells in the executed lab;
only the reference answer may pass. Each exercise has the misconception it is about, an
off-by-one, and a lazy answer that hands the work to a helper.
"""

WRONG_ANSWERS = {
    "lab02-n-components": [
        # misconception: PCA without centring (the first direction points at the mean)
        "def n_components_for(X, target):\n"
        "    target = float(target)\n"
        "    if not 0 < target <= 1:\n"
        "        raise ValueError('target must be in (0, 1]')\n"
        "    s = np.linalg.svd(np.asarray(X, dtype=float), compute_uv=False)\n"
        "    share = np.cumsum(s**2) / np.sum(s**2)\n"
        "    return min(int(np.searchsorted(share, target - 1e-9)) + 1, len(share))",
        # misconception: standardise first (a correlation-matrix PCA answers another question)
        "def n_components_for(X, target):\n"
        "    target = float(target)\n"
        "    if not 0 < target <= 1:\n"
        "        raise ValueError('target must be in (0, 1]')\n"
        "    X = np.asarray(X, dtype=float)\n"
        "    Xc = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12)\n"
        "    s = np.linalg.svd(Xc, compute_uv=False)\n"
        "    share = np.cumsum(s**2) / np.sum(s**2)\n"
        "    return min(int(np.searchsorted(share, target - 1e-9)) + 1, len(share))",
        # off by one: the index of the first component that reaches the target, not a count
        "def n_components_for(X, target):\n"
        "    target = float(target)\n"
        "    if not 0 < target <= 1:\n"
        "        raise ValueError('target must be in (0, 1]')\n"
        "    X = np.asarray(X, dtype=float)\n"
        "    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)\n"
        "    share = np.cumsum(s**2) / np.sum(s**2)\n"
        "    return int(np.argmax(share >= target - 1e-9))",
        # lazy: scikit-learn's PCA picks the count for a fractional n_components
        "from sklearn.decomposition import PCA\n"
        "def n_components_for(X, target):\n"
        "    if not 0 < float(target) <= 1:\n"
        "        raise ValueError('target must be in (0, 1]')\n"
        "    return PCA(n_components=float(target), svd_solver='full').fit(X).n_components_",
        # lazy: the lab's own helpers
        "def n_components_for(X, target):\n"
        "    return sel.components_for_variance(sel.explained_variance_curve(X), target)",
        # right counts, but a target of 95 is accepted silently
        "def n_components_for(X, target):\n"
        "    X = np.asarray(X, dtype=float)\n"
        "    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)\n"
        "    share = np.cumsum(s**2) / np.sum(s**2)\n"
        "    return min(int(np.searchsorted(share, min(float(target), 1.0) - 1e-9)) + 1, len(share))",
    ],
    "lab02-choose-k": [
        # misconception: the k with the highest CV mean
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    return int(ks[best])",
        # the misconception the lab names: folds taken as independent, s / sqrt(J)
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    se = scores[best].std(ddof=1) / np.sqrt(J)\n"
        "    return int(ks[means >= means[best] - se - 1e-12].min())",
        # off by one: n_test / n_train taken as 1 / n_folds instead of 1 / (n_folds - 1)
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    se = scores[best].std(ddof=1) * np.sqrt(1 / J + 1 / n_folds)\n"
        "    return int(ks[means >= means[best] - se - 1e-12].min())",
        # numpy's default standard deviation (ddof=0), not the sample one
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    se = scores[best].std() * np.sqrt(1 / J + 1 / (n_folds - 1))\n"
        "    return int(ks[means >= means[best] - se - 1e-12].min())",
        # each row's own standard error instead of the best row's
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    se = scores.std(axis=1, ddof=1) * np.sqrt(1 / J + 1 / (n_folds - 1))\n"
        "    return int(ks[means + se >= means[best] - 1e-12].min())",
        # one standard deviation, not one standard error
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    return int(ks[means >= means[best] - scores[best].std(ddof=1) - 1e-12].min())",
        # assumes ks sorted: the first row within the bar in the order given
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    ks, scores = np.asarray(ks), np.asarray(fold_scores, dtype=float)\n"
        "    means = scores.mean(axis=1)\n"
        "    best = int(np.argmax(means))\n"
        "    J = scores.shape[1]\n"
        "    se = scores[best].std(ddof=1) * np.sqrt(1 / J + 1 / (n_folds - 1))\n"
        "    return int(next(k for k, m in zip(ks, means) if m >= means[best] - se - 1e-12))",
        # lazy: the lab's helper on rows built for it
        "def choose_k(ks, fold_scores, n_folds):\n"
        "    rows = [sel.SweepPoint('chi2', int(k), int(k), float(np.mean(f)), float(np.std(f, ddof=1)),"
        " 0, 0.0, 0.0, 0.0, 1, folds=int(n_folds), cv_repeats=len(f) // int(n_folds))"
        " for k, f in zip(ks, fold_scores)]\n"
        "    return sel.one_standard_error_k(rows).k",
    ],
    "lab02-leak-free": [
        # misconception: select on all rows, then cross-validate the classifier
        "def leak_free_fold_accuracies(X, y, k, folds):\n"
        "    kept = SelectKBest(chi2, k=k).fit_transform(X, y)\n"
        "    return list(cross_val_score(LogisticRegression(max_iter=300), kept, y, cv=folds))",
        # misconception inside the loop: the selector still sees every row
        "def leak_free_fold_accuracies(X, y, k, folds):\n"
        "    X, y = np.asarray(X), np.asarray(y)\n"
        "    select = SelectKBest(chi2, k=k).fit(X, y)\n"
        "    out = []\n"
        "    for train, test in folds.split(X, y):\n"
        "        clf = LogisticRegression(max_iter=300).fit(select.transform(X[train]), y[train])\n"
        "        out.append(clf.score(select.transform(X[test]), y[test]))\n"
        "    return out",
        # off by one: train and test swapped (fits on one fold, tests on the other four)
        "def leak_free_fold_accuracies(X, y, k, folds):\n"
        "    X, y = np.asarray(X), np.asarray(y)\n"
        "    out = []\n"
        "    for test, train in folds.split(X, y):\n"
        "        select = SelectKBest(chi2, k=k).fit(X[train], y[train])\n"
        "        clf = LogisticRegression(max_iter=300).fit(select.transform(X[train]), y[train])\n"
        "        out.append(clf.score(select.transform(X[test]), y[test]))\n"
        "    return out",
        # scores the training rows
        "def leak_free_fold_accuracies(X, y, k, folds):\n"
        "    X, y = np.asarray(X), np.asarray(y)\n"
        "    out = []\n"
        "    for train, test in folds.split(X, y):\n"
        "        select = SelectKBest(chi2, k=k).fit(X[train], y[train])\n"
        "        clf = LogisticRegression(max_iter=300).fit(select.transform(X[train]), y[train])\n"
        "        out.append(clf.score(select.transform(X[train]), y[train]))\n"
        "    return out",
        # lazy: the lab's demo, one number repeated
        "def leak_free_fold_accuracies(X, y, k, folds):\n"
        "    acc = sel.leakage_demo(X, y, k=k).leakage_free_accuracy\n"
        "    return [acc] * folds.get_n_splits()",
    ],
    "lab02-continuous-top-k": [
        # misconception: min-max scale, then chi2 (hides the error, keeps the problem)
        "def top_k_continuous(X, y, k):\n"
        "    scores, _ = chi2(MinMaxScaler().fit_transform(X), y)\n"
        "    return np.sort(np.argsort(scores)[-k:])",
        # misconception: shift to non-negative, then chi2
        "def top_k_continuous(X, y, k):\n"
        "    X = np.asarray(X, dtype=float)\n"
        "    scores, _ = chi2(X - X.min(axis=0), y)\n"
        "    return np.sort(np.argsort(scores)[-k:])",
        # off by one: drops the best column, keeps the (k+1)-th
        "def top_k_continuous(X, y, k):\n"
        "    scores, _ = f_classif(X, y)\n"
        "    return np.sort(np.argsort(scores)[-k - 1:-1])",
        # lazy: the columns that vary most
        "def top_k_continuous(X, y, k):\n"
        "    return np.sort(np.argsort(np.asarray(X).var(axis=0))[-k:])",
        # lazy: the lab's helper
        "def top_k_continuous(X, y, k):\n"
        "    return np.sort(np.argsort(sel.feature_scores(X, y, 'f_test'))[-k:])",
    ],
}
