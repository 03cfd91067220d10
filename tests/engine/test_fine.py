"""liqlab.engine.fine: the fine pass (bars and open interest → step inputs), its numba twins and its notes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from liqlab.engine.fine import fine_pass
from liqlab.engine.grid import make_grid
from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.inputs import VenueSteps
from liqlab.engine.params import HeatmapParams
from liqlab.io.dataset import Collection
from test_heatmap import flat_dataset, random_dataset


_STEP_FIELDS = ("lo", "hi", "g", "rm_long", "rm_short", "shift", "volume_usd", "close", "dropped_long", "dropped_short")


def _assert_same_steps(a, b):
    """Every array of two StepInputs equal, dtype included (NaN == NaN)."""
    assert [v.venue for v in a.venues] == [v.venue for v in b.venues]
    for va, vb in zip(a.venues, b.venues):
        for side in ("fresh_long", "fresh_short"):
            for x, y in zip(getattr(va, side), getattr(vb, side)):
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
        for f in _STEP_FIELDS:
            x, y = getattr(va, f), getattr(vb, f)
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kw", [
    dict(),                                                             # entry_price='range': LP ranges over bins
    dict(entry_price="typical", side_split="taker"),                    # point masses
    dict(entry_price="close", side_split="candle", bin_unit="usd", funding_drift=True),
    dict(oi_decrease="highest_leverage", position_size_sigma=1.5, position_size_leverage_exponent=0.5),
    dict(price_range=0.002, leverages=(2.0, 10.0, 150.0), leverage_weights=(1.0, 1.0, 1.0)),  # off-grid, unsupported
], ids=["range", "typical-taker", "close-candle-usd", "hl-sizes", "offgrid"])
def test_fine_pass_numba_equals_numpy(kw):
    """The numba twins (deposits, bar bins, weighted sums) give the numpy path's arrays exactly."""
    from liqlab.engine.fine_kernels import compiled_loop

    if compiled_loop("deposits", use_numba=True) is None:
        pytest.skip("numba not importable here")  # pragma: no cover
    flat = random_dataset("bybit", seed=6, oi_every=1)   # 40% of the bars have high = low: zero-width LP ranges
    o = flat.ohlcv.copy()
    pick = np.random.default_rng(6).random(len(o)) < 0.4
    o.loc[pick, ["open", "high", "low"]] = np.repeat(o.loc[pick, ["close"]].to_numpy(), 3, axis=1)
    coll = Collection(datasets=(random_dataset("binanceusdm", seed=4), random_dataset("okx", seed=5, oi_every=60),
                                dataclasses.replace(flat, ohlcv=o)))
    a = build_heatmap(coll, use_numba=True, progress=False, **kw)
    b = build_heatmap(coll, use_numba=False, progress=False, **kw)
    _assert_same_steps(a.replay, b.replay)
    assert a.meta["dropped_usd"] == b.meta["dropped_usd"]
    for name in ("long", "short", "agreement"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for v in a.venue_long:
        np.testing.assert_array_equal(a.venue_long[v], b.venue_long[v])
    if "price_range" in kw:
        assert a.meta["dropped_usd"]["binanceusdm"]["long"] > 0  # the case does reach the off-grid branch


def test_search_kernel_equals_searchsorted():
    """Walks from the previous answer, bisects on jumps, NaN last, ties on both sides: np.searchsorted's answers."""
    from liqlab.engine.fine_kernels import compiled_loop, search

    fn = compiled_loop("search", use_numba=True)
    if fn is None:
        pytest.skip("numba not importable here")  # pragma: no cover
    rng = np.random.default_rng(7)
    a = 100.0 * np.exp(0.001 * np.arange(500))
    walk = 130.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 3000)))
    x = np.concatenate([walk, rng.uniform(50, 200, 300), a[::7], [np.nan, 1.0, 1e9, a[0], a[-1], -0.0]])
    for side in ("left", "right"):
        got = search(fn, a, x, side)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.searchsorted(a, x, side))


def _grid_for(ds, p):
    """(t0 ns, T, edges) covering one dataset's bars, as build_heatmap chooses them."""
    ts = ds.ohlcv["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    step_ns = int(round(p.step_hours * 3600e9))
    t0 = (int(ts[0]) // step_ns) * step_ns
    T = int(-(-(int(ts[-1]) + step_ns - t0) // step_ns))
    edges, _ = make_grid(float(ds.ohlcv["low"].min()), float(ds.ohlcv["high"].max()),
                         float(ds.ohlcv["close"].median()), p)
    return t0, T, edges


def test_fine_pass_returns_its_notes_as_a_dict():
    """What the data cannot support is returned as topic -> line (never appended to a list passed in)."""
    ds = flat_dataset([60000.0] * 6, [100, 110, 110, 110, 110, 110])  # no mark_close, no taker_buy_volume
    p = HeatmapParams(clearing="mark", side_split="taker")
    t0, T, edges = _grid_for(ds, p)
    steps, notes = fine_pass(ds, p, t0, T, edges, use_numba=False)
    assert isinstance(steps, VenueSteps) and steps.n_steps == T and steps.n_bins == len(edges) - 1
    assert set(notes) == {"binanceusdm/clearing", "binanceusdm/side_split"}
    assert "mark_close" in notes["binanceusdm/clearing"] and "long_share=0.5" in notes["binanceusdm/side_split"]
    _, quiet = fine_pass(ds, HeatmapParams(), t0, T, edges, use_numba=False)
    assert quiet == {}


def test_heatmap_notes_are_a_dict_of_lines():
    """meta['notes'] is a dict of one-line texts: fine-pass notes of each venue and skipped venues."""
    okx = flat_dataset([60000.0] * 6, [100], venue="okx", oi_ts=pd.date_range("2025-01-01", periods=1, freq="1h", tz="UTC"))
    coll = Collection(datasets=(flat_dataset([60000.0] * 6, [100, 110, 110, 110, 110, 110]), okx))
    h = build_heatmap(coll, clearing="mark", progress=False)
    notes = h.meta["notes"]
    assert isinstance(notes, dict) and all(isinstance(v, str) and "\n" not in v for v in notes.values())
    assert "binanceusdm/clearing" in notes and "okx/skipped" in notes and "too little data" in notes["okx/skipped"]
    assert h.summary()["notes"] == notes
    assert h.with_params(half_life_hours=5.0).meta["notes"] == notes
