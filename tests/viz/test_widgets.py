"""liqlab.viz.widgets in-process: controls from HeatmapParams, rebuilds equal to the engine, debounce,
stale results dropped, failures keep the last good map, export (HTML + papermill parameters)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqlab.viz import controls
from liqlab.viz import plot
from liqlab.viz import widgets as ex_mod
from liqlab.viz.view import fit_view
from liqlab.errors import ParameterError
from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.params import LEVERAGE_PRESETS, HeatmapParams, param_info

NOTEBOOK_NAME = "notebooks/02_heatmap.ipynb"
#: A half-life (hours) that is not the engine default, whatever the default is.
HL = HeatmapParams().half_life_hours + 37.0 if math.isfinite(HeatmapParams().half_life_hours) else 37.0


@pytest.fixture(scope="module")
def data(small_sim):
    from liqlab.io.dataset import load

    return load(small_sim)


def expected_view(data, params: HeatmapParams, max_cells: int = plot.MAX_CELLS):
    """The engine's numbers for ``params`` after the explorer's cell cap and float32 (independent path:
    build_heatmap → fit_view; a venue subset is a kernel re-run on the all-venue build)."""
    import dataclasses

    hm = build_heatmap(data, dataclasses.replace(params, venues=None), progress=False)
    hm = fit_view(hm, data, max_cells).hm
    if params.venues is not None:
        hm = hm.with_params(venues=params.venues)
    return fit_view(hm, data, max_cells)


def page(ex):
    """What the Bokeh models (the page's data sources) hold now."""
    m = ex._models
    return {
        "long": np.asarray(m["heatmap"].data["long"][0]), "short": np.asarray(m["heatmap"].data["short"][0]),
        "profile_long": np.asarray(m["profile"].data["long"]), "clusters": dict(m["clusters"].data),
        "replay_venues": list(m["replay"].data["venue"]), "half_life": m["half_life"].value,
        "toggles": {v: m[f"venue_{v}"].active for v in ex.venues},
        "times": np.asarray(m["grid"].data["times"][0]),
    }


def assert_page_equals_engine(ex, data, params):
    v = expected_view(data, params)
    got = page(ex)
    assert got["long"].shape == v.long.shape
    np.testing.assert_allclose(got["long"], v.long, rtol=1e-6, atol=0)
    np.testing.assert_allclose(got["short"], v.short, rtol=1e-6, atol=0)
    np.testing.assert_allclose(got["times"], v.times_ms, rtol=0, atol=0)
    # the profile panel and the top-clusters table follow the rebuild (latest snapshot)
    np.testing.assert_allclose(got["profile_long"], v.long[:, -1].astype(np.float64), rtol=1e-6)
    cl = v.hm.top_clusters(None, n=10)  # the engine's table at the latest snapshot
    np.testing.assert_allclose(np.asarray(got["clusters"]["price"], dtype=float), cl["price"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(got["clusters"]["notional"], dtype=float), cl["notional"].to_numpy(), rtol=1e-6)
    # the browser-side controls act on the new map: full replay, engine weights, toggles = venue selection
    assert got["replay_venues"] == list(data.venues)
    hl = float(params.half_life_hours)
    assert got["half_life"] == (hl if math.isfinite(hl) else 0.0)
    for lv, w in zip(v.hm.leverages, v.hm.weights):  # exact: the page re-runs the recursion with them
        assert ex._models[f"lev_{lv:g}"].value == pytest.approx(float(w), rel=1e-15)
    sel = params.venues or data.venues
    assert got["toggles"] == {x: x in sel for x in data.venues}


# ---------------------------------------------------------------------------------------- basics


def test_import_does_nothing():
    code = ("import sys, liqlab, liqlab.viz.widgets as e; heavy = [m for m in ('ipywidgets', 'bokeh', 'jupyter_bokeh', "
            "'numba', 'liqlab.engine.heatmap') if m in sys.modules]; print(heavy); assert not heavy, heavy")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr + res.stdout


def test_controls_named_after_engine_parameters_with_defaults_and_tooltips(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        info, d = param_info(), HeatmapParams()
        assert set(controls.CONTROLLED) <= set(info)
        for name in controls.CONTROLLED:
            c = ex.controls[name]
            assert c.description == name
            assert info[name]["description"] in c.tooltip
        v = ex.values()
        assert tuple(v["venues"]) == data.venues  # venues None = all
        assert v["start"] == "" and v["end"] == "" and d.start is None and d.end is None
        for name in ("side_split", "entry_price", "oi_decrease", "clearing", "margin_model", "leverage_preset",
                     "half_life_hours", "max_age_hours", "bin_width"):
            assert v[name] == getattr(d, name), name
        for name in ("max_age_hours", "bin_width"):  # None is a visible, selected option
            assert ex.controls[name].index is not None and ex.controls[name].label in ("never", "default")
        for name in ("side_split", "entry_price", "oi_decrease", "clearing", "margin_model"):
            assert tuple(ex.controls[name].options) == tuple(info[name]["choices"])
        assert tuple(ex.controls["leverage_preset"].options) == tuple(LEVERAGE_PRESETS)
        assert ex.controls["colour_mapping"].value == plot.explorer.__kwdefaults__["mapping"]
        assert ex.params == d
        assert_page_equals_engine(ex, data, d)
    finally:
        ex.close()


def test_explore_returns_one_layout_with_the_bokeh_explorer(data):
    import ipywidgets as w
    from jupyter_bokeh.widgets import BokehModel

    lay = ex_mod.explore(data, side_split="taker", half_life_hours=HL)
    ex = lay.explorer
    try:
        assert isinstance(lay, w.Box)
        assert any(isinstance(c, BokehModel) for c in lay.children)
        assert ex.controls["side_split"].value == "taker"
        assert ex.controls["half_life_hours"].value == HL
        assert ex.layout.name == "liqlab_explorer"
    finally:
        ex.close()


# ------------------------------------------------------------------ each control → engine result

def _other(name):
    """A choice of ``name`` other than its HeatmapParams default (the test follows default changes)."""
    return next(c for c in param_info()[name]["choices"] if c != getattr(HeatmapParams(), name))


CHANGES = [
    ("venues", ["bybit", "okx"], {"venues": ("bybit", "okx")}),
    ("start", "mid-data", None),  # filled in below
    *[(n, _other(n), {n: _other(n)}) for n in ("side_split", "entry_price", "oi_decrease", "clearing", "margin_model")],
    *[("leverage_preset", p, {"leverage_preset": p}) for p in LEVERAGE_PRESETS if p != HeatmapParams().leverage_preset][:1],
    ("half_life_hours", 0.0, {"half_life_hours": math.inf}),
    ("half_life_hours", HL, {"half_life_hours": HL}),
    ("max_age_hours", 24.0, {"max_age_hours": 24.0}),
    ("bin_width", 25.0, {"bin_width": 25.0}),
]


@pytest.mark.parametrize("name,value,expect", CHANGES, ids=[f"{c[0]}={c[1]}" for c in CHANGES])
def test_setting_a_control_puts_the_engine_result_in_the_sources(data, name, value, expect):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        if name == "start":
            t0 = data.datasets[0].ohlcv["ts"].iloc[0]
            value = (t0 + (data.datasets[0].ohlcv["ts"].iloc[-1] - t0) / 2).floor("h").isoformat()
            expect = {"start": value}
        before = page(ex)["long"].copy()
        ex.controls[name].value = value
        assert ex.error == "", ex.error
        want = HeatmapParams().replace(**expect)
        assert ex.params == want
        assert_page_equals_engine(ex, data, want)
        now = page(ex)["long"]
        assert now.shape != before.shape or not np.array_equal(now, before)  # the map really changed
        assert ex.stats["applied"] == 1
    finally:
        ex.close()


def test_kernel_level_change_reuses_the_fine_pass(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        ex.controls["half_life_hours"].value = HL
        ex.controls["venues"].value = ["okx"]
        assert ex.stats["cache_hits"] == 2
        want = HeatmapParams(half_life_hours=HL, venues=("okx",))
        assert_page_equals_engine(ex, data, want)
        ex.controls["side_split"].value = "candle"  # a build parameter: new fine pass
        assert ex.stats["cache_hits"] == 2
        assert_page_equals_engine(ex, data, want.replace(side_split="candle"))
    finally:
        ex.close()


def test_rebuild_updates_the_existing_plot_and_keeps_zoom_and_pan(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        fig, src = ex._models["main"], ex._models["heatmap"]
        t = np.asarray(src.data["long"][0]).shape
        fig.x_range.start, fig.x_range.end = 1.0e12, 1.1e12  # as if the user zoomed / panned
        fig.y_range.start, fig.y_range.end = 50_000.0, 60_000.0
        ex.controls["oi_decrease"].value = _other("oi_decrease")
        assert ex.error == ""
        assert ex._models["main"] is fig and ex._models["heatmap"] is src and ex.bokeh._model is ex.layout
        assert {m.name: m for m in ex.layout.references() if m.name}["heatmap"] is src  # no new plot
        assert (fig.x_range.start, fig.x_range.end, fig.y_range.start, fig.y_range.end) == (1.0e12, 1.1e12, 5e4, 6e4)
        assert np.asarray(src.data["long"][0]).shape == t
    finally:
        ex.close()


def test_controls_follow_the_page_sliders_and_toggles_without_a_rebuild(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        ex._models["half_life"].value = HL  # as the page's own slider does (jupyter_bokeh syncs it back)
        ex._models["venue_okx"].active = False
        ex._models["colour_mapping"].value = "linear"
        assert ex.controls["colour_mapping"].value == "linear"
        ex._models["leverage_preset"].value = "custom"  # no such engine preset: the control stays
        assert ex.controls["leverage_preset"].value == HeatmapParams().leverage_preset
        assert ex.controls["half_life_hours"].value == HL
        assert tuple(ex.controls["venues"].value) == ("binanceusdm", "bybit")
        assert ex.stats["requests"] == 0  # the browser already re-ran the recursion
        ex.controls["side_split"].value = _other("side_split")  # the next rebuild starts from them
        want = HeatmapParams(half_life_hours=HL, venues=("binanceusdm", "bybit"), side_split=_other("side_split"))
        assert ex.params == want
        assert_page_equals_engine(ex, data, want)
    finally:
        ex.close()


def test_choosing_a_preset_replaces_explicit_weights(data):
    w = tuple(float(x) for x in np.linspace(1, 2, len(HeatmapParams().leverages)))
    ex = ex_mod.Explorer(data, synchronous=True, leverage_weights=w)
    try:
        assert ex.params.leverage_weights == w
        ex.controls["leverage_preset"].value = "conservative"
        assert ex.params.leverage_weights is None and ex.params.leverage_preset == "conservative"
        assert_page_equals_engine(ex, data, ex.params)
    finally:
        ex.close()


def test_colour_mapping_recolours_in_the_page_without_a_rebuild(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        ex.controls["colour_mapping"].value = "percentile"
        assert ex._models["colour_mapping"].value == "percentile"
        assert ex.stats["requests"] == 0
        ex.controls["side_split"].value = "candle"  # a rebuild keeps the chosen mapping
        assert ex._models["colour_mapping"].value == "percentile"
        assert np.asarray(ex._models["grid"].data["tick_val"][0]).size > 0
    finally:
        ex.close()


def write_copy(data, out, venues=None, days: float | None = None):
    """Another collection on disk: ``data``'s venues (or some of them), optionally its first ``days``."""
    from liqlab.io.dataset import write_dataset

    for ds in data:
        if venues is None or ds.venue in venues:
            start = ds.ohlcv["ts"].iloc[0]
            write_dataset(ds.between(start, start + pd.Timedelta(days=days)) if days else ds, out / ds.venue)
    return out


def test_dataset_control_loads_another_dataset_in_place(data, tmp_path):
    from liqlab.io.dataset import load

    other = write_copy(data, tmp_path / "first2days", days=2)
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        src = ex._models["heatmap"]
        ex.dataset.value = str(other)
        assert ex.error == "", ex.error
        assert ex._models["heatmap"] is src  # same venues: updated in place
        assert page(ex)["long"].shape[1] == 48  # two days of hourly snapshots: the new data is shown
        assert_page_equals_engine(ex, load(other), HeatmapParams())
        d2 = load(other)
        assert ex.dataset_path == other and ex.data.path == d2.path
        assert ex.controls["start"].placeholder.startswith(min(d.ohlcv["ts"].iloc[0] for d in d2).isoformat())
    finally:
        ex.close()


def test_dataset_with_other_venues_gets_a_new_plot(data, tmp_path):
    from jupyter_bokeh.widgets import BokehModel

    from liqlab.io.dataset import load

    other = write_copy(data, tmp_path / "two", venues=("bybit", "okx"))
    ex = ex_mod.Explorer(data, synchronous=True, venues=("bybit",))
    try:
        old_bokeh = ex.bokeh
        ex.dataset.value = str(other)
        assert ex.error == "", ex.error
        assert ex.bokeh is not old_bokeh and isinstance(ex.widget.children[1], BokehModel)
        assert ex.widget.children[1] is ex.bokeh and ex.bokeh._model is ex.layout
        assert ex.venues == ("bybit", "okx") and tuple(ex.controls["venues"].options) == ex.venues
        assert ex.params.venues is None
        assert_page_equals_engine(ex, load(other), HeatmapParams())
        ex._models["venue_okx"].active = False  # the new page's toggles are followed
        assert tuple(ex.controls["venues"].value) == ("bybit",)
        ex.dataset.value = "/no/such/dir"
        assert ex.error.startswith("dataset='/no/such/dir': ") and "not a dataset" in ex.error
        assert ex.params == HeatmapParams() and ex.data.path == load(other).path  # the last good map stays
        np.testing.assert_array_equal(page(ex)["long"], expected_view(load(other), HeatmapParams()).long)
    finally:
        ex.close()


# --------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name,value,word", [
    ("end", "2000-01-01", "end"),           # before the data start: empty date range
    ("start", "not a date", "start"),
    ("venues", [], "venues"),
])
def test_failed_rebuild_keeps_the_last_good_map_and_says_why_in_one_line(data, name, value, word):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in page(ex).items()}
        hm_before = ex.heatmap
        ex.controls[name].value = value
        assert ex.error and "\n" not in ex.error and ex.error.startswith(word)
        assert "Traceback" not in ex.status.value and "keeping the last good map" in ex.status.value
        after = page(ex)
        np.testing.assert_array_equal(after["long"], before["long"])
        np.testing.assert_array_equal(after["short"], before["short"])
        assert ex.heatmap is hm_before and ex.stats["failed"] == 1 and ex.stats["applied"] == 0
        ex.controls[name].value = list(data.venues) if name == "venues" else ""
        assert ex.error == "" and "rebuilt" in ex.status.value  # recovers
    finally:
        ex.close()


def test_start_after_end_is_an_empty_date_range(data):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        ts = data.datasets[0].ohlcv["ts"]
        ex.controls["start"].value = ts.iloc[len(ts) // 2].isoformat()
        ex.controls["end"].value = ts.iloc[len(ts) // 4].isoformat()
        assert "end: must be after start" in ex.error
        assert_page_equals_engine(ex, data, HeatmapParams(start=ts.iloc[len(ts) // 2].isoformat()))
    finally:
        ex.close()


def test_unexpected_exception_is_one_line_too(data, monkeypatch):
    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        def boom(*a, **k):
            raise RuntimeError("kaput\nsecond line")

        monkeypatch.setattr(ex_mod, "view_heatmap", boom)
        ex.controls["side_split"].value = "taker"
        assert ex.error == "side_split='taker': internal error: RuntimeError: kaput second line"
        assert_page_equals_engine(ex, data, HeatmapParams())
    finally:
        ex.close()


# ----------------------------------------------------------------- debounce, threads, staleness


def test_rapid_changes_are_debounced_into_one_rebuild(data):
    ex = ex_mod.Explorer(data, debounce=0.3)
    try:
        for split in ("taker", "candle", "fixed"):
            ex.controls["side_split"].value = split
        assert ex.busy and "rebuilding" in ex.status.value
        ex.wait(60)
        assert not ex.busy and "rebuilt" in ex.status.value
        assert ex.stats["requests"] == 3 and ex.stats["builds"] == 1 and ex.stats["applied"] == 1
        assert_page_equals_engine(ex, data, HeatmapParams(side_split="fixed"))
    finally:
        ex.close()


def test_a_stale_rebuild_never_overwrites_a_newer_one(data, monkeypatch):
    ex = ex_mod.Explorer(data, debounce=0.0)
    real = ex_mod.view_heatmap
    started, release = threading.Event(), threading.Event()

    def slow(d, params, *a, **k):
        if params.side_split == "taker":  # the first request: still computing when the second arrives
            started.set()
            release.wait(30)
        return real(d, params, *a, **k)

    monkeypatch.setattr(ex_mod, "view_heatmap", slow)
    try:
        ex.controls["side_split"].value = "taker"
        assert started.wait(30)
        ex.controls["side_split"].value = "candle"
        time.sleep(0.05)
        release.set()
        ex.wait(60)
        assert ex.stats["stale_dropped"] >= 1 and ex.stats["applied"] == 1
        assert ex.params.side_split == "candle"
        assert_page_equals_engine(ex, data, HeatmapParams(side_split="candle"))
    finally:
        release.set()
        ex.close()


def test_wait_refuses_to_block_the_loop_that_applies_the_rebuild(data):
    import asyncio

    async def inside():
        ex = ex_mod.Explorer(data)  # built inside a running loop: uses it (as in a kernel)
        try:
            assert ex._loop is asyncio.get_running_loop() and ex._own_loop_thread is None
            ex.debounce = 0.0
            ex.controls["side_split"].value = "taker"
            with pytest.raises(RuntimeError, match="block the event loop"):
                ex.wait(1)
            for _ in range(600):
                if not ex.busy:
                    break
                await asyncio.sleep(0.05)
            assert not ex.busy and ex.params.side_split == "taker"
        finally:
            ex.close()

    asyncio.run(inside())


# -------------------------------------------------------------------------------------- export


def test_export_writes_standalone_html_and_papermill_parameters(data, small_sim, tmp_path, repo):
    import papermill
    import yaml

    ex = ex_mod.Explorer(small_sim, synchronous=True, export_to=str(tmp_path / "view"))
    try:
        ex.controls["side_split"].value = "taker"
        ex.controls["half_life_hours"].value = HL
        ex.controls["venues"].value = ["binanceusdm", "okx"]
        ex._models["colour_mapping"].value = "linear"  # as if changed in the page
        ex.export_button.click()
        html, ypath = tmp_path / "view.html", tmp_path / "view.yaml"
        assert "exported" in ex.status.value, ex.status.value
        text = html.read_text()
        assert "cdn.bokeh.org" not in text and "SYNTHETIC" in text and "half_life" in text
        params = yaml.safe_load(ypath.read_text())
        declared = set(papermill.inspect_notebook(str(repo / NOTEBOOK_NAME)))
        assert set(params) <= declared, set(params) - declared
        assert params["dataset"] == str(small_sim.resolve())
        assert params["interactive"] is False and params["mapping"] == "linear"
        engine = {k: v for k, v in params.items() if k in param_info()}
        assert HeatmapParams.from_dict(engine) == ex.params
    finally:
        ex.close()


def test_export_includes_changes_made_in_the_page(data, tmp_path):
    import yaml

    ex = ex_mod.Explorer(data, synchronous=True)
    try:
        ex._models["half_life"].value = HL  # the browser-side slider (jupyter_bokeh syncs it back)
        ex._models["venue_bybit"].active = False
        html, ypath = ex.export(tmp_path / "page")
        p = yaml.safe_load(ypath.read_text())
        assert p["half_life_hours"] == HL and p["venues"] == ["binanceusdm", "okx"]
        assert p["dataset"] == str(data.path.resolve())
        assert f'"value":{HL:g}' in html.read_text().replace(" ", "")  # the HTML's half-life slider
    finally:
        ex.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    split=st.sampled_from(param_info()["side_split"]["choices"]),
    entry=st.sampled_from(param_info()["entry_price"]["choices"]),
    oi=st.sampled_from(param_info()["oi_decrease"]["choices"]),
    clearing=st.sampled_from(param_info()["clearing"]["choices"]),
    margin=st.sampled_from(param_info()["margin_model"]["choices"]),
    preset=st.sampled_from(tuple(LEVERAGE_PRESETS)),
    hl=st.integers(0, 720),
    age=st.sampled_from((None,) + controls.MAX_AGE_CHOICES),
    bw=st.sampled_from((None,) + controls.BIN_WIDTH_CHOICES["bp"]),
    venues=st.lists(st.sampled_from(("binanceusdm", "bybit", "okx")), min_size=1, unique=True),
)
def test_control_values_round_trip_through_the_exported_parameters(split, entry, oi, clearing, margin, preset, hl,
                                                                   age, bw, venues):
    all_v = ("binanceusdm", "bybit", "okx")
    values = {"venues": venues, "start": "", "end": "", "side_split": split, "entry_price": entry, "oi_decrease": oi,
              "clearing": clearing, "margin_model": margin, "leverage_preset": preset, "half_life_hours": float(hl),
              "max_age_hours": age, "bin_width": bw}
    p = controls.params_from_controls(HeatmapParams(), values, all_v)
    assert (p.half_life_hours == math.inf) == (hl == 0)
    assert (p.venues is None) == (len(venues) == 3)
    nb = controls.export_parameters(p, "/x/y")
    back = HeatmapParams.from_dict({k: v for k, v in nb.items() if k in param_info()})
    assert back == p


def test_export_parameters_refuses_names_the_notebook_does_not_declare():
    p = HeatmapParams(side_split="taker")
    assert controls.export_parameters(p, None, mapping="log", declared={"side_split", "dataset"}) == {"side_split": "taker"}
    with pytest.raises(ParameterError, match="side_split"):
        controls.export_parameters(p, None, declared={"dataset"})


def test_bench_rebuild_reports_the_rebuild_figures(data):
    out = ex_mod.bench_rebuild(data, repeats=1)
    assert out["case"] == "explore_rebuild" and out["synthetic"] is True and out["venues"] == 3
    for k in ("first_view_seconds", "seconds", "engine_seconds", "view_seconds", "kernel_only_seconds"):
        assert out[k] > 0, k
    assert out["seconds"] == pytest.approx(out["engine_seconds"] + out["view_seconds"], abs=2e-4)
    assert (out["shown_steps"], out["bins"]) == expected_view(data, HeatmapParams()).long.shape[::-1]
