"""The static explorer in a real headless Chromium: sliders recompute in the browser and equal the engine.

One Chromium session for the module. Pages: a 30-day, 720-step × ~500-bin heatmap (timing figure,
printed), and a small 3-day heatmap with highest_leverage + max age + funding drift shown at every n-th
snapshot (the hard branches of the recursion). Equality: |js − python| ≤ 1e-6·|python| + 1e-9 USD on
every cell (the page holds float32; the nano-dollar floor covers float32 denormals of fully decayed
levels). Screenshots go to reports/screenshots/.
"""

from __future__ import annotations

import base64
import os
import statistics
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from browser import chromium_session, js_errors, open_bokeh_file, screenshot, wait_for

pytestmark = pytest.mark.browser

RTOL, ATOL = 1e-6, 1e-9
SHOTS = str(Path(__file__).resolve().parents[2] / "reports" / "screenshots")

# set a model property and wait for the explorer's callback to finish (it signals after the map's
# repaint frame and the side-panel update); returns ms: map = recursion + colour (in the callback),
# painted = until the frame after the map's change was painted, total = including the side panel.
SET_AND_WAIT = """
const [name, prop, value, done] = arguments;
const m = Bokeh.documents[0].get_model_by_name(name);
const t0 = performance.now();
window.__liqlab_on_done = () => {
  const p = window.__liqlab_perf;
  done({compute: window.__liqlab_last_ms, recursion: p.recursion, colour: p.colour, panel: p.panel,
        painted: p.painted_at - t0, total: performance.now() - t0});
};
m[prop] = value;
"""

READ_ARRAY = """
const [src, col] = arguments;
const a = Bokeh.documents[0].get_model_by_name(src).data[col][0];
const u8 = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
let s = ""; const CH = 0x8000;
for (let i = 0; i < u8.length; i += CH) s += String.fromCharCode.apply(null, u8.subarray(i, i + CH));
const kind = a instanceof Float32Array ? "f4" : a instanceof Float64Array ? "f8" : a instanceof Uint32Array ? "u4" : "?";
return [btoa(s), Array.from(a.shape || [a.length]), kind];
"""


def read_array(drv, src: str, col: str) -> np.ndarray:
    b64, shape, kind = drv.execute_script(READ_ARRAY, src, col)
    dtype = {"f4": np.float32, "f8": np.float64, "u4": np.uint32}[kind]
    return np.frombuffer(base64.b64decode(b64), dtype=dtype).reshape(shape)


def set_and_wait(drv, name: str, prop: str, value) -> dict:
    return drv.execute_async_script(SET_AND_WAIT, name, prop, value)


def model_value(drv, name: str, prop: str = "value"):
    return drv.execute_script("return Bokeh.documents[0].get_model_by_name(arguments[0])[arguments[1]];", name, prop)


def assert_matches(js: np.ndarray, py: np.ndarray) -> float:
    """Every cell within RTOL relative (+ ATOL USD); returns the max relative error over cells > $1."""
    py32 = np.asarray(py, dtype=np.float64)
    js = js.astype(np.float64)
    err = np.abs(js - py32)
    bad = err > RTOL * np.abs(py32) + ATOL
    assert not bad.any(), f"{bad.sum()} cells differ, worst {err[bad].max()} at {np.argwhere(bad)[0]}"
    big = np.abs(py32) > 1.0
    return float((err[big] / np.abs(py32[big])).max()) if big.any() else 0.0


def page_weights(drv, hm) -> tuple[float, ...]:
    raw = np.array([model_value(drv, f"lev_{lv:g}") for lv in hm.leverages], dtype=np.float64)
    return tuple(float(x) for x in raw / raw.sum())


@pytest.fixture(scope="module")
def drv():
    with chromium_session() as d:
        yield d


@pytest.fixture(scope="module")
def month(month_sim, tmp_path_factory):
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.viz.plot import save_explorer

    data = load(month_sim)
    hm = build_heatmap(data, bin_width=13.0, progress=False)       # 720 hourly steps × ~500 bins
    path = save_explorer(hm, tmp_path_factory.mktemp("html") / "month.html", data)
    return hm, data, path


@pytest.fixture(scope="module")
def month_page(drv, month):
    hm, data, path = month
    open_bokeh_file(drv, path)
    return hm


