"""Plausible wrong answers to lab 01's exercises; tests/exercise_trials.py runs each against
the exercise's test cell in the executed lab, and only the reference may pass."""

WRONG_ANSWERS = {
    "lab01-cheapest-machine": [
        # the misconception: size by capacity (100 % utilisation is fine), ignore the queue
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    ok = [m for m in machines\n"
        "          if req.memory_bytes * headroom <= m.memory_bytes and req.p95_ms <= p95_budget_ms\n"
        "          and m.vcpus * req.throughput_per_cpu / req.batch_size >= requests_per_s]\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
        # memory for one model, not one per worker: every vCPU gets a worker
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    ok = []\n"
        "    for m in machines:\n"
        "        if req.memory_bytes * headroom > m.memory_bytes:\n"
        "            continue\n"
        "        if requests_per_s * req.service_time_s >= m.vcpus:\n"
        "            continue\n"
        "        wait = wait_quantile_ms(m.vcpus, requests_per_s, req.service_time_s)\n"
        "        if req.p95_ms + wait <= p95_budget_ms:\n"
        "            ok.append(m)\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
        # off by one at the boundary: a p95 equal to the budget is rejected
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    best = None\n"
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (req.memory_bytes * headroom)))\n"
        "        if workers < 1 or requests_per_s * req.service_time_s >= workers:\n"
        "            continue\n"
        "        p95 = req.p95_ms + wait_quantile_ms(workers, requests_per_s, req.service_time_s)\n"
        "        if p95 < p95_budget_ms and (best is None or m.usd_per_hour < best.usd_per_hour):\n"
        "            best = m\n"
        "    return best",
        # the first machine that fits, not the cheapest (assumes the list is sorted by price)
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    for m in machines:\n"
        "        workers = min(m.vcpus, int(m.memory_bytes // (req.memory_bytes * headroom)))\n"
        "        if workers < 1 or requests_per_s * req.service_time_s >= workers:\n"
        "            continue\n"
        "        if req.p95_ms + wait_quantile_ms(workers, requests_per_s, req.service_time_s) <= p95_budget_ms:\n"
        "            return m\n"
        "    return None",
        # the lazy answer: hand it to the library
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    return choose_machine(req, machines, p95_budget_ms=p95_budget_ms,\n"
        "                          requests_per_s=requests_per_s, memory_headroom=headroom)",
        # lazy, one level down: the library's check per machine
        "def cheapest_machine(req, machines, p95_budget_ms, requests_per_s, headroom=1.25):\n"
        "    ok = [m for m in machines if check_machine(req, m, p95_budget_ms=p95_budget_ms,\n"
        "          requests_per_s=requests_per_s, memory_headroom=headroom).fits]\n"
        "    return min(ok, key=lambda m: m.usd_per_hour) if ok else None",
    ],
}
