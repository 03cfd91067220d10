"""End to end in a real JupyterLab: notebook 02 with ``interactive=True`` in headless Chromium.

Starts ``jupyter lab`` (tests/jupyterlab_server.py: loopback, random port and token, temporary root and
workspaces, stopped whatever happens), opens a parameterized copy of notebooks/02_heatmap.ipynb on a
small simulated collection, runs all cells from the Run menu, then changes the side-split rule (the
Dropdown, by keyboard) and the half-life (the slider handle, arrow keys) as a user would and checks
that the Bokeh plot's data in the page changed and equals the Python engine's result for those
parameters, then that the page's own half-life slider still recomputes the new map and the kernel's
control follows it; no console errors; screenshot in reports/screenshots/. Prints (and writes to
reports/jupyterlab_explore_timings.json) the control→page latency and the kernel-side rebuild time.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import re
import time
from pathlib import Path

import numpy as np
import pytest
from browser import chromium_session, console, js_errors, screenshot, wait_for
from jupyterlab_server import jupyter_lab, labextensions

pytestmark = [pytest.mark.jupyterlab, pytest.mark.browser]

NOTEBOOK = os.environ.get("LIQLAB_EXPLORE_NOTEBOOK", "notebooks/02_heatmap.ipynb")  # (another copy: development)
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RTOL, ATOL = 1e-6, 1e-9

LANGUAGE_INFO = {
    "name": "python", "version": platform.python_version(), "mimetype": "text/x-python", "file_extension": ".py",
    "pygments_lexer": "ipython3", "codemirror_mode": {"name": "ipython", "version": 3}, "nbconvert_exporter": "python",
}

# Find a model by name among the LIVE views (Bokeh.documents keeps stale documents after re-runs).
FIND = """
window.__liqlab_find = function (name) {
  if (!window.Bokeh || !Bokeh.index) return null;
  const idx = Bokeh.index;
  const roots = typeof idx.roots === "function" ? idx.roots() : (idx.roots || Object.values(idx));
  for (const v of roots) {
    const doc = v && v.model && v.model.document;
    if (!doc || !v.el || !v.el.isConnected) continue;
    const m = doc.get_model_by_name(name);
    if (m) return m;
  }
  return null;
};
"""

READ_ARRAY = FIND + """
const [src, col] = arguments;
const m = window.__liqlab_find(src);
if (!m) return null;
const a = m.data[col][0];
const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
let s = ""; const CH = 0x8000;
for (let i = 0; i < u8.length; i += CH) s += String.fromCharCode.apply(null, u8.subarray(i, i + CH));
const kind = a instanceof Float32Array ? "f4" : a instanceof Float64Array ? "f8" : "?";
return [btoa(s), Array.from(a.shape || [a.length]), kind];
"""

# Record (performance.now()) every change the kernel pushes into the plot's models.
WATCH = FIND + """
const names = ["heatmap", "replay", "grid", "half_life"];
window.__liqlab_events = [];
for (const n of names) {
  const m = window.__liqlab_find(n);
  if (!m) return false;
  const p = n === "half_life" ? m.properties.value : m.properties.data;
  m.connect(p.change, () => window.__liqlab_events.push(performance.now()));
}
return true;
"""


def read_array(drv, src: str, col: str) -> np.ndarray | None:
    got = drv.execute_script(READ_ARRAY, src, col)
    if got is None:
        return None
    b64, shape, kind = got
    return np.frombuffer(base64.b64decode(b64), dtype={"f4": np.float32, "f8": np.float64}[kind]).reshape(shape)


def expected(data_path: Path, **params) -> np.ndarray:
    """(B, To) float32 long+short the explorer shows for ``params``, computed here with the engine."""
    from liqlab.viz.view import fit_view
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap

    data = load(data_path)
    hm = build_heatmap(data, progress=False, **params)
    v = fit_view(hm, data)  # the explorer's cell cap (may rebuild coarser) and float32
    return np.stack([v.long, v.short])


def expected_clusters(data_path: Path, **params):
    """The engine's top-clusters table at the latest snapshot (price, notional) for ``params``."""
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap

    cl = build_heatmap(load(data_path), progress=False, **params).top_clusters(None, n=10)
    return cl["price"].to_numpy(np.float64), cl["notional"].to_numpy(np.float64)


def page_maps(drv) -> np.ndarray | None:
    lo, sh = read_array(drv, "heatmap", "long"), read_array(drv, "heatmap", "short")
    return None if lo is None or sh is None else np.stack([lo, sh])


