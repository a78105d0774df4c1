"""Temporary folders with one owner: removed by the owner, at its exit, or after its death by a sweep."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mlscale_lab._core.tempdirs import (
    OWNER_FILE,
    owned_tempdir,
    remove_tempdir,
    sweep_stale,
    temporary_folder,
    work_folder,
)


def _python(code: str, tmp, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` as a script (spawned children import it) with ``TMPDIR=tmp``."""
    script = tmp.parent / f"{tmp.name}-script.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, str(script)], env=env, text=True,
                          capture_output=True, timeout=60, **kw)


def test_an_owned_folder_names_its_owner_and_a_live_owner_is_never_swept(tmp_path):
    d = owned_tempdir("test", parent=tmp_path)
    owner = json.loads((d / OWNER_FILE).read_text())
    assert owner["pid"] == os.getpid() and d.name.startswith("mlscale-test-")
    assert sweep_stale(tmp_path) == [] and d.is_dir()
    remove_tempdir(d)
    remove_tempdir(d)  # twice is fine
    assert not d.exists()
    with temporary_folder("block", parent=tmp_path) as inside:
        (inside / "f").write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_goes_when_its_owner_exits_and_a_fork_never_removes_its_parents(tmp_path):
    tmp_path = tmp_path / "tmp"
    tmp_path.mkdir()
    out = _python("""
        import os, sys
        from mlscale_lab._core.tempdirs import owned_tempdir
        d = owned_tempdir("parent")
        pid = os.fork()
        if pid == 0:
            sys.exit(0)  # a plain fork exits normally: it runs the inherited atexit hooks
        os.waitpid(pid, 0)
        print(d.is_dir())
    """, tmp_path)
    assert out.stdout.strip() == "True", out.stderr
    assert list(tmp_path.iterdir()) == [], "the owner's exit must remove its folder"


def test_a_multiprocessing_child_removes_its_own_folder_at_exit(tmp_path):
    # A multiprocessing child ends with os._exit: atexit never runs there.
    tmp_path = tmp_path / "tmp"
    tmp_path.mkdir()
    out = _python("""
        import multiprocessing, os
        from mlscale_lab._core.tempdirs import owned_tempdir

        def work(q):
            q.put(str(owned_tempdir("child")))

        if __name__ == "__main__":
            for method in ("fork", "spawn"):
                ctx = multiprocessing.get_context(method)
                q = ctx.Queue()
                p = ctx.Process(target=work, args=(q,))
                p.start()
                folder = q.get()
                p.join()
                print(method, os.path.exists(folder))
    """, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["fork", "False", "spawn", "False"], "a child's folder outlived it"
    assert list(tmp_path.iterdir()) == []


def test_a_killed_owners_folder_is_swept_by_the_next_one(tmp_path):
    # A learner's kernel killed by JupyterLab or the out-of-memory killer runs no clean-up.
    kernel = subprocess.Popen(
        [sys.executable, "-c", "from mlscale_lab import work_folder; import time\n"
         "print(work_folder('lab03'), flush=True); time.sleep(60)"],
        env={**os.environ, "TMPDIR": str(tmp_path)}, stdout=subprocess.PIPE, text=True)
    try:
        left = kernel.stdout.readline().strip()
        assert os.path.isdir(left)
        kernel.send_signal(signal.SIGKILL)
        kernel.wait(timeout=10)
        assert os.path.isdir(left), "nothing ran in the killed process"
        fresh = owned_tempdir("lab06", parent=tmp_path)
        assert not os.path.exists(left), "the next owned folder sweeps the dead owner's"
        assert [p.name for p in tmp_path.iterdir()] == [fresh.name]
    finally:
        kernel.kill()
        kernel.wait()


def _fake(parent, name, owner):
    d = parent / name
    d.mkdir()
    if owner is not None:
        (d / OWNER_FILE).write_text(json.dumps(owner))
    return d


def test_the_sweep_removes_only_what_it_can_prove_dead(tmp_path):
    me = json.loads((owned_tempdir("me", parent=tmp_path) / OWNER_FILE).read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = _fake(tmp_path, "mlscale-gone-1", {**me, "pid": dead.pid})
    reused = _fake(tmp_path, "mlscale-reused-1", {**me, "start": me["start"] - 1000})
    other_ns = _fake(tmp_path, "mlscale-container-1", {**me, "pid": dead.pid, "pidns": "pid:[1]"})
    no_owner = _fake(tmp_path, "mlscale-creating-1", None)
    not_ours = _fake(tmp_path, "lab03-1", {**me, "pid": dead.pid})
    garbled = tmp_path / "mlscale-garbled-1"
    garbled.mkdir()
    (garbled / OWNER_FILE).write_text("{half")
    removed = sweep_stale(tmp_path)
    assert sorted(p.name for p in removed) == [gone.name, reused.name]
    for kept in (other_ns, no_owner, not_ours, garbled):
        assert kept.is_dir(), f"{kept.name} is not provably dead's: it must stay"
    assert sweep_stale(tmp_path / "missing") == []


def test_work_folder_is_an_owned_folder_in_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    d = work_folder("lab99")
    assert d.parent == tmp_path and d.name.startswith("mlscale-lab99-")
    assert (d / OWNER_FILE).is_file()
    remove_tempdir(d)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux start times")
def test_an_owner_is_known_by_its_start_on_a_clock_that_does_not_jump(tmp_path):
    d = owned_tempdir("clock", parent=tmp_path)
    owner = json.loads((d / OWNER_FILE).read_text())
    with open("/proc/self/stat", "rb") as fh:
        ticks = float(fh.read().rsplit(b")", 1)[1].split()[19])
    assert owner["start"] == ticks
    assert sweep_stale(tmp_path) == [] and d.is_dir()
    remove_tempdir(d)
