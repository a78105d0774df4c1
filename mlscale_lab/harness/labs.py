"""Where the lab notebooks live and how a learner names them (``03`` or ``03_pruning``)."""

from __future__ import annotations

import os
from pathlib import Path

from mlscale_lab._core.environment import LABS_ENV


class UnknownLabError(LookupError):
    """A lab name that matches no notebook; the message lists the labs there are."""


def labs_dir() -> Path:
    """The folder of source lab notebooks.

    ``$MLSCALE_LABS_DIR`` if set; else the repository's ``labs/`` (a checkout or an editable
    install); else the copy packed inside the installed wheel.
    """
    env = os.environ.get(LABS_ENV)
    if env:
        path = Path(env)
        if not path.is_dir():
            raise FileNotFoundError(f"{LABS_ENV}={env!r} is not a folder; point it at a labs/ folder or unset it")
        return path
    package = Path(__file__).resolve().parent.parent  # mlscale_lab/
    for candidate in (package.parent / "labs", package / "_labs"):
        if candidate.is_dir() and any(candidate.glob("[0-9][0-9]_*.ipynb")):
            return candidate
    raise FileNotFoundError("no labs/ folder found next to mlscale_lab; set MLSCALE_LABS_DIR to one")


def list_labs(directory: str | os.PathLike | None = None) -> list[Path]:
    """Lab notebooks in teaching order (their two-digit prefix)."""
    d = Path(directory) if directory is not None else labs_dir()
    return sorted(p for p in d.glob("[0-9][0-9]_*.ipynb") if p.is_file())


def resolve_labs(names: list[str] | None, directory: str | os.PathLike | None = None) -> list[Path]:
    """Turn ``["00", "03_pruning", "labs/01_x.ipynb"]`` into notebook paths; all labs if empty.

    Raises
    ------
    UnknownLabError
        For a name that matches no lab; the message lists the labs there are.
    """
    labs = list_labs(directory)
    if not names:
        return labs
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            chosen.append(path)
            continue
        stem = path.stem if path.suffix == ".ipynb" else name
        matches = [p for p in labs if p.stem == stem or p.stem.split("_", 1)[0] == stem.zfill(2)]
        if len(matches) != 1:
            available = ", ".join(p.stem for p in labs) or "(none)"
            raise UnknownLabError(f"unknown lab {name!r}; the labs are: {available}")
        chosen.append(matches[0])
    return chosen