def matches(page: np.ndarray | None, want: np.ndarray) -> bool:
    """Every cell within RTOL relative (+ ATOL USD for cells that are zero in one of them)."""
    return page is not None and page.shape == want.shape and np.allclose(page, want, rtol=RTOL, atol=ATOL)


def max_rel_err(page: np.ndarray, want: np.ndarray) -> float:
    big = np.abs(want) > 1.0
    return float(np.max(np.abs(page[big].astype(np.float64) - want[big]) / np.abs(want[big]))) if big.any() else 0.0


def wait_until(pred, timeout: float, what: str, poll: float = 0.05, drv=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    state = ""
    if drv is not None:  # what the panel says, for the failure message
        state = drv.execute_script("const e = document.querySelector(arguments[0] + ' .liqlab-status');"
                                   "return e ? e.getAttribute('title') : '(no status)';", PANEL)
        state = f" (panel status: {state}; console: {js_errors(drv, console(drv))})"
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}{state}")


def widget_by_label(drv, kind: str, label: str):
    """The ipywidget container (``.widget-<kind>``) whose label reads ``label``, in the visible notebook."""
    from selenium.webdriver.common.by import By

    for el in drv.find_elements(By.CSS_SELECTOR, f"{PANEL} .widget-{kind}"):
        labels = el.find_elements(By.CSS_SELECTOR, ".widget-label")
        if labels and labels[0].text.strip() == label:
            return el
    return None


def kernel_idle(drv) -> bool:
    return bool(drv.execute_script(
        "const e = document.querySelector(arguments[0] + ' .jp-Notebook-ExecutionIndicator');"
        "return !!e && e.getAttribute('data-status') === 'idle';", PANEL))


def test_labextension_installed_and_enabled():
    out = re.sub(r"\x1b\[[0-9;]*m", "", labextensions())
    line = next((ln for ln in out.splitlines() if "@bokeh/jupyter_bokeh" in ln), "")
    assert line, out
    assert "enabled" in line and "OK" in line, line
    widgets = next((ln for ln in out.splitlines() if "@jupyter-widgets/jupyterlab-manager" in ln), "")
    assert "enabled" in widgets and "OK" in widgets, out


