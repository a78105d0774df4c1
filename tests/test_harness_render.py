"""mlscale-lab render: executed labs as HTML pages with an index."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mlscale_lab.harness.cli import main
from mlscale_lab.harness.render import render_labs


def _lab(directory, name, *cells, mlscale=None):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["mlscale"] = mlscale or {}
    nbformat.write(nb, directory / name)


@pytest.fixture
def labs(tmp_path, monkeypatch):
    d = tmp_path / "labs"
    d.mkdir()
    _lab(
        d,
        "00_ok.ipynb",
        new_markdown_cell("# A lab"),
        new_code_cell("print('answer', 6 * 7)"),
        mlscale={"topic": "Arithmetic <live>", "minutes": 5, "measures": "a product"},
    )
    _lab(
        d,
        "01_broken.ipynb",
        new_code_cell("print('before', 2 + 3)"),
        new_code_cell("raise RuntimeError('broken on purpose')"),
    )
    monkeypatch.setenv("MLSCALE_LABS_DIR", str(d))
    return d


@pytest.mark.slow
def test_render_writes_executed_pages_and_an_index(labs, tmp_path):
    out = tmp_path / "site"
    pages = render_labs(out)
    assert [p.name for p in pages] == ["00_ok", "01_broken"]
    assert [p.status for p in pages] == ["ok", "failed"]
    ok = (out / "00_ok.html").read_text()
    assert "answer 42" in ok, "the page shows what the cell computed when it ran"
    broken = (out / "01_broken.html").read_text()
    assert "before 5" in broken and "broken on purpose" in broken
    index = (out / "index.html").read_text()
    assert 'href="00_ok.html"' in index and 'href="01_broken.html"' in index
    assert "Arithmetic &lt;live&gt;" in index, "metadata is escaped into the index"
    assert "failed: cell 1" in index


@pytest.mark.slow
def test_render_command_exit_status(labs, tmp_path, capsys):
    assert main(["render", "00", "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "index.html").is_file()
    assert main(["render", "--out", str(tmp_path / "b")]) == 1  # 01 fails
    assert main(["render", "07", "--out", str(tmp_path / "c")]) == 2
    assert "00_ok, 01_broken" in capsys.readouterr().err


def test_render_refuses_a_file_as_out_dir(labs, tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="out_dir"):
        render_labs(f)
