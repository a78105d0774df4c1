"""Plausible wrong answers to lab 01's exercises; tests/exercise_trials.py runs each against
the exercise's test cell in the executed lab, and only the reference may pass."""

_SIG = ("def cheapest_machine(service, worker_memory_bytes, machines, latency_target_s, rate,\n"
        "                     headroom=1.25, quantile=0.95):\n")

WRONG_ANSWERS = {
    "lab01-cheapest-machine": [
        # the misconception: size by capacity (100 % utilisation is fine), ignore the queue
        _SIG +
        "    ok = [m for m in machines\n"
        "          if worker_memory_bytes * headroom <= m.memory_bytes\n"
        "          and service.quantile(quantile) <= latency_target_s\n"
        "          and m.vcpus / service.mean >= rate]\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
        # memory for one model, not one per worker: every vCPU gets a worker
        _SIG +
        "    ok = []\n"
        "    for m in machines:\n"
        "        if worker_memory_bytes * headroom > m.memory_bytes or rate * service.mean >= m.vcpus:\n"
        "            continue\n"
        "        if ggc_latency_quantile(m.vcpus, rate, service, quantile) <= latency_target_s:\n"
        "            ok.append(m)\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
        # the non-identity: the service's p95 plus the wait's p95 (Erlang C's wait, old style)
        _SIG +
        "    import math\n"
        "    from mlscale_lab.queueing import erlang_c\n"
        "    best = None\n"
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (worker_memory_bytes * headroom)))\n"
        "        if workers < 1 or rate * service.mean >= workers:\n"
        "            continue\n"
        "        p_wait = erlang_c(workers, rate * service.mean)\n"
        "        wait = (math.log(p_wait / (1 - quantile)) / (workers / service.mean - rate)\n"
        "                if p_wait > 1 - quantile else 0.0)\n"
        "        if service.quantile(quantile) + wait <= latency_target_s and (\n"
        "                best is None or m.usd_per_hour < best.usd_per_hour):\n"
        "            best = m\n"
        "    return best",
        # exponential service assumed (M/M/c on the mean) instead of the measured distribution
        _SIG +
        "    best = None\n"
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (worker_memory_bytes * headroom)))\n"
        "        if workers < 1 or rate * service.mean >= workers:\n"
        "            continue\n"
        "        latency = mmc_latency_quantile(workers, rate, service.mean, quantile)\n"
        "        if latency <= latency_target_s and (best is None or m.usd_per_hour < best.usd_per_hour):\n"
        "            best = m\n"
        "    return best",
        # off by one at the boundary: a p95 equal to the target is rejected
        _SIG +
        "    best = None\n"
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (worker_memory_bytes * headroom)))\n"
        "        if workers < 1 or rate * service.mean >= workers:\n"
        "            continue\n"
        "        latency = ggc_latency_quantile(workers, rate, service, quantile)\n"
        "        if latency < latency_target_s and (best is None or m.usd_per_hour < best.usd_per_hour):\n"
        "            best = m\n"
        "    return best",
        # the first machine that fits, not the cheapest (assumes the list is sorted by price)
        _SIG +
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (worker_memory_bytes * headroom)))\n"
        "        if workers < 1 or rate * service.mean >= workers:\n"
        "            continue\n"
        "        if ggc_latency_quantile(workers, rate, service, quantile) <= latency_target_s:\n"
        "            return m\n"
        "    return None",
        # the lazy answer: hand it to the capacity planner
        _SIG +
        "    ok = [m for m in machines if evaluate_plan(m, 1, rate=rate, service=service,\n"
        "          latency_target_s=latency_target_s, worker_memory_bytes=worker_memory_bytes,\n"
        "          quantile=quantile, memory_headroom=headroom).meets_target]\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
    ],
}

