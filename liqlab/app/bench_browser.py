"""``liqlab bench --cases browser``: slider → painted frame in headless Chromium, on the explorer page that
``liqlab heatmap`` writes with default settings (printed, never asserted).

The page is the 30-day × 3-venue sample (``data/sample``, or ``$LIQLAB_BENCH_DATA``; simulated with
seed 0 into a temporary folder when absent: SYNTHETIC either way). After the page has loaded and
signalled its warm-up (``window.__liqlab_warm``), every slider is moved ten times; one move is timed
from the moment its value is set (the input event) to the first frame painted after the page has
rendered the change (``requestAnimationFrame`` after the render, then a task after that frame: the
explorer's ``painted_at``). For the map's controls that frame shows the recomputed map; for the
snapshot slider it shows the side panel (profile, clusters table, liquidation map). The first move
of the page is reported on its own (``first_move_ms``).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``make browser``) and selenium.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["browser_case", "chromium_driver", "CHROMIUM_FLAGS"]

#: Flags headless Chromium needs on these machines (closed network, no GPU, root).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
)
_MOVES = 10

# Set a model property; resolve with ms from the set to the painted frame (see the module docstring).
_MOVE_JS = """
const [name, prop, value, done] = arguments;
const m = Bokeh.documents[0].get_model_by_name(name);
window.__liqlab_on_done = () => done(window.__liqlab_perf.painted_at - t0);
const t0 = performance.now();
m[prop] = value;
"""


@contextlib.contextmanager
def chromium_driver(width: int = 1400, height: int = 1000) -> Iterator[Any]:
    """A selenium driver on headless Chromium (``$LIQLAB_CHROMIUM``, ``$LIQLAB_CHROMEDRIVER`` or Debian's).

    Parameters
    ----------
    width, height : int
        Window size (px).

    Yields
    ------
    selenium.webdriver.Chrome
        Quit, and its profile folder removed, on exit.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from liqlab.errors import ParameterError

    binary = os.environ.get("LIQLAB_CHROMIUM", "/usr/bin/chromium")
    driver = os.environ.get("LIQLAB_CHROMEDRIVER", "/usr/bin/chromedriver")
    for p in (binary, driver):
        if not (Path(p).is_file() and os.access(p, os.X_OK)):
            raise ParameterError(f"cases: 'browser' needs {p} (run `make browser`)")
    profile = tempfile.mkdtemp(prefix="liqlab-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for f in CHROMIUM_FLAGS:
        opts.add_argument(f)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        opts.add_argument("--no-sandbox")
    opts.add_argument(f"--user-data-dir={profile}")
    opts.add_argument(f"--window-size={width},{height}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(driver), options=opts)
    try:
        drv.set_script_timeout(60)
        drv.set_page_load_timeout(60)
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(drv, script: str, timeout: float = 60.0) -> Any:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = drv.execute_script(script)
        if v:
            return v
        time.sleep(0.05)
    raise TimeoutError(f"browser: timed out waiting for: {script}")


def _data(tmp: Path) -> Path:
    """The sample market (or a fresh 30-day, 3-venue simulation with seed 0 when it is absent)."""
    p = Path(os.environ.get("LIQLAB_BENCH_DATA", "data/sample"))
    if (p / "collection.json").is_file():
        return p
    from liqlab.sim.simulation import simulate

    out = tmp / "sample"
    simulate(days=30, seed=0, venues=("binanceusdm", "bybit", "okx"), out=out, progress=False)
    return out


def _moves(drv, lg: float, lc: float, levs: list[str], To: int) -> dict[str, list[Any]]:
    """Ten values per slider (each differs from the previous one)."""
    n = range(_MOVES)
    plan: dict[str, list[Any]] = {"half_life": [6.0 + 17.0 * (i + 1) for i in n]}
    for name in levs:
        plan[name] = [round(0.05 + 0.09 * ((i * 7) % 10), 2) for i in n]
    plan["time"] = [int((To - 1) * ((i * 3 + 1) % 11) / 10) for i in n]
    plan["colour_max"] = [round(lg + (-0.5 if i % 2 else 0.5) + 0.05 * i, 2) for i in n]
    plan["colour_min"] = [round(lc + (-1.0 if i % 2 else 0.5) + 0.05 * i, 2) for i in n]
    return plan


def browser_case() -> dict[str, Any]:
    """Time every slider of the explorer page (module docstring).

    Returns
    -------
    dict
        ``case`` 'browser_30d_3venues', ``synthetic``, ``snapshots`` × ``bins`` of the page, ``venues``,
        ``first_move_ms`` (the page's first move: ``half_life``), ``sliders``: per slider ``median_ms`` and
        ``max_ms`` over its ten moves, and the overall ``max_ms`` (ms from the input to the painted frame).
    """
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load
    from liqlab.viz.export import save_explorer

    with tempfile.TemporaryDirectory(prefix="liqlab-bench-") as tmp:
        data = load(_data(Path(tmp)))
        hm = build_heatmap(data, progress=False)
        path = save_explorer(hm, Path(tmp) / "explorer.html", data)
        with chromium_driver() as drv:
            drv.get(path.resolve().as_uri())
            _wait(drv, "return window.__liqlab_warm === true;")
            g = "return Bokeh.documents[0].get_model_by_name(arguments[0]).value;"
            To = int(drv.execute_script("return Bokeh.documents[0].get_model_by_name('time').end;")) + 1
            B = int(drv.execute_script("return Bokeh.documents[0].get_model_by_name('grid').data.n_bins[0];"))
            levs = [f"lev_{x:g}" for x in hm.leverages]
            plan = _moves(drv, drv.execute_script(g, "colour_max"), drv.execute_script(g, "colour_min"), levs, To)
            times = {name: [float(drv.execute_async_script(_MOVE_JS, name, "value", v)) for v in vals]
                     for name, vals in plan.items()}
    return {
        "case": "browser_30d_3venues", "synthetic": bool(hm.synthetic), "snapshots": To, "bins": B,
        "venues": len(hm.meta.get("venues", [])), "first_move_ms": round(times["half_life"][0], 1),
        "sliders": {k: {"median_ms": round(statistics.median(v), 1), "max_ms": round(max(v), 1)} for k, v in times.items()},
        "max_ms": round(max(max(v) for v in times.values()), 1),
    }
