"""Entry point of the server process: ``python -m mlscale_lab.scaling.serving._main FD WORKERS``.

Runs uvicorn on the already-bound listening socket ``FD`` (the launcher bound it on
127.0.0.1, so the port is known and cannot be taken in between) with ``WORKERS`` worker
processes, and ends with the launcher (see ``mlscale_lab._core.lifeline``). ``MLSCALE_SERVE_CPUS`` (ids, comma
separated) pins the server and its workers to those CPUs where the platform allows it.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    """Watch the launcher, then run uvicorn on the inherited socket until killed."""
    fd, workers = int(argv[0]), int(argv[1])
    from mlscale_lab._core.environment import SERVE_CPUS_ENV, SERVE_PARENT_ENV, SERVE_READY_DIR_ENV

    cpus = os.environ.get(SERVE_CPUS_ENV)
    if cpus:  # first, so every thread and worker process started from here inherits it
        from mlscale_lab.scaling.serving._affinity import pin_process

        pin_process(int(c) for c in cpus.split(","))
    from mlscale_lab._core.lifeline import watch_parent

    parent = int(os.environ[SERVE_PARENT_ENV])
    # The launcher's temporary folder (ready files, log): ours to remove if the launcher dies.
    folder = os.path.dirname(os.environ[SERVE_READY_DIR_ENV])
    watch_parent(parent, remove=[folder])
    import uvicorn

    uvicorn.run("mlscale_lab.scaling.serving._app:app", fd=fd, workers=workers,
                log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main(sys.argv[1:])
