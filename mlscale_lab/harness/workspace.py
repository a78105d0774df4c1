"""The learner's workspace: their own student versions of the labs, never overwritten.

A student version is made from the lab's source notebook by nbgrader's own preprocessors
(:func:`mlscale_lab.harness.grading.generate_student_version`): reference solutions replaced by
``raise NotImplementedError()``, hidden tests removed, test cells locked and checksummed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab.harness.grading import release_labs
from mlscale_lab.harness.labs import list_labs


@dataclass
class WorkspaceResult:
    directory: Path
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def prepare_workspace(directory: str | os.PathLike, labs_directory=None) -> WorkspaceResult:
    """Add the student versions of the labs missing from ``directory``; keep every notebook
    already there untouched.

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
        release_labs([lab], target, overwrite=False)
        result.added.append(lab.name)
    return result
