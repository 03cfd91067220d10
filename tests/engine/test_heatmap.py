"""liqlab.engine.heatmap: build_heatmap, assemble and Heatmap on constructed and simulated data."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from liqlab.io.dataset import Collection, Dataset, make_meta
from liqlab.errors import DataError, ParameterError
from liqlab.engine.heatmap import Heatmap, build_heatmap
from liqlab.engine.params import HeatmapParams, preset_weights
from liqlab.io import tiers as tier_tables


def flat_dataset(prices, oi, *, venue="binanceusdm", bar="1h", oi_ts=None, funding=0.0, taker=None, seed=None):
    """Bars with open = close = prices[i] and a tiny range; OI rows at ``oi_ts`` (default: each bar)."""
    n = len(prices)
    ts = pd.date_range("2025-01-01", periods=n, freq=bar, tz="UTC")
    c = np.asarray(prices, dtype=float)
    o = np.r_[c[0], c[:-1]]
    d = dict(ts=ts, open=o, high=np.maximum(o, c) * 1.0001, low=np.minimum(o, c) * 0.9999, close=c,
             volume=np.full(n, 10.0))
    if taker is not None:
        d["taker_buy_volume"] = np.full(n, 10.0 * taker)
    oh = pd.DataFrame(d)
    oits = ts if oi_ts is None else oi_ts
    oi = np.asarray(oi, dtype=float)
    oidf = pd.DataFrame(dict(ts=oits, open_interest=oi, open_interest_value=oi * c[0]))
    fu = pd.DataFrame(dict(ts=ts[::8], funding_rate=np.full(len(ts[::8]), funding)))
    return Dataset(meta=make_meta(venue, "BTC/USDT:USDT", source="test", synthetic=True), ohlcv=oh,
                   open_interest=oidf, funding=fu)


def random_dataset(venue="binanceusdm", days=2, seed=0, oi_every=5):
    """1m random-walk bars with taker volume, OI every ``oi_every`` minutes (synthetic)."""
    rng = np.random.default_rng(seed)
    n = days * 1440
    ts = pd.date_range("2025-01-01", periods=n, freq="1min", tz="UTC")
    c = 60000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    o = np.r_[60000.0, c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 3e-4, n)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 3e-4, n)))
    v = rng.uniform(1, 10, n)
    oh = pd.DataFrame(dict(ts=ts, open=o, high=h, low=lo, close=c, volume=v, taker_buy_volume=v * rng.uniform(0.3, 0.7, n)))
    oits = ts[::oi_every]
    oi = 1000 * np.exp(np.cumsum(rng.normal(0, 0.004, len(oits))))
    oidf = pd.DataFrame(dict(ts=oits, open_interest=oi, open_interest_value=oi * c[::oi_every]))
    fu = pd.DataFrame(dict(ts=ts[::480], funding_rate=np.full(len(ts[::480]), 1e-4)))
    return Dataset(meta=make_meta(venue, "BTC/USDT:USDT", source="test", synthetic=True), ohlcv=oh,
                   open_interest=oidf, funding=fu)


@pytest.fixture(scope="module")
def coll3():
    return Collection(datasets=(random_dataset("binanceusdm", seed=1), random_dataset("bybit", seed=2),
                                random_dataset("okx", seed=3)))


@pytest.fixture(scope="module")
def hm3(coll3):
    return build_heatmap(coll3, progress=False)


# ------------------------------------------------------------------------------------- estimation


def test_single_deposit_lands_at_margin_lp():
    from liqlab.engine import margin

    ds = flat_dataset([60000.0] * 6, [100, 110, 110, 110, 110, 110])
    h = build_heatmap(ds, half_life_hours=math.inf, entry_price="typical", progress=False)
    tiers = tier_tables.default_tiers("binanceusdm", "BTC/USDT:USDT")
    entry = 60000.0 * (1.0001 + 0.9999 + 1.0) / 3  # typical price of the interval's bar
    n_usd = 10 * 60000.0
    assert h.times[0] == np.datetime64("2025-01-01T01:00")  # OI at 01:00 is in the snapshot ending 01:00
    for k, lev in enumerate(h.leverages):
        for side, layers in (("long", h.long_layers), ("short", h.short_layers)):
            lp = margin.liquidation_price(entry, lev, side, model="binance", tiers=tiers, notional=10_000.0)
            b = np.searchsorted(h.edges, lp, "right") - 1
            assert layers[k, 0, b] == pytest.approx(n_usd, rel=1e-6)
            assert layers[k, 0].sum() == pytest.approx(n_usd, rel=1e-6)  # all of it in that one bin
            assert np.all(layers[k, :, b] == layers[k, 0, b])  # no decay, no clearing, no decrease
    assert h.long[0].sum() == pytest.approx(n_usd, rel=1e-6)  # weights sum to 1
    assert h.synthetic and "SYNTHETIC" in h.title


def test_range_entry_spreads_uniformly_over_the_lp_range():
    """entry_price='range': mass uniform over [a·low, a·high] (LP affine in entry), split by bin overlap."""
    n = 6
    ts = pd.date_range("2025-01-01", periods=n, freq="1h", tz="UTC")
    c = np.full(n, 60000.0)
    oh = pd.DataFrame(dict(ts=ts, open=c, high=np.r_[61000.0, c[1:] * 1.0001], low=np.r_[59000.0, c[1:] * 0.9999],
                           close=c, volume=np.ones(n)))
    oi = np.r_[100.0, np.full(n - 1, 110.0)]
    ds = Dataset(meta=make_meta("bybit", "BTC/USDT:USDT", source="test", synthetic=True), ohlcv=oh,
                 open_interest=pd.DataFrame(dict(ts=ts, open_interest=oi, open_interest_value=oi * 6e4)),
                 funding=pd.DataFrame(dict(ts=ts[:1], funding_rate=[0.0])))
    h = build_heatmap(ds, entry_price="range", margin_model="flat", leverages=(10,), half_life_hours=math.inf,
                      progress=False)
    x = h.short_layers[0, 0].astype(float)
    a = 1.1  # flat short LP = E·(1 + 1/10)
    lo_lp, hi_lp = a * 59000.0, a * 61000.0
    assert x.sum() == pytest.approx(600000.0, rel=1e-6)
    inside = (h.edges[1:] > lo_lp) & (h.edges[:-1] < hi_lp)
    assert x[~inside].sum() == 0.0
    full = (h.edges[:-1] >= lo_lp) & (h.edges[1:] <= hi_lp)
    dens = x[full] / np.diff(h.edges)[full]  # USD per USD of price: constant inside the range
    np.testing.assert_allclose(dens, 600000.0 / (hi_lp - lo_lp), rtol=1e-5)


def test_both_is_twice_fixed_half(coll3):
    for rule in ("proportional", "highest_leverage"):
        a = build_heatmap(coll3, side_split="both", oi_decrease=rule, progress=False)
        b = build_heatmap(coll3, side_split="fixed", long_share=0.5, oi_decrease=rule, progress=False)
        np.testing.assert_allclose(a.long, 2 * b.long, rtol=1e-12)
        np.testing.assert_allclose(a.short, 2 * b.short, rtol=1e-12)


def test_side_split_rules_conserve_new_exposure(coll3):
    """taker/candle/fixed split each new contract's USD between the sides: long + short deposits equal."""
    tot = {}
    for split in ("taker", "candle", "fixed"):
        h = build_heatmap(coll3, side_split=split, entry_price="close", oi_decrease="ignore", progress=False)
        dep = h.meta["deposited_usd"]
        tot[split] = sum(v["long"] + v["short"] + h.meta["dropped_usd"][k]["long"] + h.meta["dropped_usd"][k]["short"]
                         for k, v in dep.items())
    # same OI increases, fully split: totals agree up to levels cleared within their own step
    assert tot["taker"] == pytest.approx(tot["fixed"], rel=0.05)
    assert tot["candle"] == pytest.approx(tot["fixed"], rel=0.05)


