"""liqlab.viz.plot without a browser: colour mapping, the cell cap, the named models, the HTML file."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.viz import plot
from liqlab.errors import ParameterError

finite_pos = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------------------- colours


@settings(max_examples=60, deadline=None)
@given(vals=st.lists(st.one_of(st.just(0.0), finite_pos), min_size=1, max_size=60),
       vmax=finite_pos, mapping=st.sampled_from(["linear", "log", "percentile"]))
def test_colour_levels_monotone_fixed_scale(vals, vmax, mapping):
    v = np.asarray(vals, dtype=np.float32)
    qs = plot.quantile_thresholds(v, None) if mapping == "percentile" else None
    lev = plot.colour_levels(v, mapping, vmax, qs)
    assert lev.dtype == np.int16 and lev.shape == v.shape
    assert np.all((lev == -1) == (v <= 0))                    # transparent exactly where there is nothing
    assert lev.max() <= plot.N_COLOURS - 1
    pos = v > 0
    order = np.argsort(v[pos], kind="stable")
    assert np.all(np.diff(lev[pos][order]) >= 0)               # more notional never gets a lower colour
    # same notional, same colour wherever it sits (fixed scale, no per-column normalisation)
    shuffled = plot.colour_levels(v[::-1].copy(), mapping, vmax, qs)
    assert np.array_equal(shuffled[::-1], lev)


def test_colour_levels_values():
    v = np.array([0.0, 1.0, 499.0, 500.0, 1000.0, 5000.0], dtype=np.float32)
    lin = plot.colour_levels(v, "linear", 1000.0, n=4)
    assert lin.tolist() == [-1, 0, 1, 2, 3, 3]
    lg = plot.colour_levels(v, "log", 1000.0, n=3, log_range=1000.0)   # decades 1..10..100..1000
    assert lg.tolist() == [-1, 0, 2, 2, 2, 2]
    with pytest.raises(ParameterError, match="mapping"):
        plot.colour_levels(v, "sqrt", 1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), finite_pos), min_size=0, max_size=200))
def test_quantile_thresholds_sorted_and_from_data(vals):
    v = np.asarray(vals, dtype=np.float32)
    q = plot.quantile_thresholds(v, None, n=16)
    assert q.shape == (15,)
    if (v > 0).any():
        assert np.all(np.diff(q) >= 0)
        assert set(q.astype(np.float32)) <= set(v[v > 0])
    else:
        assert np.all(np.isinf(q))


def test_rgba_image_sides_and_blend():
    long = np.array([[0, 10, 0], [0, 0, 100]], dtype=np.float32)
    short = np.array([[0, 0, 50], [0, 0, 100]], dtype=np.float32)
    pal = plot.palettes()
    img = plot.rgba_image(long, short, "linear", vmax=100.0)
    assert img.dtype == np.uint32 and img.shape == long.shape
    assert img[0, 0] == 0 and img[1, 1] == 0                       # transparent where empty
    assert img[0, 1] in set(pal["long_u32"].tolist())              # long only: blue palette
    assert img[0, 2] in set(pal["short_u32"].tolist())             # short only: red palette
    assert (img[1, 2] >> 24) == 255 and img[1, 2] not in set(pal["long_u32"].tolist())
    only_long = plot.rgba_image(long, short, "linear", vmax=100.0, layers="long")
    assert only_long[0, 2] == 0 and only_long[0, 1] == img[0, 1]
    blue = np.array([int(h[5:7], 16) - int(h[1:3], 16) for h in pal["long_hex"]])
    red = np.array([int(h[1:3], 16) - int(h[5:7], 16) for h in pal["short_hex"]])
    assert (blue >= 0).all() and (red >= 0).all()                   # long is blue, short is red


def test_ticks_are_positions_with_usd_values():
    pos, val = plot._ticks("log", 1e8, None)
    assert pos[-1] == 1.0 and val[-1] == 1e8 and all(0 <= p <= 1 for p in pos)
    assert np.allclose(np.diff(np.log10(val[:-1])), 1.0)
    assert plot.usd(1.25e6) == "$1.2M" and plot.usd(35_000) == "$35k" and plot.usd(950) == "$950"


# ------------------------------------------------------------------------------------ heatmap views


@pytest.fixture(scope="module")
def small(small_sim):
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap

    data = load(small_sim)
    return build_heatmap(data, progress=False), data


def _named(layout, name):
    m = layout.select_one({"name": name})
    assert m is not None, f"no model named {name!r}"
    return m


def test_explorer_named_models(small):
    hm, data = small
    lay = plot.explorer(hm, data)
    T, B = hm.long.shape
    src = _named(lay, "heatmap")
    assert src.data["long"][0].shape == (B, T) and src.data["long"][0].dtype == np.float32
    np.testing.assert_allclose(src.data["long"][0], hm.long.T.astype(np.float32))
    np.testing.assert_allclose(src.data["short"][0], hm.short.T.astype(np.float32))
    assert src.data["image"][0].dtype == np.uint32
    hl = _named(lay, "half_life")
    assert hl.value == hm.params.half_life_hours
    for lev, w in zip(hm.leverages, hm.weights):
        assert abs(_named(lay, f"lev_{lev:g}").value - w) < 1e-4
    for v in hm.meta["venues"]:
        assert _named(lay, f"venue_{v}").active
    rp = _named(lay, "replay")
    assert list(rp.data["venue"]) == list(hm.replay.venue_names)
    assert rp.data["long_ptr"][0].dtype == np.int32 and rp.data["long_v"][0].dtype == np.float64
    assert _named(lay, "colour_mapping").value in plot.MAPPINGS
    title = _named(lay, "title").text
    assert "SYNTHETIC" in title and hm.meta["symbol"] in title and "bybit" in title
    cl = _named(lay, "clusters").data
    ref = hm.top_clusters()
    np.testing.assert_allclose(cl["price"], ref["price"].to_numpy())
    assert [int(v.split()[0]) for v in cl["venues"]] == ref["venues"].tolist()
    assert len(_named(lay, "price").data["t"]) > 0                       # candles from the data
    assert len(_named(lay, "liquidations").data["t"]) > 0                # realized events as markers


def test_explorer_without_data_has_price_line_only(small):
    hm, _ = small
    lay = plot.explorer(hm)
    assert lay.select_one({"name": "price"}) is None and lay.select_one({"name": "liquidations"}) is None
    line = _named(lay, "price_line")
    np.testing.assert_allclose(line.data["close"], hm.close)


def test_cap_shows_every_nth_snapshot_without_data(small):
    hm, _ = small
    T, B = hm.long.shape
    view = plot.prepare(hm, None, max_cells=B * (T // 4))
    assert view.stride >= 4 and view.offset == (T - 1) % view.stride
    assert view.long.shape[1] * B <= B * (T // 4) + B
    np.testing.assert_array_equal(view.long[:, -1], hm.long[-1].astype(np.float32))   # the latest is kept
    assert f"one 1h snapshot in {view.stride}" in view.note
    lay = plot.explorer(hm, max_cells=B * (T // 4))
    assert "snapshot in" in _named(lay, "note").text and _named(lay, "grid").data["stride"][0] == view.stride


def test_cap_rebuilds_coarser_with_data(small):
    hm, data = small
    T, B = hm.long.shape
    view = plot.prepare(hm, data, max_cells=B * (T // 3))
    assert view.stride == 1 and view.hm.params.step_hours >= 3 * hm.params.step_hours
    assert view.long.size <= B * (T // 3)
    assert "coarsened" in view.note
    with pytest.raises(ParameterError, match="max_cells"):
        plot.prepare(hm, data, max_cells=B - 1)


def test_heatmap_figure_static(small):
    hm, data = small
    lay = plot.heatmap_figure(hm, data, mapping="percentile")
    src = _named(lay, "heatmap")
    assert src.data["image"][0].shape == hm.long.T.shape
    assert "SYNTHETIC" in _named(lay, "title").text
    with pytest.raises(ParameterError, match="mapping"):
        plot.heatmap_figure(hm, mapping="nope")


def test_explorer_rejects_relative_and_bad_options(small):
    hm, _ = small
    with pytest.raises(ParameterError, match="layers"):
        plot.explorer(hm, layers="stacked")
    with pytest.raises(ParameterError, match="relative"):
        plot.explorer(hm.relative("1D"))


def test_save_explorer_offline_atomic(small, tmp_path):
    hm, data = small
    out = tmp_path / "x.html"
    out.write_text("old")
    p = plot.save_explorer(hm, out, data)
    html = p.read_text()
    assert p == out and html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\ssrc=", html)                  # BokehJS inline: no script fetched
    assert not re.search(r"<link[^>]*href=\"?https?:", html)            # no CDN stylesheet either
    assert "liqlab_recursion" in html and "SYNTHETIC" in html
    assert "file size" in html and "MB" in html
    assert not [f for f in tmp_path.iterdir() if f.name != "x.html"]     # no temp files left behind


def test_update_explorer_replaces_sources(small):
    hm, data = small
    lay = plot.explorer(hm, data)
    hm2 = hm.with_params(half_life_hours=12.0)
    plot.update_explorer(lay, plot.explorer_state(hm2, data))
    np.testing.assert_allclose(_named(lay, "heatmap").data["long"][0], hm2.long.T.astype(np.float32))
    assert _named(lay, "half_life").value == 12.0
    assert "12 h" in _named(lay, "title").text


def _models(layout) -> dict:
    return {m.name: m for m in layout.references() if getattr(m, "name", None)}


def _assert_same_column(got, want, where: str) -> None:
    """Array for array: same length, and each cell (array or scalar) with the same dtype and values."""
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, where
        np.testing.assert_array_equal(got, want, err_msg=where)
        return
    assert len(got) == len(want), where
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, f"{where}[{i}]"
        np.testing.assert_array_equal(g, w, err_msg=f"{where}[{i}]")


#: Control properties update_explorer sets (the page's colour controls are kept, checked separately).
_CONTROL_PROPS = {"Slider": ("start", "end", "value", "step", "title"), "Toggle": ("active", "label"),
                  "Select": ("value", "options"), "Span": ("location",), "Div": ("text",), "Title": ("text",)}


@pytest.mark.parametrize("mapping, layers, state_colours", [
    ("log", "blend", "explorer_state defaults"),          # the page's choices differ: recoloured on update
    ("percentile", "side by side", "page"),               # the state is made with the page's choices
])
def test_update_explorer_shows_what_a_fresh_explorer_shows(small, mapping, layers, state_colours):
    from liqlab.engine.heatmap import build_heatmap

    hm1, data = small
    # another time range, side split, half-life, preset and venue selection; the same leverage set
    hm2 = build_heatmap(data, start=str(hm1.times[24]), end=str(hm1.times[-6]), side_split="taker",
                        half_life_hours=12.0, leverage_preset="retail-high",
                        progress=False).with_params(venues=("bybit", "okx"))
    T1, B1 = hm1.long.shape
    cap = int(np.prod(hm2.long.shape))          # hm2 fits; hm1 is rebuilt coarser (so the note changes too)
    assert T1 * B1 > cap
    page = plot.explorer(hm1, data, max_cells=cap)
    pm = _models(page)
    pm["colour_mapping"].value = mapping           # as the page's own controls do (synced back by jupyter_bokeh)
    pm["layers"].active = plot.LAYERS.index(layers)
    pm["colour_max"].value = pm["colour_max"].value + 0.5
    colours = plot.page_colours(pm)
    kept = {n: pm[n].properties_with_values() for n in ("colour_mapping", "layers", "colour_max")}
    state = plot.explorer_state(hm2, data, max_cells=cap, **(colours if state_colours == "page" else {}))
    assert (state.colours == colours) == (state_colours == "page")
    plot.update_explorer(page, state)
    fresh = _models(plot.explorer(hm2, data, max_cells=cap, **colours))

    assert set(pm) == set(fresh)
    sources = sorted(n for n, m in fresh.items() if type(m).__name__ == "ColumnDataSource")
    assert set(plot.SOURCES) <= set(sources)
    for n in sources:
        got, want = pm[n].data, fresh[n].data
        assert set(got) == set(want), n
        for col in want:
            _assert_same_column(got[col], want[col], f"{n}.{col}")
    controls = [n for n, m in fresh.items() if type(m).__name__ in _CONTROL_PROPS and n not in kept]
    assert {"half_life", "time", "leverage_preset", "venue_okx", "lev_10", "title", "note", "time_marker",
            "close_marker", "profile_title"} <= set(controls)
    for n in controls:
        for prop in _CONTROL_PROPS[type(fresh[n]).__name__]:
            assert getattr(pm[n], prop) == getattr(fresh[n], prop), f"{n}.{prop}"
    for side in ("long", "short"):
        assert pm[f"colourbar_{side}"].ticker.ticks == fresh[f"colourbar_{side}"].ticker.ticks
    assert {n: pm[n].properties_with_values() for n in kept} == kept     # the page's colour choices stay
    # the update did change the page (hm2 differs from hm1 in every respect compared above)
    assert not pm["venue_binanceusdm"].active and pm["half_life"].value == 12.0 and "coarsened" not in pm["note"].text
    assert pm["time_marker"].location == plot._times_ms(hm2.times)[-1]


def test_explorer_state_fills_the_explorer(small):
    hm, data = small
    state = plot.explorer_state(hm, data, mapping="linear", time_index=5)
    lay = _models(plot.explorer(hm, data, mapping="linear", time_index=5))
    for n, cols in state.sources.items():
        for col, want in cols.items():
            _assert_same_column(lay[n].data[col], want, f"{n}.{col}")
    for n, props in state.controls.items():
        assert {k: getattr(lay[n], k) for k in props} == props, n
    assert {n: lay[n].text for n in state.texts} == state.texts
    assert state.controls["time"]["value"] == 5 and lay["colour_mapping"].value == "linear"
    with pytest.raises(ParameterError, match="mapping"):
        plot.explorer_state(hm, mapping="sqrt")


def test_update_explorer_needs_the_same_leverage_set(small):
    hm, data = small
    lay = plot.explorer(hm)
    other = __import__("liqlab.engine.heatmap", fromlist=["build_heatmap"]).build_heatmap(data, leverages=(10, 20), progress=False)
    with pytest.raises(ParameterError, match="leverage"):
        plot.update_explorer(lay, plot.explorer_state(other))


def test_plot_import_is_light():
    code = "import sys, liqlab.viz.plot; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('bokeh','pandas','numba'))))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_price_bars_aggregate_steps(small):
    hm, data = small
    times_ms = plot._times_ms(hm.times)
    bars = plot.price_bars(data, times_ms, hm.params.step_hours, "bybit")
    o = data["bybit"].ohlcv
    ts = plot._times_ms(o["ts"])
    j = len(bars["t"]) // 2
    end = bars["t"][j] + hm.params.step_hours * 1.8e6
    sel = (ts >= end - hm.params.step_hours * 3.6e6) & (ts < end)
    assert bars["high"][j] == o["high"].to_numpy()[sel].max() and bars["low"][j] == o["low"].to_numpy()[sel].min()
    assert bars["open"][j] == o["open"].to_numpy()[sel][0] and bars["close"][j] == o["close"].to_numpy()[sel][-1]
