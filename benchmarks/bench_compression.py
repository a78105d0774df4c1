"""Lab 06's performance figures on this machine: run it on a quiet machine.

    .venv/bin/python benchmarks/bench_compression.py [--json] [--seeds 0 1 2]

Prints, for a 64-1024-1024-10 model on lab 06's task (one torch thread, as in the lab):
(1) int8 file ratio, accuracy drop per seed and batch-1 / batch-256 speedups for
``torch.ao`` dynamic and static int8, ONNX Runtime fp32 and int8, and torchao's int8
configurations when torchao is installed (it is not a dependency: this is the measurement
behind the lab's choice of API); (2) the same speedups at widths 256 and 512, to show where
int8 starts to pay; (3) the deep-compression ratio and accuracy drop per seed; (4) cold
starts (load to first prediction) in fresh processes for ONNX Runtime and torch.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mlscale_lab.complexity import compression as C
from mlscale_lab.complexity import pruning as P
from mlscale_lab.constraints import measure_latency

WIDE = (64, 1024, 1024, 10)


def _torch_predict(model):
    def predict(xb):
        with torch.no_grad():
            return model(xb)
    return predict


def _speed(predict, X, repeats=100):
    res = measure_latency(predict, X, (1, 256), warmup=10, repeats=repeats)
    return {r.batch_size: r.p50_ms for r in res}


def _torchao_variants(model):
    """torchao's int8 configs on a copy of ``model`` (eager, CPU); {} when torchao is missing."""
    try:
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8WeightOnlyConfig,
            quantize_,
        )
    except Exception:  # not installed, or built for another torch
        return {}
    out = {}
    for name, config in [("torchao int8 dynamic", Int8DynamicActivationInt8WeightConfig()),
                         ("torchao int8 weight-only", Int8WeightOnlyConfig())]:
        q = copy.deepcopy(model)
        quantize_(q, config)
        out[name] = q
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench-compression-"))
    out: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    t_start = time.perf_counter()

    from mlscale_lab.complexity.task import make_task

    data = {s: make_task(s) for s in args.seeds}
    fp32 = {s: P.train(P.make_mlp(WIDE, seed=s), data[s].X_train, data[s].y_train, epochs=10,
                       lr=1e-3, seed=s) for s in args.seeds}
    s0 = args.seeds[0]
    d0, m0 = data[s0], fp32[s0]

    # (1) int8 on the lab's model
    models = {"fp32": m0, "torch.ao int8 dynamic": C.quantize_dynamic_int8(m0),
              "torch.ao int8 static": C.quantize_static_int8(m0, d0.X_train[:512])}
    models.update(_torchao_variants(m0))
    # torch.save bytes of the state dict (model_footprint counts values, which torchao's tensors refuse)
    base_bytes = P.torch_save_bytes(m0.state_dict())
    rows = {}
    for name, m in models.items():
        rows[name] = {"size_ratio": base_bytes / P.torch_save_bytes(m.state_dict()),
                      "accuracy": P.accuracy(m, d0.X_test, d0.y_test),
                      "p50_ms": _speed(_torch_predict(m), d0.X_test)}
    onnx = work / "m.onnx"
    C.export_onnx(m0, onnx, n_features=WIDE[0])
    C.quantize_onnx_int8(onnx, work / "m8.onnx")
    X = d0.X_test.numpy()
    for name, path in [("ONNX Runtime fp32", onnx), ("ONNX Runtime int8", work / "m8.onnx")]:
        predict = C.onnx_predictor(path)
        rows[name] = {"size_ratio": onnx.stat().st_size / path.stat().st_size,
                      "accuracy": float((predict(X).argmax(1) == d0.y_test.numpy()).mean() * 100),
                      "p50_ms": _speed(predict, X)}
    for r in rows.values():
        r["speedup"] = {b: rows["fp32"]["p50_ms"][b] / r["p50_ms"][b] for b in (1, 256)}
    out["int8"] = rows
    drops = [P.accuracy(fp32[s], data[s].X_test, data[s].y_test)
             - P.accuracy(C.quantize_dynamic_int8(fp32[s]), data[s].X_test, data[s].y_test)
             for s in args.seeds]
    out["int8_drop_per_seed"] = drops

    # (2) where int8 starts to pay: untrained models of other widths (speed only)
    out["width"] = {}
    for width in (256, 512, 1024):
        m = P.make_mlp((64, width, width, 10), seed=0).eval()
        a, b = _speed(_torch_predict(m), d0.X_test), _speed(_torch_predict(C.quantize_dynamic_int8(m)), d0.X_test)
        out["width"][width] = {bs: a[bs] / b[bs] for bs in (1, 256)}

    # (3) deep compression per seed
    out["pipeline"] = {}
    for s in args.seeds:
        dc = C.deep_compression(fp32[s], data[s], work / f"deep-{s}", seed=s)
        out["pipeline"][s] = {"ratio": dc.ratio, "drop": dc.drop_points, "sparsity": dc.sparsity,
                              "bits": dc.bits}

    # (4) cold start, three times each (median)
    pt = work / "m.pt"
    torch.save(m0, pt)
    starts = {rt: [C.cold_start(p, X[0], runtime=rt) for _ in range(3)]
              for rt, p in [("onnxruntime", onnx), ("torch", pt)]}
    out["cold_start_s"] = {rt: statistics.median(c.load_to_prediction_s for c in cs) for rt, cs in starts.items()}
    out["process_mb"] = {rt: statistics.median(c.rss_bytes for c in cs) / 2**20 for rt, cs in starts.items()}
    out["seconds"] = time.perf_counter() - t_start

    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"torch {out['torch']}, {out['threads']} thread; model {WIDE} on lab 06's task, seed {s0}")
    print(f"{'':<26}{'size x':>8}{'accuracy':>10}{'b1 ms':>9}{'b256 ms':>9}{'b1 x':>7}{'b256 x':>8}")
    for name, r in rows.items():
        print(f"{name:<26}{r['size_ratio']:>8.2f}{r['accuracy']:>9.2f}%{r['p50_ms'][1]:>9.3f}"
              f"{r['p50_ms'][256]:>9.3f}{r['speedup'][1]:>7.2f}{r['speedup'][256]:>8.2f}")
    if not any(k.startswith("torchao") for k in rows):
        print("(torchao not installed: its rows are missing)")
    print("torch.ao dynamic int8 accuracy drop per seed (points):", [round(d, 2) for d in drops],
          f"mean {np.mean(drops):+.2f}")
    for width, sp in out["width"].items():
        print(f"width {width:>4}: dynamic int8 speedup {sp[1]:.2f}x at batch 1, {sp[256]:.2f}x at batch 256")
    for s, p in out["pipeline"].items():
        print(f"deep compression seed {s}: {p['ratio']:.1f}x smaller, accuracy drop {p['drop']:+.2f} points")
    print(f"mean pipeline drop {np.mean([p['drop'] for p in out['pipeline'].values()]):+.2f} points")
    print("cold start, load to first prediction (median of 3):",
          ", ".join(f"{k} {v:.2f} s" for k, v in out["cold_start_s"].items()))
    print("resident memory of that process (median of 3):",
          ", ".join(f"{k} {v:.0f} MB" for k, v in out["process_mb"].items()))
    print(f"benchmark took {out['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
