"""How long and how much the harness allows by default, said once.

The runner, the self-check, grading and the command line (its defaults and its ``--help``) all
read these. A *budget* is the wall-clock seconds a whole notebook may run before every process
of its kernel is killed; a *timeout* is the seconds one cell may run before it is interrupted.
This module imports nothing, so ``mlscale-lab --help`` stays instant.
"""

#: Seconds a whole lab may run under ``mlscale-lab run`` and ``render``.
LAB_BUDGET_S = 600.0
#: Seconds a cell of a learner's own notebook may run under ``mlscale-lab check``, and the
#: whole notebook.
CHECK_TIMEOUT_S = 300.0
CHECK_BUDGET_S = 1800.0
#: Seconds a cell of a submission may run, and the whole submission, under ``mlscale-lab grade``.
GRADE_TIMEOUT_S = 120.0
GRADE_BUDGET_S = 900.0
#: Address-space cap per graded kernel process. Address space is not resident memory: importing
#: torch alone maps about 0.9 GB, so the cap sits well above the labs' 2 GB resident budget.
GRADE_MEMORY_BYTES = 4 * 1024**3
#: Submissions graded at the same time on this machine.
GRADE_WORKERS = 1