def test_page_opens_offline_without_errors(drv, month_page):
    hm = month_page
    assert not js_errors(drv)
    urls = drv.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    assert [u for u in urls if not u.startswith(("file:", "data:", "blob:"))] == []     # nothing fetched
    long = read_array(drv, "heatmap", "long")
    assert long.shape == hm.long.T.shape
    assert_matches(long, hm.long.T)


def test_half_life_and_leverage_sliders_equal_engine(drv, month_page):
    hm = month_page
    np.testing.assert_array_equal(page_weights(drv, hm), hm.weights)        # sliders carry the exact weights
    set_and_wait(drv, "half_life", "value", 24.0)
    ref = hm.with_params(half_life_hours=24.0)
    r1 = assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    r2 = assert_matches(read_array(drv, "heatmap", "short"), ref.short.T)
    set_and_wait(drv, "lev_25", "value", 0.6)
    w = page_weights(drv, hm)
    ref = hm.with_params(half_life_hours=24.0, leverage_weights=w)
    r3 = assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    r4 = assert_matches(read_array(drv, "heatmap", "short"), ref.short.T)
    assert not np.allclose(read_array(drv, "heatmap", "long"), hm.long.T.astype(np.float32))   # it did change
    print(f"\nbrowser vs engine, max relative error over cells > $1: {max(r1, r2, r3, r4):.2e}")
    assert not js_errors(drv)


def test_venue_toggle_equals_engine(drv, month_page):
    hm = month_page
    set_and_wait(drv, "venue_okx", "active", False)
    ref = hm.with_params(half_life_hours=model_value(drv, "half_life"), leverage_weights=page_weights(drv, hm),
                         venues=("binanceusdm", "bybit"))
    assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    assert_matches(read_array(drv, "heatmap", "short"), ref.short.T)
    set_and_wait(drv, "venue_okx", "active", True)


def test_preset_select_sets_the_weights(drv, month_page):
    hm = month_page
    hl = model_value(drv, "half_life")
    set_and_wait(drv, "leverage_preset", "value", "retail-high")
    ref = hm.with_params(half_life_hours=hl, leverage_preset="retail-high", leverage_weights=None)
    np.testing.assert_allclose(page_weights(drv, hm), ref.weights, rtol=1e-12)
    assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    assert_matches(read_array(drv, "heatmap", "short"), ref.short.T)
    assert "50x" in model_value(drv, "title", "text")


def test_side_panel_clusters_age_and_agreement(drv, month_page):
    hm = month_page
    ref = hm.with_params(half_life_hours=model_value(drv, "half_life"), leverage_weights=page_weights(drv, hm))
    set_and_wait(drv, "time", "value", 600)
    want = ref.top_clusters(600)
    got = drv.execute_script("const d = Bokeh.documents[0].get_model_by_name('clusters').data;"
                             "return {price: Array.from(d.price), age: Array.from(d.age_hours), venues: Array.from(d.venues)};")
    np.testing.assert_allclose(got["price"], want["price"].to_numpy(), rtol=1e-12)
    # the engine's age is (j − mean deposit step)·h from two float32 runs (error ~1e-7·j·h); the page
    # traces the deposits in float64: agree to a few seconds
    np.testing.assert_allclose(got["age"], want["age_hours"].to_numpy(), rtol=0, atol=1e-7 * 600 * 10)
    assert [int(v.split()[0]) for v in got["venues"]] == [int(v) for v in want["venues"]]
    prof = drv.execute_script("return Array.from(Bokeh.documents[0].get_model_by_name('profile').data.long);")
    np.testing.assert_allclose(prof, ref.long[600], rtol=1e-6, atol=ATOL)
    # hover rows of the same cells (the formatters are what the tooltip calls)
    bins = np.searchsorted(ref.edges, want["price"].to_numpy()) - 1
    for b, row in zip(bins[:4], want.itertuples()):
        h = drv.execute_script(HOVER, 600, int(b))
        assert h["time"].startswith(str(row.time)[:16].replace("T", " "))
        if h["age"].endswith(f"({row.side})"):
            assert abs(float(h["age"].split()[0]) - row.age_hours) < 0.051
        assert int(h["venues"].split()[0]) == int(ref.agreement[600, b])


HOVER = """
const doc = Bokeh.documents[0], [i, j] = arguments, out = {};
const sv = {image_index: {index: 0, i: i, j: j, flat_index: 0}};
for (const k of ["time", "price", "age", "venues"]) out[k] = doc.get_model_by_name("hover_" + k).format(0, "custom", sv);
return out;
"""


