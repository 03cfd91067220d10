"""Headless Chromium for browser tests (shared helper: the Bokeh explorer and the JupyterLab tests).

Debian's ``/usr/bin/chromium`` + ``/usr/bin/chromedriver`` through selenium, with the flags this
machine needs (see docs/EXPLORER.md): headless, no sandbox when root, no GPU, no QUIC,
no background networking, a fresh ``--user-data-dir`` per session (removed afterwards). Console
messages are collected through ``goog:loggingPrefs`` (browser=ALL).

    with chromium_session() as drv:
        open_bokeh_file(drv, path)
        ... drv.execute_script(...) ...
        assert not js_errors(drv)
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from liqlab.app.bench_browser import CHROMIUM_FLAGS, chromium_driver

CHROMIUM = os.environ.get("LIQLAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LIQLAB_CHROMEDRIVER", "/usr/bin/chromedriver")

FLAGS = CHROMIUM_FLAGS   # one home: liqlab.app.bench_browser (the browser benchmark drives the same Chromium)


def browser_missing() -> str | None:
    """Why no browser test can run here (None when chromium and chromedriver are installed)."""
    for p in (CHROMIUM, CHROMEDRIVER):
        if not (Path(p).is_file() and os.access(p, os.X_OK)):
            return f"{p} not found: run `make browser` (Debian packages chromium, chromium-driver)"
    return None


@contextlib.contextmanager
def chromium_session(width: int = 1500, height: int = 1100) -> Iterator:
    """A selenium Chrome driver on headless Chromium; quit and profile dir removed on exit."""
    why = browser_missing()
    if why:
        raise RuntimeError(why)
    with chromium_driver(width, height) as drv:
        yield drv


def console(drv) -> list[dict]:
    """Browser console entries since the last call (selenium drains the log)."""
    try:
        return list(drv.get_log("browser"))
    except Exception:  # noqa: BLE001 - some drivers lack the log endpoint
        return []


def js_errors(drv, entries: list[dict] | None = None) -> list[str]:
    """SEVERE console messages (JavaScript errors, failed requests), as strings."""
    entries = console(drv) if entries is None else entries
    return [f"{e.get('level')}: {e.get('message')}" for e in entries if e.get("level") == "SEVERE"]


def wait_for(drv, script: str, timeout: float = 30.0, poll: float = 0.05):
    """Poll a JS expression (``return ...``) until truthy; returns its value or raises TimeoutError."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = drv.execute_script(script)
        if last:
            return last
        time.sleep(poll)
    raise TimeoutError(f"browser: timed out after {timeout}s waiting for: {script} (last {last!r})")


def open_bokeh_file(drv, path: str | os.PathLike, timeout: float = 60.0) -> None:
    """Open a standalone Bokeh HTML file and wait until its document's views are rendered."""
    drv.get(Path(path).resolve().as_uri())
    wait_for(drv, "return !!(window.Bokeh && Bokeh.documents && Bokeh.documents.length > 0 &&"
                  " Bokeh.index && Object.keys(Bokeh.index).length > 0)", timeout)
    # idle: every view finished its first render
    wait_for(drv, "const d = Bokeh.documents[0]; return d.is_idle === undefined ? true : d.is_idle;", timeout)


def screenshot(drv, path: str | os.PathLike) -> Path:
    """Save a PNG of the window (parent folders created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    drv.save_screenshot(str(p))
    return p
