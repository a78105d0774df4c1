"""torchrun, tied to the notebook: ``python -m mlscale_lab.scaling.distributed._agent ARGS``.

Exactly ``torchrun ARGS`` (``torch.distributed.run.main``), after taking a lifeline to the
process named by ``MLSCALE_PARENT_PID`` (``_core.environment.TRAIN_PARENT_ENV``): if the notebook's kernel dies, the elastic agent and
its workers (whose own lifeline is the agent) end too.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main"]


def main(argv=None) -> None:
    """Watch the parent, then run torchrun with ``argv``."""
    from mlscale_lab._core.environment import TRAIN_PARENT_ENV
    from mlscale_lab._core.lifeline import set_parent_death_signal, watch_parent

    set_parent_death_signal()
    parent = os.environ.get(TRAIN_PARENT_ENV)
    if parent:
        watch_parent(int(parent))
    from torch.distributed.run import main as torchrun

    torchrun(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
