"""Root pytest configuration: the package's docstring Examples run as doctests.

`pytest` collects tests/ and, with ``--doctest-modules``, every module of mlscale_lab. Files
inside the package that are not our modules are skipped: pytest files shipped as package data
(the CI gate's checks, run by the gate itself against a model) and the labs copied into a wheel.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent / "mlscale_lab"


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if PACKAGE in path.parents and (path.name.startswith("test_") or "_labs" in path.parts):
        return True
    return None
