"""The learner's workspace: their own copies of the labs, never overwritten."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab.labs import list_labs


@dataclass
class WorkspaceResult:
    directory: Path
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def prepare_workspace(directory: str | os.PathLike, labs_directory=None) -> WorkspaceResult:
    """Add the labs missing from ``directory``; keep every notebook already there untouched.

    A learner's edited notebook is never replaced: to get a fresh copy, rename or move theirs
    and run this again.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder; choose another workspace path")
    target.mkdir(parents=True, exist_ok=True)
    result = WorkspaceResult(target)
    for lab in list_labs(labs_directory):
        dest = target / lab.name
        if dest.exists():
            result.kept.append(lab.name)
            continue
        # Write to a temporary name and rename, so a crash never leaves half a notebook.
        tmp = dest.with_suffix(".ipynb.part")
        shutil.copyfile(lab, tmp)
        os.replace(tmp, dest)
        result.added.append(lab.name)
    return result
