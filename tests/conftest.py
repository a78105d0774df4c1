import functools
import shutil
import subprocess
import sys
from pathlib import Path

from mlscale_lab._core.imports import skip_slow_optional_imports

skip_slow_optional_imports()  # before nbformat is imported: a second off every test process

import lab_runs  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Tests that need a system tool skip without it, with the one line that installs it as the
# reason: `@pytest.mark.requires_bwrap` (sandboxed grading), `@pytest.mark.requires_chromium`
# (the browser test). Everything else runs on a fresh machine without them.
BWRAP_HINT = "needs bubblewrap for sandboxed grading: sudo apt-get install bubblewrap"
CHROMIUM_HINT = "needs Chromium for the browser test: sudo apt-get install chromium"


@functools.cache
def bwrap_works() -> bool:
    """bubblewrap is installed and can make a sandbox here (some containers forbid it)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "true"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def chromium_found() -> bool:
    """Chromium is on PATH (Debian names it chromium, Ubuntu's snap chromium-browser)."""
    return any(shutil.which(name) for name in ("chromium", "chromium-browser"))


def pytest_configure(config):
    lab_runs.configure(config)
    config.addinivalue_line("markers", f"requires_bwrap: skips unless bubblewrap works ({BWRAP_HINT})")
    config.addinivalue_line("markers", f"requires_chromium: skips unless Chromium is installed ({CHROMIUM_HINT})")
    # pytest-xdist's own marker (it registers it too): tests of one group run on one worker
    config.addinivalue_line("markers", "xdist_group(name): run on the same xdist worker as the group")


def pytest_terminal_summary(terminalreporter, config):
    lines = lab_runs.timeline_report(config)
    if lines:
        terminalreporter.write_sep("=", "heavy jobs (tests/lab_runs.py)")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_unconfigure(config):
    lab_runs.unconfigure(config)


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups order() adds
def pytest_collection_modifyitems(config, items):
    lab_runs.order(items)  # the labs' heavy runs first, the browser last (tests/lab_runs.py)
    for item in items:
        if item.get_closest_marker("requires_bwrap") and not bwrap_works():
            item.add_marker(pytest.mark.skip(reason=BWRAP_HINT))
        if item.get_closest_marker("requires_chromium") and not chromium_found():
            item.add_marker(pytest.mark.skip(reason=CHROMIUM_HINT))


def make_notebook(path: Path, *sources: str) -> Path:
    """Write a small notebook of code cells (for runner and CLI tests)."""
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def tiny_labs(tmp_path, monkeypatch):
    """A labs folder of three tiny notebooks: one ok, one failing, one ok; MLSCALE_LABS_DIR set."""
    labs = tmp_path / "labs"
    labs.mkdir()
    make_notebook(labs / "00_ok.ipynb", "from mlscale_lab import record\nrecord('answer', 42)")
    make_notebook(
        labs / "01_broken.ipynb",
        "x = 1",
        "# the failing cell\nraise ValueError('deliberate failure')",
        "from mlscale_lab import record\nrecord('never', 1)",
    )
    make_notebook(labs / "02_alloc.ipynb",
                  "import numpy as np\nblock = np.ones(150 * 1024**2 // 8)\nimport time; time.sleep(0.5)")
    monkeypatch.setenv("MLSCALE_LABS_DIR", str(labs))
    return labs


@pytest.fixture
def cli_env(monkeypatch):
    """Run `python -m mlscale_lab` in-process friendly: the venv's interpreter."""
    return [sys.executable, "-m", "mlscale_lab"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Each test holds the machine shared from its setup to its teardown (tests/lab_runs.py):
    with two xdist workers, two tests side by side at most, and none beside a lab run alone."""
    share = lab_runs.machine_share(item.config)
    share.share()
    try:
        yield
    finally:
        share.release()


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_test_process():
    """The suite's parallelism is its processes (two xdist workers on two cores, the kernels and
    workers the tests start), so the test process computes on one thread: torch's OpenMP pool
    and OpenBLAS spin while they wait for a thread the other worker has taken, and a 2-thread
    pool beside a busy core was measured 16-42x slower than one thread on small steps (a
    distillation test: 55 s against 1.3-3.4 s). A test that studies threads sets its own count.
    Runs after collection, when the test modules have loaded torch and the BLAS libraries."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def executed_labs(request):
    """Each lab executed once per run, shared by the tests that read its outputs."""
    return lab_runs.lab_runs(request.config)
