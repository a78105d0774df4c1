import sys

from mlscale_lab.cli import main

sys.exit(main())
