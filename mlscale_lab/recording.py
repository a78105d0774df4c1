"""Headline numbers a lab records, collected by ``mlscale-lab run``.

A lab calls :func:`record` for each number its prose and checkpoints rely on. Inside a headless
run the runner sets ``MLSCALE_RECORD_FILE`` in the kernel's environment and every call appends
one JSON line there; in an interactive session the values stay in memory (see :func:`recorded`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from mlscale_lab._core.environment import RECORD_ENV

_recorded: dict[str, Any] = {}


def _to_json_value(name: str, value: Any) -> Any:
    """Coerce numpy scalars and arrays to plain Python; refuse what JSON cannot hold."""
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy scalar or array, torch tensor
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"record({name!r}, ...): value {value!r} is not finite; record a finite number")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"record({name!r}, ...): value of type {type(value).__name__} is not JSON-serialisable; "
            "record a number, string, bool, or a list/dict of them"
        ) from exc
    return value


def record(name: str, value: Any) -> Any:
    """Record a lab's headline number ``value`` under ``name`` and return the value.

    Parameters
    ----------
    name : str
        A short identifier, such as ``"serving_p95_ms"``.
    value : JSON-serialisable
        Numbers, strings, bools, or lists and dicts of them; numpy scalars are converted.

    Returns
    -------
    The value, converted to plain Python, so a cell can show it.

    Examples
    --------
    >>> record("speedup", 1.9)
    1.9
    >>> recorded()["speedup"]
    1.9
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"record(name=...): {name!r} is not a valid name; use letters, digits and _")
    value = _to_json_value(name, value)
    _recorded[name] = value
    path = os.environ.get(RECORD_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "value": value}) + "\n")
    return value


def recorded() -> dict[str, Any]:
    """Return a copy of what this process has recorded so far."""
    return dict(_recorded)


def read_records(path: str | os.PathLike) -> dict[str, Any]:
    """Read a record file written by :func:`record`; later values of a name win."""
    results: dict[str, Any] = {}
    p = Path(path)
    if not p.exists():
        return results
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            results[item["name"]] = item["value"]
    return results
