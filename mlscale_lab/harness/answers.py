"""Model answers to the labs' written questions, for learners studying on their own.

A learner on Binder has no instructor to discuss a written answer with. ``mlscale-lab answers
NOTEBOOK`` reads the learner's own notebook and, for each written question they have answered
(the cell no longer holds nbgrader's ``YOUR ANSWER HERE``), prints the reference answer from the
source lab installed with the package. A question not yet tried stays closed: the point is to
compare after trying. Nothing is written anywhere; the graded notebook is only read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: What nbgrader leaves in a written answer's cell of a student version.
PLACEHOLDER = "YOUR ANSWER HERE"
_SOLUTION = re.compile(r"### BEGIN SOLUTION\n?(.*?)### END SOLUTION", re.S)


@dataclass(frozen=True)
class WrittenAnswer:
    """One written question of a lab, the learner's answer and, once they tried, the model one.

    Attributes
    ----------
    grade_id : str
    question : str
        The markdown cell before the answer cell (where the labs put the question).
    attempted : bool
        Whether the learner wrote something in place of the placeholder.
    model_answer : str or None
        The reference answer, only when ``attempted``.
    """

    grade_id: str
    question: str
    attempted: bool
    model_answer: str | None


def _written_cells(nb):
    previous = ""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade"):
            yield meta["grade_id"], previous, cell.source
        if cell.cell_type == "markdown":
            previous = cell.source


def _attempted(text: str) -> bool:
    # nbgrader's student cell is a header line plus the placeholder; anything else is an answer
    body = text.replace(PLACEHOLDER, "").replace("**Your answer:**", "").strip()
    return bool(body)


def model_answers(notebook: str | os.PathLike, labs_directory=None) -> list[WrittenAnswer]:
    """The written questions of ``notebook``, with model answers for the attempted ones.

    Parameters
    ----------
    notebook : path-like
        The learner's notebook (a student version they worked in); its file name names the lab.
    labs_directory : path-like, optional
        Where the source labs are (default: the installed ones).

    Returns
    -------
    list of WrittenAnswer
        In the notebook's order.

    Raises
    ------
    FileNotFoundError
        When ``notebook`` does not exist.
    mlscale_lab.harness.labs.UnknownLabError
        When its name matches no lab.
    """
    import nbformat

    from mlscale_lab.harness.labs import resolve_labs

    path = Path(notebook)
    if not path.is_file():
        raise FileNotFoundError(f"answers: no notebook at {str(path)!r}")
    source = nbformat.read(resolve_labs([path.stem], labs_directory)[0], as_version=4)
    reference = {gid: text for gid, _, text in _written_cells(source)}
    learner = nbformat.read(path, as_version=4)
    out = []
    for gid, question, text in _written_cells(learner):
        attempted = _attempted(text)
        ref = reference.get(gid)
        if ref is not None:
            match = _SOLUTION.search(ref)
            ref = (match.group(1) if match else ref).strip()
        out.append(WrittenAnswer(gid, question.strip(), attempted, ref if attempted else None))
    return out


def format_answers(answers: list[WrittenAnswer]) -> str:
    """Plain text for the terminal: each question, then the model answer or why it is closed."""
    if not answers:
        return "This lab has no written questions."
    blocks = []
    for a in answers:
        head = f"== {a.grade_id} ==\n{a.question}"
        if a.model_answer is not None:
            blocks.append(f"{head}\n\n-- a model answer --\n{a.model_answer}")
        elif a.attempted:
            blocks.append(f"{head}\n\n(no model answer is shipped for this question)")
        else:
            blocks.append(f"{head}\n\n(write your own answer in the notebook first, save it, "
                          "then ask again: comparing works best after trying)")
    return "\n\n".join(blocks)
