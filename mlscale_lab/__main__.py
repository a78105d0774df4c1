"""``python -m mlscale_lab``: the ``mlscale-lab`` command (:mod:`mlscale_lab.harness.cli`)."""

import sys

from mlscale_lab.harness.cli import main

sys.exit(main())
