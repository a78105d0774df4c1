"""Optional libraries the package's own processes skip, because importing them costs seconds.

jsonschema, which nbformat loads to validate notebooks, imports ``rfc3987_syntax`` when it is
installed (jupyter-events asks for it) to check the ``iri`` string format, and that library
compiles 39 grammars as it loads: 1.1 s of the 1.3 s ``import nbformat`` takes on the 2-core
machine this project is tested on (``python -X importtime -c "import nbformat"``). Notebooks
never use that format, so the command line, its grading workers and the test suite mark it as
absent before anything imports jsonschema, which then simply leaves ``iri`` unchecked. A
learner's kernel is never changed: only processes the package itself starts call
:func:`skip_slow_optional_imports`.
"""

from __future__ import annotations

import sys

__all__ = ["SLOW_OPTIONAL_IMPORTS", "skip_slow_optional_imports"]

#: Modules other libraries import only if they are installed, and that we never need.
SLOW_OPTIONAL_IMPORTS = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> list[str]:
    """Make :data:`SLOW_OPTIONAL_IMPORTS` read as not installed in this process (an import of one
    raises ``ImportError``, which the libraries that try them expect); return the ones skipped.

    Does nothing for a module already imported.
    """
    skipped = []
    for name in SLOW_OPTIONAL_IMPORTS:
        if name not in sys.modules:
            sys.modules[name] = None  # the import system's own mark for "not importable here"
            skipped.append(name)
    return skipped
