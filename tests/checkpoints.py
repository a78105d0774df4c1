"""Run one checkpoint cell of a lab on inputs a test chose, to see it fail when its claim breaks.

A checkpoint cell asserts the claim its lab's prose makes. Running the lab shows the cell passes
on the lab's own data; these helpers run the very same source (read from the notebook, not a
copy) in a namespace the test fills, so a test can break the claim's input and see the cell
fail, and hand it a busy machine and see it say inconclusive instead.
"""

from __future__ import annotations

import nbformat

from mlscale_lab.harness.labs import resolve_labs


def cell_source(lab: str, cell_id: str) -> str:
    """The source of the cell ``cell_id`` of lab ``lab`` (``"02"``)."""
    nb = nbformat.read(resolve_labs([lab])[0], as_version=4)
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            return cell.source
    raise KeyError(f"lab {lab} has no cell {cell_id!r}")


def run_checkpoint(lab: str, cell_id: str, namespace: dict) -> dict:
    """Execute the checkpoint cell in ``namespace`` (what the lab's earlier cells would bind).

    Returns the namespace afterwards; an AssertionError from the cell propagates.
    """
    source = cell_source(lab, cell_id)
    ns = dict(namespace)
    exec(compile(source, f"<lab {lab} cell {cell_id}>", "exec"), ns)
    return ns


class BusyMachine:
    """A machine report that cannot be trusted, as MachineCheck gives beside a busy neighbour."""

    trusted = False
    reasons = ("other processes took 1.00 CPUs on average and left 0.00 idle",)


class QuietMachine:
    """A machine report MachineCheck gives on a quiet machine with ``cpus`` CPUs."""

    trusted = True
    reasons = ()

    def __init__(self, cpus=4):
        self.cpus = cpus

    def __str__(self):
        return f"machine: quiet, {self.cpus} CPUs"


class FixedCheck:
    """Stands in for ``MachineCheck`` in a cell: ``with MachineCheck() as mc`` gives ``report``."""

    def __init__(self, report):
        self.report = report

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run_cells(lab: str, cell_ids, namespace: dict) -> dict:
    """Execute the cells ``cell_ids`` of lab ``lab`` in order, in one namespace (returned)."""
    ns = dict(namespace)
    for cell_id in cell_ids:
        exec(compile(cell_source(lab, cell_id), f"<lab {lab} cell {cell_id}>", "exec"), ns)
    return ns
