"""Compression beyond pruning (lab 06): quantization, weight sharing, distillation, ONNX.

One idea per private module, public names re-exported here, so a notebook imports
``from mlscale_lab.complexity import compression as C``:

- evenly spaced levels and float baselines: :func:`uniform_quantize` (per tensor or per
  channel), :func:`round_to_float` (fp16, bf16), :func:`quantize_weights` (a model's copy)
- post-training int8 kernels: :func:`quantize_dynamic_int8`, :func:`quantize_static_int8`
  (calibrated; why ``torch.ao.quantization`` and not torchao on CPU: see ``_quantize``)
- weight sharing: :func:`kmeans_codebook`, :func:`share_weights`, :func:`shared_layer_bytes`,
  and centroid fine-tuning, :func:`finetune_centroids`
- distillation without leakage: :func:`distillation_loss`, :func:`train_student`,
  :func:`distill_students`, :func:`soft_targets`
- the deep-compression file of Han et al.: :func:`relative_indices`, :func:`mask_cost`,
  :func:`huffman_lengths` and friends, :func:`save_deep_compressed`, :func:`load_deep_compressed`,
  and the pipeline chosen on validation rows, :func:`deep_compression`
- bytes a prediction moves: :func:`bytes_per_prediction`, :func:`read_bandwidth`,
  :func:`roofline_ms`, :func:`wide_mlp`
- the deployable artifact: :func:`export_onnx`, :func:`onnx_predictor`,
  :func:`quantize_onnx_int8`, :func:`cold_start` (with the process's resident memory)
- timing fairly on a shared machine: :func:`time_predictors` (interleaved, with intervals)
- the decision: :class:`Recipe`, :class:`DeviceProfile`, :func:`measure_recipe`,
  :func:`choose_recipe`, :func:`violations`, :func:`headroom`

Importing this package imports NumPy only; torch, scikit-learn and ONNX Runtime load inside
the functions that use them.
"""

from mlscale_lab.complexity.compression._centroids import finetune_centroids
from mlscale_lab.complexity.compression._distill import (
    STUDENT_KINDS,
    distill_students,
    distillation_loss,
    soft_targets,
    train_student,
)
from mlscale_lab.complexity.compression._huffman import (
    canonical_codes,
    huffman_bits,
    huffman_decode,
    huffman_encode,
    huffman_lengths,
)
from mlscale_lab.complexity.compression._indices import (
    MaskCost,
    mask_cost,
    positions_from_indices,
    relative_indices,
)
from mlscale_lab.complexity.compression._latency import measure_recipe, time_predictors
from mlscale_lab.complexity.compression._onnx import (
    RUNTIMES,
    ColdStart,
    cold_start,
    export_onnx,
    onnx_predictor,
    quantize_onnx_int8,
)
from mlscale_lab.complexity.compression._pipeline import DeepCompression, Stage, deep_compression
from mlscale_lab.complexity.compression._profiles import (
    DeviceProfile,
    Recipe,
    choose_recipe,
    headroom,
    violations,
)
from mlscale_lab.complexity.compression._quantize import (
    quantize_dynamic_int8,
    quantize_static_int8,
    quiet_torch_ao,
)
from mlscale_lab.complexity.compression._roofline import (
    WEIGHT_BYTES,
    bytes_per_prediction,
    read_bandwidth,
    roofline_ms,
    wide_mlp,
)
from mlscale_lab.complexity.compression._sharing import (
    MAX_BITS,
    Codebook,
    kmeans_codebook,
    linear_layers,
    share_weights,
    shared_layer_bytes,
)
from mlscale_lab.complexity.compression._storage import load_deep_compressed, save_deep_compressed
from mlscale_lab.complexity.compression._uniform import (
    FLOAT_FORMATS,
    quantize_weights,
    round_to_float,
    uniform_quantize,
)

__all__ = [
    "FLOAT_FORMATS", "MAX_BITS", "RUNTIMES", "STUDENT_KINDS", "WEIGHT_BYTES", "Codebook",
    "ColdStart", "DeepCompression", "DeviceProfile", "MaskCost", "Recipe", "Stage",
    "bytes_per_prediction", "canonical_codes", "choose_recipe", "cold_start", "deep_compression",
    "distill_students", "distillation_loss", "export_onnx", "finetune_centroids", "headroom",
    "huffman_bits", "huffman_decode", "huffman_encode", "huffman_lengths", "kmeans_codebook",
    "linear_layers", "load_deep_compressed", "mask_cost", "measure_recipe", "onnx_predictor",
    "positions_from_indices", "quantize_dynamic_int8", "quantize_onnx_int8", "quantize_static_int8",
    "quantize_weights", "quiet_torch_ao", "read_bandwidth", "relative_indices", "roofline_ms",
    "round_to_float", "save_deep_compressed", "share_weights", "shared_layer_bytes", "soft_targets",
    "time_predictors", "train_student", "uniform_quantize", "violations", "wide_mlp",
]
