"""Binder: binder/ builds a CPU-only environment that opens the learner's workspace, and
every lab fits a Binder pod (2 GB, one CPU) with room to spare."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
WORKSPACE_URLPATH = "lab/tree/workspace/00_start_here.ipynb"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _binder_requirements() -> tuple[dict[str, Requirement], list[str]]:
    """(requirements by canonical name, pip option lines) of binder/requirements.txt."""
    reqs: dict[str, Requirement] = {}
    options: list[str] = []
    for raw in (BINDER / "requirements.txt").read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in reqs, f"binder/requirements.txt lists {req.name} twice"
        reqs[name] = req
    return reqs, options


def _pyproject_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {
        canonicalize_name(Requirement(r).name): Requirement(r)
        for r in data["project"]["dependencies"]
    }


def test_binder_requirements_name_the_same_packages_as_pyproject():
    binder, _ = _binder_requirements()
    project = _pyproject_requirements()
    assert set(binder) == set(project), (
        f"binder/requirements.txt and pyproject.toml disagree: only in binder "
        f"{sorted(set(binder) - set(project))}, only in pyproject {sorted(set(project) - set(binder))}"
    )
    for name, req in binder.items():
        assert req.extras == project[name].extras, (
            f"{name}: extras {req.extras} vs pyproject {project[name].extras}"
        )


def test_binder_bounds_are_compatible_with_pyproject():
    binder, _ = _binder_requirements()
    project = _pyproject_requirements()
    for name, req in binder.items():
        wanted = project[name].specifier
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if pins:  # a pin must sit inside pyproject's range
            for pin in pins:
                assert wanted.contains(Version(pin), prereleases=True), (
                    f"binder pins {name}=={pin}, outside pyproject's {name}{wanted}"
                )
        else:
            assert req.specifier == wanted, (
                f"{name}: binder/requirements.txt says {req.specifier or '(any)'}, pyproject.toml says "
                f"{wanted or '(any)'}; keep the bounds the same"
            )


def test_binder_installs_cpu_only_torch_from_pytorchs_cpu_index():
    binder, options = _binder_requirements()
    torch = binder["torch"]
    pins = [s for s in torch.specifier if s.operator == "=="]
    assert len(pins) == 1, f"pin torch to one CPU build (torch==X.Y.Z+cpu), got {torch}"
    version = Version(pins[0].version)
    assert version.local == "cpu", (
        f"torch=={version} is not a CPU build: without the +cpu local version pip may take PyPI's "
        "multi-GB CUDA wheel"
    )
    assert version in _pyproject_requirements()["torch"].specifier
    assert f"--extra-index-url {CPU_INDEX}" in options, (
        f"binder/requirements.txt must add {CPU_INDEX}"
    )
    # --index-url would replace PyPI, where the other packages live.
    assert not any(o.startswith("--index-url") for o in options)


def test_postbuild_installs_the_package_without_dependencies_and_makes_the_workspace():
    script = (BINDER / "postBuild").read_text()
    assert os.access(BINDER / "postBuild", os.X_OK), "binder/postBuild must be executable"
    assert script.startswith("#!/bin/bash") and "set -euo pipefail" in script
    # --no-deps: a second resolution could replace the CPU torch with PyPI's CUDA build.
    assert re.search(r"^python -m pip install [^\n]*--no-deps \.$", script, re.M), script
    assert re.search(r"^mlscale-lab start --no-launch workspace$", script, re.M), script
    assert "jupyter-resource-usage" in (BINDER / "requirements.txt").read_text()


def test_postbuild_workspace_step_creates_the_notebook_the_badge_opens(tmp_path):
    """Run postBuild's own workspace command: the badge's urlpath must exist afterwards."""
    line = next(
        ln
        for ln in (BINDER / "postBuild").read_text().splitlines()
        if ln.startswith("mlscale-lab start")
    )
    cli = [sys.executable, "-m", "mlscale_lab", *line.split()[1:]]
    done = subprocess.run(cli, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    opened = tmp_path / WORKSPACE_URLPATH.removeprefix("lab/tree/")
    assert opened.is_file(), f"{WORKSPACE_URLPATH} does not exist after postBuild's workspace step"


def test_readme_binder_badge_opens_the_workspace():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://mybinder\.org/v2/[^\s)\]]+", readme)
    if not links:
        pytest.skip("README.md has no Binder badge yet")
    for link in links:
        assert link.startswith("https://mybinder.org/v2/gh/mlscale-lab/mlscale-lab/main"), link
        assert f"urlpath={WORKSPACE_URLPATH}" in link, (
            f"the Binder badge should open {WORKSPACE_URLPATH}: {link}"
        )


def _repo2docker() -> str:
    exe = shutil.which(
        "repo2docker", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    )
    if exe is None:
        if IN_CI:
            pytest.fail(
                "repo2docker is missing in CI: it is in the dev extra (jupyter-repo2docker)"
            )
        pytest.skip("repo2docker not installed: pip install jupyter-repo2docker")
    return exe


@pytest.fixture(scope="module")
def dockerfile() -> str:
    """The Dockerfile repo2docker generates for this repository (--no-build needs no daemon)."""
    done = subprocess.run(
        [_repo2docker(), "--no-build", str(ROOT)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "FROM " in done.stdout, (
        f"repo2docker printed no Dockerfile:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def test_repo2docker_uses_binders_requirements_and_python_311(dockerfile):
    assert 'pip install --no-cache-dir -r "binder/requirements.txt"' in dockerfile
    # The base environment's lock file is named after the Python of binder/runtime.txt
    # ("environment.py-3.11-linux-64.lock", escaped by repo2docker as below).
    assert "environment-2epy-2d3-2e11-2dlinux" in dockerfile, (
        "binder/runtime.txt asks for Python 3.11"
    )
    # Nothing else installs torch: no root requirements file, no environment.yml, no setup.py.
    installs = [
        ln for ln in dockerfile.splitlines() if re.search(r"\b(pip|conda|mamba) install\b", ln)
    ]
    assert installs == [ln for ln in installs if "binder/requirements.txt" in ln], installs


def test_repo2docker_runs_postbuild_after_copying_the_repository(dockerfile):
    copy_repo = dockerfile.index("COPY --chown=0:0 src/ ${REPO_DIR}/")
    post_build = dockerfile.index("RUN ./binder/postBuild")
    assert copy_repo < post_build, "postBuild must run after the repository is in the image"


# --- Binder-sized runs: 2 GB, one CPU -------------------------------------------------------

ARTIFACTS = ROOT / "artifacts" / "binder"


def _can_make_cgroups() -> bool:
    from mlscale_lab.harness.confine import Confinement

    try:
        with Confinement(mechanism="cgroup"):
            return True
    except OSError:
        return False


def _notebook(tmp_path: Path, *sources: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "99_probe.ipynb"
    nbformat.write(nb, path)
    return path


def test_binder_limits_reject_bad_values_with_the_parameter_named():
    from mlscale_lab.harness.confine import BinderLimits, Confinement

    with pytest.raises(ValueError, match="memory_bytes"):
        BinderLimits(memory_bytes=1000)
    with pytest.raises(ValueError, match="cpus"):
        BinderLimits(cpus=0)
    with pytest.raises(ValueError, match="mechanism"):
        Confinement(mechanism="docker")
    assert BinderLimits().env() == {"MEM_LIMIT": str(2 * 1024**3), "CPU_LIMIT": "1"}


MECHANISMS = [
    "rlimit",
    pytest.param(
        "cgroup",
        marks=pytest.mark.skipif(
            not _can_make_cgroups(), reason="no writable cgroup here (needs root); rlimit covers it"
        ),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confined_kernel_sees_the_budget_and_cannot_pass_the_limit(tmp_path, mechanism):
    from mlscale_lab.harness.confine import BinderLimits
    from mlscale_lab.harness.runner import run_lab_binder_sized

    limits = BinderLimits(memory_bytes=512 * 1024**2, cpus=1)
    probe = _notebook(
        tmp_path,
        "from mlscale_lab import record\nfrom mlscale_lab.constraints import machine_budget\n"
        "b = machine_budget()\nrecord('limit', b.memory_limit_bytes)\nrecord('cpus', b.cpus)",
        "import numpy as np\nx = np.ones(1536 * 1024**2 // 8)  # 1.5 GiB, three times the limit",
        "record('survived', True)",
    )
    run = run_lab_binder_sized(probe, limits, mechanism=mechanism, budget=120)
    assert run.mechanism.startswith(mechanism), run
    assert run.status == "failed", f"a 1.5 GiB array ran under a 512 MiB {mechanism} limit: {run}"
    assert run.error and "cell 1" in run.error, run.error
    if mechanism == "cgroup":
        assert run.oom_kills and run.oom_kills >= 1, run
    # Before it died, the kernel planned with the pod's budget, not the host's.
    assert run.results == {"limit": limits.memory_bytes, "cpus": 1.0}, run.results


# Each lab's fit in a Binder pod is checked in tests/test_labs.py on the lab's one run (peak <=
# 75 % of 2 GiB): executing every lab a second time here, confined, would double CI's lab time.
# `mlscale-lab run --binder` measures the confined runs (the figures are in the release notes).
