"""Continuous integration: the GitHub Actions workflow that runs the model gate on every push.

The workflow installs PyTorch's CPU build first, within the package's bounds, so that installing
``mlscale-lab`` afterwards finds torch satisfied and never pulls the multi-GB CUDA build; then
it runs the same gate file as :func:`~mlscale_lab.deployment.run_gate`, under pytest.

>>> import tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from mlscale_lab.deployment import write_gate
>>> tmp = tempfile.TemporaryDirectory()  # removed with the object
>>> ws = Path(tmp.name)
>>> test_file = write_gate(ws / "gate", np.zeros((4, 2)), [0, 1, 0, 1])
>>> doc = validate_workflow(write_ci_workflow(ws, test_file))
>>> [step.get("name") for step in doc["jobs"]["gate"]["steps"]][2:4]
['Install (CPU-only torch first)', 'Model gate']
"""

from __future__ import annotations

import os
from pathlib import Path

from mlscale_lab._core.environment import GATE_CANDIDATE_ENV, GATE_PRODUCTION_ENV

#: The torch bounds of ``pyproject.toml``: the CPU index holds a wheel inside them.
TORCH_REQUIREMENT = "torch>=2.2,<2.14"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

_WORKFLOW = """\
# Runs the model gate on every push: the candidate ships only when every check passes.
# Written by mlscale_lab.deployment.write_ci_workflow.
name: model-gate
"on":
  push:
  pull_request:
jobs:
  gate:
    runs-on: ubuntu-latest
    timeout-minutes: 15
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      # PyPI's Linux torch wheels are CUDA builds of several GB: install the CPU build first,
      # within the package's bounds, so that pip finds torch satisfied afterwards.
      - name: Install (CPU-only torch first)
        run: |
          python -m pip install "{torch}" --index-url {index}
          python -m pip install "mlscale-lab=={version}" pytest
      - name: Model gate
        env:
          {candidate_env}: {candidate}
          {production_env}: {production}
        run: python -m pytest {test_file} -c {ini} --rootdir {folder} --junitxml=gate-report.xml
      - name: Keep the gate report
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: gate-report
          path: gate-report.xml
"""


def _package_version() -> str:
    from mlscale_lab import __version__

    return __version__


def write_ci_workflow(
    workspace: str | os.PathLike,
    test_file: str | os.PathLike,
    *,
    candidate: str = "gate/candidate.joblib",
    production: str = "gate/production.joblib",
) -> Path:
    """Write ``.github/workflows/model-gate.yml`` under ``workspace``.

    GitHub Actions then runs the same gate on every push, on the artifacts committed at
    ``candidate`` and ``production`` (paths relative to the repository's root).

    Parameters
    ----------
    workspace : path-like
        The repository's root.
    test_file : path-like
        The gate file :func:`~mlscale_lab.deployment.write_gate` wrote, inside ``workspace``.
    candidate, production : str
        Where the artifacts sit in the repository.

    Returns
    -------
    pathlib.Path
        The workflow file.
    """
    ws = Path(workspace).resolve()
    test_file = Path(test_file).resolve()
    try:
        rel = test_file.relative_to(ws)
    except ValueError:
        raise ValueError(
            f"write_ci_workflow(test_file={str(test_file)!r}): expected a file inside "
            f"workspace={str(ws)!r}, got one outside it"
        ) from None
    path = ws / ".github" / "workflows" / "model-gate.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        _WORKFLOW.format(
            torch=TORCH_REQUIREMENT,
            index=TORCH_CPU_INDEX,
            version=_package_version(),  # the gate file and the library it imports must match
            candidate=candidate,
            production=production,
            candidate_env=GATE_CANDIDATE_ENV,
            production_env=GATE_PRODUCTION_ENV,
            test_file=rel.as_posix(),
            ini=(rel.parent / "pytest.ini").as_posix(),
            folder=rel.parent.as_posix(),
        )
    )
    return path


def validate_workflow(path: str | os.PathLike) -> dict:
    """Parse a workflow with PyYAML and check the keys GitHub needs.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict
        The parsed document.

    Raises
    ------
    ValueError
        No ``on`` trigger (a bare ``on:`` is the boolean True in YAML 1.1), no jobs, or a job
        without ``runs-on`` or ``steps``.
    """
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"validate_workflow(path={str(path)!r}): expected a YAML mapping")
    if "on" not in doc:
        raise ValueError(
            f"validate_workflow(path={str(path)!r}): no 'on' trigger (write it quoted, \"on\":, "
            f"so that YAML keeps it a string)"
        )
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise ValueError(f"validate_workflow(path={str(path)!r}): no jobs")
    for name, job in jobs.items():
        if "runs-on" not in job or not job.get("steps"):
            raise ValueError(
                f"validate_workflow(path={str(path)!r}): job {name!r} needs runs-on and steps"
            )
    return doc
