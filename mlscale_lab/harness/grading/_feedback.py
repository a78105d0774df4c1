"""Feedback HTML that never shows a hidden test, not even inside a traceback.

nbgrader's own feedback shows the autograded notebook, whose test cells were restored from the
gradebook *with* their hidden tests. Here the hidden regions are cleared with nbgrader's
``ClearHiddenTests``, a failure raised on a hidden line is reported without its text, and any
output line that quotes hidden test code (a traceback's context lines, or a submission that
printed ``In[-1]``) is removed.
"""

from __future__ import annotations

import copy
import functools
import html
import os
import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = re.compile(r"Cell In\s*\[(\d+)\],\s*line (\d+)")
HIDDEN_FAILURE = (
    "A hidden test failed ({ename}). Hidden tests check cases you have not seen; "
    "re-read the exercise and test your answer on other inputs."
)


def strip_ansi(text: str) -> str:
    """``text`` without ANSI colour codes."""
    return _ANSI.sub("", text)


def hidden_line_numbers(source: str) -> set[int]:
    """1-based line numbers of a test cell's hidden region, markers included."""
    inside, numbers = False, set()
    for i, line in enumerate(source.splitlines(), start=1):
        if "### BEGIN HIDDEN TESTS" in line:
            inside = True
        if inside:
            numbers.add(i)
        if "### END HIDDEN TESTS" in line:
            inside = False
    return numbers


def _quotes_hidden(text: str, hidden: set[str]) -> bool:
    plain = strip_ansi(text)
    return any(h in plain for h in hidden)


def _failing_line(output, execution_count) -> int | None:
    """The line of the test cell that raised, read from IPython's traceback frames."""
    for chunk in output.get("traceback", []):
        m = _FRAME.search(strip_ansi(chunk))
        if m and execution_count is not None and int(m.group(1)) == execution_count:
            return int(m.group(2))
    return None


_CONTEXT_LINE = re.compile(r"^\s*(?:-*>)?\s*(\d+)\s")


def _drop_hidden_context(chunk: str, execution_count, hidden_lines: set[int], hidden: set[str]) -> str:
    """A traceback frame without the hidden lines IPython shows as context around the failure."""
    m = _FRAME.search(strip_ansi(chunk))
    in_this_cell = m is not None and execution_count is not None and int(m.group(1)) == execution_count
    kept = []
    for ln in chunk.split("\n"):
        plain = strip_ansi(ln)
        num = _CONTEXT_LINE.match(plain)
        if in_this_cell and num and int(num.group(1)) in hidden_lines:
            continue
        if not _quotes_hidden(plain, hidden):
            kept.append(ln)
    return "\n".join(kept)


def scrub_outputs(nb, hidden: set[str]) -> None:
    """Remove hidden test text from every output of ``nb``, in place."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        hidden_lines = hidden_line_numbers(cell.source)
        for out in cell.outputs:
            if out.output_type == "error":
                line = _failing_line(out, cell.get("execution_count"))
                if (line is not None and line in hidden_lines) or _quotes_hidden(out.get("evalue", ""), hidden):
                    out.evalue = ""
                    out.traceback = [HIDDEN_FAILURE.format(ename=out.ename)]
                else:
                    out.traceback = [_drop_hidden_context(chunk, cell.get("execution_count"),
                                                          hidden_lines, hidden)
                                     for chunk in out.get("traceback", [])]
            elif out.output_type == "stream":
                out.text = "".join(ln for ln in out.text.splitlines(keepends=True)
                                   if not _quotes_hidden(ln, hidden))
            elif "data" in out:
                for mime, value in list(out.data.items()):
                    if isinstance(value, str) and _quotes_hidden(value, hidden) or isinstance(value, list) and _quotes_hidden("".join(value), hidden):
                        del out.data[mime]


_EXPORTER: list = []
#: Highlighted cell sources a grading process keeps (a few labs' cells and their answers).
HIGHLIGHTS_KEPT = 4096


def exporter():
    """nbgrader's feedback exporter (its ``feedback`` template), built once per process:
    compiling the templates takes longer than rendering one notebook.

    It is nbconvert's HTML exporter without the BeautifulSoup pass that adds image alt text and
    tabindex attributes: re-parsing a page that inlines Bootstrap's CSS took most of a feedback
    page's time (about 0.3 s of CPU a submission); :func:`feedback_html` adds the alt text.
    """
    if not _EXPORTER:
        import nbgrader
        from nbconvert.exporters import HTMLExporter, TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
        from traitlets.config import Config

        class RememberedHighlight(Highlight2HTML):
            """The same cell source highlights the same: a class's submissions share most of
            their cells with the lab, and Pygments took a third of a feedback page's time."""

            def __init__(self, **kw):
                super().__init__(**kw)
                # a cell's metadata matters to Pygments only through its magics_language
                self.remembered = functools.lru_cache(maxsize=HIGHLIGHTS_KEPT)(
                    lambda source, language, magics: Highlight2HTML.__call__(
                        self, source, language, {"magics_language": magics} if magics else None))

            def __call__(self, source, language=None, metadata=None):
                return self.remembered(source, language, (metadata or {}).get("magics_language"))

        class FeedbackExporter(HTMLExporter):
            def from_notebook_node(self, nb, resources=None, **kw):
                langinfo = nb.metadata.get("language_info", {})
                lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
                if getattr(self, "highlight", None) is None or self.highlight.pygments_lexer != lexer:
                    self.highlight = RememberedHighlight(pygments_lexer=lexer, parent=self)
                self.register_filter("highlight_code", self.filters.get("highlight_code", self.highlight))
                resources = self._init_resources(resources)
                self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                    notebook_metadata=self._nb_metadata, parent=self, resources=resources))
                return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        base = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
        c = Config()
        c.HTMLExporter.template_name = "feedback"
        c.HTMLExporter.extra_template_basedirs = [str(base / "templates")]
        c.HTMLExporter.extra_template_paths = [str(base / "static" / "node_modules" / "bootstrap" / "dist" / "css")]
        _EXPORTER.append(FeedbackExporter(config=c))
    return _EXPORTER[0]


_IMG_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt=)")


def feedback_html(nb, resources: dict, hidden: set[str], note: str | None = None) -> str:
    """Render graded notebook ``nb`` (scores set by the grader as nbgrader's ``GetGrades`` does)
    as feedback HTML."""
    from nbformat.v4 import new_markdown_cell
    from nbgrader.preprocessors import ClearHiddenTests

    nb = copy.deepcopy(nb)
    scrub_outputs(nb, hidden)
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    if note:
        nb.cells.insert(0, new_markdown_cell(f"**Grading note:** {note}"))
    body, _ = exporter().from_notebook_node(nb, resources=copy.deepcopy(resources))
    body = _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', body)
    # Last line of defence: no hidden line survives, raw or HTML-escaped.
    for h in hidden:
        for form in {h, html.escape(h), html.escape(h, quote=False)}:
            body = body.replace(form, "[hidden test]")
    return body


def write_feedback(path: str | os.PathLike, body: str) -> Path:
    """Write a feedback page, creating its folder; return its path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body, encoding="utf-8")
    return p
