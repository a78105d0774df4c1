"""Plausible wrong answers to lab 04's exercises; tests/exercise_trials.py runs each against
the exercise's test cells in the executed lab, and only the reference may pass."""

WRONG_ANSWERS = {
    "lab04-prequential": [
        # the misconception the lab names: train, then test (the score measures memory)
        "def prequential_correct(model, X, y, batch_size=50):\n"
        "    correct = np.empty(len(y))\n"
        "    for start in range(0, len(y), batch_size):\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        model.partial_fit(xb, yb)\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "    return correct",
        # off by one batch: the short last batch is never predicted nor learned
        "def prequential_correct(model, X, y, batch_size=50):\n"
        "    correct = np.zeros(len(y))\n"
        "    for start in range(0, len(y) - batch_size + 1, batch_size):\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "        model.partial_fit(xb, yb)\n"
        "    return correct",
        # a fixed test set in disguise: predict everything first, then learn everything
        "def prequential_correct(model, X, y, batch_size=50):\n"
        "    correct = (np.asarray(model.predict(X)) == np.asarray(y)).astype(float)\n"
        "    for start in range(0, len(y), batch_size):\n"
        "        model.partial_fit(X[start : start + batch_size], y[start : start + batch_size])\n"
        "    return correct",
        # the lazy answer: wrap the model as a strategy and hand the loop to the library
        "from mlscale_lab.deployment import Stream, Strategy\n"
        "class _Served(Strategy):\n"
        "    def __init__(self, model):\n"
        "        super().__init__()\n"
        "        self.served = model\n"
        "    def start(self, X, y):\n"
        "        self.model = self.served\n"
        "    def learn(self, X, y, y_pred, position):\n"
        "        self.model.partial_fit(X, y)\n"
        "def prequential_correct(model, X, y, batch_size=50):\n"
        "    X1, y1 = np.r_[X[:1], X], np.r_[y[:1], y]\n"
        "    s = Stream(X=X1, y=y1, kind='stationary', drift_points=(), concept_id=np.zeros(len(y1)))\n"
        "    return prequential(s, _Served(model), warmup=1, batch_size=batch_size).correct[1:]",
    ],
    "lab04-prequential-delayed": [
        # the misconception: the labels are treated as if they came with the batch
        "def prequential_delayed(model, X, y, delay, batch_size=50):\n"
        "    correct = np.empty(len(y))\n"
        "    for start in range(0, len(y), batch_size):\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "        model.partial_fit(xb, yb)\n"
        "    return correct",
        # off by one in time: learns batch j - delay before predicting batch j (one batch early)
        "def prequential_delayed(model, X, y, delay, batch_size=50):\n"
        "    starts = list(range(0, len(y), batch_size))\n"
        "    correct = np.empty(len(y))\n"
        "    for j, start in enumerate(starts):\n"
        "        if j >= delay and delay > 0:\n"
        "            old = starts[j - delay]\n"
        "            model.partial_fit(X[old : old + batch_size], y[old : old + batch_size])\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "        if delay == 0:\n"
        "            model.partial_fit(xb, yb)\n"
        "    return correct",
        # off by one in the queue: waits delay + 1 batches
        "def prequential_delayed(model, X, y, delay, batch_size=50):\n"
        "    starts = list(range(0, len(y), batch_size))\n"
        "    correct = np.empty(len(y))\n"
        "    for j, start in enumerate(starts):\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "        if j > delay:\n"
        "            old = starts[j - delay - 1]\n"
        "            model.partial_fit(X[old : old + batch_size], y[old : old + batch_size])\n"
        "    return correct",
        # the delay counted in samples, not batches
        "def prequential_delayed(model, X, y, delay, batch_size=50):\n"
        "    correct = np.empty(len(y))\n"
        "    for start in range(0, len(y), batch_size):\n"
        "        xb, yb = X[start : start + batch_size], y[start : start + batch_size]\n"
        "        correct[start : start + len(yb)] = model.predict(xb) == yb\n"
        "        old = start - delay\n"
        "        if old >= 0:\n"
        "            model.partial_fit(X[old : old + batch_size], y[old : old + batch_size])\n"
        "    return correct",
        # the lazy answer: the library's prequential with label_delay does the loop
        "from mlscale_lab.deployment import Stream, Strategy\n"
        "class _Served(Strategy):\n"
        "    def __init__(self, model):\n"
        "        super().__init__()\n"
        "        self.served = model\n"
        "    def start(self, X, y):\n"
        "        self.model = self.served\n"
        "    def learn(self, X, y, y_pred, position):\n"
        "        self.model.partial_fit(X, y)\n"
        "def prequential_delayed(model, X, y, delay, batch_size=50):\n"
        "    X1, y1 = np.r_[X[:1], X], np.r_[y[:1], y]\n"
        "    s = Stream(X=X1, y=y1, kind='stationary', drift_points=(), concept_id=np.zeros(len(y1)))\n"
        "    r = prequential(s, _Served(model), warmup=1, batch_size=batch_size,\n"
        "                    label_delay=delay * batch_size)\n"
        "    return r.correct[1:]",
    ],
    "lab04-page-hinkley": [
        # the misconception: an alarm is an event, but the test is never started afresh
        "def page_hinkley(errors, delta=0.03, threshold=30.0, min_instances=30):\n"
        "    alarms = []\n"
        "    n, mean, m, m_min = 0, 0.0, 0.0, 0.0\n"
        "    for i, x in enumerate(errors):\n"
        "        n += 1\n"
        "        mean += (x - mean) / n\n"
        "        m += x - mean - delta\n"
        "        m_min = min(m_min, m)\n"
        "        if n >= min_instances and m - m_min > threshold:\n"
        "            alarms.append(i)\n"
        "    return alarms",
        # off by one: the alarm is reported at the next value
        "def page_hinkley(errors, delta=0.03, threshold=30.0, min_instances=30):\n"
        "    alarms = []\n"
        "    n, mean, m, m_min = 0, 0.0, 0.0, 0.0\n"
        "    for i, x in enumerate(errors):\n"
        "        n += 1\n"
        "        mean += (x - mean) / n\n"
        "        m += x - mean - delta\n"
        "        m_min = min(m_min, m)\n"
        "        if n >= min_instances and m - m_min > threshold:\n"
        "            alarms.append(i + 1)\n"
        "            n, mean, m, m_min = 0, 0.0, 0.0, 0.0\n"
        "    return alarms",
        # the sign of delta flipped: every value counts as a rise, the statistic climbs on noise
        "def page_hinkley(errors, delta=0.03, threshold=30.0, min_instances=30):\n"
        "    alarms = []\n"
        "    n, mean, m, m_min = 0, 0.0, 0.0, 0.0\n"
        "    for i, x in enumerate(errors):\n"
        "        n += 1\n"
        "        mean += (x - mean) / n\n"
        "        m += x - mean + delta\n"
        "        m_min = min(m_min, m)\n"
        "        if n >= min_instances and m - m_min > threshold:\n"
        "            alarms.append(i)\n"
        "            n, mean, m, m_min = 0, 0.0, 0.0, 0.0\n"
        "    return alarms",
        # the lazy answer: the library's detector
        "def page_hinkley(errors, delta=0.03, threshold=30.0, min_instances=30):\n"
        "    return detect_drifts(PageHinkley(delta=delta, threshold=threshold,\n"
        "                                     min_instances=min_instances), errors)",
        # the lazy answer, elsewhere: River's detector (River is a test-only dependency here)
        "def page_hinkley(errors, delta=0.03, threshold=30.0, min_instances=30):\n"
        "    from river import drift\n"
        "    det = drift.PageHinkley(delta=delta, threshold=threshold, alpha=1.0, mode='up',\n"
        "                            min_instances=min_instances)\n"
        "    alarms = []\n"
        "    for i, x in enumerate(errors):\n"
        "        det.update(x)\n"
        "        if det.drift_detected:\n"
        "            alarms.append(i)\n"
        "    return alarms",
    ],
    "lab04-no-regression": [
        # the misconception: any drop is a regression (the margin ignored)
        "def no_regression(candidate, production, X, y, max_drop=0.02):\n"
        "    try:\n"
        "        cand = float(np.mean(np.asarray(candidate.predict(X)) == np.asarray(y)))\n"
        "    except Exception as exc:\n"
        "        return False, f'candidate cannot predict: {type(exc).__name__}: {exc}'\n"
        "    if production is None:\n"
        "        return True, f'candidate {cand:.3f}, no production model yet'\n"
        "    prod = float(np.mean(np.asarray(production.predict(X)) == np.asarray(y)))\n"
        "    return cand >= prod, f'candidate {cand:.3f} vs production {prod:.3f}'",
        # off by one at the boundary: a drop equal to max_drop is rejected
        "def no_regression(candidate, production, X, y, max_drop=0.02):\n"
        "    try:\n"
        "        cand = float(np.mean(np.asarray(candidate.predict(X)) == np.asarray(y)))\n"
        "    except Exception as exc:\n"
        "        return False, f'candidate cannot predict: {type(exc).__name__}: {exc}'\n"
        "    if production is None:\n"
        "        return True, f'candidate {cand:.3f}, no production model yet'\n"
        "    prod = float(np.mean(np.asarray(production.predict(X)) == np.asarray(y)))\n"
        "    return prod - cand < max_drop, f'candidate {cand:.3f} vs production {prod:.3f}'",
        # the gate crashes on a broken candidate instead of reporting it
        "def no_regression(candidate, production, X, y, max_drop=0.02):\n"
        "    cand = float(np.mean(np.asarray(candidate.predict(X)) == np.asarray(y)))\n"
        "    if production is None:\n"
        "        return True, f'candidate {cand:.3f}, no production model yet'\n"
        "    prod = float(np.mean(np.asarray(production.predict(X)) == np.asarray(y)))\n"
        "    return prod - cand <= max_drop, f'candidate {cand:.3f} vs production {prod:.3f}'",
        # the lazy answer: the library's check
        "from mlscale_lab.deployment import check_no_regression\n"
        "def no_regression(candidate, production, X, y, max_drop=0.02):\n"
        "    r = check_no_regression(candidate, production, X, y, max_regression=max_drop)\n"
        "    return r.passed, r.reason",
    ],
}
