import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def make_notebook(path: Path, *sources: str) -> Path:
    """Write a small notebook of code cells (for runner and CLI tests)."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def tiny_labs(tmp_path, monkeypatch):
    """A labs folder of three tiny notebooks: one ok, one failing, one ok; MLSCALE_LABS_DIR set."""
    labs = tmp_path / "labs"
    labs.mkdir()
    make_notebook(labs / "00_ok.ipynb", "from mlscale_lab import record\nrecord('answer', 42)")
    make_notebook(
        labs / "01_broken.ipynb",
        "x = 1",
        "# the failing cell\nraise ValueError('deliberate failure')",
        "from mlscale_lab import record\nrecord('never', 1)",
    )
    make_notebook(labs / "02_alloc.ipynb",
                  "import numpy as np\nblock = np.ones(150 * 1024**2 // 8)\nimport time; time.sleep(0.5)")
    monkeypatch.setenv("MLSCALE_LABS_DIR", str(labs))
    return labs


@pytest.fixture
def cli_env(monkeypatch):
    """Run `python -m mlscale_lab` in-process friendly: the venv's interpreter."""
    return [sys.executable, "-m", "mlscale_lab"]
