"""The learner's workspace and `mlscale-lab start` (the README's `make lab`), as root too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from mlscale_lab.harness.workspace import ROOT_RISK, prepare_workspace


def test_prepare_keeps_the_learners_own_copies(tiny_labs, tmp_path):
    ws = tmp_path / "ws"
    first = prepare_workspace(ws)
    assert sorted(first.added) == ["00_ok.ipynb", "01_broken.ipynb", "02_alloc.ipynb"]
    (ws / "00_ok.ipynb").write_text("{}")  # the learner's edits
    again = prepare_workspace(ws)
    assert again.added == [] and "00_ok.ipynb" in again.kept
    assert (ws / "00_ok.ipynb").read_text() == "{}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.slow
def test_start_serves_the_lab_page_and_leaves_no_process(tmp_path):
    port, token = _free_port(), "mlscale-start-test"
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces")}
    out, err = open(tmp_path / "out.log", "w+"), open(tmp_path / "err.log", "w+")  # noqa: SIM115
    cmd = [sys.executable, "-m", "mlscale_lab", "start", str(tmp_path / "workspace"), "--no-browser",
           "--port", str(port), "--ip", "127.0.0.1"]
    start = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
    tree = []
    try:
        deadline, status, page = time.monotonic() + 180, None, ""
        while time.monotonic() < deadline and start.poll() is None:
            tree = [start.pid, *(p.pid for p in psutil.Process(start.pid).children(recursive=True))]
            try:
                status, page = _get(f"http://127.0.0.1:{port}/lab?token={token}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                status = None
            if status == 200:
                break
            time.sleep(1)
        err.seek(0)
        log = err.read()
        assert status == 200, f"no lab page (status {status}); exit {start.poll()}; log:\n{log[-2000:]}"
        assert "JupyterLab" in page
        assert (tmp_path / "workspace" / "00_start_here.ipynb").exists()
        if os.geteuid() == 0:
            assert log.count(ROOT_RISK) == 1, log[-2000:]
            out.seek(0)
            assert "--allow-root" in out.read()
    finally:
        if start.poll() is None:
            start.send_signal(signal.SIGTERM)  # what a container stop sends
        try:
            start.wait(timeout=30)
        finally:
            out.close()
            err.close()
            if start.poll() is None:
                os.killpg(start.pid, signal.SIGKILL)
    gone, alive = psutil.wait_procs([p for p in map(_proc, tree) if p is not None], timeout=30)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _get(f"http://127.0.0.1:{port}/lab?token={token}")


def _proc(pid):
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
