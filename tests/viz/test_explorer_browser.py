"""The explorer page `liqlab heatmap` writes, in headless Chromium: what is DRAWN follows the controls.

One page load (the 30-day × 3-venue simulation with the default engine settings, as `liqlab heatmap`
writes it) serves every check: the clusters table's drawn cells (inside Bokeh's shadow roots) change
after a half-life and a snapshot move; cells under the low cut are transparent in the image; the
liquidation map and the band totals equal ``liqlab.engine.liqmap`` and the pull ``liqlab.engine.levels.pull`` within 1e-6; the range buttons set
the x range; nothing is wider than the window at 1280, 1400 and 1920 px (screenshots in a tmp dir).
"""

from __future__ import annotations

import numpy as np
import pytest

from browser import chromium_session, js_errors, open_bokeh_file, screenshot, wait_for
from test_plot_browser import model_value, page_weights, read_array, set_and_wait

pytestmark = pytest.mark.browser

# every element matching a selector, through the shadow roots Bokeh 3 renders into
DEEP = """
function deep(root, sel, out) {
  for (const e of root.querySelectorAll(sel)) out.push(e);
  for (const e of root.querySelectorAll('*')) if (e.shadowRoot) deep(e.shadowRoot, sel, out);
  return out;
}
"""
TABLE_CELLS = DEEP + "return deep(document, '.slick-row', []).map(r => Array.from(r.querySelectorAll('.slick-cell')).map(c => c.textContent.trim()));"
CLICK = DEEP + """
const b = deep(document, 'button', []).find(x => x.textContent.trim() === arguments[0]);
b.click(); return !!b;"""
WIDEST = DEEP + """
let w = 0;
for (const e of deep(document, '.bk-Column, .bk-Row, .bk-Figure, .bk-DataTable, canvas', [])) w = Math.max(w, e.getBoundingClientRect().right);
return [w, window.innerWidth, document.documentElement.scrollWidth];"""


@pytest.fixture(scope="module")
def page(month_sim, tmp_path_factory):
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load
    from liqlab.viz.plot import save_explorer

    data = load(month_sim)
    hm = build_heatmap(data, progress=False)          # the defaults of `liqlab heatmap`
    path = save_explorer(hm, tmp_path_factory.mktemp("html") / "explorer.html", data)
    shots = tmp_path_factory.mktemp("shots")
    with chromium_session(1400, 1100) as drv:
        open_bokeh_file(drv, path)
        wait_for(drv, "return window.__liqlab_warm === true;", 30)
        yield drv, hm, shots


def drawn_rows(drv) -> list[list[str]]:
    rows = [r for r in drv.execute_script(TABLE_CELLS) if any(r)]
    assert rows, "no drawn table rows"
    return rows


def test_table_redraws_after_half_life_and_snapshot_moves(page):
    drv, hm, _ = page
    before = drawn_rows(drv)
    set_and_wait(drv, "half_life", "value", 24.0)
    after_hl = drawn_rows(drv)
    assert len(after_hl) == len(before)                  # same row count: the case that did not redraw
    assert after_hl != before
    data = drv.execute_script("return Array.from(Bokeh.documents[0].get_model_by_name('clusters').data.notional);")
    assert [r[2] for r in after_hl] == [f"${v:,.0f}" for v in data]       # the drawn cells are the data
    set_and_wait(drv, "time", "value", 400)
    after_t = drawn_rows(drv)
    assert after_t != after_hl
    assert "2025" in model_value(drv, "profile_title", "text")             # the profile title keeps the year
    assert not js_errors(drv)


def test_cells_below_the_low_cut_are_transparent(page):
    drv, _, _ = page
    cut = model_value(drv, "colour_max") - 1.0                           # one decade below the top
    set_and_wait(drv, "colour_min", "value", cut)
    img = read_array(drv, "heatmap", "image")
    long, short = read_array(drv, "heatmap", "long"), read_array(drv, "heatmap", "short")
    alpha = img >> 24
    low = (long < 10 ** cut) & (short < 10 ** cut)
    assert low.any() and (~low).any()
    assert (alpha[low] == 0).all()
    assert (alpha[~low] == 255).all()
    tiny = (long > 0) & (long < 1.0)                                     # sub-dollar notional: never painted
    assert (alpha[tiny & (short < 1.0)] == 0).all()
    set_and_wait(drv, "colour_min", "value", cut - 3.0)
    assert ((read_array(drv, "heatmap", "image") >> 24) > 0).sum() > (alpha > 0).sum()   # a lower cut paints more


