"""The suite's own machinery for running labs once and sharing the machine between xdist workers
(tests/lab_runs.py): a lab that runs alone has no test beside it, two tests may run side by side,
and one heavy job runs at a time."""

from __future__ import annotations

import multiprocessing
import sys
import time
import types

import pytest
from lab_runs import MachineShare, order

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork and flock")


def _hold(folder, how, seconds, out):
    share = MachineShare(folder)
    # "left" is stamped while still holding: a waiter may take the lock the instant it goes
    if how == "shared":
        share.share()
        out.put(("got", time.monotonic()))
        time.sleep(seconds)
        out.put(("left", time.monotonic()))
        share.release()
    else:
        with getattr(share, how)():
            out.put(("got", time.monotonic()))
            time.sleep(seconds)
            out.put(("left", time.monotonic()))


def _start(folder, how, seconds):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_hold, args=(folder, how, seconds, out))
    proc.start()
    got = out.get(timeout=30)[1]
    return proc, out, got


@pytest.mark.parametrize(("first", "second", "waits"), [
    ("alone", "shared", True),   # no test starts beside a lab that runs alone
    ("shared", "alone", True),   # a lab that runs alone waits for the test already running
    ("heavy", "heavy", True),    # one heavy job at a time
    ("shared", "shared", False),  # two tests side by side
])
def test_machine_share_holds_off_what_it_should_and_only_that(tmp_path, first, second, waits):
    holder, out, _ = _start(tmp_path, first, 1.5)
    other, other_out, got = _start(tmp_path, second, 0)
    left = out.get(timeout=30)[1]
    holder.join(30)
    other.join(30)
    assert (got >= left) is waits, (first, second, got, left)


def test_outside_xdist_it_does_nothing(tmp_path):
    share = MachineShare(None)
    assert not share.active
    with share.alone(), share.heavy():
        share.share()  # would wait forever on a real lock held alone by this very process
    assert not list(tmp_path.iterdir())


def test_heavy_jobs_note_their_waits_in_the_timeline(tmp_path):
    from lab_runs import TIMELINE, format_timeline

    share = MachineShare(tmp_path)
    with share.heavy("grade 01"):
        time.sleep(0.05)
    with share.alone("run 07 (alone)"):
        pass
    lines = format_timeline(tmp_path / TIMELINE)
    assert [line.split("  ")[-1] for line in lines[1:3]] == ["grade 01", "run 07 (alone)"]
    held = float(lines[1].split()[2].rstrip("s"))
    assert held >= 0.05
    assert lines[-1].startswith("2 heavy jobs held the machine")
    assert format_timeline(tmp_path / "none.jsonl") == []


def test_under_loadgroup_a_test_runs_with_its_group(request):
    """``make test``'s scheduling rests on xdist groups: the labs on one worker, each file's
    tests on one. A pytest and pytest-xdist that stop carrying the group would spread
    the labs over every worker, where they queue for the machine."""
    if getattr(request.config, "workerinput", None) is None or \
            not getattr(request.config.option, "loadgroup", False):
        pytest.skip("only under pytest-xdist's --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@tests/test_lab_runs.py"), request.node.nodeid



class _Item:
    """What order() reads of a collected test: its module, node id and xdist group."""

    def __init__(self, nodeid, group=None):
        self.nodeid, self.module = nodeid, types.SimpleNamespace(__name__=nodeid.split("::")[0])
        self.marks = [pytest.mark.xdist_group(group).mark] if group else []

    def get_closest_marker(self, name):
        return next((m for m in self.marks if m.name == name), None)

    def add_marker(self, mark):
        self.marks.append(mark.mark)


def test_order_puts_the_labs_runs_then_gradings_then_browser_first_and_each_file_in_its_group():
    items = ([_Item("test_browser::t[a]", "labs"), _Item("test_browser::t[b]", "labs")]
             + [_Item(f"test_f{i}::t") for i in range(6)] + [_Item("test_grading_labs::g", "labs"),
                                                              _Item("test_labs::x", "labs")])
    order(items)
    ids = [i.nodeid for i in items]
    # (the browser on a group of its own went to the other worker, behind its queue, while the
    # labs' worker sat idle; halfway through the other files, it ran beside the gradings and a
    # CI run took 36 s longer: 909 s against 873)
    assert ids == ["test_labs::x", "test_grading_labs::g", "test_browser::t[a]", "test_browser::t[b]",
                   "test_f0::t", "test_f1::t", "test_f2::t", "test_f3::t", "test_f4::t", "test_f5::t"]
    assert items[4].get_closest_marker("xdist_group").args == ("test_f0",)
