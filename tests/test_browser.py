"""The labs as a learner sees them: JupyterLab in a real (headless) Chromium.

One JupyterLab server serves a workspace; each lab is opened in Chromium with its cells' outputs
in place, and then:

- no cell has an error output;
- every ipywidgets view renders as a live widget (not "Error displaying widget", not the
  text fallback JupyterLab shows when the widget manager is missing);
- every plot renders as an image the browser decoded;
- a screenshot of the lab's key view (its first widget, else its first plot) lands in
  ``artifacts/screenshots/``.

Which notebooks: the *reference* labs (the source notebooks, solutions in place). The student
versions raise ``NotImplementedError`` in every unanswered exercise by design, so "no error
outputs" can only be asserted honestly on the reference version; what the browser adds over
the headless run is the rendering of widgets and plots, which is the same in both.

Where the outputs come from: the suite executes each lab once (``tests/lab_runs.py``, the run
``tests/test_labs.py`` holds to its budget), keeping its outputs and its widgets' last state as
nbclient saves them; the browser opens that executed notebook, trusted as ``jupyter trust``
would, and JupyterLab draws its plots and its widgets from the saved state. A lab with a view
that only a live session shows (``live_view``: it does nothing headless) is run here instead,
through JupyterLab's own "Run All Cells" command, which keeps that path tested too.

Needs Debian's Chromium (``apt-get install chromium``) and Playwright's Python package; skips
with the reason when Chromium is missing, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from lab_runs import machine_share
from nbformat.sign import NotebookNotary

from mlscale_lab.harness.labs import list_labs

# One worker shows every lab, in one JupyterLab server and one Chromium: the worker that ran
# the labs and graded them, once it has (tests/lab_runs.py).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("labs")]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("MLSCALE_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Seconds the browser may add to a lab's own budget: loading JupyterLab, starting a kernel,
# rendering. Timings on a shared 2-core machine are noisy, hence the factor.
BROWSER_OVERHEAD_S = 120
BUDGET_FACTOR = 3


def _require_browser() -> None:
    missing = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright's Python package (pip install playwright)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if IN_CI:
            pytest.fail(reason + "; .ci/run installs Chromium, the dev extra Playwright")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(settings_dir: Path) -> None:
    """User settings for the test server: every cell in the DOM, no news or update checks."""
    files = {
        # Windowing renders only the cells on screen; the test inspects every output.
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for rel, content in files.items():
        path = settings_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """One JupyterLab server for all labs, on a free localhost port with a random token."""
    _require_browser()
    base = tmp_path_factory.mktemp("browser")
    workspace = base / "workspace"
    workspace.mkdir()
    (base / "notary").mkdir()
    _write_settings(base / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(base / "lab-workspaces"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        PYTHONHASHSEED="0",
    )
    env.pop("MPLBACKEND", None)  # the learner's default: inline plots
    log = open(base / "jupyterlab.log", "w")  # noqa: SIM115 (closed at teardown)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={workspace}",
            f"--NotebookNotary.data_dir={base / 'notary'}",  # trust: see _open_as_run
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands, read models
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI runs as root
        ],
        cwd=workspace,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                pytest.fail(
                    f"JupyterLab did not start:\n{(base / 'jupyterlab.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
    try:
        yield {"url": url, "token": token, "workspace": workspace, "log": base / "jupyterlab.log",
               "notary": base / "notary"}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(jupyterlab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _shutdown_kernels(server: dict) -> None:
    """Free the lab's kernel (and its memory) before the next lab starts."""
    api = f"{server['url']}/api/sessions"
    auth = {"Authorization": f"token {server['token']}"}
    with urllib.request.urlopen(urllib.request.Request(api, headers=auth), timeout=10) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{api}/{s['id']}", method="DELETE", headers=auth)
        urllib.request.urlopen(req, timeout=30).close()


# JavaScript run in the page. `jupyterapp` is exposed by --LabApp.expose_app_in_browser.
# Ready means: the lab we opened is the current tab (JupyterLab restores the previous lab's tab
# from its workspace state, and may show it first), and its kernel is idle.
_JS_READY = """(name) => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const path = panel && panel.context && panel.context.path;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session
      && panel.sessionContext.session.kernel;
  return !!(path && path.endsWith(name) && kernel && kernel.status === 'idle'
            && panel.content.widgets.length > 0);
}"""

