"""mlscale-lab: hands-on labs on scaling machine-learning models, measured on your machine.

The package is the helper library behind the notebooks in ``labs/``. Importing it is cheap:
it imports neither torch, dask nor matplotlib; those load in the modules that use them.

>>> import mlscale_lab
>>> mlscale_lab.record("warmup_answer", 42)
42

A lab's files go to ``mlscale_lab.work_folder("lab03")``, a folder removed with the kernel.
"""

from mlscale_lab._core.tempdirs import work_folder
from mlscale_lab.recording import record, recorded

__version__ = "0.1.0"

__all__ = ["__version__", "record", "recorded", "work_folder"]
