"""The pristine replay driver on its own (no kernel, no sandbox): the learner's side is served
from a namespace in a thread of this process, as the submission's kernel serves it; what the
driver reports for a test that passes, fails, patches builtins or a library, hangs or exits,
and for learner code that hangs, dies, raises or returns something that is not plain data."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from mlscale_lab.harness.grading._pristine import ReplayServer
from mlscale_lab.harness.grading._serve import serve_channel

LEARNER = {"__name__": "__main__"}
exec("""
import os, time
def double(x):
    print('doubling', x)
    return 2 * x
def hang(x):
    end = time.monotonic() + 6  # past the test's 3 s (bounded: this thread is ours)
    while time.monotonic() < end:
        time.sleep(0.01)
def die(x):
    os._exit(3)
def picky(x):
    if x < 0:
        raise ValueError('negative')
    return x
class Liar:
    def __eq__(self, other):
        return True
    def __bool__(self):
        return True
    def __int__(self):
        return 4
def liar(x):
    return Liar()
import statistics
import statistics as stats_alias
def lazy(xs):
    return helper(sorted(xs))
def helper(xs):
    return stats_alias.median(xs)
def imports_it(xs):
    from statistics import median as m
    return m(xs)
def by_hand(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]
""", LEARNER)

TESTS = {
    "passes": ("assert int(double(2)) == 4\nprint('ok', np.zeros(2).sum())", ["double"]),
    "fails": ("print('before')\nassert int(double(3)) == 7, 'double(3) should be 7'", ["double"]),
    "patches": ("import numpy\nnumpy.isclose = lambda *a, **k: True\nassert numpy.isclose(1, 2)", []),
    "hangs": ("while True:\n    pass", []),
    "exits": ("import os\nos._exit(3)", []),
    "seeded": ("assert GRADING_SEED == 1234\nprint('seed ok')", []),
    "learner_hangs": ("hang(1)", ["hang"]),
    "learner_dies": ("die(1)", ["die"]),
    "learner_raises": ("try:\n    picky(-1)\nexcept ValueError as e:\n    print('caught', e)\nelse:\n"
                       "    raise AssertionError('no ValueError')", ["picky"]),
    "learner_lies": ("assert liar(1) == 4", ["liar"]),
    "lie_coerced": ("assert int(liar(1)) == 4", ["liar"]),
    "lie_truth": ("assert liar(1)", ["liar"]),
    "reaches": ("import statistics\nfrom mlscale_lab.exercises import reaches\n"
                "print(reaches(lazy, statistics.median), reaches(imports_it, statistics.median), "
                "reaches(by_hand, statistics.median), 'median' in lazy.__code__.co_names, "
                "'helper' in lazy.__code__.co_names)", ["lazy", "imports_it", "by_hand"]),
}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    tests = [{"grade_id": name, "source": source, "names": names, "filename": f"<test {name}>",
              "pinned": {"np": ["numpy", None]}, "nonce": f"nonce-{name}"}
             for name, (source, names) in TESTS.items()]
    server = ReplayServer(tests, workdir=root, env={"PATH": "/usr/bin:/bin"}, sandbox_prefix=[],
                          memory_bytes=None, timeout=3, seed=1234, watch={"numpy", "mlscale_lab"},
                          preload={"numpy"}, log=root / "replay.log")
    results = {}
    try:
        assert server.ready, (root / "replay.log").read_text()
        for i, name in enumerate(TESTS):
            ours, theirs = socket.socketpair()
            learner = threading.Thread(target=serve_channel, args=(LEARNER, ours, 5), daemon=True)
            if name != "learner_dies":
                learner.start()
            else:  # the learner's process ends at once: its side of the channel closes
                ours.close()
            began = time.monotonic()
            assert server.run(i, theirs)
            theirs.close()
            results[name] = {**server.results()[i], "seconds": time.monotonic() - began}
            if learner.is_alive() and name != "learner_hangs":
                learner.join(timeout=10)
        return results
    finally:
        server.close()
        assert server.proc.poll() is not None


def test_a_passing_test_reports_its_output_and_nonce(replayed):
    r = replayed["passes"]
    assert r["passed"] and r["nonce"] == "nonce-passes", r
    assert "doubling 2" in r["output"] and "ok 0.0" in r["output"], "the learner's print reaches the output"


def test_a_failing_test_reports_the_error_and_its_line(replayed):
    r = replayed["fails"]
    assert not r["passed"] and r["error"]["ename"] == "AssertionError" and r["error"]["line"] == 2
    assert "double(3) should be 7" in r["error"]["evalue"] and "before" in r["output"]


def test_a_library_patched_while_the_test_runs_fails_it(replayed):
    r = replayed["patches"]
    assert not r["passed"] and any("numpy.isclose" in c for c in r["changed"])


def test_a_hanging_or_exiting_test_gives_no_verdict(replayed):
    assert replayed["hangs"]["problem"] == "timeout"
    assert "ended without a result" in replayed["exits"]["problem"]


def test_the_grading_seed_reaches_the_test(replayed):
    assert replayed["seeded"]["passed"] and "seed ok" in replayed["seeded"]["output"]


def test_learner_code_that_hangs_or_dies_fails_the_test_with_a_reason(replayed):
    hung, dead = replayed["learner_hangs"], replayed["learner_dies"]
    assert not hung["passed"] and hung["error"]["ename"] == "LearnerCallError", hung
    assert "did not answer within the test's time" in hung["error"]["evalue"]
    assert hung["seconds"] < 3 + 2, "the call gives up within the test's own time"
    assert not dead["passed"] and (dead["load_error"] or dead["error"]), dead


def test_an_error_raised_by_learner_code_is_raised_in_the_test_as_its_builtin_type(replayed):
    r = replayed["learner_raises"]
    assert r["passed"] and "caught negative" in r["output"], r


@pytest.mark.parametrize("name", ["learner_lies", "lie_coerced", "lie_truth"])
def test_an_object_that_lies_never_passes_a_comparison(replayed, name):
    r = replayed[name]
    assert not r["passed"], r
    if name != "learner_lies":
        assert r["error"]["ename"] == "TypeError" and "plain data" in r["error"]["evalue"], r["error"]


def test_reaches_reads_a_learner_functions_code_across_the_channel(replayed):
    r = replayed["reaches"]
    assert r["passed"], r
    assert "['median'] ['median'] [] False True" in r["output"], "through a helper, an import, not by hand"


def test_the_driver_imports_no_ipython_and_no_nbgrader():
    import mlscale_lab.harness.grading._replay as replay

    code = (f"import runpy, sys; runpy.run_path({replay.__file__!r}, run_name='replay'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipykernel', 'nbgrader', "
            "'nbclient', 'cloudpickle')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


@contextlib.contextmanager
def _learner_channel(namespace: dict):
    """The test's endpoint of a channel served from ``namespace`` by a thread of this process,
    as the submission's kernel serves it; told ``done`` and closed at the end."""
    from mlscale_lab.harness.grading._endpoint import Endpoint
    from mlscale_lab.harness.grading._proxy import make_proxy

    ours, theirs = socket.socketpair()
    thread = threading.Thread(target=serve_channel, args=(namespace, ours, 60), daemon=True)
    thread.start()
    endpoint = Endpoint(theirs, "test", make_proxy, deadline=time.monotonic() + 60)
    try:
        yield endpoint
    finally:
        endpoint.notify("done")
        thread.join(timeout=10)
        theirs.close()


