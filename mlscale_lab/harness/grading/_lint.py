"""``mlscale-lab lint``: check the labs' exercise format before anyone grades with it.

Checks, per source notebook: nbgrader's own metadata validation; unique ``grade_id``s (within
the lab and across labs) that start with the lab's prefix (``lab03-``); points on every test
cell; every answer cell holds ``### BEGIN/END SOLUTION`` and is followed by its test cell;
hidden-test markers balanced; written answers hold their reference answer in a solution
region (else nbgrader's student version loses the question); test code writes to stdout only (no ``sys.stderr``,
``warnings.warn``, ``logging`` or a tqdm bar: nbgrader scores a cell with stderr output 0).
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from mlscale_lab.harness.grading._source import dotted_name, python_source


def stderr_writes(source: str) -> list[str]:
    """What in a code cell writes to stderr: ``print(file=sys.stderr)``, ``warnings.warn``..."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError as exc:
        return [f"does not parse: {exc.msg} (line {exc.lineno})"]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            name = dotted_name(node)
            if name == "sys.stderr" or name.startswith("sys.stderr."):
                found.append(f"uses sys.stderr (line {node.lineno})")
        if isinstance(node, ast.Call):
            name = dotted_name(node.func)
            head = name.split(".")[0]
            if name == "warnings.warn" or name == "warn":
                found.append(f"calls {name}() (line {node.lineno}): a warning goes to stderr")
            elif head in {"logging", "logger", "log"}:
                found.append(f"calls {name}() (line {node.lineno}): logging goes to stderr")
            elif head in {"tqdm", "trange"} or name.endswith(".tqdm"):
                has_file = any(k.arg == "file" for k in node.keywords)
                if not has_file:
                    found.append(f"calls {name}() without file=sys.stdout (line {node.lineno}): tqdm writes to stderr")
    return sorted(set(found))


def lint_notebook(path: str | os.PathLike) -> list[str]:
    """Problems in one source lab's exercise format; an empty list when it is fine."""
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    problems: list[str] = []
    try:
        MetadataValidator().validate_nb(nb)
    except ValidationError as exc:
        problems.append(f"nbgrader metadata: {exc}")
    prefix = f"lab{path.stem.split('_', 1)[0]}-"
    seen: dict[str, int] = {}
    code_cells = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    n_tests = 0
    for pos, (i, cell) in enumerate(code_cells):
        meta = cell.metadata.get("nbgrader")
        if not meta:
            if "### BEGIN SOLUTION" in cell.source or "### BEGIN HIDDEN TESTS" in cell.source:
                problems.append(f"cell {i}: has solution or hidden-test markers but no nbgrader metadata")
            continue
        gid = meta.get("grade_id")
        where = f"cell {i} ({gid})"
        if not gid:
            problems.append(f"cell {i}: nbgrader cell without a grade_id")
            continue
        if gid in seen:
            problems.append(f"{where}: grade_id already used by cell {seen[gid]}; grade_ids must be unique")
        seen[gid] = i
        if not gid.startswith(prefix):
            problems.append(f"{where}: grade_id should start with {prefix!r} (the lab's number)")
        if meta.get("solution") and not meta.get("grade"):
            if "### BEGIN SOLUTION" not in cell.source or "### END SOLUTION" not in cell.source:
                problems.append(f"{where}: answer cell without ### BEGIN SOLUTION / ### END SOLUTION")
            nxt = code_cells[pos + 1][1] if pos + 1 < len(code_cells) else None
            nmeta = nxt.metadata.get("nbgrader", {}) if nxt is not None else {}
            if not (nmeta.get("grade") and not nmeta.get("solution")):
                problems.append(f"{where}: answer cell is not followed by its test cell (the next code "
                                "cell must be an autograded test cell)")
            elif nmeta.get("grade_id") != f"{gid}-tests":
                problems.append(f"{where}: its test cell is {nmeta.get('grade_id')!r}; name it {gid + '-tests'!r}")
        if meta.get("grade") and not meta.get("solution"):
            n_tests += 1
            points = meta.get("points")
            if not isinstance(points, int | float) or points <= 0:
                problems.append(f"{where}: test cell needs points > 0, has {points!r}")
            if not meta.get("locked"):
                problems.append(f"{where}: test cell should be locked")
            begins, ends = cell.source.count("### BEGIN HIDDEN TESTS"), cell.source.count("### END HIDDEN TESTS")
            if begins != ends:
                problems.append(f"{where}: unbalanced ### BEGIN/END HIDDEN TESTS markers")
            if "### BEGIN SOLUTION" in cell.source:
                problems.append(f"{where}: a test cell holds a solution region")
            problems += [f"{where}: test code must print to stdout only; it {w}" for w in stderr_writes(cell.source)]
    for cell in nb.cells:  # written answers (markdown) need points too
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and not meta.get("points"):
            problems.append(f"written answer {meta.get('grade_id')}: needs points > 0")
        if cell.cell_type == "markdown" and meta.get("solution") and "### BEGIN SOLUTION" not in cell.source:
            # nbgrader then replaces the WHOLE cell with "YOUR ANSWER HERE": a question in it is lost.
            problems.append(f"written answer {meta.get('grade_id')}: put the question in a markdown cell "
                            "above and the reference answer between ### BEGIN SOLUTION / ### END SOLUTION")
    if n_tests == 0:
        problems.append("no autograded test cells: a lab has graded exercises")
    return problems


def lint_labs(paths) -> dict[str, list[str]]:
    """``{lab stem: problems}`` for every lab, grade_ids also checked unique across labs."""
    import nbformat

    report, owner = {}, {}
    for path in map(Path, paths):
        problems = lint_notebook(path)
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid and owner.get(gid, path.stem) != path.stem:
                problems.append(f"grade_id {gid!r} is also used in {owner[gid]}")
            if gid:
                owner.setdefault(gid, path.stem)
        report[path.stem] = problems
    return report