def test_colour_mappings_match_python(drv, month_page):
    from liqlab.viz import plot

    for mapping in ("percentile", "linear", "log"):
        set_and_wait(drv, "colour_mapping", "value", mapping)
        long, short = read_array(drv, "heatmap", "long"), read_array(drv, "heatmap", "short")
        vmax = 10 ** model_value(drv, "colour_max")
        want = plot.rgba_image(long, short, mapping, vmax=vmax, vmin=10 ** model_value(drv, "colour_min"))
        img = read_array(drv, "heatmap", "image")
        assert np.mean(img == want) > 0.999, mapping          # log10 may differ by one ulp at a level edge
    set_and_wait(drv, "layers", "active", 3)                 # side by side: long left, short right
    assert model_value(drv, "main_short", "visible")
    img2 = read_array(drv, "heatmap", "image2")
    assert np.array_equal(img2 == 0, read_array(drv, "heatmap", "short") < 10 ** model_value(drv, "colour_min"))
    screenshot(drv, SHOTS + "/explorer_side_by_side.png")
    set_and_wait(drv, "layers", "active", 0)
    # zoomed in: candles; zoomed out: a line
    zoom = """
const doc = Bokeh.documents[0], f = doc.get_model_by_name('main'), t = doc.get_model_by_name('grid').data.times[0];
const [a, b] = arguments; f.x_range.start = t[a]; f.x_range.end = t[b];"""
    vis = """
const f = Bokeh.documents[0].get_model_by_name('main');
const rs = f.renderers.filter(r => r.data_source && r.data_source.name === 'price');
const line = f.renderers.filter(r => r.data_source && r.data_source.name === 'price_line')[0];
return JSON.stringify([rs.length, rs.every(r => r.visible), line.visible]);"""
    drv.execute_script(zoom, 100, 200)
    wait_for(drv, vis.replace("return JSON.stringify(", "return '[3,true,false]' === JSON.stringify("), 10)
    drv.execute_script(zoom, 0, 719)
    wait_for(drv, vis.replace("return JSON.stringify(", "return '[3,false,true]' === JSON.stringify("), 10)
    assert not js_errors(drv)


def test_state_reinitialises_when_replay_is_replaced(drv, month_page):
    hm = month_page
    # what jupyter_bokeh does when Python assigns replay.data: a new data object in the page
    drv.execute_script("const r = Bokeh.documents[0].get_model_by_name('replay'); r.data = Object.assign({}, r.data);")
    set_and_wait(drv, "half_life", "value", 48.0)
    ref = hm.with_params(half_life_hours=48.0, leverage_weights=page_weights(drv, hm))
    assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    assert not js_errors(drv)