def test_with_params_equals_full_rebuild(coll3, hm3):
    for changes in ({"leverage_preset": "retail-high"}, {"leverage_weights": (1, 0, 0, 0, 0, 0, 0, 3)},
                    {"half_life_hours": 12.0, "max_age_hours": 10.0, "half_life_exponent": 0.7},
                    {"venues": ("bybit", "okx")}):
        fast = hm3.with_params(**changes)
        full = build_heatmap(coll3, progress=False, **changes)
        np.testing.assert_allclose(fast.long, full.long, rtol=1e-12, atol=0)
        np.testing.assert_allclose(fast.short, full.short, rtol=1e-12, atol=0)
        assert fast.meta["venues"] == full.meta["venues"]
    w = preset_weights("conservative", hm3.leverages)
    lo, sh = hm3.mix(w)
    ref = hm3.with_params(leverage_preset="conservative")
    np.testing.assert_allclose(lo, ref.long, rtol=1e-12)
    np.testing.assert_allclose(sh, ref.short, rtol=1e-12)


def test_with_params_refuses_build_level_change(hm3):
    with pytest.raises(ParameterError, match="bin_width"):
        hm3.with_params(bin_width=5.0)
    with pytest.raises(ParameterError, match="venues"):
        hm3.with_params(venues=("kraken",))


