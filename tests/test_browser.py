"""The labs as a learner sees them: JupyterLab in a real (headless) Chromium.

One JupyterLab server serves a workspace, and one Chromium page of it stays open for the module;
each lab is opened in that page, as a learner opens the next lab, with its cells' outputs in
place (and a kernel of its own, shut down before the next lab), and then:

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
would, and JupyterLab draws its plots and its widgets from the saved state. The one view that
only a live session shows (``live_view``, lab 01's memory gauge: it does nothing headless) runs
here in a notebook of its own, through JupyterLab's "Run All Cells", and must move while its
cell runs (a whole lab run live for it cost the suite a third execution of lab 01).

Needs Debian's Chromium (``apt-get install chromium``) and Playwright's Python package; skips
with the reason when Chromium is missing, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
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


def _open_as_run(lab: Path, server: dict, executed_labs) -> dict:
    """Put the lab in the workspace: the executed notebook of the suite's one run of it (trusted,
    as ``jupyter trust`` does, so JupyterLab draws its widgets). Returns the run's outcome
    ({"ok": ..., "seconds": ...})."""
    target = server["workspace"] / lab.name
    executed = executed_labs.get(lab)
    nb = nbformat.read(executed.notebook, as_version=4)
    notary = NotebookNotary(data_dir=str(server["notary"]))
    notary.sign(nb)
    notary.close()
    nbformat.write(nb, str(target))
    run = executed.run
    return {"ok": run.status == "ok", "error": run.error, "seconds": run.seconds}


# The output a learner looks at, in one call: the first live widget (a tqdm progress bar is a
# widget too, but not the view a lab is about), else plot, else widget, else printed output.
_JS_KEY_VIEW = """(cells) => {
  const widgets = window.jupyterapp.shell.currentWidget.content.widgets;
  const kinds = [
    ['widget', '.jp-OutputArea-output:not(:has(.widget-hprogress)) .jupyter-widgets'],
    ['plot', '.jp-OutputArea-output img'],
    ['widget', '.jupyter-widgets'],
    ['output', '.jp-OutputArea-output'],
  ];
  for (const [kind, selector] of kinds)
    for (const index of cells)
      if (widgets[index].node.querySelector(selector)) return {kind, index, selector};
  return null;
}"""


def _key_view(page, cells: list[dict]):
    """The key view's kind, its cell and its element (``("top", None, None)`` if none)."""
    found = page.evaluate(_JS_KEY_VIEW, [c["index"] for c in cells])
    if found is None:
        return "top", None, None
    handle = page.evaluate_handle(
        "([i, sel]) => window.jupyterapp.shell.currentWidget.content.widgets[i].node.querySelector(sel)",
        [found["index"], found["selector"]]).as_element()
    return found["kind"], next(c for c in cells if c["index"] == found["index"]), handle


@pytest.fixture(scope="module")
def lab_page(browser, jupyterlab):
    """One JupyterLab page for the module: JupyterLab boots once (2-3 s of a quiet machine's
    time, more beside the suite) and each notebook opens in it as a learner opens the next lab.
    Yields ``(page, errors)``: the list the page's JavaScript errors go to, emptied by
    :func:`_open_in_page` for each notebook."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{jupyterlab['url']}/lab?token={jupyterlab['token']}", wait_until="domcontentloaded")
    page.wait_for_function("() => !!(window.jupyterapp && window.jupyterapp.shell)",
                           timeout=120_000, polling=250)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    try:
        yield page, errors
    finally:
        page.close()


# Close every open document without a dialog (a notebook JupyterLab marked dirty would ask).
_JS_CLOSE_ALL = """() => {
  for (const w of [...window.jupyterapp.shell.widgets('main')]) w.dispose();
}"""


def _close_documents(page, server: dict) -> None:
    """Close what the page shows and shut its kernels down: the lab's memory goes before the next."""
    page.evaluate(_JS_CLOSE_ALL)
    _shutdown_kernels(server)
_JS_CLOSE_OTHERS = """() => {
  const shell = window.jupyterapp.shell;
  for (const w of [...shell.widgets('main')]) if (w !== shell.currentWidget) w.dispose();
}"""


def _open_in_page(lab_page, server: dict, name: str):
    """Notebook ``name`` of the workspace open in the module's page, the only open document, its
    kernel idle; returns the page and the JavaScript errors raised since it was asked for. The
    test closes it with :func:`_close_documents`."""
    page, errors = lab_page
    errors.clear()
    page.evaluate("(path) => window.jupyterapp.commands.execute('docmanager:open', {path})", name)
    page.wait_for_function(_JS_READY, arg=name, timeout=120_000, polling=250)
    page.evaluate(_JS_CLOSE_OTHERS)  # the Launcher JupyterLab opens in an empty main area
    return page, errors


