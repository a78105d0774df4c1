"""Lab 02 (feature selection and PCA) budgets: the whole lab, and the explorer's slider.

Run on a quiet machine: ``.venv/bin/python benchmarks/bench_selection.py``.

- The lab under the headless runner, as ``mlscale-lab run 02`` does: wall seconds, peak memory
  of the kernel's process tree, and the kernel's own CPU seconds (user + system, read by a cell
  appended to a temporary copy). Goal: <= 40 s and <= 1000 MB (metadata budget); design target
  about 60% of the time budget, i.e. <= 24 s.
- The explorer: the slowest of many :meth:`SweepExplorer.update` calls on a digits sweep.
  Goal: < 100 ms (typically well under 1 ms).
- The wide-data gain over seeds: the one-standard-error k (2x5-fold CV, corrected standard
  error) against all 2,000 features, on each seed's 100 held-out rows, paired bootstrap.
  Goal: the lower end of every seed's interval above 0 (the lab checks above 5 points on seed 0).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

from mlscale_lab.harness.labs import resolve_labs
from mlscale_lab.harness.runner import run_lab

MB = 1024**2
CPU_CELL = "import os\n_t = os.times()\nprint('KERNEL_CPU', _t.user + _t.system)"


def bench_lab() -> None:
    path = resolve_labs(["02"])[0]
    nb = nbformat.read(path, as_version=4)
    budget = nb.metadata["mlscale"]["budget"]
    nb.cells.append(new_code_cell(CPU_CELL))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        nbformat.write(nb, copy)
        run = run_lab(copy, executed_dir=Path(tmp) / "out")
        executed = nbformat.read(Path(tmp) / "out" / path.name, as_version=4)
    cpu = None
    for out in executed.cells[-1].get("outputs", []):
        if "KERNEL_CPU" in out.get("text", ""):
            cpu = float(out["text"].split()[-1])
    print(f"lab {path.stem}: status {run.status}, {run.seconds:.1f} s wall "
          f"(budget {budget['seconds']} s, design target {0.6 * budget['seconds']:.0f} s), "
          f"kernel CPU {cpu if cpu is None else f'{cpu:.1f}'} s, "
          f"peak {run.peak_memory_bytes / MB:.0f} MB (budget {budget['peak_memory_mb']} MB)")
    if run.error:
        print("  error:", run.error)
    for k, v in run.results.items():
        print(f"  {k} = {v}")


def bench_explorer() -> None:
    from sklearn.datasets import load_digits

    from mlscale_lab.complexity import selection as sel
    from mlscale_lab.views.selection import SweepExplorer

    X, y = load_digits(return_X_y=True)
    rows = sel.evaluate_many(X, y, [("all", None)] + [("chi2", k) for k in (4, 8, 16, 32, 48)],
                             cv=3, repeats=4)
    explorer = SweepExplorer(rows[1:], reference=rows[0])
    explorer.widget()
    times = []
    for _ in range(200):
        for k in explorer.ks:
            t0 = time.perf_counter()
            explorer.update(k)
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"explorer update: median {times[len(times) // 2] * 1e3:.3f} ms, "
          f"max {times[-1] * 1e3:.3f} ms over {len(times)} moves (goal < 100 ms)")


def bench_wide_gain(seeds=range(6)) -> None:
    from sklearn.model_selection import train_test_split

    from mlscale_lab.complexity import selection as sel
    from mlscale_lab.evidence import paired_bootstrap

    for seed in seeds:
        X, y = sel.make_wide_counts(n_samples=400, n_features=2000, n_informative=20, seed=seed)
        Xd, Xt, yd, yt = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        rows = sel.evaluate_many(Xd, yd, [("chi2", k) for k in (5, 10, 20, 50, 200)], seed=seed,
                                 repeats=1, rounds=1)
        k = sel.one_standard_error_k(rows).k
        gain = paired_bootstrap(sel.held_out_correct(Xd, yd, Xt, yt, "chi2", k, seed=seed),
                                sel.held_out_correct(Xd, yd, Xt, yt, "all", None, seed=seed))
        print(f"wide counts, seed {seed}: k = {k}, held-out gain over all features {gain}")


if __name__ == "__main__":
    bench_explorer()
    bench_wide_gain()
    bench_lab()