def test_numba_and_numpy_builds_match(coll3):
    kw = dict(entry_price="range", max_age_hours=6, funding_drift=True, progress=False)
    a = build_heatmap(coll3, use_numba=True, **kw)
    b = build_heatmap(coll3, use_numba=False, **kw)
    np.testing.assert_array_equal(a.long_layers, b.long_layers)
    np.testing.assert_array_equal(a.short_layers, b.short_layers)


def test_weighted_sums_and_agreement_do_not_depend_on_blocking(monkeypatch):
    """_weighted (numpy blocks, numba) and _agreement (blocks) equal the whole-array formulas exactly."""
    from liqlab.engine import heatmap

    rng = np.random.default_rng(3)
    layers = (rng.random((4, 37, 29)) * (rng.random((4, 37, 29)) > 0.3)).astype(np.float32)
    w = np.array([0.1, 0.0, 0.6, 0.3])
    ref = np.zeros((37, 29))
    for k in range(4):
        if w[k] != 0.0:
            ref += w[k] * layers[k].astype(np.float64)
    vl = {v: (rng.random((37, 29)) * (rng.random((37, 29)) > 0.5)).astype(np.float32) for v in "abc"}
    vs = {v: rng.random((37, 29)).astype(np.float32) * 0.1 for v in "abc"}

    def agreement_ref(threshold, window):
        out = np.zeros((37, 29), np.int8)
        for v in vl:
            m = vl[v].astype(np.float64) + vs[v]
            c = (m > 0) & (m >= threshold * m.max(axis=1, keepdims=True))
            d = c.copy()
            for s in range(1, window + 1):
                d[:, s:] |= c[:, :-s]
                d[:, :-s] |= c[:, s:]
            out += d
        return out

    for block in (1 << 15, 40, 7):  # one block, several rows per block, one row per block
        monkeypatch.setattr(heatmap, "_BLOCK_ELEMS", block)
        np.testing.assert_array_equal(heatmap._weighted(layers, w, use_numba=False), ref)
        for thr, win in ((0.25, 1), (0.5, 0), (0.1, 3)):
            np.testing.assert_array_equal(heatmap._agreement(vl, vs, thr, win, heatmap._block_rows(29)),
                                          agreement_ref(thr, win))
    from liqlab.engine.fine_kernels import compiled_loop

    if compiled_loop("weighted", use_numba=True) is not None:
        np.testing.assert_array_equal(heatmap._weighted(layers, w, use_numba=True), ref)


def test_shapes_units_and_sides(hm3):
    T, B = hm3.long.shape
    K = len(hm3.leverages)
    assert hm3.long_layers.shape == (K, T, B) and hm3.long_layers.dtype == np.float32
    assert hm3.times.dtype == np.dtype("datetime64[ns]") and len(hm3.prices) == B and len(hm3.edges) == B + 1
    assert hm3.weights.sum() == pytest.approx(1.0)
    assert (hm3.long >= 0).all() and (hm3.short >= 0).all()
    # long levels sit below the step's close, short levels above (1-bin tolerance for the bar range)
    # (each venue against its own price: the three test venues are independent random walks)
    j = T - 1
    for v in hm3.venue_long:
        c = hm3.replay.venue(v).close[j]
        lv, sv = hm3.venue_long[v][j], hm3.venue_short[v][j]
        assert lv[hm3.prices > c * 1.01].sum() <= 1e-9 * lv.sum()
        assert sv[hm3.prices < c * 0.99].sum() <= 1e-9 * sv.sum()
    total = sum(hm3.venue_long.values())
    np.testing.assert_allclose(total, hm3.long, rtol=1e-5, atol=1e-3)


def test_oi_decrease_rules_order(coll3):
    kw = dict(side_split="both", progress=False)
    ign = build_heatmap(coll3, oi_decrease="ignore", **kw).long.sum()
    prop = build_heatmap(coll3, oi_decrease="proportional", **kw).long.sum()
    hl = build_heatmap(coll3, oi_decrease="highest_leverage", **kw).long.sum()
    assert ign > prop and ign > hl


