"""The gate's table: which checks a candidate must pass, in order, and the budgets each reads.

One row, a :class:`GateCheck`, per check: its name (the gate file's test is ``test_<name>``),
what it asks in a sentence, how to run it on a :class:`GateCase`, and the budgets it reads with
their defaults. :class:`GateConfig` is made of the budgets of every row, :func:`run_checks`
runs the rows in this process, and the gate file (``gate_suite/model_gate.py``) makes one test
per row. Adding a check is adding a row to :data:`GATE_CHECKS` (and its test).

>>> [check.name for check in GATE_CHECKS]
['schema', 'accuracy', 'no_regression', 'latency', 'artifact_size', 'invariance']
>>> GateConfig(min_accuracy=0.9).max_latency_ratio
1.5
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlscale_lab.deployment._checks import (
    CheckResult,
    check_accuracy,
    check_invariance,
    check_latency,
    check_no_regression,
    check_schema,
    check_size,
)
from mlscale_lab.validation import check_fraction, check_int, check_number

__all__ = ["GATE_CHECKS", "Budget", "GateCase", "GateCheck", "GateConfig", "run_checks"]

_KINDS = {
    "fraction": lambda fn, name, v: check_fraction(fn, name, v),
    "count": lambda fn, name, v: check_int(fn, name, v, low=1),
    "size": lambda fn, name, v: check_number(fn, name, v, low=0),
    "ratio": lambda fn, name, v: check_number(fn, name, v, low=0, low_open=True),
}


@dataclass(frozen=True)
class Budget:
    """One budget a check reads from :class:`GateConfig`.

    Attributes
    ----------
    name : str
        The attribute of :class:`GateConfig` (and the key in ``gate_config.json``).
    default : float or int
    kind : {"fraction", "count", "size", "ratio"}
        How a value is checked: in [0, 1]; a whole number >= 1; a number >= 0; a number > 0.
    doc : str
        What it bounds, in words.
    """

    name: str
    default: float | int
    kind: str
    doc: str

    def check(self, func: str, value):
        """``value`` checked at the door (the message names ``func``, the budget and the value)."""
        return _KINDS[self.kind](func, self.name, value)


@dataclass(frozen=True)
class GateCase:
    """What the gate judges: a candidate, the production model (None on a first deployment),
    and the held-out recent data ``X, y``."""

    candidate: object
    production: object | None
    X: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class GateCheck:
    """A row of the gate's table.

    Attributes
    ----------
    name : str
        The check's name; the gate file's test is ``test_<name>``.
    doc : str
        What it asks, in a sentence (the test's docstring).
    run : callable
        ``run(case, config) -> CheckResult``.
    budgets : tuple of Budget
        The budgets it reads from the config.
    """

    name: str
    doc: str
    run: Callable[[GateCase, GateConfig], CheckResult]
    budgets: tuple[Budget, ...] = ()


GATE_CHECKS: tuple[GateCheck, ...] = (
    GateCheck("schema", "Rows in production's schema go in, known labels come out.",
              lambda c, b: check_schema(c.candidate, c.X, classes=np.unique(c.y))),
    GateCheck("accuracy", "Accurate enough on recent data.",
              lambda c, b: check_accuracy(c.candidate, c.X, c.y, min_accuracy=b.min_accuracy),
              (Budget("min_accuracy", 0.8, "fraction", "accuracy on the held-out data, at least"),)),
    GateCheck("no_regression", "Not worse than production beyond the allowed margin.",
              lambda c, b: check_no_regression(c.candidate, c.production, c.X, c.y,
                                               max_regression=b.max_regression),
              (Budget("max_regression", 0.02, "size",
                      "accuracy the candidate may lose against production (0.02 = 2 points)"),)),
    GateCheck("latency", "No slower than the budget allows, scaled to the model it replaces.",
              lambda c, b: check_latency(c.candidate, c.production, c.X,
                                         max_ratio=b.max_latency_ratio, max_p95_ms=b.max_p95_ms,
                                         batch_size=b.latency_batch, rounds=b.latency_rounds),
              (Budget("max_latency_ratio", 1.5, "ratio",
                      "the candidate's median predict time over production's, at most"),
               Budget("max_p95_ms", 100.0, "ratio",
                      "p95 of one prediction in ms, for a first deployment (nothing to compare)"),
               Budget("latency_batch", 1, "count", "rows per timed prediction"),
               Budget("latency_rounds", 100, "count", "timed predictions of each model"))),
    GateCheck("artifact_size", "Small enough to ship.",
              lambda c, b: check_size(c.candidate, max_bytes=b.max_artifact_bytes),
              (Budget("max_artifact_bytes", 100_000, "size",
                      "bytes of the serialised model (model_footprint(model).serialized_bytes)"),)),
    GateCheck("invariance", "A jitter that should not matter changes almost no prediction.",
              lambda c, b: check_invariance(c.candidate, c.X, noise_scale=b.noise_scale,
                                            max_flip_rate=b.max_flip_rate),
              (Budget("max_flip_rate", 0.02, "fraction",
                      "share of predictions a small input noise may change"),
               Budget("noise_scale", 0.01, "size",
                      "that noise, in standard deviations of each feature"))),
)


def _budgets() -> dict[str, Budget]:
    return {b.name: b for check in GATE_CHECKS for b in check.budgets}


class GateConfig:
    """The budgets a candidate must meet: one attribute per :class:`Budget` of the table.

    Parameters
    ----------
    **budgets
        Values for any of the table's budgets (the others keep their defaults).

    Examples
    --------
    >>> GateConfig(min_accuracy=0.9).max_regression
    0.02
    >>> sorted(GateConfig().as_dict())[:3]
    ['latency_batch', 'latency_rounds', 'max_artifact_bytes']
    >>> GateConfig(max_flip_rate=2)
    Traceback (most recent call last):
    ...
    ValueError: GateConfig(max_flip_rate=2): expected a finite number >= 0 and <= 1, got 2
    >>> GateConfig(max_p95=5)
    Traceback (most recent call last):
    ...
    TypeError: GateConfig(max_p95=...): no such budget; the budgets are latency_batch, latency_rounds, max_artifact_bytes, max_flip_rate, max_latency_ratio, max_p95_ms, max_regression, min_accuracy, noise_scale
    """

    def __init__(self, **budgets):
        known = _budgets()
        for name in budgets:
            if name not in known:
                raise TypeError(f"GateConfig({name}=...): no such budget; the budgets are "
                                f"{', '.join(sorted(known))}")
        values = {name: b.check("GateConfig", budgets.get(name, b.default))
                  for name, b in known.items()}
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"GateConfig has no budget {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("GateConfig is frozen: make a new one, GateConfig(**{...})")

    def __eq__(self, other) -> bool:
        return isinstance(other, GateConfig) and other.as_dict() == self.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.as_dict().items())))

    def __repr__(self) -> str:
        return "GateConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items()) + ")"

    def as_dict(self) -> dict:
        """The budgets as a plain dict (what ``gate_config.json`` holds)."""
        return dict(self._values)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> GateConfig:
        """Read the budgets from a JSON file written from :meth:`as_dict`.

        Parameters
        ----------
        path : path-like

        Returns
        -------
        GateConfig
        """
        return cls(**json.loads(Path(path).read_text()))


def run_checks(candidate, production, X, y, config: GateConfig | None = None) -> list[CheckResult]:
    """Every check of the table in this process (the ones the gate file runs), in gate order.

    Parameters
    ----------
    candidate, production : estimator
        ``production`` may be None (a first deployment).
    X, y : array-like
        Held-out recent data.
    config : GateConfig, optional
        The budgets (default ``GateConfig()``).

    Returns
    -------
    list of CheckResult
        One per row of :data:`GATE_CHECKS`.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> [c.name for c in run_checks(model, None, X, y) if not c.passed]
    []
    """
    case = GateCase(candidate, production, np.asarray(X), np.asarray(y))
    budgets = config or GateConfig()
    return [check.run(case, budgets) for check in GATE_CHECKS]
