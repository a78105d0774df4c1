"""Compression beyond pruning (lab 06): quantization, weight sharing, distillation, ONNX.

One idea per private module, public names re-exported here, so a notebook imports
``from mlscale_lab.complexity import compression as C``:

- post-training int8: :func:`quantize_dynamic_int8`, :func:`quantize_static_int8` (why
  ``torch.ao.quantization`` and not torchao on CPU: see ``_quantize``'s docstring)
- weight sharing: :func:`kmeans_codebook`, :func:`share_weights`, :func:`shared_layer_bytes`
- distillation: :func:`distillation_loss`, :func:`train_student`, :func:`soft_targets`
- the deep-compression file and pipeline: :func:`save_deep_compressed`,
  :func:`load_deep_compressed`, :func:`deep_compression`
- the deployable artifact: :func:`export_onnx`, :func:`onnx_predictor`,
  :func:`quantize_onnx_int8`, :func:`cold_start`
- timing fairly on a shared machine: :func:`compare_latency`
- the decision: :class:`Recipe`, :class:`DeviceProfile`, :func:`measure_recipe`,
  :func:`choose_recipe`, :func:`violations`, :func:`headroom`

Importing this package imports NumPy only; torch, scikit-learn and ONNX Runtime load inside
the functions that use them.
"""

from mlscale_lab.complexity.compression._distill import (
    distillation_loss,
    soft_targets,
    train_student,
)
from mlscale_lab.complexity.compression._onnx import (
    RUNTIMES,
    ColdStart,
    cold_start,
    export_onnx,
    onnx_predictor,
    quantize_onnx_int8,
)
from mlscale_lab.complexity.compression._pipeline import (
    Stage,
    compare_latency,
    deep_compression,
    measure_recipe,
)
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
from mlscale_lab.complexity.compression._sharing import (
    MAX_BITS,
    Codebook,
    kmeans_codebook,
    linear_layers,
    share_weights,
    shared_layer_bytes,
)
from mlscale_lab.complexity.compression._storage import load_deep_compressed, save_deep_compressed

__all__ = [
    "MAX_BITS",
    "RUNTIMES",
    "Codebook",
    "ColdStart",
    "DeviceProfile",
    "Recipe",
    "Stage",
    "choose_recipe",
    "cold_start",
    "compare_latency",
    "deep_compression",
    "distillation_loss",
    "export_onnx",
    "headroom",
    "kmeans_codebook",
    "linear_layers",
    "load_deep_compressed",
    "measure_recipe",
    "onnx_predictor",
    "quantize_dynamic_int8",
    "quantize_onnx_int8",
    "quantize_static_int8",
    "quiet_torch_ao",
    "save_deep_compressed",
    "share_weights",
    "shared_layer_bytes",
    "soft_targets",
    "train_student",
    "violations",
]