def test_hourly_oi_and_bars_and_gap_reset():
    prices = [60000.0] * 30
    oi = np.full(30, 100.0)
    oi[3] = 120.0
    oi[3:] = 120.0
    ds = flat_dataset(prices, oi)
    h = build_heatmap(ds, half_life_hours=math.inf, progress=False)
    assert h.long[-1].sum() == pytest.approx(20 * 60000.0, rel=1e-6)
    # a 12h hole in OI with a jump across it: baseline reset, no fake deposit
    keep = np.r_[0:5, 17:30]
    oi2 = np.r_[np.full(5, 100.0), np.full(13, 200.0)]
    ds2 = flat_dataset(prices, oi2, oi_ts=pd.date_range("2025-01-01", periods=30, freq="1h", tz="UTC")[keep])
    h2 = build_heatmap(ds2, half_life_hours=math.inf, progress=False)
    assert h2.long[-1].sum() == 0.0
    assert h2.meta["venue_info"]["binanceusdm"]["oi_resets"] == 1
    h3 = build_heatmap(ds2, half_life_hours=math.inf, oi_max_gap_hours=24, progress=False)
    assert h3.long[-1].sum() == pytest.approx(100 * 60000.0, rel=1e-6)


def wick_dataset(n: int, wicks: tuple[int, ...]) -> Dataset:
    """``n`` flat 1m bars at 60,000 with a wick to 45,000 at each bar index in ``wicks``; 5m OI that adds
    10 BTC at 00:05 (every long level of 5x..125x deposited then sits above 45,000)."""
    ts = pd.date_range("2025-01-01", periods=n, freq="1min", tz="UTC")
    c = np.full(n, 60000.0)
    lo = c * 0.9999
    lo[list(wicks)] = 45000.0
    oh = pd.DataFrame(dict(ts=ts, open=c, high=c * 1.0001, low=lo, close=c, volume=np.ones(n)))
    oits = ts[::5]
    oi = np.full(len(oits), 100.0)
    oi[1:] = 110.0  # +10 at 00:05
    return Dataset(meta=make_meta("binanceusdm", "BTC/USDT:USDT", source="test", synthetic=True), ohlcv=oh,
                   open_interest=pd.DataFrame(dict(ts=oits, open_interest=oi, open_interest_value=oi * 6e4)),
                   funding=pd.DataFrame(dict(ts=ts[:1], funding_rate=[0.0])))


def test_coarse_oi_deposits_and_in_step_clearing():
    """5m OI on 1m bars: a deposit is cleared by a later bar of the same step that trades through it."""
    ds = wick_dataset(120, (7,))  # a wick at 00:07 through every long level deposited at 00:05
    h = build_heatmap(ds, half_life_hours=math.inf, progress=False)
    assert h.long.sum() == 0.0  # every long level (5x..125x) is above 45,000: cleared inside the step
    assert h.short[-1].sum() == pytest.approx(10 * 60000.0, rel=1e-6)
    h2 = build_heatmap(wick_dataset(120, ()), half_life_hours=math.inf, progress=False)
    assert h2.long[-1].sum() == pytest.approx(10 * 60000.0, rel=1e-6)


def test_clearing_none_keeps_levels_that_price_trades_through():
    """Wicks within the deposit's step and in a later step: clearing='none' keeps every level."""
    ds = wick_dataset(240, (7, 150))
    for use_numba in (True, False):
        kw = dict(half_life_hours=math.inf, progress=False, use_numba=use_numba)
        assert build_heatmap(ds, **kw).long.sum() == 0.0
        h = build_heatmap(ds, clearing="none", **kw)
        assert h.long[0].sum() == pytest.approx(10 * 60000.0, rel=1e-6)
        assert h.long[-1].sum() == pytest.approx(10 * 60000.0, rel=1e-6)  # the later wick clears nothing either
        assert (h.replay.venues[0].lo == h.replay.venues[0].n_bins).all() and (h.replay.venues[0].hi == -1).all()


def test_off_grid_levels_are_reported():
    ds = flat_dataset([60000.0] * 6, [100, 110, 110, 110, 110, 110])
    h = build_heatmap(ds, leverages=(1.5, 10), leverage_weights=(0.5, 0.5), margin_model="flat",
                      half_life_hours=math.inf, progress=False)
    d = h.meta["dropped_usd"]["binanceusdm"]
    assert d["long"] == pytest.approx(0.5 * 10 * 60000.0, rel=1e-6)  # 1.5x long LP = E/3: below the grid
    assert d["short"] == pytest.approx(0.5 * 10 * 60000.0, rel=1e-6)  # 1.5x short LP = 1.67·E: above it
    assert h.long[-1].sum() == pytest.approx(0.5 * 10 * 60000.0, rel=1e-6)