def _assert_rendered(name: str, cells: list[dict], console_errors: list[str]) -> None:
    """Every output the kernel sent is on the page: no errors, widgets live, plots decoded."""
    errors = [f"cell {c['index']} ({c['source']!r}): {o['error']}"
              for c in cells for o in c["outputs"] if o["error"]]
    assert not errors, f"{name}: error outputs in the browser:\n" + "\n".join(errors)
    not_run = [c["index"] for c in cells if c["executionCount"] is None]
    assert not not_run, f"{name}: cells never ran: {not_run}"
    for c in cells:
        where = f"{name} cell {c['index']} ({c['source']!r})"
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
    assert not console_errors, f"{name}: JavaScript errors in the page: {console_errors}"


@pytest.mark.parametrize("lab", list_labs(), ids=lambda p: p.stem)
def test_lab_renders_in_a_real_browser(lab, jupyterlab, lab_page, executed_labs):
    done = _open_as_run(lab, jupyterlab, executed_labs)
    page, console_errors = _open_in_page(lab_page, jupyterlab, lab.name)
    try:
        from playwright.sync_api import TimeoutError as StillLoading

        try:  # widgets drawn from the run's saved state, images decoded
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
            "ran": "headless, shown in JupyterLab",
            "seconds": round(done["seconds"], 1),
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
        assert done.get("ok") is True, f"{lab.stem}: the suite's headless run did not succeed: {done}"
        _assert_rendered(lab.stem, cells, console_errors)
    finally:
        _close_documents(page, jupyterlab)


#: Lab 01's live memory gauge on a workload of its own: two phases, 300 MB held in the first.
LIVE_VIEW_CELLS = (
    "import time\n\nimport numpy as np\n\nfrom mlscale_lab.constraints import ResourceMonitor\n"
    "from mlscale_lab.views.monitor import live_view",
    "with ResourceMonitor(interval=0.1) as mon:\n"
    "    view = live_view(mon)\n"
    "    mon.mark('allocate')\n"
    "    block = np.ones(300 * 1024**2 // 8)\n"
    "    time.sleep(3.0)\n"
    "    mon.mark('release')\n"
    "    del block\n"
    "    time.sleep(1.0)\n"
    "assert view is not None, 'live_view showed nothing in a live JupyterLab session'",
)

# What the gauge's cell shows now: its description, reading and the phase it last drew.
_JS_GAUGE = """() => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[1];
  return cell.outputArea.node.innerText;
}"""


def test_the_live_memory_gauge_moves_while_its_cell_runs_in_jupyterlab(jupyterlab, lab_page):
    """``live_view`` does nothing headless, so no executed notebook shows it: it runs here, live,
    through JupyterLab's own "Run All Cells"; its gauge must show the first phase while the cell
    still runs (updates sent from the monitor's thread), then the phase begun after three seconds
    and the 300 MB the cell held."""
    from nbformat.v4 import new_code_cell, new_notebook

    name = "live_view.ipynb"
    nb = new_notebook(cells=[new_code_cell(src) for src in LIVE_VIEW_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(jupyterlab["workspace"] / name))
    page, console_errors = _open_in_page(lab_page, jupyterlab, name)
    try:
        # Watch the page while the cell runs: the gauge must show the first phase before the end.
        page.evaluate(f"""() => {{ window.__mlscaleSeen = false; window.__mlscaleWatch = setInterval(() => {{
            if (window.__mlscaleDone === null && /allocate/.test(({_JS_GAUGE})() || ''))
                window.__mlscaleSeen = true; }}, 100); }}""")
        page.evaluate(_JS_RUN_ALL)
        page.wait_for_function("() => window.__mlscaleDone !== null", timeout=120_000, polling=250)
        done = page.evaluate("() => { clearInterval(window.__mlscaleWatch); return window.__mlscaleDone; }")
        assert done.get("ok") is True, f"Run All Cells did not succeed: {done}"
        assert page.evaluate("() => window.__mlscaleSeen"), "the gauge showed nothing while its cell ran"
        # Widget views render asynchronously after the kernel replies.
        page.wait_for_function(_JS_READY, arg=name, timeout=60_000, polling=250)
        page.wait_for_function(f"() => /release/.test(({_JS_GAUGE})() || '')", timeout=30_000, polling=250)
        gauge = page.evaluate(_JS_GAUGE)
        assert "memory" in gauge and "MB" in gauge, f"the gauge shows no memory reading: {gauge!r}"
        print(json.dumps({"live_view": gauge}))
        low, high = (float(v.replace(",", "")) for v in re.search(r"memory \(MB, ([\d,]+) to ([\d,]+)\)", gauge).groups())
        assert high - low > 250, f"the timeline missed the 300 MB the cell held: {gauge!r}"
        cells = page.evaluate(_JS_INSPECT, WIDGET_MIME)
        assert sum(o["widget"] and o["live"] for c in cells for o in c["outputs"]) == 1, cells
        _assert_rendered(name, cells, console_errors)
    finally:
        _close_documents(page, jupyterlab)