WRONG_ANSWERS["lab01-adam-bytes"] = [
    # the misconception: half precision halves everything
    "def adam_step_bytes(n_params, fp32_activation_bytes, batch_bytes, precision='fp32'):\n"
    "    value = 4 if precision == 'fp32' else 2\n"
    "    return int(4 * n_params * value + fp32_activation_bytes * value // 4 + batch_bytes)\n"
    "my_estimate = adam_step_bytes(n_params, estimate.activations_bytes, estimate.batch_bytes)",
    # forgets the fp32 master copy: 12 bytes a parameter in mixed precision
    "def adam_step_bytes(n_params, fp32_activation_bytes, batch_bytes, precision='fp32'):\n"
    "    if precision == 'fp32':\n"
    "        return int(16 * n_params + fp32_activation_bytes + batch_bytes)\n"
    "    return int(12 * n_params + fp32_activation_bytes // 2 + batch_bytes)\n"
    "my_estimate = adam_step_bytes(n_params, estimate.activations_bytes, estimate.batch_bytes)",
    # precision ignored: right for the model state, but 16-bit activations are not halved
    "def adam_step_bytes(n_params, fp32_activation_bytes, batch_bytes, precision='fp32'):\n"
    "    return int(16 * n_params + fp32_activation_bytes + batch_bytes)\n"
    "my_estimate = adam_step_bytes(n_params, estimate.activations_bytes, estimate.batch_bytes)",
    # off by one tensor: Adam counted with one moment
    "def adam_step_bytes(n_params, fp32_activation_bytes, batch_bytes, precision='fp32'):\n"
    "    if precision == 'fp32':\n"
    "        return int(12 * n_params + fp32_activation_bytes + batch_bytes)\n"
    "    return int(12 * n_params + fp32_activation_bytes // 2 + batch_bytes)\n"
    "my_estimate = adam_step_bytes(n_params, estimate.activations_bytes, estimate.batch_bytes)",
    # the lazy answer: the library's total, temporaries and baseline included
    "def adam_step_bytes(n_params, fp32_activation_bytes, batch_bytes, precision='fp32'):\n"
    "    per = 16 if precision == 'fp32' else 16\n"
    "    act = fp32_activation_bytes if precision == 'fp32' else fp32_activation_bytes // 2\n"
    "    return int(per * n_params + act + batch_bytes)\n"
    "my_estimate = estimate.total_bytes",
]

WRONG_ANSWERS["lab01-out-of-core"] = [
    # the misconception: read the whole file, then train in chunks (memory follows the rows)
    "def train_out_of_core(x_path, y_path, n_rows, n_features, chunk_rows):\n"
    "    X = np.fromfile(x_path, dtype=np.float32, count=n_rows * n_features)\n"
    "    X = X.reshape(n_rows, n_features)\n"
    "    y = np.fromfile(y_path, dtype=np.int8, count=n_rows)\n"
    "    model = SGDClassifier(random_state=SEED)\n"
    "    for s in range(0, n_rows, chunk_rows):\n"
    "        model.partial_fit(X[s:s + chunk_rows], y[s:s + chunk_rows], classes=[0, 1])\n"
    "    return model",
    # one mapping of the whole file, never released: every page read stays resident
    "def train_out_of_core(x_path, y_path, n_rows, n_features, chunk_rows):\n"
    "    X = np.memmap(x_path, dtype=np.float32, mode='r', shape=(n_rows, n_features))\n"
    "    y = np.memmap(y_path, dtype=np.int8, mode='r', shape=(n_rows,))\n"
    "    model = SGDClassifier(random_state=SEED)\n"
    "    for s in range(0, n_rows, chunk_rows):\n"
    "        model.partial_fit(np.asarray(X[s:s + chunk_rows]), np.asarray(y[s:s + chunk_rows]),\n"
    "                          classes=[0, 1])\n"
    "    return model",
    # off by one chunk: the last chunk is never read
    "def train_out_of_core(x_path, y_path, n_rows, n_features, chunk_rows):\n"
    "    model = SGDClassifier(random_state=SEED)\n"
    "    for start in range(0, n_rows - chunk_rows, chunk_rows):\n"
    "        X = np.memmap(x_path, dtype=np.float32, mode='r', offset=start * n_features * 4,\n"
    "                      shape=(chunk_rows, n_features))\n"
    "        y = np.memmap(y_path, dtype=np.int8, mode='r', offset=start, shape=(chunk_rows,))\n"
    "        model.partial_fit(np.asarray(X), np.asarray(y), classes=[0, 1])\n"
    "        del X, y\n"
    "    return model",
    # the offset in values, not bytes: chunks overlap and the rows are wrong
    "def train_out_of_core(x_path, y_path, n_rows, n_features, chunk_rows):\n"
    "    model = SGDClassifier(random_state=SEED)\n"
    "    for start in range(0, n_rows, chunk_rows):\n"
    "        rows = min(chunk_rows, n_rows - start)\n"
    "        X = np.memmap(x_path, dtype=np.float32, mode='r', offset=start * n_features,\n"
    "                      shape=(rows, n_features))\n"
    "        y = np.memmap(y_path, dtype=np.int8, mode='r', offset=start, shape=(rows,))\n"
    "        model.partial_fit(np.asarray(X), np.asarray(y), classes=[0, 1])\n"
    "        del X, y\n"
    "    return model",
]