def test_max_age_and_decay_in_build():
    ds = flat_dataset([60000.0] * 8, [100, 110] + [110] * 6)
    h = build_heatmap(ds, max_age_hours=3, half_life_hours=2.0, half_life_exponent=0.0, progress=False)
    tot = h.long.sum(axis=1)
    assert tot[0] > 0 and tot[1] == pytest.approx(tot[0] * 2 ** -0.5, rel=1e-6)
    assert tot[2] == pytest.approx(tot[0] / 2, rel=1e-6)
    assert tot[3] == 0.0 and tot[-1] == 0.0


def test_funding_drift_moves_levels_up():
    ds = flat_dataset([60000.0] * 49, [100, 110] + [110] * 47, funding=0.001)  # 0.1% per 8h
    base = build_heatmap(ds, half_life_hours=math.inf, progress=False)
    drift = build_heatmap(ds, half_life_hours=math.inf, funding_drift=True, progress=False)
    cm = lambda a: (a * base.prices).sum() / a.sum()  # noqa: E731
    assert cm(drift.short[-1]) > cm(base.short[-1]) * 1.004  # ≈ 6 × 0.1% up
    assert drift.meta["venue_info"]["binanceusdm"]["funding_shift_bins"] > 0


def test_usd_bins_linear_and_bp_bins_log():
    ds = flat_dataset([60000.0] * 6, [100, 110] + [110] * 4)
    hu = build_heatmap(ds, bin_unit="usd", bin_width=50, progress=False)
    np.testing.assert_allclose(np.diff(hu.edges), 50.0)
    hb = build_heatmap(ds, bin_unit="bp", bin_width=20, progress=False)
    np.testing.assert_allclose(hb.edges[1:] / hb.edges[:-1], 1.002)
    assert hu.long.sum() == pytest.approx(hb.long.sum(), rel=1e-6)


# ------------------------------------------------------------------------------------------ result


def test_profile_and_top_clusters_on_constructed_maps(hm3):
    T, B = hm3.long.shape
    long = np.zeros((T, B))
    short = np.zeros((T, B))
    long[-1, [10, 11, 30]] = [5.0, 7.0, 3.0]  # one peak at 11 (7), one at 30 (3)
    short[-1, [50, 51, 52]] = [1.0, 9.0, 1.0]
    agreement = np.zeros((T, B), np.int8)
    agreement[-1, 51] = 1
    agreement[-1, 11] = 3
    h = dataclasses.replace(hm3, long=long, short=short, agreement=agreement)
    top = h.top_clusters(n=3)
    assert list(top["side"]) == ["short", "long", "long"]
    assert list(top["notional"]) == [9.0, 7.0, 3.0]
    assert top["price"].iloc[0] == h.prices[51]
    assert list(top["venues"])[:2] == [1, 3]
    assert bool(top["single_venue"].iloc[0]) and not bool(top["single_venue"].iloc[1])
    np.testing.assert_allclose(top["distance_pct"], (top["price"] / h.close[-1] - 1) * 100)
    prof = h.profile(h.times[-1])
    assert list(prof.columns) == ["price", "long", "short"] and prof["short"].max() == 9.0
    assert h.profile(0)["long"].sum() == 0.0
    with pytest.raises(ParameterError, match="t:"):
        h.profile("not a time")


def test_top_clusters_age_is_mean_age():
    """Two deposits 3 h apart into the same bin, no decay: mean age is their notional-weighted mean."""
    ds = flat_dataset([60000.0] * 8, [100, 110, 110, 110, 130, 130, 130, 130])
    h = build_heatmap(ds, half_life_hours=math.inf, leverages=(10,), margin_model="flat", progress=False)
    top = h.top_clusters(n=1)
    j = len(h.times) - 1  # deposits at steps 0 (10 contracts) and 3 (20 contracts)
    expect = (10 * (j - 0) + 20 * (j - 3)) / 30 * 1.0
    assert top["age_hours"].iloc[0] == pytest.approx(expect, rel=1e-6)


def test_band_brackets_every_preset(hm3):
    band = hm3.band()
    assert band["long"].shape == (3,) + hm3.long.shape
    lo, med, hi = band["long"]
    assert (lo <= med + 1e-9).all() and (med <= hi + 1e-9).all()
    for name in band["mixes"]:
        lo_p, _ = hm3.mix(preset_weights(name, hm3.leverages))
        assert (lo_p >= lo - 1e-9).all() and (lo_p <= hi + 1e-9).all()