def test_slider_repaint_time(drv, month_page):
    """Prints the slider→recompute→repaint figure on the 720-step view (a benchmark, not a pass/fail)."""
    hm = month_page
    shape = read_array(drv, "heatmap", "long").shape
    runs = [set_and_wait(drv, "half_life", "value", float(hl)) for hl in (12, 36, 72, 96, 168, 240, 400, 6, 30)]
    lev = [set_and_wait(drv, f"lev_{hm.leverages[k]:g}", "value", 0.3) for k in (0, 2, 4, 6)]

    def med(rs, key):
        return statistics.median(r[key] for r in rs)

    print(f"\nexplorer slider→repaint, {shape[1]} snapshots × {shape[0]} bins, {len(hm.replay.venues)} venues × "
          f"{len(hm.leverages)} leverages, headless Chromium: half_life median {med(runs, 'painted'):.0f} ms to the "
          f"painted map (max {max(r['painted'] for r in runs):.0f}; recursion {med(runs, 'recursion'):.0f}, colour "
          f"{med(runs, 'colour'):.0f}), side panel +{med(runs, 'panel'):.0f} ms; lev_<L> median {med(lev, 'painted'):.0f} ms "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    screenshot(drv, SHOTS + "/explorer.png")
    assert all(r["painted"] >= r["compute"] > 0 for r in runs + lev)
    assert not js_errors(drv)


# ------------------------------------------------- the hard branches: highest_leverage, max age, drift


@pytest.fixture(scope="module")
def hard(small_sim, tmp_path_factory):
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.viz.plot import save_explorer

    data = load(small_sim)
    hm = build_heatmap(data, oi_decrease="highest_leverage", max_age_hours=18.0, funding_drift=True,
                       bin_unit="usd", time_step="30min", half_life_exponent=1.0, progress=False)
    T, B = hm.long.shape
    path = save_explorer(hm, tmp_path_factory.mktemp("html") / "hard.html", None, max_cells=B * (T // 3))
    return hm, path


def test_hard_branches_equal_engine(drv, hard):
    hm, path = hard
    open_bokeh_file(drv, path)
    stride = int(drv.execute_script("return Bokeh.documents[0].get_model_by_name('grid').data.stride[0];"))
    T = hm.long.shape[0]
    off = (T - 1) % stride
    assert stride >= 3
    assert np.any(np.concatenate([v.shift for v in hm.replay.venues]) != 0)              # drift is exercised
    assert np.any(np.concatenate([v.rm_long for v in hm.replay.venues]) > 0)             # removals too
    for name, prop, val in (("half_life", "value", 10.0), ("lev_100", "value", 0.5), ("venue_bybit", "active", False),
                            ("half_life", "value", 0.0)):          # 0 on the slider = no decay
        set_and_wait(drv, name, prop, val)
        venues = tuple(v for v in hm.replay.venue_names if model_value(drv, f"venue_{v}", "active"))
        hl = model_value(drv, "half_life") or float("inf")
        ref = hm.with_params(half_life_hours=hl, leverage_weights=page_weights(drv, hm), venues=venues)
        assert_matches(read_array(drv, "heatmap", "long"), ref.long[off::stride].T)
        assert_matches(read_array(drv, "heatmap", "short"), ref.short[off::stride].T)
    assert not js_errors(drv)


# --------------------------------------------- the JS recursion alone on constructed step inputs


@pytest.fixture(scope="module")
def js_lib(drv):
    from liqlab.viz.plot import js_source

    drv.get("data:text/html,<title>liqlab js</title>")
    drv.execute_script(js_source("recursion") + "\nwindow.liqlab_recursion = liqlab_recursion;")
    return drv


RUN_VENUE = """
const [T, B, K, side, g, shift, w, lev, hl, stepH, oi, A, gamma] = arguments;
const R = window.liqlab_recursion;
const mk = (s) => ({ptr: Int32Array.from(s.ptr), k: Int32Array.from(s.k), b: Int32Array.from(s.b),
                   v: Float64Array.from(s.v), clear: Int32Array.from(s.clear), rm: Float64Array.from(s.rm)});
const vr = {long: mk(side.long), short: mk(side.short), g: Float64Array.from(g), shift: Int32Array.from(shift)};
const order = [...Array(K).keys()].sort((a, b) => lev[b] - lev[a]);
const outL = new Float64Array(T * B), outS = new Float64Array(T * B);
R.runVenue(vr, T, B, K, R.decay(stepH, Number(hl), lev, gamma), Float64Array.from(w), order, oi, A, 1, outL, outS);
return [Array.from(outL), Array.from(outS)];
"""


@st.composite
def venue_replays(draw):
    T = draw(st.integers(1, 24))
    B = draw(st.integers(1, 12))
    K = draw(st.integers(1, 3))
    vals = st.floats(min_value=1.0, max_value=1e7, allow_nan=False)

    def csr():  # like the engine's: at most one entry per (layer, bin) in a step
        ptr, ks, bs, vs = [0], [], [], []
        for _ in range(T):
            cells = draw(st.lists(st.tuples(st.integers(0, K - 1), st.integers(0, B - 1)), max_size=3, unique=True))
            for k, b in cells:
                ks.append(k)
                bs.append(b)
                vs.append(draw(vals))
            ptr.append(len(ks))
        return (np.array(ptr, dtype=np.int64), np.array(ks, dtype=np.int32), np.array(bs, dtype=np.int32),
                np.array(vs, dtype=np.float64))

    fl, fs = csr(), csr()
    lo = np.array(draw(st.lists(st.integers(0, B), min_size=T, max_size=T)), dtype=np.int32)
    hi = np.array(draw(st.lists(st.integers(-1, B - 1), min_size=T, max_size=T)), dtype=np.int32)
    lo = np.where(np.array(draw(st.lists(st.booleans(), min_size=T, max_size=T))), B, lo).astype(np.int32)
    hi = np.where(np.array(draw(st.lists(st.booleans(), min_size=T, max_size=T))), -1, hi).astype(np.int32)
    g = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=T, max_size=T)), dtype=np.float64)
    rm_l = np.array(draw(st.lists(st.one_of(st.just(0.0), vals), min_size=T, max_size=T)), dtype=np.float64)
    rm_s = np.array(draw(st.lists(st.one_of(st.just(0.0), vals), min_size=T, max_size=T)), dtype=np.float64)
    shift = np.array(draw(st.lists(st.integers(-2, 2), min_size=T, max_size=T)), dtype=np.int32)
    lev = np.array(sorted(draw(st.lists(st.sampled_from([5.0, 10.0, 25.0, 50.0, 100.0]), min_size=K, max_size=K,
                                        unique=True))), dtype=np.float64)
    w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=K, max_size=K)), dtype=np.float64)
    from types import SimpleNamespace

    return SimpleNamespace(fresh_long=fl, fresh_short=fs, lo=lo, hi=hi, g=g, rm_long=rm_l, rm_short=rm_s, shift=shift,
                           n_bins=B, step_hours=1.0, leverages=lev), w / w.sum()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=venue_replays(), hl=st.sampled_from([0.5, 3.0, 48.0, float("inf")]),
       oi=st.sampled_from(["proportional", "ignore", "highest_leverage"]), A=st.sampled_from([0, 1, 3]),
       gamma=st.sampled_from([0.0, 0.8, 1.0]))
