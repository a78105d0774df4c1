"""What runs the notebooks: never imported by a notebook, and nothing else imports it.

- :mod:`.labs` finds the lab notebooks; :mod:`.executor` runs one in a fresh kernel under
  budgets (the one executor the runner and the grader share); :mod:`.confine` starts that
  kernel inside Binder-sized limits; :mod:`.runner` runs labs and reports.
- :mod:`.render` writes HTML; :mod:`.workspace` copies labs where a learner edits them.
- :mod:`.grading` releases student versions and grades submissions safely.
- :mod:`.cli` is the ``mlscale-lab`` command, a thin shell over all of the above.
"""
