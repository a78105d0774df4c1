import sys

from mlscale_lab.harness.cli import main

sys.exit(main())