def test_jupyterlab_explore_follows_widget_changes(small_sim, repo):
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    nb = load_notebook_node(str(repo / NOTEBOOK))  # adds the metadata papermill expects
    nb = parameterize_notebook(nb, {"dataset": str(small_sim), "interactive": True})
    nb.metadata["language_info"] = LANGUAGE_INFO  # a notebook without it turns dirty when the kernel connects
    shot = repo / "reports" / "screenshots" / "jupyterlab_explore.png"
    timings: dict[str, float] = {}
    with jupyter_lab() as server, chromium_session(1700, 1300) as drv:
        nbformat.write(nb, server.root / "explore.ipynb")
        drv.get(server.lab_url("explore.ipynb"))
        wait_for(drv, f"return !!document.querySelector('{PANEL} .jp-Notebook')", 90)
        # a kernel attached and idle (the indicator is briefly idle before a kernel exists)
        wait_until(lambda: drv.execute_script(
            "const e = document.querySelector('.jp-KernelName, .jp-Toolbar-kernelName');"
            "return !!e && /python/i.test(e.textContent || '');"), 60, "a python kernel")
        wait_until(lambda: kernel_idle(drv), 60, "kernel idle")
        for b in drv.find_elements(By.CSS_SELECTOR, ".jp-Notification-Toast-Close"):
            with contextlib.suppress(Exception):  # a toast that is gone already
                b.click()
        # Run ▸ Run All Cells, through the menu
        menu = next(el for el in drv.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel") if el.text.strip() == "Run")
        menu.click()
        wait_for(drv, "return !!document.querySelector('[data-command=\"runmenu:run-all\"]')", 10)
        drv.find_element(By.CSS_SELECTOR, '[data-command="runmenu:run-all"]').click()
        t_run = time.monotonic()
        wait_until(lambda: widget_by_label(drv, "dropdown", "side_split"), 120, "the explorer's controls")
        wait_until(lambda: drv.execute_script(FIND + "return !!window.__liqlab_find('heatmap');"), 60, "the Bokeh explorer")
        wait_until(lambda: kernel_idle(drv), 60, "kernel idle after run-all")
        timings["run_all_s"] = time.monotonic() - t_run
        assert drv.execute_script(WATCH)
        start = page_maps(drv)
        want0 = expected(small_sim)
        assert matches(start, want0), "the first map differs from build_heatmap's"

        # 1. the side-split rule: focus the Dropdown and choose with the keyboard
        want1 = expected(small_sim, side_split="taker")
        assert not matches(start, want1)
        sel = widget_by_label(drv, "dropdown", "side_split").find_element(By.TAG_NAME, "select")
        drv.execute_script("window.__liqlab_events = []; window.__t_action = performance.now();")
        t0 = time.monotonic()
        sel.send_keys("taker")  # type-ahead on the focused <select>, as with a keyboard
        try:
            wait_until(lambda: sel.get_attribute("value") == "taker", 5, "the dropdown to show 'taker'")
        except TimeoutError:  # the keys did not reach it: pick the option with the mouse instead
            from selenium.webdriver.support.ui import Select

            Select(sel).select_by_value("taker")
            timings["side_split_by_click"] = 1.0
        wait_until(lambda: matches(page_maps(drv), want1), 30, "the page to show side_split='taker'", poll=0.02, drv=drv)
        timings["side_split_wall_s"] = time.monotonic() - t0
        timings["side_split_page_ms"] = drv.execute_script(
            "return Math.max(...window.__liqlab_events) - window.__t_action;")

        # 2. the half-life: focus the slider handle and press ArrowLeft (1 h per press)
        slider = widget_by_label(drv, "slider", "half_life_hours")
        handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
        hl0 = float(readout.text)
        presses = 12
        want2 = expected(small_sim, side_split="taker", half_life_hours=hl0 - presses)
        ActionChains(drv).move_to_element(handle).click().perform()
        drv.execute_script("window.__liqlab_events = []; window.__t_action = performance.now();")
        t0 = time.monotonic()
        ActionChains(drv).send_keys(Keys.ARROW_LEFT * presses).perform()
        wait_until(lambda: float(readout.text) == hl0 - presses, 10, "the slider readout")
        wait_until(lambda: matches(page_maps(drv), want2), 30, "the page to show the new half-life", poll=0.02, drv=drv)
        timings["half_life_wall_s"] = time.monotonic() - t0
        timings["half_life_page_ms"] = drv.execute_script(
            "return Math.max(...window.__liqlab_events) - window.__t_action;")
        final = page_maps(drv)
        assert not matches(final, want1) and matches(final, want2)
        timings["max_rel_err"] = max_rel_err(final, want2)
        # the profile panel (latest snapshot) and the top-clusters table followed the rebuild
        prof = np.asarray(drv.execute_script(FIND + "return Array.from(window.__liqlab_find('profile').data.long);"))
        np.testing.assert_allclose(prof, want2[0][:, -1], rtol=RTOL, atol=ATOL)
        cl = drv.execute_script(FIND + "const d = window.__liqlab_find('clusters').data;"
                                "return [Array.from(d.price), Array.from(d.notional)];")
        price, notional = expected_clusters(small_sim, side_split="taker", half_life_hours=hl0 - presses)
        np.testing.assert_allclose(np.asarray(cl[0], dtype=float), price, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(cl[1], dtype=float), notional, rtol=1e-6)

        # 3. the page's own (CustomJS) half-life slider still works on the new map, and the kernel's
        #    control follows it (jupyter_bokeh syncs the Bokeh model back)
        hl3 = hl0 + 30  # not the value the kernel just set
        want3 = expected(small_sim, side_split="taker", half_life_hours=hl3)
        drv.execute_script(FIND + "window.__liqlab_find('half_life').value = arguments[0];", hl3)
        wait_until(lambda: matches(page_maps(drv), want3), 30, "the in-page slider to recompute the map", poll=0.02, drv=drv)
        wait_until(lambda: float(readout.text) == hl3, 10, "the kernel's half-life control to follow the page")
        status = drv.execute_script(
            "const e = document.querySelector(arguments[0] + ' .liqlab-status'); return e ? e.textContent : '';", PANEL)
        assert "rebuilt in" in status, status
        m = re.search(r"rebuilt in ([0-9.]+) s \(engine ([0-9.]+) s", status)
        timings["kernel_rebuild_s"] = float(m.group(1))
        screenshot(drv, shot)
        errors = js_errors(drv, console(drv))
    figures = {k: (v if k == "max_rel_err" else round(v, 3)) for k, v in timings.items()}
    (shot.parent.parent / "jupyterlab_explore_timings.json").write_text(json.dumps(figures, indent=1) + "\n")
    print("\nJupyterLab explore timings: " + json.dumps(figures))
    print(f"screenshot: {shot}")
    assert not errors, errors
    assert shot.is_file() and shot.stat().st_size > 10_000
