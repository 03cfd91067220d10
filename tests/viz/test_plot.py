"""liqlab.viz.plot (explorer, state, figure, export) without a browser: the named models, the live update, the HTML file."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from liqlab.errors import ParameterError
from liqlab.viz import plot
from liqlab.viz.view import times_ms


# ------------------------------------------------------------------------------------ heatmap views


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
    kept = {n: pm[n].properties_with_values() for n in ("colour_mapping", "layers", "colour_max", "colour_min")}
    state = plot.explorer_state(hm2, data, max_cells=cap, **(colours if state_colours == "page" else {}))
    assert (state.colours == colours) == (state_colours == "page")
    plot.update_explorer(page, state)
    fresh = _models(plot.explorer(hm2, data, max_cells=cap, **colours))

    assert set(pm) == set(fresh)
    sources = sorted(n for n, m in fresh.items() if type(m).__name__ == "ColumnDataSource")
    assert set(plot.BOKEH_SOURCES) <= set(sources)
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
    assert pm["time_marker"].location == times_ms(hm2.times)[-1]


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


