"""The model server: it answers, it always stops (block ends, exception, interpreter exit,
killed parent, killed kernel), and bad input is refused at the door with no process left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil
import pytest

from mlscale_lab._core.processes import descendant_pids
from mlscale_lab.scaling import serving as sv


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """A small scikit-learn model on digits, saved with joblib (a worker starts in about 1 s)."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    model = LogisticRegression(max_iter=200).fit(X[:600], y[:600])
    path = tmp_path_factory.mktemp("serving") / "digits.joblib"
    joblib.dump(model, path)
    return path, X[:40], model.predict(X[:40])


def _alive(pids):
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _wait_gone(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def test_server_answers_like_the_model_and_stops_at_the_end_of_the_block(artifact):
    path, X, expected = artifact
    with sv.serve(path, workers=1, n_features=64) as server:
        pids = server.pids()
        assert server.running and server in sv.live_servers()
        assert server.url.startswith("http://127.0.0.1:")
        assert [server.predict(row) for row in X[:10]] == list(expected[:10])
        assert server.health()["pid"] in pids
        assert server.ready_at - server.started_at > 0
    assert not _wait_gone(pids, 0.5), "the server must be gone when its block ends"
    assert not server.running and server not in sv.live_servers()


def test_two_workers_each_load_the_model_and_all_stop(artifact):
    path, X, _ = artifact
    with sv.serve(path, workers=2, n_features=64) as server:
        info = server.worker_info()
        assert len(info) == 2 and len({w["pid"] for w in info}) == 2
        mem = server.memory()
        assert len(mem["workers"]) == 2 and all(w["rss"] > 20 * 2**20 for w in mem["workers"])
        assert mem["supervisor"] is not None
        result = sv.closed_loop(server, 4, rows=X, n_requests=60)
        assert result.errors == 0 and set(result.pids) <= {w["pid"] for w in info}
        pids = server.pids()
    assert not _wait_gone(pids, 0.5)


def test_an_exception_inside_the_block_still_stops_the_server(artifact):
    path, _, _ = artifact
    with pytest.raises(ZeroDivisionError), sv.serve(path, workers=2, n_features=64) as server:
        pids = server.pids()
        1 / 0  # noqa: B018
    assert len(pids) >= 3
    assert not _wait_gone(pids, 0.5)


_CHILD = textwrap.dedent("""
    import sys, time
    from mlscale_lab.scaling import serving as sv
    server = sv.serve(sys.argv[1], workers=int(sys.argv[2]), n_features=64)
    print(" ".join(map(str, server.pids())), flush=True)
    if sys.argv[3] == "sleep":
        time.sleep(60)
    # "exit": leave without stopping it; the atexit hook must
""")


@pytest.mark.parametrize("workers", [1, 2])
def test_interpreter_exit_stops_a_server_left_running(artifact, workers):
    path, _, _ = artifact
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(workers), "exit"],
                         capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) >= workers, out.stderr
    assert not _wait_gone(pids, 3.0), "atexit must stop a server the program forgot"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_killed_parent_takes_its_server_and_its_folder_along(artifact, workers, tmp_path):
    path, _, _ = artifact
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path), str(workers), "sleep"],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        pids = [int(p) for p in child.stdout.readline().split()]
        assert len(pids) >= workers
        assert _alive(pids) == pids, "the server runs while its parent lives"
        assert [p.name[:14] for p in tmp_path.iterdir()] == ["mlscale-serve-"]
        child.send_signal(signal.SIGKILL)  # no atexit, no finally: only the lifeline is left
        child.wait(timeout=5)
        assert not _wait_gone(pids, 5.0), "a server whose parent was killed must exit on its own"
        assert list(tmp_path.iterdir()) == [], "the server's folder outlived its killed parent"
    finally:
        child.kill()
        child.wait()


def test_a_killed_kernel_takes_its_server_along_and_a_failed_cell_leaves_nothing(artifact):
    from jupyter_client.manager import start_new_kernel

    path, _, _ = artifact
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        def run(code):
            reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: outputs.append(msg))
            return reply["content"]["status"]

        outputs: list = []
        failed = run(f"from mlscale_lab.scaling import serving as sv\n"
                     f"with sv.serve({str(path)!r}, workers=2, n_features=64) as s:\n"
                     f"    cell_pids = s.pids()\n    1 / 0")
        assert failed == "error"
        outputs.clear()
        run("print(cell_pids)")
        texts = [m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream"]
        cell_pids = [int(p) for p in "".join(texts).strip(" []\n").split(",")]
        assert not _wait_gone(cell_pids, 1.0), "a failed cell must leave no server behind"
        outputs.clear()
        assert run(f"server = sv.serve({str(path)!r}, workers=2, n_features=64)\n"
                   "print(' '.join(map(str, server.pids())))") == "ok"
        texts = [m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream"]
        pids = [int(p) for p in "".join(texts).split()]
        assert len(pids) >= 3 and _alive(pids) == pids
        os.kill(km.provisioner.pid, signal.SIGKILL)
        assert not _wait_gone(pids, 5.0), "the server must not outlive a killed kernel"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# -- bad input: refused at the door, naming the function and parameter, nothing started --------

def _children():
    return set(descendant_pids(os.getpid()))


def test_busy_port_is_refused_and_starts_nothing(artifact):
    path, _, _ = artifact
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    before = _children()
    try:
        with pytest.raises(ValueError, match=rf"serve\(port={port}\).*in use"):
            sv.serve(path, port=port)
    finally:
        busy.close()
    assert _children() <= before and not sv.live_servers()


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    ({"workers": 0}, ValueError, r"serve\(workers=0\): expected a whole number >= 1"),
    ({"workers": 2.0}, TypeError, r"serve\(workers=2.0\)"),
    ({"workers": 99}, ValueError, r"serve\(workers=99\).*<= 8"),
    ({"max_batch": 0}, ValueError, r"serve\(max_batch=0\)"),
    ({"max_wait_ms": -1}, ValueError, r"serve\(max_wait_ms=-1\)"),
    ({"port": 80}, ValueError, r"serve\(port=80\)"),
])
def test_bad_arguments_are_refused_and_start_nothing(artifact, kwargs, error, pattern):
    path, _, _ = artifact
    before = _children()
    with pytest.raises(error, match=pattern):
        sv.serve(path, **kwargs)
    assert _children() <= before and not sv.live_servers()


def test_missing_or_unknown_model_file_is_refused(tmp_path):
    before = _children()
    with pytest.raises(FileNotFoundError, match=r"serve\(model_path=.*nothere.pt"):
        sv.serve(tmp_path / "nothere.pt")
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"serve\(model_path=.*model.h5.*\.onnx"):
        sv.serve(tmp_path / "model.h5")
    assert _children() <= before


def test_a_model_that_fails_to_load_raises_with_the_log_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.joblib"
    broken.write_bytes(b"this is not a pickle")
    before = _children()
    with pytest.raises(RuntimeError, match=r"serve\(model_path=.*exited.*log ends with"):
        sv.serve(broken, workers=2)
    assert not _wait_gone(list(_children() - before), 2.0)
    assert not sv.live_servers()