def test_relative_divides_by_trailing_volume(hm3):
    r = hm3.relative("6h")
    vol = sum(np.convolve(hm3.replay.venue(v).volume_usd, np.ones(6))[: len(hm3.times)] for v in hm3.venue_long)
    j = len(hm3.times) - 1
    np.testing.assert_allclose(r.long[j] * vol[j], hm3.long[j], rtol=1e-9)
    assert "volume" in r.meta["units"]
    with pytest.raises(ParameterError):
        r.relative("6h")


def test_relative_by_open_interest(hm3, tmp_path):
    """Each venue's map over its open interest (USD) at the snapshot; the aggregate over the summed OI."""
    r = hm3.relative(basis="open_interest")
    assert r.meta["relative_basis"] == "open_interest" and "open interest" in r.meta["units"]
    j = len(hm3.times) - 1
    step_end = pd.Timestamp(hm3.times[j], tz="UTC")
    total = 0.0
    for ds in hm3.replay.venue_names:
        oi = [d for d in _coll3_datasets() if d.venue == ds][0].open_interest
        last = oi[oi["ts"] <= step_end].iloc[-1]
        total += last["open_interest_value"]
        assert hm3.replay.venue(ds).oi_usd[j] == pytest.approx(last["open_interest_value"], rel=1e-12)
        np.testing.assert_allclose(r.venue_long[ds][j] * last["open_interest_value"], hm3.venue_long[ds][j], rtol=1e-5)
    np.testing.assert_allclose(r.long[j] * total, hm3.long[j], rtol=1e-9)
    # with_params keeps the basis; saved maps keep the step OI; a bad basis is named
    np.testing.assert_allclose(hm3.with_params(half_life_hours=5).relative(basis="open_interest").long,
                               r.with_params(half_life_hours=5).long, rtol=1e-12)
    h2 = Heatmap.load(hm3.save(tmp_path / "h.npz"))
    np.testing.assert_array_equal(h2.relative(basis="open_interest").long, r.long)
    with pytest.raises(ParameterError, match="basis"):
        hm3.relative(basis="turnover")


def _coll3_datasets():
    return (random_dataset("binanceusdm", seed=1), random_dataset("bybit", seed=2), random_dataset("okx", seed=3))


def test_save_load_roundtrip(hm3, tmp_path):
    p = hm3.save(tmp_path / "h.npz")
    h2 = Heatmap.load(p)
    np.testing.assert_array_equal(h2.long, hm3.long)
    np.testing.assert_array_equal(h2.short_layers, hm3.short_layers)
    np.testing.assert_array_equal(h2.times, hm3.times)
    assert h2.params == hm3.params and h2.meta["venues"] == hm3.meta["venues"]
    np.testing.assert_array_equal(h2.with_params(half_life_hours=5).long, hm3.with_params(half_life_hours=5).long)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    with pytest.raises(DataError, match="bad.npz"):
        Heatmap.load(bad)


def test_bad_params_name_the_parameter(coll3):
    for kw, name in ((dict(side_split="coin"), "side_split"), (dict(half_life_hours=0), "half_life_hours"),
                     (dict(bin_width=0.0001), "bin_width"), (dict(venues=("kraken",)), "venues"),
                     (dict(nonsense=1), "nonsense")):
        with pytest.raises(ParameterError, match=name):
            build_heatmap(coll3, progress=False, **kw)


def test_simulated_collection_builds(small_sim):
    h = build_heatmap(small_sim, progress=False)
    assert h.synthetic and set(h.meta["venues"]) == {"binanceusdm", "bybit", "okx"}
    assert np.isfinite(h.long).all() and h.long[-1].sum() > 0 and h.short[-1].sum() > 0


# -------------------------------------------------------------------------------------------- CLI


