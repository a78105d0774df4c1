"""Trials of every exercise's test cells, run inside the lab's own executed kernel.

After a lab has run top to bottom, one extra cell replays each exercise's test cells against
the reference answer (the lab's own namespace) and against each plausible wrong answer (the
answer cell's source replaced), each in a copy of that namespace. It records the verdicts with
``mlscale_lab.record("exercise_trials", ...)``, so the lab executes once for its budget, its
records and its exercises' tests together.
"""

from __future__ import annotations

import importlib
import json

import nbformat
from nbformat.v4 import new_code_cell

MIN_WRONG = 3
#: What an unanswered exercise holds in the student version (nbgrader's stub): every test cell
#: must reject it too, so a blank submission can never score.
BLANK = "# YOUR CODE HERE\nraise NotImplementedError()"
#: Grading seeds an instructor might pick (``mlscale-lab grade --seed``): the reference must pass
#: under each, so a test cell that draws its data from GRADING_SEED stays fair.
GRADING_SEEDS = (7, 918273645)

_TRIAL = '''
import linecache as _mlscale_lc
from mlscale_lab import record as _mlscale_record

def _mlscale_trial(answer, tests, label, drop=(), blank=False, grading_seed=None):
    """'passed', 'rejected: <why>' or 'broken: <why>' (the wrong answer did not even run).

    ``drop``: names the reference answer cell defines, removed first for the blank answer (a
    student who did not answer has none of them); the blank's own NotImplementedError is what
    a student's notebook shows, and the tests then run without the names.
    """
    ns = dict(globals())
    for n in drop:
        ns.pop(n, None)
    if grading_seed is not None:  # what `mlscale-lab grade --seed N` gives the test cells
        ns["GRADING_SEED"] = grading_seed
    if answer is not None:
        name = f"<trial {label}>"
        _mlscale_lc.cache[name] = (len(answer), None, answer.splitlines(True), name)
        try:
            exec(compile(answer, name, "exec"), ns)
        except NotImplementedError:
            if not blank:
                return "broken: NotImplementedError"
        except Exception as exc:
            return f"broken: {type(exc).__name__}: {exc}"
    for test in tests:
        try:
            exec(compile(get_ipython().transform_cell(test), f"<tests {label}>", "exec"), ns)
        except Exception as exc:
            return f"rejected: {type(exc).__name__}: {str(exc)[:200]}"
    return "passed"

_mlscale_verdicts = {}
for _gid, _spec in _MLSCALE_TRIALS.items():
    _mlscale_verdicts[_gid] = {
        "reference": _mlscale_trial(None, _spec["tests"], f"{_gid} reference"),
        # only tests that read a grading seed can change with it
        "reference_seeded": [_mlscale_trial(None, _spec["tests"], f"{_gid} reference, seed {s}",
                                            grading_seed=s) for s in _MLSCALE_GRADING_SEEDS
                             if any("GRADING_SEED" in t for t in _spec["tests"])],
        "blank": _mlscale_trial(_MLSCALE_BLANK, _spec["tests"], f"{_gid} blank",
                                drop=_spec["defines"], blank=True),
        "wrong": [_mlscale_trial(w, _spec["tests"], f"{_gid} wrong {i}")
                  for i, w in enumerate(_spec["wrong"])],
    }
_mlscale_record("exercise_trials", _mlscale_verdicts)
'''


def _answer_cells(nb) -> dict[str, tuple[str, list[str], set[str]]]:
    """Autograded exercises: answer grade_id -> (answer source, sources of its test cells, the
    names code cells before it bind)."""
    found: dict[str, tuple[str, list[str], set[str]]] = {}
    current = None
    earlier: set[str] = set()
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            current = meta["grade_id"]
            found[current] = (cell.source, [], set(earlier))
        elif cell.cell_type == "code" and meta.get("grade") and current is not None:
            found[current][1].append(cell.source)
        elif cell.cell_type == "markdown" and meta.get("solution"):
            current = None
        if cell.cell_type == "code":
            earlier.update(defined_names(cell.source))
    return {gid: spec for gid, spec in found.items() if spec[1]}


def exercises(nb) -> dict[str, list[str]]:
    """Autograded exercises: answer cell grade_id -> the sources of the test cells after it."""
    return {gid: tests for gid, (_, tests, _) in _answer_cells(nb).items()}


def defined_names(source: str) -> list[str]:
    """Top-level names an answer cell binds (functions, classes, assignments, imports)."""
    import ast

    from IPython.core.inputtransformer2 import TransformerManager

    tree = ast.parse(TransformerManager().transform_cell(source))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


def wrong_answers(lab_stem: str) -> dict[str, list[str]]:
    """The lab's WRONG_ANSWERS (tests/wrong_answers/labNN.py); {} when it has none."""
    try:
        module = importlib.import_module(f"wrong_answers.lab{lab_stem[:2]}")
    except ModuleNotFoundError:
        return {}
    return module.WRONG_ANSWERS


def with_trials(nb, lab_stem: str):
    """A copy of ``nb`` with the trial cell appended."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    wrong = wrong_answers(lab_stem)
    # the blank answer loses what the reference answer binds, except names earlier cells bound
    # (a student's notebook still has those)
    spec = {gid: {"tests": tests, "wrong": wrong.get(gid, []),
                  "defines": [n for n in defined_names(answer) if n not in earlier]}
            for gid, (answer, tests, earlier) in _answer_cells(nb).items()}
    source = (f"_MLSCALE_TRIALS = {json.dumps(spec)}\n_MLSCALE_BLANK = {json.dumps(BLANK)}\n"
              f"_MLSCALE_GRADING_SEEDS = {list(GRADING_SEEDS)}\n" + _TRIAL)
    nb.cells.append(new_code_cell(source, id="mlscale-exercise-trials"))
    return nb


def problems(nb, lab_stem: str, verdicts: dict) -> list[str]:
    """What is wrong with the exercises' tests: a reference that fails, a wrong answer that
    passes or does not run, an exercise with fewer than three wrong answers."""
    out = []
    wrong = wrong_answers(lab_stem)
    for gid in exercises(nb):
        if len(wrong.get(gid, [])) < MIN_WRONG:
            out.append(f"{gid}: {len(wrong.get(gid, []))} wrong answers in "
                       f"tests/wrong_answers/lab{lab_stem[:2]}.py, at least {MIN_WRONG} wanted")
        v = verdicts.get(gid)
        if v is None:
            out.append(f"{gid}: no verdict (the trial cell did not reach it)")
            continue
        if v["reference"] != "passed":
            out.append(f"{gid}: the reference fails its own tests: {v['reference']}")
        for seed, verdict in zip(GRADING_SEEDS, v.get("reference_seeded", []), strict=False):
            if verdict != "passed":
                out.append(f"{gid}: the reference fails with grading seed {seed}: {verdict}")
        if not v["blank"].startswith("rejected"):
            out.append(f"{gid}: the blank student answer was not rejected ({v['blank']})")
        for i, verdict in enumerate(v["wrong"]):
            if not verdict.startswith("rejected"):
                out.append(f"{gid}: wrong answer {i} was not rejected ({verdict})")
    unknown = set(wrong) - set(exercises(nb))
    if unknown:
        out.append(f"wrong answers for exercises the lab does not have: {sorted(unknown)}")
    return out