def test_a_learner_call_costs_the_same_at_the_thousandth_call_as_at_the_first():
    """A test may call a learner function once per simulated request (lab 05's balancer policy:
    20,000 times). Each call's arguments stay on the learner's side (an object sent back is the
    same object); what is copied back after a call is looked for among the layers and tensors
    only, so the cost of a call does not grow with the calls made before it (it did, with torch
    imported: 0.2 ms a call at first, 8 ms by the 4,000th)."""
    import torch  # noqa: F401 (what makes the learner's side look for layers to copy back)

    with _learner_channel(LEARNER) as endpoint:
        double = endpoint.request("fetch", None, ["double"])["double"]
        blocks = []
        for _ in range(12):
            started = time.process_time()  # CPU of both sides (one process): no scheduler stalls
            for i in range(250):
                double([i, 0, 1])  # a fresh list each call, as a simulator's queue lengths are
            blocks.append(time.process_time() - started)
    early, late = min(blocks[:3]), min(blocks[-3:])
    assert late < 2.5 * early, f"calls 2250-3000 took {late:.3f} s a block of 250, calls 1-750 {early:.3f} s"


def test_a_call_copies_back_the_layers_and_gradient_tensors_it_changed_and_nothing_else():
    """What a learner function does to a layer or a tensor that carries gradients (a training
    step: weights set in place, gradients from ``backward``) reaches the test's own objects
    after the call, as it would in the notebook; a plain tensor is data, sent as a copy and
    never copied back (looking through every object sent after every call is what made calls
    slow)."""
    import torch

    learner = {"__name__": "__main__"}
    exec("import torch\n"
         "def step(layer, w, plain):\n"
         "    with torch.no_grad():\n"
         "        layer.weight.fill_(1.0)\n"
         "        w.mul_(3)\n"
         "        plain.mul_(5)\n"
         "    (layer(w.detach()[None, :]).sum() + w.sum()).backward()\n"
         "    return float(layer.bias.detach().sum())\n", learner)
    with _learner_channel(learner) as endpoint:
        step = endpoint.request("fetch", None, ["step"])["step"]
        layer, w, plain = torch.nn.Linear(2, 2), torch.ones(2, requires_grad=True), torch.ones(2)
        assert step(layer, w, plain) == pytest.approx(float(layer.bias.detach().sum()))
    assert torch.equal(layer.weight.detach(), torch.ones(2, 2)), "the layer's new weights came back"
    assert torch.equal(w.detach(), torch.full((2,), 3.0)), "the gradient tensor's new values came back"
    assert torch.equal(w.grad, torch.ones(2)) and torch.equal(layer.weight.grad, torch.full((2, 2), 3.0)), (
        "the gradients backward() left on the learner's side came back")
    assert torch.equal(plain, torch.ones(2)), "a plain tensor is a copy: the learner's change stays there"


