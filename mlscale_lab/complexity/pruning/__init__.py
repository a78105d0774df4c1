"""Pruning that really shrinks models: helpers behind lab 03, built on ``torch.nn.utils.prune``.

Imported as a module: ``from mlscale_lab.complexity import pruning as P``. The masks come from
torch's own pruning module; the private modules add, one idea each:

- ``_model``: the digits data, a seeded ReLU MLP, training and accuracy;
- ``_masks``: global, layer-wise, random and structured masks; making them permanent;
- ``_report``: per-layer sparsity, compression ratio;
- ``_schedule``: iterative prune-and-fine-tune, and one-shot pruning for the explorer;
- ``_files``: bytes on disk, and a sparse file format whose size really shrinks;
- ``_shrink``: physically smaller ``nn.Linear`` layers after structured pruning;
- ``_matmul``: sparse against dense matrix products, timed;
- ``_serving``: one prediction's latency and the time to load a model;
- ``_trees``: cost-complexity pruning of a decision tree, its size chosen by CV.

Importing this package imports torch; ``import mlscale_lab`` does not import it.

>>> model = make_mlp((8, 16, 4), seed=0)
>>> prune_global(model, 0.75)
>>> round(weight_sparsity(model), 2)
0.75
"""

from mlscale_lab.complexity.pruning._files import (
    load_sparse,
    save_sparse,
    saved_bytes,
    torch_save_bytes,
)
from mlscale_lab.complexity.pruning._masks import (
    check_amount,
    effective_state_dict,
    effective_tensor,
    make_permanent,
    prunable_weights,
    prune_global,
    prune_layerwise,
    prune_random,
    prune_structured,
)
from mlscale_lab.complexity.pruning._matmul import (
    MatmulTiming,
    crossover_sparsity,
    dense_spread,
    sparse_matmul_timings,
)
from mlscale_lab.complexity.pruning._model import (
    LENET_DIGITS_SIZES,
    DigitsSplit,
    accuracy,
    load_digits_split,
    make_mlp,
    train,
)
from mlscale_lab.complexity.pruning._report import (
    LayerSparsity,
    compression_ratio,
    format_sparsity_report,
    layer_density,
    sparsity_report,
    weight_sparsity,
)
from mlscale_lab.complexity.pruning._schedule import (
    METHODS,
    CurveSummary,
    OneShotPoint,
    ScheduleStep,
    iterative_prune,
    one_shot_sweep,
    prune_schedule,
    step_amounts,
    summarise_curves,
)
from mlscale_lab.complexity.pruning._serving import (
    ServingCost,
    load_seconds,
    predictor,
    serving_cost,
)
from mlscale_lab.complexity.pruning._shrink import ELEMENTWISE, shrink_linear_stack
from mlscale_lab.complexity.pruning._trees import (
    TreePruningPath,
    one_standard_error_index,
    tree_pruning_path,
)

__all__ = [
    "ELEMENTWISE", "LENET_DIGITS_SIZES", "METHODS", "CurveSummary", "DigitsSplit", "LayerSparsity",
    "MatmulTiming", "OneShotPoint", "ScheduleStep", "ServingCost", "TreePruningPath", "accuracy",
    "check_amount", "compression_ratio", "crossover_sparsity", "dense_spread", "effective_state_dict",
    "effective_tensor", "format_sparsity_report", "iterative_prune", "layer_density",
    "load_digits_split", "load_sparse", "load_seconds", "make_mlp", "make_permanent",
    "one_shot_sweep", "one_standard_error_index", "predictor", "prunable_weights", "prune_schedule",
    "prune_global", "prune_layerwise", "prune_random", "prune_structured", "save_sparse",
    "saved_bytes", "serving_cost", "shrink_linear_stack", "sparse_matmul_timings",
    "sparsity_report", "step_amounts", "summarise_curves", "torch_save_bytes", "train", "tree_pruning_path",
    "weight_sparsity",
]
