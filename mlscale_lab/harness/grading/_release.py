"""Student versions of the labs, made by nbgrader's own ``generate_assignment`` preprocessors.

The student version has the reference solutions replaced by ``raise NotImplementedError()``,
the hidden tests removed, the test cells locked and every graded cell's checksum set, so
``nbgrader autograde`` (or :func:`mlscale_lab.harness.grading.grade_submissions`) can tell a tampered
test cell and restore it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mlscale_lab._core.tempdirs import owned_tempdir, temporary_folder

#: nbgrader's generate_assignment pipeline minus IncludeHeaderFooter and InstantiateTests
#: (the labs have neither headers nor autotest templates). ClearHiddenTests runs after
#: SaveCells, so the gradebook keeps the hidden tests and the student version does not.
_BEFORE_SAVE = ("LockCells", "ClearSolutions", "ClearOutput", "CheckCellMetadata", "ComputeChecksums")
_AFTER_SAVE = ("ClearHiddenTests", "ClearMarkScheme", "ComputeChecksums", "CheckCellMetadata")

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n?(.*?)### END HIDDEN TESTS", re.S)


_TEMPLATE_DB: list[Path] = []


def _alembic_head() -> str:
    """The schema revision nbgrader stamps a new gradebook with, read with alembic's Python API
    from nbgrader's own migration scripts (what ``alembic heads`` prints, without a subprocess)."""
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def new_gradebook(path: str | os.PathLike) -> str:
    """Create an empty nbgrader gradebook at ``path`` and return its URL.

    nbgrader stamps a new database with its schema revision by running the ``alembic``
    command in a subprocess (seconds, and it must be on PATH). Here the revision is read
    in-process, once per process; later gradebooks are copies of the first empty one.
    """
    import shutil

    import nbgrader.api
    from nbgrader.api import Gradebook

    if not _TEMPLATE_DB:
        tmpl = owned_tempdir("gradebook") / "empty.db"  # removed when this process exits
        head = _alembic_head()
        original = nbgrader.api.get_alembic_version
        nbgrader.api.get_alembic_version = lambda: head
        try:
            Gradebook(f"sqlite:///{tmpl}").close()
        finally:
            nbgrader.api.get_alembic_version = original
        _TEMPLATE_DB.append(tmpl)
    shutil.copyfile(_TEMPLATE_DB[0], path)
    return f"sqlite:///{path}"


def _run(names, nb, resources):
    from nbgrader import preprocessors

    for name in names:
        nb, resources = getattr(preprocessors, name)().preprocess(nb, resources)
    return nb, resources


def lab_id(path: str | os.PathLike) -> str:
    """The assignment and notebook name nbgrader uses for a lab: its file stem."""
    return Path(path).stem


def generate_student_version(source, db_url: str | None = None, *, name: str | None = None):
    """Run nbgrader's generate_assignment preprocessors on a source notebook.

    Parameters
    ----------
    source : path-like or NotebookNode
        The lab's source notebook (reference solutions and hidden tests in it).
    db_url : str, optional
        A gradebook (``sqlite:///...``) to record the source cells in, as ``nbgrader
        generate_assignment`` does; a throwaway one when omitted.
    name : str, optional
        Assignment and notebook name; the source file's stem by default.

    Returns
    -------
    NotebookNode
        The student version.
    """
    import copy

    import nbformat
    from nbgrader.api import Gradebook

    if isinstance(source, str | os.PathLike):
        name = name or lab_id(source)
        nb = nbformat.read(str(source), as_version=4)
    else:
        nb = copy.deepcopy(source)
        if not name:
            raise ValueError("generate_student_version(name=None): name the assignment for a notebook object")
    with temporary_folder("release") as tmp:
        url = db_url or new_gradebook(tmp / "gradebook.db")
        with Gradebook(url) as gb:
            gb.update_or_create_assignment(name)
        resources = {"nbgrader": {"notebook": name, "assignment": name, "db_url": url}}
        from nbgrader.preprocessors import SaveCells

        nb, resources = _run(_BEFORE_SAVE, nb, resources)
        nb, resources = SaveCells().preprocess(nb, resources)
        nb, resources = _run(_AFTER_SAVE, nb, resources)
    return nb


def release_labs(labs, out_dir: str | os.PathLike, *, overwrite: bool = True) -> list[Path]:
    """Write the student version of each lab notebook into ``out_dir``; return the paths written.

    With ``overwrite=False`` an existing file is kept (a learner's workspace).
    """
    import nbformat

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder; choose a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for lab in labs:
        dest = out / Path(lab).name
        if dest.exists() and not overwrite:
            continue
        nb = generate_student_version(lab)
        # Write to a temporary name and rename, so a crash never leaves half a notebook.
        tmp = dest.with_suffix(".ipynb.part")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, dest)
        written.append(dest)
    return written


def hidden_test_lines(source_nb, student_nb=None) -> set[str]:
    """The stripped lines of every hidden-test region that a learner never sees.

    Lines that also appear in the student version (``pass``, ``else:``) are no secret and are
    left out, so this is the set feedback must never contain.
    """
    seen = set()
    if student_nb is not None:
        for cell in student_nb.cells:
            seen.update(line.strip() for line in cell.source.splitlines())
    lines = set()
    for cell in source_nb.cells:
        for block in _HIDDEN.findall(cell.source):
            for line in block.splitlines():
                s = line.strip()
                if len(s) >= 10 and s not in seen:
                    lines.add(s)
    return lines
