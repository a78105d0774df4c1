"""Section 2, model complexity: fewer features, fewer weights, fewer bits.

Labs 02, 03 and 06 import one topic each, as a module:
``from mlscale_lab.complexity import selection as sel`` (chi-squared, PCA, leakage),
``pruning`` (magnitude and structured pruning, trees) and ``compression`` (quantization,
weight sharing, distillation, ONNX). This package itself imports nothing heavy.
"""