_JS_RUN_ALL = """() => {
  window.__mlscaleDone = null;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__mlscaleDone = {ok: ok}; },
    err => { window.__mlscaleDone = {ok: false, error: String(err)}; });
}"""

# Per code cell and output: what the kernel sent (the model) and what the page shows (the DOM
# node JupyterLab rendered for that output).
_JS_INSPECT = """(widgetMime) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [];
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const outputs = [];
    for (let i = 0; i < cell.model.outputs.length; i++) {
      const o = cell.model.outputs.get(i).toJSON();
      const child = cell.outputArea.widgets[i];
      const n = child ? child.node : null;
      const text = n ? n.innerText : '';
      const imgs = n ? [...n.querySelectorAll('img')] : [];
      outputs.push({
        type: o.output_type,
        error: o.output_type === 'error' ? `${o.ename}: ${o.evalue}` : null,
        stderr: o.output_type === 'stream' && o.name === 'stderr',
        widget: !!(o.data && o.data[widgetMime]),
        image: !!(o.data && Object.keys(o.data).some(k => k.startsWith('image/'))),
        rendered: n !== null,
        live: !!(n && n.querySelector('.jupyter-widgets:not(.jupyter-widgets-error-widget)')),
        widgetError: !!(n && n.querySelector('.jupyter-widgets-error-widget'))
                     || /Error displaying widget/.test(text),
        textFallback: !!(n && n.querySelector('[data-mime-type="text/plain"]')),
        empty: !!n && text.trim() === '' && !n.querySelector('img, svg, canvas, .jupyter-widgets'),
        images: imgs.length,
        decoded: imgs.filter(im => im.complete && im.naturalWidth > 0).length,
      });
    }
    cells.push({
      index: index,
      source: cell.model.sharedModel.getSource().split('\\n')[0].slice(0, 80),
      executionCount: cell.model.executionCount,
      outputs: outputs,
    });
  });
  return cells;
}"""


# Widgets drawn from a saved notebook's state show "Loading widget..." until JupyterLab's widget
# manager has restored their models; settled means none is still loading and every image loaded.
_JS_SETTLED = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  return panel.content.widgets.every(cell => cell.model.type !== 'code'
      || cell.outputArea.widgets.every(child => !/Loading widget/.test(child.node.innerText)
          && [...child.node.querySelectorAll('img')].every(im => im.complete)));
}"""


def runs_live(lab: Path) -> bool:
    """A lab with a view only a live session shows (``live_view``, nothing headless) runs here."""
    nb = nbformat.read(lab, as_version=4)
    return any("live_view(" in c.source for c in nb.cells if c.cell_type == "code")


def _open_as_run(lab: Path, server: dict, executed_labs) -> dict | None:
    """Put the lab in the workspace: the executed notebook of the suite's one run of it (trusted,
    as ``jupyter trust`` does, so JupyterLab draws its widgets), or the source for a live run.
    Returns the headless run's outcome ({"ok": ..., "seconds": ...}), None for a live run."""
    target = server["workspace"] / lab.name
    if runs_live(lab):
        shutil.copyfile(lab, target)
        return None
    executed = executed_labs.get(lab)
    nb = nbformat.read(executed.notebook, as_version=4)
    notary = NotebookNotary(data_dir=str(server["notary"]))
    notary.sign(nb)
    notary.close()
    nbformat.write(nb, str(target))
    run = executed.run
    return {"ok": run.status == "ok", "error": run.error, "seconds": run.seconds}


def _lab_timeout_s(lab: Path) -> float:
    budget = nbformat.read(lab, as_version=4).metadata.get("mlscale", {}).get("budget", {})
    return float(budget.get("seconds", 600)) * BUDGET_FACTOR + BROWSER_OVERHEAD_S


