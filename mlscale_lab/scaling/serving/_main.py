"""Entry point of the server process: ``python -m mlscale_lab.scaling.serving._main FD WORKERS``.

Runs uvicorn on the already-bound listening socket ``FD`` (the launcher bound it on
127.0.0.1, so the port is known and cannot be taken in between) with ``WORKERS`` worker
processes, and ends with the launcher (see ``_lifeline``).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    """Watch the launcher, then run uvicorn on the inherited socket until killed."""
    fd, workers = int(argv[0]), int(argv[1])
    parent = int(os.environ["MLSCALE_SERVE_PARENT"])
    from mlscale_lab.scaling.serving._lifeline import watch_parent

    watch_parent(parent)
    import uvicorn

    uvicorn.run("mlscale_lab.scaling.serving._app:app", fd=fd, workers=workers,
                log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main(sys.argv[1:])
