"""Render executed labs as static HTML with an index page, to browse without running them.

Each lab runs headless through :func:`mlscale_lab.harness.runner.run_lab` (so the outputs are what
this machine measured), then nbconvert turns the executed notebook into one HTML page.
"""

from __future__ import annotations

import datetime
import html
import os
from dataclasses import dataclass
from pathlib import Path

from mlscale_lab._core.tempdirs import temporary_folder
from mlscale_lab.harness.budgets import LAB_BUDGET_S
from mlscale_lab.harness.labs import resolve_labs

_MB = 1024**2


@dataclass
class RenderedLab:
    """One rendered lab: where its page is and how its run went."""

    name: str
    html_path: Path
    status: str
    seconds: float
    peak_memory_bytes: int
    error: str | None
    meta: dict


def notebook_to_html(notebook_path: str | os.PathLike, html_path: str | os.PathLike) -> Path:
    """Convert one (executed) notebook to a standalone HTML page with nbconvert's lab template."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook_path, as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    out = Path(html_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out


def _index_html(rendered: list[RenderedLab]) -> str:
    rows = []
    for r in rendered:
        topic = r.meta.get("topic", "")
        status = r.status if r.error is None else f"{r.status}: {r.error}"
        rows.append(
            "<tr>"
            f'<td><a href="{html.escape(r.html_path.name)}">{html.escape(r.name)}</a></td>'
            f"<td>{html.escape(str(topic))}</td>"
            f"<td>{html.escape(str(r.meta.get('minutes', '')))}</td>"
            f"<td>{html.escape(str(r.meta.get('measures', '')))}</td>"
            f"<td>{html.escape(status)}</td>"
            f"<td>{r.seconds:.1f}</td>"
            f"<td>{r.peak_memory_bytes / _MB:.0f}</td>"
            "</tr>"
        )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mlscale-lab: rendered labs</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; vertical-align: top; }}
td:nth-child(6), td:nth-child(7) {{ text-align: right; }}
</style></head>
<body>
<h1>mlscale-lab: the labs, executed</h1>
<p>Each page is a lab run top to bottom on the machine that rendered them ({html.escape(when)});
the numbers are what that machine measured. Run them yourself for your own.</p>
<table>
<thead><tr><th>lab</th><th>topic</th><th>minutes</th><th>what you measure</th><th>status</th>
<th>seconds</th><th>peak MB</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""


def render_labs(
    out_dir: str | os.PathLike,
    labs: list[str] | None = None,
    *,
    budget: float = LAB_BUDGET_S,
    progress=None,
) -> list[RenderedLab]:
    """Execute labs and write ``out_dir/<lab>.html`` for each plus ``out_dir/index.html``.

    Parameters
    ----------
    out_dir : path-like
        Folder for the pages (created).
    labs : list of str, optional
        Lab names or numbers as ``mlscale-lab run`` takes them; all labs by default.
    budget : float
        Seconds each lab may run before every process of its kernel is killed.
    progress : callable, optional
        Called with a short message before each lab.

    Returns
    -------
    list of RenderedLab
        A lab that fails is still rendered up to its failing cell, and marked failed.
    """
    import nbformat

    from mlscale_lab.harness.runner import run_lab

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {str(out)!r} exists and is not a folder; choose another")
    paths = resolve_labs(labs)
    out.mkdir(parents=True, exist_ok=True)
    rendered = []
    with temporary_folder("render") as tmp:
        for path in paths:
            if progress:
                progress(f"running {path.stem} ...")
            run = run_lab(path, budget=budget, executed_dir=tmp)
            executed = Path(tmp) / path.name
            page = notebook_to_html(executed, out / f"{path.stem}.html")
            meta = dict(nbformat.read(path, as_version=4).metadata.get("mlscale", {}))
            rendered.append(
                RenderedLab(
                    run.name, page, run.status, run.seconds, run.peak_memory_bytes, run.error, meta
                )
            )
    (out / "index.html").write_text(_index_html(rendered), encoding="utf-8")
    return rendered
