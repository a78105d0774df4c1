"""Plausible wrong answers to every lab's exercises, one module per lab (``lab02.py``).

Each module holds ``WRONG_ANSWERS = {"<answer cell grade_id>": ["<source>", ...]}``: at least
three per exercise (the misconception the lab names, an off-by-one, the lazy answer that hands
the work to a library helper). tests/test_labs.py runs them after the lab has executed, in its
own kernel, against the exercise's test cells: only the reference may pass.
"""