def test_liquidation_map_equals_python(page):
    from liqlab.engine.levels import pull
    from liqlab.engine.liqmap import liquidation_map

    drv, hm, _ = page
    set_and_wait(drv, "lev_25", "value", 0.6)
    for t in (650, 120):                                   # a snapshot move re-runs the recursion up to it
        set_and_wait(drv, "time", "value", t)
        ref = hm.with_params(half_life_hours=model_value(drv, "half_life"), leverage_weights=page_weights(drv, hm))
        m = liquidation_map(ref, t)
        got = drv.execute_script("const d = Bokeh.documents[0].get_model_by_name('liqmap').data, o = {};"
                                 "for (const k in d) o[k] = Array.from(d[k]); return o;")
        for k in range(len(hm.leverages)):
            np.testing.assert_allclose(got[f"k{k}"], m.long[k] + m.short[k], rtol=1e-6, atol=1e-6)
        for col, want in (("cum_long", m.cum_long), ("cum_short", m.cum_short)):
            g = np.array([np.nan if v is None else v for v in got[col]], dtype=np.float64)
            np.testing.assert_array_equal(np.isnan(g), np.isnan(want))
            np.testing.assert_allclose(g[~np.isnan(g)], want[~np.isnan(want)], rtol=1e-6, atol=1e-6)
        bands = drv.execute_script("const d = Bokeh.documents[0].get_model_by_name('liqmap_bands').data;"
                                   "return [Array.from(d.below), Array.from(d.above)];")
        np.testing.assert_allclose(bands[0], m.below, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(bands[1], m.above, rtol=1e-6, atol=1e-6)
        want = pull(ref, t, within_pct=5.0)                   # the profile's pull: engine.levels.pull
        i = list(m.bands_pct).index(5.0)
        np.testing.assert_allclose([bands[1][i], bands[0][i]], [want["above_usd"], want["below_usd"]], rtol=1e-6, atol=1e-6)
        assert "pull \u00b15%" in model_value(drv, "pull", "text")
    assert not js_errors(drv)


def test_range_buttons_set_the_x_range(page):
    drv, hm, _ = page
    xr = "const r = Bokeh.documents[0].get_model_by_name('main').x_range; return [r.start, r.end];"
    x0, x1 = drv.execute_script(xr)
    for label, hours in (("24h", 24), ("1w", 168), ("3m", None), ("1m", None), ("all", None)):
        assert drv.execute_script(CLICK, label)
        want = (x1 - hours * 3.6e6, x1) if hours else (x0, x1)     # 1m, 3m: longer than the 30-day map
        wait_for(drv, f"const r = Bokeh.documents[0].get_model_by_name('main').x_range;"
                      f"return Math.abs(r.start - {want[0]}) < 1 && Math.abs(r.end - {want[1]}) < 1;", 10)
    assert not js_errors(drv)


@pytest.mark.parametrize("width", [1280, 1400, 1920])
def test_nothing_cut_off(page, width):
    drv, _, shots = page
    drv.set_window_size(width, 1500)
    wait_for(drv, f"return window.innerWidth <= {width};", 10)
    drv.execute_script("window.dispatchEvent(new Event('resize'));")
    wait_for(drv, "const d = Bokeh.documents[0]; return d.is_idle === undefined ? true : d.is_idle;", 10)
    import time

    time.sleep(0.5)                                        # the resize re-layout
    right, inner, scroll = drv.execute_script(WIDEST)
    screenshot(drv, shots / f"explorer_{width}.png")
    print(f"\nscreenshot {shots / f'explorer_{width}.png'}: rightmost {right:.0f} px of {inner} px")
    assert right <= inner + 1 and scroll <= inner + 1
