"""Lab 03's performance figures on this machine: run it on a quiet machine.

    .venv/bin/python benchmarks/bench_pruning.py [--json]

Prints (1) the CSR-vs-dense matmul timings and their crossover at a few sizes, (2) the
structured-pruning speedup of the lab's LeNet-300-100 model on lab 03's task (60% of hidden neurons
removed and the layers shrunk) at batch sizes 1, 64 and 256, (3) what a device feels for the
dense file, the sparse file of a 96%-pruned model and the shrunk model: file bytes, load time and
batch-1 latency (lab 03, section 7), and (4) the time one prune-and-fine-tune run of the lab
takes, to budget the lab. Torch runs on one thread, as in the lab.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from mlscale_lab.complexity import pruning as P
from mlscale_lab.constraints import measure_latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}

    sparsities = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99]
    out["matmul"] = {}
    for size in (512, 1024, 2048):
        ts = P.sparse_matmul_timings(sparsities, size=size, batch=64, rounds=20, number=3)
        out["matmul"][size] = {"timings": [t.as_dict() for t in ts], "crossover": P.crossover_sparsity(ts),
                                "dense_spread": P.dense_spread(ts)}

    from mlscale_lab.complexity.task import make_task

    data = make_task(0)  # the task lab 03 prunes
    dense = P.make_mlp(seed=0)
    P.train(dense, data.X_train, data.y_train, epochs=15, lr=3e-3, seed=0, anneal=True)
    structured = copy.deepcopy(dense)
    P.prune_structured(structured, 0.6)
    P.train(structured, data.X_train, data.y_train, epochs=8, lr=3e-3, seed=0)
    shrunk = P.shrink_linear_stack(structured)
    permanent = P.make_permanent(copy.deepcopy(structured))
    sizes = (1, 64, 256)
    before = measure_latency(P.predictor(permanent), data.X_test, sizes, warmup=10, repeats=200)
    after = measure_latency(P.predictor(shrunk), data.X_test, sizes, warmup=10, repeats=200)
    out["structured_speedup"] = {b.batch_size: b.p50_ms / a.p50_ms for b, a in zip(before, after, strict=True)}

    model = copy.deepcopy(dense)
    t0, c0 = time.perf_counter(), time.process_time()
    P.prune_schedule(model, data, (0.5, 0.75, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99), lr=3e-3)
    out["one_prune_run"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                            "compression_ratio": P.compression_ratio(model)}

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {"dense": P.saved_bytes(dense, work / "dense.pt"),
                 "sparse": P.save_sparse(P.make_permanent(model), work / "pruned.sparse"),
                 "shrunk": P.saved_bytes(shrunk, work / "shrunk.pt")}
        widths = (64, shrunk[0].out_features, shrunk[2].out_features, 10)

        def loader(sizes, state):
            def load():
                m = P.make_mlp(sizes)
                m.load_state_dict(state())
                return m.eval()
            return load

        costs = [
            P.serving_cost("dense", files["dense"], loader(
                P.LENET_DIGITS_SIZES, lambda: torch.load(work / "dense.pt")), data.X_test),
            P.serving_cost("sparse", files["sparse"], loader(
                P.LENET_DIGITS_SIZES, lambda: P.load_sparse(work / "pruned.sparse")), data.X_test),
            P.serving_cost("shrunk", files["shrunk"], loader(
                widths, lambda: torch.load(work / "shrunk.pt")), data.X_test),
        ]
    out["device"] = [c.as_dict() for c in costs]

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"torch {out['torch']}, {out['threads']} thread")
    for size, res in out["matmul"].items():
        row = ", ".join(f"{t['sparsity']:.0%}: {t['speedup']:.2f}x" for t in res["timings"])
        print(f"CSR speedup over dense, {size}x{size} @ {size}x64: {row}; crossover {res['crossover']}")
    print("structured speedup (60% of hidden neurons removed): "
          + ", ".join(f"batch {b}: {s:.2f}x" for b, s in out["structured_speedup"].items()))
    for c in out["device"]:
        print(f"{c['name']:>7}: {c['file_bytes']:>8,} bytes, load {c['load_ms']:.2f} ms, "
              f"one prediction {c['batch1_ms']:.4f} ms")
    r = out["one_prune_run"]
    print(f"one prune-and-fine-tune run (24 epochs): {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU; "
          f"compression {r['compression_ratio']:.1f}x (the lab does 9 of these, plus 3 dense trainings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
