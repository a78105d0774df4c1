"""The exercise-trial harness itself, on a tiny lab: a reference that passes, wrong answers
that are rejected, one that slips through, and one that does not even run."""

import nbformat
from exercise_trials import exercises, problems, with_trials
from nbformat.v4 import new_code_cell, new_notebook

from mlscale_lab.harness.runner import run_lab


def _cell(source, **nbgrader):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, "locked": False, "points": 0, **nbgrader}
    return cell


def test_trials_tell_passing_rejected_and_broken_answers_apart(tmp_path, monkeypatch):
    nb = new_notebook(cells=[
        new_code_cell("data = [3, 1, 2]"),
        _cell("def middle(xs):\n    return sorted(xs)[len(xs) // 2]", grade_id="lab99-middle",
              solution=True, grade=False),
        _cell("assert middle(data) == 2\nassert middle([5, 4, 6, 1, 9]) == 5\n"
              "import random\n_r = random.Random(globals().get('GRADING_SEED', 1))\n"
              "_xs = [_r.random() for _ in range(5)]\nassert middle(_xs) == sorted(_xs)[2]",
              grade_id="lab99-middle-tests", solution=False, grade=True, points=1),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    assert list(exercises(nb)) == ["lab99-middle"]
    wrong = {"lab99-middle": [
        "def middle(xs):\n    return xs[len(xs) // 2]",          # forgets to sort: rejected
        "def middle(xs):\n    return sorted(xs)[1]",             # right on the public data only...
        "def middle(xs) return 0",                                # does not even compile
    ]}
    monkeypatch.setattr("exercise_trials.wrong_answers", lambda stem: wrong)
    path = tmp_path / "99_tiny.ipynb"
    nbformat.write(with_trials(nb, "99_tiny"), str(path))
    run = run_lab(path, budget=120)
    assert run.status == "ok", run.error
    verdicts = run.results["exercise_trials"]["lab99-middle"]
    assert verdicts["reference"] == "passed"
    assert verdicts["reference_seeded"] == ["passed", "passed"]  # other grading data, still fair
    # the student stub, always tried, with the reference's names gone: the tests must not pass
    assert verdicts["blank"].startswith("rejected: NameError"), verdicts["blank"]
    wrongs = verdicts["wrong"]
    assert wrongs[0].startswith("rejected: AssertionError")
    assert wrongs[1].startswith("rejected")  # the second assert catches it
    assert wrongs[2].startswith("broken: SyntaxError")
    found = problems(nb, "99_tiny", run.results["exercise_trials"])
    assert len(found) == 1 and found[0].startswith(
        "lab99-middle: wrong answer 2 was not rejected (broken: SyntaxError")
    assert "at least 3" not in found[0]