def test_cli_heatmap_npz_and_errors(tmp_path, capsys):
    from liqlab.app.cli import main
    from liqlab.io.dataset import write_dataset

    d = write_dataset(random_dataset("bybit", days=1, seed=5), tmp_path / "data" / "bybit")
    out = tmp_path / "h.npz"
    assert main(["heatmap", str(d.parent), "--out", str(out), "--half-life", "inf", "--bin-width", "15",
                 "--leverage-preset", "uniform", "--no-progress"]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["synthetic"] is True and s["out"] == str(out)
    h = Heatmap.load(out)
    assert h.params.half_life_hours == math.inf and h.params.bin_width == 15.0
    pf = tmp_path / "p.yaml"
    pf.write_text("side_split: fixed\nlong_share: 2\n")
    assert main(["heatmap", str(d.parent), "--out", str(out), "--params-file", str(pf)]) == 2
    err = capsys.readouterr().err.strip()
    assert "long_share" in err and len(err.splitlines()) == 1
    assert main(["heatmap", str(d.parent), "--out", str(tmp_path / "x.csv")]) == 2
    assert "--out" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- real data


@pytest.mark.real_data
def test_real_binance_5m_oi_file(real_data):
    f = real_data / "binance_btcusdt_perp_5m_oi_2026-06-08_2026-06-22.csv"
    raw = pd.read_csv(f)
    ts = pd.to_datetime(raw["timestamp"], unit="ms", utc=True)
    oh = pd.DataFrame(dict(ts=ts, open=raw.price_open, high=raw.price_high, low=raw.price_low, close=raw.price_close,
                           volume=0.0))
    oi = pd.DataFrame(dict(ts=ts, open_interest=raw.oi_close / raw.price_close, open_interest_value=raw.oi_close))
    fu = pd.DataFrame(dict(ts=ts, funding_rate=raw.funding_close))
    ds = Dataset(meta=make_meta("binanceusdm", "BTC/USDT:USDT", source=str(f.name), synthetic=False), ohlcv=oh,
                 open_interest=oi, funding=fu)
    h = build_heatmap(ds, progress=False)
    assert not h.synthetic and "SYNTHETIC" not in h.title
    assert np.isfinite(h.long).all() and h.long[-1].sum() > 0
    top = h.top_clusters(n=5)
    assert ((top["side"] == "long") == (top["distance_pct"] < 0)).all()


def test_start_end_select_steps_and_inverse_contracts_build():
    ds = random_dataset("binanceusdm", days=1, seed=9)
    h = build_heatmap(ds, start="2025-01-01 06:00", end="2025-01-01 12:00", progress=False)
    assert h.times[0] == np.datetime64("2025-01-01T07:00") and h.times[-1] == np.datetime64("2025-01-01T12:00")
    inv = dataclasses.replace(ds, meta={**ds.meta, "kind": "inverse", "symbol": "BTC/USD:BTC"})
    hi = build_heatmap(inv, progress=False)
    assert hi.long[-1].sum() > 0 and "inverse" in hi.meta["venue_info"]["binanceusdm"]["margin"]["note"]


@pytest.mark.real_data
def test_real_coinglass_hourly_oi_and_hourly_bars(real_data):
    """1h OI on 1h bars (the CoinGlass file, spot OHLC, a few one-hour holes) still builds sensibly."""
    f = real_data / "coinglass_btc_1h_liquidations_oi_2025-12-04_2026-05-24.csv"
    raw = pd.read_csv(f).iloc[:24 * 40]
    ts = pd.to_datetime(raw["timestamp"], unit="ms", utc=True)
    oh = pd.DataFrame(dict(ts=ts, open=raw.price_open, high=raw.price_high, low=raw.price_low, close=raw.price_close,
                           volume=0.0))
    oi = pd.DataFrame(dict(ts=ts, open_interest=raw.oi_close / raw.price_close, open_interest_value=raw.oi_close))
    fu = pd.DataFrame(dict(ts=ts, funding_rate=raw.funding_close / 100.0))
    ds = Dataset(meta=make_meta("binanceusdm", "BTC/USDT:USDT", source=str(f.name), synthetic=False), ohlcv=oh,
                 open_interest=oi, funding=fu)
    h = build_heatmap(ds, progress=False)
    assert len(h.times) >= len(raw) - 1 and np.isfinite(h.long).all()
    assert h.long[-1].sum() > 0 and h.short[-1].sum() > 0
    # nothing deposited exceeds the OI increases that produced it (no fake deposits from holes)
    d_oi = np.diff(raw.oi_close.to_numpy())
    dep = h.meta["deposited_usd"]["binanceusdm"]["long"] + h.meta["dropped_usd"]["binanceusdm"]["long"]
    assert dep <= 1.05 * np.clip(d_oi, 0, None).sum()


# ------------------------------------------------------------------------- position-size distribution


def test_size_distribution_deposits_the_mixture_of_tier_lps():
    """position_size_sigma > 0: each layer's deposit is split equally over the size nodes, each at the LP
    of its own tier (leverage lowered to the tier's max), and the layer total is unchanged."""
    from liqlab.engine import margin
    from liqlab.engine.grid import size_nodes

    ds = flat_dataset([60000.0] * 6, [100, 110, 110, 110, 110, 110])
    kw = dict(half_life_hours=math.inf, entry_price="typical", leverages=(5.0, 20.0, 125.0), progress=False,
              position_size_usd=1e6, position_size_sigma=1.5)
    h = build_heatmap(ds, **kw)
    tiers = tier_tables.default_tiers("binanceusdm", "BTC/USDT:USDT")
    entry = 60000.0 * (1.0001 + 0.9999 + 1.0) / 3
    n_usd = 10 * 60000.0
    sizes, w = size_nodes(HeatmapParams().replace(**{k: v for k, v in kw.items() if k != "progress"}))
    for k, lev in enumerate(h.leverages):
        for side, layers in (("long", h.long_layers), ("short", h.short_layers)):
            expect = np.zeros(len(h.prices))
            for q in range(len(w)):
                lp = margin.liquidation_price(entry, lev, side, model="binance", tiers=tiers,
                                              notional=min(sizes[k, q], tiers.cap * (1 - 1e-9)), over_max="clip")
                expect[np.searchsorted(h.edges, lp, "right") - 1] += n_usd * w[q]
            np.testing.assert_allclose(layers[k, 0], expect, rtol=1e-5, atol=1e-6)
            assert layers[k, 0].sum() == pytest.approx(n_usd, rel=1e-6)
    # bigger positions sit in higher tiers (higher maintenance margin): levels move toward the price
    big = build_heatmap(ds, **{**kw, "position_size_usd": 1e7})
    for a, b in ((h, big),):
        mean_long = [(x.long_layers[0, 0] * x.prices).sum() / x.long_layers[0, 0].sum() for x in (a, b)]
        mean_short = [(x.short_layers[0, 0] * x.prices).sum() / x.short_layers[0, 0].sum() for x in (a, b)]
        assert mean_long[1] > mean_long[0] and mean_short[1] < mean_short[0]


def test_size_distribution_with_params_and_defaults_unchanged(coll3, hm3):
    """sigma = 0 and exponent = 0 is the single-size engine; the size mix is a build-level parameter."""
    h0 = build_heatmap(coll3, position_size_sigma=0.0, position_size_leverage_exponent=0.0, progress=False)
    np.testing.assert_array_equal(h0.long_layers, hm3.long_layers)
    with pytest.raises(ParameterError, match="position_size_sigma"):
        hm3.with_params(position_size_sigma=1.0)


@pytest.mark.real_data
def test_real_files_import_to_map_and_relative_view(real_data, tmp_path, capsys):
    """Real data through the command line: the Binance BTC and ETH 5m OHLCV files import, but hold no open
    interest, so a map is refused on one line (never an empty map); the Binance 5m file with open interest
    imports, builds, and its relative view by open interest reads the real OI (no volume: NaN by volume)."""
    from liqlab.app.cli import main
    from liqlab.io.dataset import load_dataset

    for asset in ("btc", "eth"):
        out = tmp_path / asset
        f = real_data / f"binance_{asset}_usdt_perp_5m_2024-10_2025-02.feather"
        assert main(["import", "--format", "freqtrade", str(f), "--out", str(out), "--exchange", "binanceusdm",
                     "--symbol", f"{asset.upper()}/USDT:USDT", "--no-progress"]) == 0
        ds = load_dataset(out)
        assert len(ds.ohlcv) == 41_021 and not ds.synthetic and ds.symbol.startswith(asset.upper())
        assert main(["heatmap", str(out), "--out", str(tmp_path / f"{asset}.npz"), "--no-progress"]) == 2
        assert not (tmp_path / f"{asset}.npz").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("open-interest" in e and e.startswith("liqlab heatmap: error:") for e in err)
    oi_file = real_data / "binance_btcusdt_perp_5m_oi_2026-06-08_2026-06-22.csv"
    assert main(["import", "--format", "coinglass-csv", str(oi_file), "--out", str(tmp_path / "oi"),
                 "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--no-progress"]) == 0
    ds = load_dataset(tmp_path / "oi")
    h = build_heatmap(ds, progress=False)
    r = h.relative(basis="open_interest")
    oi = ds.open_interest.set_index("ts")["open_interest_value"]
    j = len(h.times) - 1
    want = oi[oi.index <= pd.Timestamp(h.times[j], tz="UTC")].iloc[-1]
    assert h.long[j].sum() > 0 and not r.synthetic
    np.testing.assert_allclose(r.long[j] * want, h.long[j], rtol=1e-9)
    assert 0 < np.nansum(r.long[j] + r.short[j]) < 1      # the map holds a fraction of the open interest
    assert np.isnan(h.relative("1D").long).all()          # no traded volume in this file: NaN, not inf