def test_js_recursion_equals_kernel_on_constructed_inputs(js_lib, case, hl, oi, A, gamma):
    from liqlab.engine.kernel import run_steps

    rv, w = case
    K, T, B = len(w), len(rv.g), rv.n_bins
    L, S = run_steps(rv, w, hl, A, oi, half_life_exponent=gamma)
    wl = np.einsum("k,ktb->tb", w, L.astype(np.float64))
    ws = np.einsum("k,ktb->tb", w, S.astype(np.float64))

    def side(fr, clear, rm):
        return {"ptr": fr[0].tolist(), "k": fr[1].tolist(), "b": fr[2].tolist(), "v": fr[3].tolist(),
                "clear": clear.tolist(), "rm": rm.tolist()}

    sides = {"long": side(rv.fresh_long, rv.lo, rv.rm_long), "short": side(rv.fresh_short, rv.hi, rv.rm_short)}
    oi_code = {"proportional": 0, "ignore": 1, "highest_leverage": 2}[oi]
    jl, js = js_lib.execute_script(RUN_VENUE, T, B, K, sides, rv.g.tolist(), rv.shift.tolist(), w.tolist(),
                                   rv.leverages.tolist(), hl if np.isfinite(hl) else "Infinity", 1.0, oi_code, A, gamma)
    jl = np.asarray(jl, dtype=np.float64).reshape(T, B)
    js = np.asarray(js, dtype=np.float64).reshape(T, B)
    # the kernel stores float32 layers; the browser keeps float64 until display: compare at float32 precision
    np.testing.assert_allclose(jl, wl, rtol=2e-7, atol=ATOL)
    np.testing.assert_allclose(js, ws, rtol=2e-7, atol=ATOL)


# ------------------------------------------------------------- the papermill report (make demo)


@pytest.mark.slow
def test_notebook_report_sliders_work_from_disk(drv, small_sim, tmp_path, repo):
    """notebooks/02 run by papermill and exported to HTML (as `make demo` does): the sliders recompute."""
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.app.runner import execute_notebook

    run = execute_notebook(repo / "notebooks" / "02_heatmap.ipynb", tmp_path, {"dataset": str(small_sim)})
    assert run.ok, run.error
    open_bokeh_file(drv, run.html)
    assert not js_errors(drv)
    set_and_wait(drv, "half_life", "value", 24.0)
    hm = build_heatmap(load(small_sim), progress=False)
    ref = hm.with_params(half_life_hours=24.0)
    assert_matches(read_array(drv, "heatmap", "long"), ref.long.T)
    assert_matches(read_array(drv, "heatmap", "short"), ref.short.T)
    drv.execute_script("const e = document.querySelector('[data-root-id]'); if (e) e.scrollIntoView();")
    screenshot(drv, SHOTS + "/notebook_02_report.png")
    assert not js_errors(drv)
