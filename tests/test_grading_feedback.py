"""Feedback scrubbing, unit by unit: hidden tests never reach the learner, even in a traceback."""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_notebook, new_output

from mlscale_lab.harness.grading._feedback import HIDDEN_FAILURE, hidden_line_numbers, scrub_outputs

TEST_SOURCE = """assert f(2) == 4, "f(2) should be 4"
print("public tests passed")
### BEGIN HIDDEN TESTS
assert f(3) == 9, "secret case three"
### END HIDDEN TESTS"""


def _nb(error_line: int, evalue: str, extra_stdout: str = ""):
    lines = TEST_SOURCE.splitlines()
    frame = f"Cell In[7], line {error_line}\n" + "\n".join(
        ("----> " if i == error_line else "      ") + f"{i} {text}" for i, text in enumerate(lines, start=1))
    cell = new_code_cell(TEST_SOURCE, execution_count=7)
    cell.outputs = [new_output("stream", name="stdout", text="public tests passed\n" + extra_stdout),
                    new_output("error", ename="AssertionError", evalue=evalue,
                               traceback=["-----", frame, f"AssertionError: {evalue}"])]
    return new_notebook(cells=[cell])


HIDDEN = {'assert f(3) == 9, "secret case three"'}


def test_hidden_line_numbers_cover_the_markers():
    assert hidden_line_numbers(TEST_SOURCE) == {3, 4, 5}


def test_failure_on_a_hidden_line_is_reported_without_its_text():
    nb = _nb(4, "secret case three")
    scrub_outputs(nb, HIDDEN)
    err = nb.cells[0].outputs[1]
    assert err.traceback == [HIDDEN_FAILURE.format(ename="AssertionError")] and err.evalue == ""


def test_public_failure_keeps_its_message_but_not_the_hidden_context_lines():
    nb = _nb(1, "f(2) should be 4")
    scrub_outputs(nb, HIDDEN)
    err = nb.cells[0].outputs[1]
    text = "\n".join(err.traceback)
    assert "f(2) should be 4" in text and "----> 1" in text
    assert "f(3)" not in text and "HIDDEN TESTS" not in text


def test_printed_hidden_code_is_removed_from_stdout():
    nb = _nb(1, "f(2) should be 4", extra_stdout='In: assert f(3) == 9, "secret case three"\nok\n')
    scrub_outputs(nb, HIDDEN)
    assert nb.cells[0].outputs[0].text == "public tests passed\nok\n"


def test_a_cell_source_already_highlighted_is_not_highlighted_again_and_pages_stay_the_same(monkeypatch):
    import nbconvert.filters.highlight as highlight

    from mlscale_lab.harness.grading._feedback import feedback_html

    calls = []
    real = highlight._pygments_highlight
    monkeypatch.setattr(highlight, "_pygments_highlight", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    nb = new_notebook(cells=[new_code_cell("def f(x):\n    return x * x"), new_code_cell("y = f(3)  # mine")])
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    resources = {"nbgrader": {"notebook": "lab", "assignment": "lab", "student": "s", "score": 0,
                              "max_score": 0, "late_penalty": 0}}
    first = feedback_html(nb, resources, set())
    nb.cells[1].source = "y = f(4)  # another learner"
    second = feedback_html(nb, resources, set())
    assert calls.count("def f(x):\n    return x * x") == 1  # the lab's cell, once for both pages
    assert "y = f(4)  # another learner" in calls  # a new answer is highlighted
    again = feedback_html(nb, resources, set())
    assert again == second and again != first
    assert "another" in again and "mine" in first
