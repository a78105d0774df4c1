"""The learner's workspace: their own student versions of the labs, never overwritten.

A student version is made from the lab's source notebook by nbgrader's own preprocessors
(:func:`mlscale_lab.harness.grading.generate_student_version`): reference solutions replaced by
``raise NotImplementedError()``, hidden tests removed, test cells locked and checksummed.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mlscale_lab.harness.grading import release_labs
from mlscale_lab.harness.labs import list_labs

#: Why running JupyterLab as root is risky, said once by :func:`start_jupyterlab` as root.
ROOT_RISK = (
    "running as root: JupyterLab is started with --allow-root. Every notebook cell then runs "
    "as root, so a mistake or a notebook from someone else can change or delete anything on "
    "this machine; use a normal user account where you have one"
)


@dataclass
class WorkspaceResult:
    """What :func:`prepare_workspace` did: the folder, the labs it added, the ones it kept."""

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


def start_jupyterlab(directory: str | os.PathLike, *, port: int = 8888, ip: str | None = None,
                     open_browser: bool = True) -> int:
    """Serve JupyterLab on ``directory`` until it stops; return its exit status.

    As root (containers, WSL, cloud VMs) JupyterLab refuses to start unless told
    ``--allow-root``: it is passed, after one warning on stderr that says why it is risky. A
    SIGTERM to this process (a container stopping) stops JupyterLab too, so no server is left.
    """
    import signal
    import subprocess

    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={directory}", f"--port={port}"]
    if not open_browser:
        cmd.append("--no-browser")
    if ip:
        cmd.append(f"--ip={ip}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
        print(f"mlscale-lab start: WARNING: {ROOT_RISK}.", file=sys.stderr, flush=True)
    print("starting JupyterLab:", " ".join(cmd), flush=True)
    server = subprocess.Popen(cmd)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())
    try:
        return server.wait()
    except KeyboardInterrupt:  # Ctrl-C reached JupyterLab too: give it time to shut down
        try:
            return server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.terminate()
            return server.wait()