def test_a_learner_whose_caller_gave_up_stops_serving_quietly(monkeypatch):
    """The test's side closes the channel while a learner call still runs (a test that timed
    out): when the call ends, its answer has nowhere to go, and the learner's side stops serving
    instead of dying on the broken pipe (a warning in every suite run, from another test)."""
    from mlscale_lab.harness.grading._endpoint import Endpoint
    from mlscale_lab.harness.grading._proxy import make_proxy

    raised = []
    monkeypatch.setattr(threading, "excepthook", lambda args: raised.append(args.exc_value))
    learner = {"__name__": "__main__", "slow": lambda: time.sleep(1.0) or 1}
    ours, theirs = socket.socketpair()
    thread = threading.Thread(target=serve_channel, args=(learner, ours, 60), daemon=True)
    thread.start()
    endpoint = Endpoint(theirs, "test", make_proxy, deadline=time.monotonic() + 60)
    slow = endpoint.request("fetch", None, ["slow"])["slow"]
    def call():
        with contextlib.suppress(Exception):  # the test's side: its channel is closed under it
            slow()

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(0.3)  # the call is running on the learner's side
    theirs.shutdown(socket.SHUT_RDWR)
    theirs.close()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the learner's side still serves a channel nobody holds"
    assert raised == [], f"the learner's side died on the closed channel: {raised!r}"
    ours.close()


def test_a_driver_ready_long_before_the_first_test_is_still_ready(tmp_path):
    """The grader first asks whether the driver is ready when the kernel reaches its first test,
    which may be past the driver's own start deadline: a ready already sent still counts."""
    server = ReplayServer([], workdir=tmp_path, env={"PATH": "/usr/bin:/bin"}, sandbox_prefix=[],
                          memory_bytes=None, timeout=3, seed=None, watch={"mlscale_lab"},
                          preload=set(), log=tmp_path / "replay.log")
    try:
        time.sleep(1.0)
        server._ready_by = time.monotonic() - 1  # as after a notebook slower than the deadline
        assert server.ready, (tmp_path / "replay.log").read_text()
    finally:
        server.close()