def _key_view(page, cells: list[dict]):
    """The output a learner looks at: the first live widget, else plot, else printed output."""
    panel = "window.jupyterapp.shell.currentWidget.content.widgets"
    # A progress bar (tqdm) is a widget too, but not the view a lab is about.
    for kind, selector in (
        ("widget", ".jp-OutputArea-output:not(:has(.widget-hprogress)) .jupyter-widgets"),
        ("plot", ".jp-OutputArea-output img"),
        ("widget", ".jupyter-widgets"),
        ("output", ".jp-OutputArea-output"),
    ):
        for c in cells:
            handle = page.evaluate_handle(
                f"() => {panel}[{c['index']}].node.querySelector({json.dumps(selector)})"
            ).as_element()
            if handle is not None:
                return kind, c, handle
    return "top", None, None


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_lab_renders_in_a_real_browser(lab, jupyterlab, browser, executed_labs, request):
    timeout_s = _lab_timeout_s(lab)
    headless = _open_as_run(lab, jupyterlab, executed_labs)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    try:
        page.goto(
            f"{jupyterlab['url']}/lab/tree/{lab.name}?token={jupyterlab['token']}",
            wait_until="domcontentloaded",
        )
        page.wait_for_function(_JS_READY, arg=lab.name, timeout=120_000, polling=500)
        if headless is None:  # run it here, through JupyterLab's own command
            # a lab's run, like the suite's others: never beside another heavy job
            with machine_share(request.config).heavy(f"browser runs {lab.stem}"):
                started = time.monotonic()
                page.evaluate(_JS_RUN_ALL)
                page.wait_for_function(
                    "() => window.__mlscaleDone !== null", timeout=timeout_s * 1000, polling=500
                )
                done = page.evaluate("() => window.__mlscaleDone")
                seconds = time.monotonic() - started
            # Widgets and images render asynchronously after the kernel replies.
            page.wait_for_function(_JS_READY, arg=lab.name, timeout=60_000, polling=500)
            page.wait_for_timeout(1500)
        else:  # outputs and widget state from the suite's run of the lab
            done, seconds = headless, headless["seconds"]
            from playwright.sync_api import TimeoutError as StillLoading

            try:
                page.wait_for_function(_JS_SETTLED, timeout=60_000, polling=250)
            except StillLoading:  # inspected below: the assertions say what did not render
                pass
            page.wait_for_timeout(500)
        cells = page.evaluate(_JS_INSPECT, WIDGET_MIME)

        kind, key_cell, element = _key_view(page, cells)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / f"{lab.stem}.png"
        if element is not None:
            page.evaluate(
                "(el) => el.closest('.jp-Cell').scrollIntoView({block: 'start'})", element
            )
            page.wait_for_timeout(500)
        page.screenshot(path=str(shot))
        outputs = [o for c in cells for o in c["outputs"]]
        summary = {
            "lab": lab.stem,
            "ran": "live in JupyterLab" if headless is None else "headless, shown in JupyterLab",
            "seconds": round(seconds, 1),
            "code_cells": len(cells),
            "live_widgets": sum(o["widget"] and o["live"] for o in outputs),
            "closed_widgets": sum(o["widget"] and o["empty"] for o in outputs),
            "plots": sum(o["image"] for o in outputs),
            "key_view": kind,
            "screenshot": str(shot.relative_to(ROOT)),
        }
        print(json.dumps(summary))
        (SCREENSHOTS / f"{lab.stem}.json").write_text(
            json.dumps({**summary, "cells": cells}, indent=1)
        )

        errors = [
            f"cell {c['index']} ({c['source']!r}): {o['error']}"
            for c in cells
            for o in c["outputs"]
            if o["error"]
        ]
        assert not errors, f"{lab.stem}: error outputs in the browser:\n" + "\n".join(errors)
        what = "Run All Cells" if headless is None else "the suite's headless run"
        assert done.get("ok") is True, f"{lab.stem}: {what} did not succeed: {done}"
        not_run = [c["index"] for c in cells if c["executionCount"] is None]
        assert not not_run, f"{lab.stem}: cells never ran: {not_run}"
        for c in cells:
            where = f"{lab.stem} cell {c['index']} ({c['source']!r})"
            for o in c["outputs"]:
                assert o["rendered"], f"{where}: an output the kernel sent is not on the page"
                if o["widget"]:
                    assert not o["widgetError"], f"{where}: Error displaying widget"
                    assert not o["textFallback"], f"{where}: widget fell back to its text repr"
                    # Live, or empty because the lab closed it (a finished tqdm bar, leave=False).
                    assert o["live"] or o["empty"], f"{where}: widget output is not a live widget"
                if o["image"]:
                    assert o["images"] >= 1 and o["decoded"] == o["images"], (
                        f"{where}: a plot did not render as an image"
                    )
        assert not console_errors, f"{lab.stem}: JavaScript errors in the page: {console_errors}"
    finally:
        page.close()
        _shutdown_kernels(jupyterlab)
