"""How big a model is: values stored, non-zeros, bytes in memory, on disk, compressed.

Works for a torch ``nn.Module`` (its ``state_dict``: parameters and buffers) and for a fitted
scikit-learn estimator or Pipeline (the numeric arrays among its fitted attributes). torch and
scikit-learn are imported only when a model of theirs is measured.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import asdict, dataclass

_ZLIB_LEVEL = 6


@dataclass(frozen=True)
class Footprint:
    """The size of a model, measured four ways.

    Attributes
    ----------
    kind : str
        ``"torch"`` or ``"sklearn"``.
    parameters : int
        Numeric values the model stores: torch parameters and buffers in the ``state_dict``;
        for scikit-learn, the elements of the numeric arrays among the fitted attributes.
    nonzero : int
        How many of those values are not zero (what pruning drives down).
    dense_bytes : int
        Bytes those values take in memory, as stored (dtype included).
    serialized_bytes : int
        Bytes of ``torch.save(model.state_dict())`` or ``joblib.dump(model)``.
    compressed_bytes : int
        The serialized bytes after zlib at level 6 (zeros and repeats compress well).
    """

    kind: str
    parameters: int
    nonzero: int
    dense_bytes: int
    serialized_bytes: int
    compressed_bytes: int

    @property
    def sparsity(self) -> float:
        """Fraction of stored values that are zero (0.0 for an empty model)."""
        return 1.0 - self.nonzero / self.parameters if self.parameters else 0.0

    def as_dict(self) -> dict:
        """The fields as a plain dict (for a table or JSON)."""
        return asdict(self)


def _is_torch_module(model) -> bool:
    # Check the class hierarchy by name so that measuring a scikit-learn model never imports torch.
    return any(
        cls.__module__.startswith("torch.nn") and cls.__name__ == "Module"
        for cls in type(model).__mro__
    )


def _is_sklearn_estimator(model) -> bool:
    return any(
        cls.__module__.startswith("sklearn") and cls.__name__ == "BaseEstimator"
        for cls in type(model).__mro__
    )


def _compress(raw: bytes) -> int:
    return len(zlib.compress(raw, _ZLIB_LEVEL))


# -- torch -------------------------------------------------------------------------------------
def _torch_footprint(model) -> Footprint:
    import torch

    state = model.state_dict()
    seen: set[tuple] = set()
    parameters = nonzero = dense = 0
    for tensor in state.values():
        if not isinstance(tensor, torch.Tensor):
            continue  # extra state an nn.Module may keep
        parts = [tensor]
        if tensor.layout == torch.sparse_coo:
            parts = [tensor._values(), tensor._indices()]
        elif tensor.layout == torch.sparse_csr:
            parts = [tensor.values(), tensor.crow_indices(), tensor.col_indices()]
        for t in parts:
            # Tied weights appear under two names but are stored once.
            key = (t.data_ptr(), t.numel(), t.dtype, tuple(t.stride()))
            if t.data_ptr() and key in seen:
                continue
            seen.add(key)
            values = t.int_repr() if t.is_quantized else t
            parameters += t.numel()
            nonzero += int(torch.count_nonzero(values.detach()))
            dense += t.numel() * t.element_size()
    buf = io.BytesIO()
    torch.save(state, buf)
    raw = buf.getvalue()
    return Footprint("torch", parameters, nonzero, dense, len(raw), _compress(raw))


# -- scikit-learn ------------------------------------------------------------------------------
def _numeric_arrays(obj, seen: dict[int, object], fitted_only: bool):
    """Yield the numeric numpy arrays reachable from ``obj`` (each array object once)."""
    import numpy as np  # here, not at the top: `import mlscale_lab` stays light (test_import)

    if id(obj) in seen:
        return
    # Keep a reference: temporaries (field views, pickled states) would otherwise free their
    # id for reuse and a later, different object would be skipped as "seen".
    seen[id(obj)] = obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.names:  # structured (a tree's node table): one value per field
            for name in obj.dtype.names:
                yield from _numeric_arrays(obj[name], seen, False)
        elif obj.dtype.kind in "biufc":
            yield obj
        elif obj.dtype.kind == "O":  # e.g. GradientBoosting's array of trees
            for item in obj.ravel():
                yield from _numeric_arrays(item, seen, False)
        return
    if isinstance(obj, (str, bytes, int, float, bool, type(None), np.generic)):
        return
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _numeric_arrays(value, seen, False)
        return
    if isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _numeric_arrays(value, seen, False)
        return
    sparse_parts = _scipy_sparse_parts(obj)
    if sparse_parts is not None:
        for part in sparse_parts:
            yield from _numeric_arrays(part, seen, False)
        return
    if _is_sklearn_estimator(obj):
        for name, value in vars(obj).items():
            fitted = name.endswith("_") and not name.startswith("_")
            # Sub-estimators sit in parameters (Pipeline.steps, a meta-estimator's
            # ``estimator``); their own fitted attributes are what counts.
            if fitted or not fitted_only or _holds_estimators(value):
                yield from _numeric_arrays(value, seen, True)
        return
    # Compiled helpers (a tree's ``tree_``) describe their arrays in their pickled state.
    getstate = getattr(obj, "__getstate__", None)
    if getstate is not None and type(obj).__module__.startswith("sklearn"):
        try:
            state = getstate()
        except TypeError:
            return
        yield from _numeric_arrays(state, seen, False)


def _holds_estimators(value) -> bool:
    if _is_sklearn_estimator(value):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimators(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_estimators(v) for v in value.values())
    return False


def _scipy_sparse_parts(obj):
    module = type(obj).__module__
    if not module.startswith("scipy.sparse"):
        return None
    fmt = getattr(obj, "format", None)
    if fmt in ("csr", "csc", "bsr"):
        return [obj.data, obj.indices, obj.indptr]
    if fmt == "coo":
        return [obj.data, *obj.coords] if hasattr(obj, "coords") else [obj.data, obj.row, obj.col]
    return [obj.toarray()]


def _sklearn_footprint(model) -> Footprint:
    import joblib
    import numpy as np

    parameters = nonzero = dense = 0
    for arr in _numeric_arrays(model, {}, True):
        parameters += int(arr.size)
        nonzero += int(np.count_nonzero(arr))
        dense += int(arr.nbytes)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    raw = buf.getvalue()
    return Footprint("sklearn", parameters, nonzero, dense, len(raw), _compress(raw))


def model_footprint(model) -> Footprint:
    """Measure how many values a model stores and how many bytes it takes, in memory and on disk.

    Parameters
    ----------
    model : torch.nn.Module or fitted scikit-learn estimator
        A torch module (measured through its ``state_dict``) or a fitted scikit-learn estimator,
        Pipeline or meta-estimator.

    Returns
    -------
    Footprint

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = np.eye(4), np.array([0, 1, 0, 1])
    >>> fp = model_footprint(LogisticRegression().fit(X, y))
    >>> fp.kind, fp.parameters  # coef_ (1 x 4), intercept_ (1), classes_ (2), n_iter_ (1)
    ('sklearn', 8)
    >>> fp.serialized_bytes > fp.dense_bytes  # pickling adds the class and its settings
    True
    """
    if _is_torch_module(model):
        return _torch_footprint(model)
    if _is_sklearn_estimator(model):
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except Exception as exc:  # NotFittedError, or a TypeError for odd estimators
            raise ValueError(
                f"model_footprint(model=...): {type(model).__name__} is not fitted; call "
                ".fit(X, y) first, since an unfitted estimator stores no learned values"
            ) from exc
        return _sklearn_footprint(model)
    raise TypeError(
        f"model_footprint(model=...): expected a torch.nn.Module or a fitted scikit-learn "
        f"estimator, got {type(model).__module__}.{type(model).__name__}"
    )
