"""The simulated market: determinism, exogenous price in the null world, agents' consequences, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.io.dataset import load_collection
from liqlab.sim.simulation import simulate, simulate_market
from liqlab.sim.truth import load_truth

SMALL = dict(days=2, seed=3, warmup_days=1)
PRICE_COLS = ["open", "high", "low", "close", "mark_close"]


@pytest.fixture(scope="module")
def base():
    return simulate_market(**SMALL)


def _prices(market) -> dict[str, pd.DataFrame]:
    return {d.venue: d.ohlcv[["ts"] + PRICE_COLS] for d in market.collection}


# ------------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    simulate(out=a, progress=False, **SMALL)
    simulate(out=b, progress=False, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(f.suffix == ".parquet" for f in files) and Path("truth/ledger.parquet") in files
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) == files


def test_different_seed_differs(base):
    other = simulate_market(**{**SMALL, "seed": 4})
    assert not np.allclose(base.collection.datasets[0].ohlcv["close"], other.collection.datasets[0].ohlcv["close"])


# ---------------------------------------------------------------------- the null world: exogenous price


@pytest.mark.parametrize("change", [
    {"trader_seed": 99},
    {"long_share": 0.8, "arrivals_per_min": 60.0, "size_median_usd": 5e5},
    {"leverage_weights": (0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0.5), "holding_median_hours": 100.0},
])
def test_price_path_ignores_traders_when_knobs_are_zero(base, change):
    other = simulate_market(**SMALL, **change)
    assert len(other.truth.ledger) != len(base.truth.ledger) or not other.truth.ledger.equals(base.truth.ledger)
    for venue, df in _prices(base).items():
        pd.testing.assert_frame_equal(df, _prices(other)[venue], check_exact=True)
    assert (base.truth.index["impact"] == 0).all() and (other.truth.index["impact"] == 0).all()


def test_venue_subset_keeps_each_venue_identical(base):
    solo = simulate_market(**SMALL, venues=("okx",))
    pd.testing.assert_frame_equal(solo.collection["okx"].ohlcv, base.collection["okx"].ohlcv, check_exact=True)
    pd.testing.assert_frame_equal(solo.collection["okx"].liquidations, base.collection["okx"].liquidations)


@pytest.mark.parametrize("knob", [{"cascade_impact": 3.0}, {"hunt_intensity": 0.5}])
def test_feedback_knobs_change_the_path(base, knob):
    other = simulate_market(**SMALL, **knob)
    # the latent (exogenous) path is the same; the traded price is not
    np.testing.assert_array_equal(other.truth.index["latent_close"], base.truth.index["latent_close"])
    assert (other.truth.index["impact"] != 0).any()
    a = base.collection.datasets[0].ohlcv["close"].to_numpy()
    b = other.collection.datasets[0].ohlcv["close"].to_numpy()
    assert not np.array_equal(a, b)


def test_cascade_liquidations_push_price_the_way_of_the_forced_orders():
    m = simulate_market(**SMALL, cascade_impact=3.0)
    ev = m.truth.events
    idx = m.truth.index.set_index("ts")
    net_sell = ev.assign(s=np.where(ev["side"] == "long", ev["value"], -ev["value"])).groupby("ts")["s"].sum()
    bars = net_sell.index[net_sell.abs() > 0]
    imp = idx["impact"]
    prev = imp.shift(1).reindex(bars).fillna(0.0)
    # impact within a liquidation bar moves opposite to net forced selling (decay and hunter are off)
    move = imp.reindex(bars) - prev * 0.5 ** (1 / 60.0)
    assert (net_sell[bars].abs() > 1e5).sum() > 5
    assert (np.sign(move[net_sell[bars].abs() > 1e5]) == -np.sign(net_sell[bars][net_sell[bars].abs() > 1e5])).all()


# ----------------------------------------------------------------------------------- the written data


def test_collection_validates_and_is_labelled_synthetic(small_sim):
    coll = load_collection(small_sim)
    assert set(coll.venues) == {"binanceusdm", "bybit", "okx"}
    assert coll.synthetic and coll.meta["synthetic"] is True
    for d in coll:
        assert d.meta["synthetic"] is True and "SYNTHETIC" in d.meta["notes"]["synthetic"]
        assert d.meta["created_at"] == "2025-01-01T00:00:00+00:00"
        assert d.liquidations is not None and len(d.liquidations) > 0
        assert d.leverage_tiers is not None
        assert {"taker_buy_volume", "mark_close"} <= set(d.ohlcv.columns)
    cfg = json.loads((small_sim / "truth" / "config.json").read_text())
    assert cfg["synthetic"] is True and cfg["config"]["days"] == 3
    assert len(cfg["leverages"]) == len(cfg["leverage_weights"]) and abs(sum(cfg["leverage_weights"]) - 1) < 1e-12


def test_dataset_liquidations_are_the_truth_events(small_sim):
    coll = load_collection(small_sim)
    truth = load_truth(small_sim)
    for d in coll:
        ev = truth.events.loc[truth.events["venue"] == d.venue, ["ts", "side", "price", "amount", "value"]]
        pd.testing.assert_frame_equal(d.liquidations.reset_index(drop=True), ev.reset_index(drop=True),
                                      check_dtype=False)


def test_open_interest_is_positive_and_in_billions(small_sim):
    coll = load_collection(small_sim)
    oi = {d.venue: d.open_interest["open_interest_value"] for d in coll}
    for s in oi.values():
        assert (s > 0).all()
    # the issue: billions of USD on the largest venue for BTC-like settings, less elsewhere
    assert 1e9 < oi["binanceusdm"].mean() < 3e10
    assert oi["binanceusdm"].mean() > oi["bybit"].mean() > oi["okx"].mean()


def test_open_interest_follows_the_agents(base):
    for d in base.collection:
        b = base.truth.bars.loc[base.truth.bars["venue"] == d.venue].set_index("ts")
        oi = d.open_interest.set_index("ts")["open_interest"]
        prev = oi.index[1:] - pd.Timedelta("1min")
        expect = np.maximum(b.loc[prev, "long_open_base"], b.loc[prev, "short_open_base"]).to_numpy()
        np.testing.assert_allclose(oi.iloc[1:].to_numpy(), expect, rtol=1e-12)


def test_volume_contains_taker_buys(base):
    for d in base.collection:
        o = d.ohlcv
        assert (o["taker_buy_volume"] <= o["volume"]).all() and (o["taker_buy_volume"] > 0).all()


@pytest.mark.parametrize("long_share,sign", [(0.9, 1), (0.1, -1)])
def test_funding_sign_follows_the_imbalance(long_share, sign):
    m = simulate_market(days=2, seed=1, warmup_days=1, venues=("bybit",), long_share=long_share, trend_following=0.0)
    rate = m.collection["bybit"].funding["funding_rate"]
    b = m.truth.bars
    imb = (b["long_open_usd"] - b["short_open_usd"]).mean()
    assert np.sign(imb) == sign
    if sign > 0:
        assert rate.mean() > m.config.funding_interest  # above the interest-rate baseline
    else:
        assert rate.mean() < 0


def test_funding_moves_liquidation_prices(base):
    led = base.truth.ledger
    moved = led["liq_price_end"] != led["liq_price_initial"]
    assert moved.any()
    fi = base.truth.funding_index
    for venue, g in led.loc[moved].groupby("venue"):
        idx = fi.loc[fi["venue"] == venue].set_index("ts")["index"]
        assert (idx != 0).any()
        # positive funding: both families move up (longs toward price, shorts away)
        if (fi.loc[fi["venue"] == venue, "funding_rate"] > 0).all():
            assert (g["liq_price_end"] >= g["liq_price_initial"]).all()


# ------------------------------------------------------------------------------ liquidation mechanics


def _funding_index_at(truth, venue: str, ts: pd.Series) -> np.ndarray:
    f = truth.funding_index.loc[truth.funding_index["venue"] == venue].sort_values("ts")
    k = np.searchsorted(f["ts"].to_numpy(), ts.to_numpy(), side="right")
    return np.where(k > 0, f["index"].to_numpy()[np.maximum(k - 1, 0)], 0.0)


def test_every_liquidation_crossed_its_level_at_its_end_time(small_sim):
    truth = load_truth(small_sim)
    led = truth.ledger
    liq = led.loc[led["status"] == "liquidated"]
    assert len(liq) > 100
    bars = truth.bars.set_index(["venue", "ts"])
    for venue, g in liq.groupby("venue"):
        # LP at end time recomputed from the initial LP and the funding index
        lp = g["liq_price_initial"] + g["lp_funding_coef"] * (_funding_index_at(truth, venue, g["end_time"])
                                                              - g["funding_index_entry"])
        np.testing.assert_allclose(lp, g["liq_price_end"], rtol=1e-12)
        b = bars.loc[venue].loc[g["end_time"]]
        long_ = (g["side"] == "long").to_numpy()
        assert (b["mark_low"].to_numpy()[long_] <= lp.to_numpy()[long_]).all()
        assert (b["mark_high"].to_numpy()[~long_] >= lp.to_numpy()[~long_]).all()
    # events carry the ledger's LP and size
    ev = truth.events.set_index("position_id")
    g = liq.set_index("position_id").loc[ev.index]
    np.testing.assert_array_equal(ev["price"], g["liq_price_end"])
    np.testing.assert_array_equal(ev["ts"], g["end_time"])
    np.testing.assert_allclose(ev["value"], g["amount"] * g["liq_price_end"], rtol=1e-12)


def test_surviving_positions_never_saw_their_level(base):
    """Closed and open positions: the mark never reached their LP while they were checked."""
    truth = base.truth
    led = truth.ledger
    rng = np.random.default_rng(0)
    alive = led.loc[led["status"] != "liquidated"]
    sample = alive.iloc[rng.choice(len(alive), size=min(400, len(alive)), replace=False)]
    start = truth.bars["ts"].min()
    end_all = truth.bars["ts"].max()
    checked = 0
    for venue, g in sample.groupby("venue"):
        b = truth.bars.loc[truth.bars["venue"] == venue].set_index("ts")
        cidx = pd.Series(_funding_index_at(truth, venue, b.index.to_series()), index=b.index)
        for row in g.itertuples():
            first = max(row.entry_time + pd.Timedelta("1min"), start)
            last = end_all if pd.isna(row.end_time) else row.end_time
            if last < first:
                continue
            win = b.loc[first:last]
            lp = row.liq_price_initial + row.lp_funding_coef * (cidx.loc[first:last] - row.funding_index_entry)
            if row.side == "long":
                assert (win["mark_low"] > lp).all()
            else:
                assert (win["mark_high"] < lp).all()
            checked += 1
    assert checked > 100


def test_liquidations_cluster_when_price_runs_through_crowded_levels(small_sim):
    """Bursts: the hours with the largest liquidations are hours of large price moves."""
    truth = load_truth(small_sim)
    idx = truth.index.set_index("ts")["index_close"]
    hourly_move = np.log(idx).diff().abs().resample("1h").sum()
    liq = truth.events.set_index("ts")["value"].resample("1h").sum().reindex(hourly_move.index, fill_value=0.0)
    top = liq.nlargest(5).index
    assert hourly_move.loc[top].mean() > hourly_move.median()
    assert liq.max() > 5 * liq.median()  # bursts, not a steady drip


def test_leverage_is_capped_by_the_venue_tiers(base):
    from liqlab.engine.margin import default_tiers

    led = base.truth.ledger
    for venue, g in led.groupby("venue"):
        t = default_tiers(venue, "BTC/USDT:USDT", as_of="2025-01-01")
        cap = t.max_leverage[t.bracket(g["notional_usd"].to_numpy())]
        assert (g["leverage"].to_numpy() <= cap + 1e-9).all()
        assert (g["leverage"] <= g["leverage_drawn"]).all()
    assert led["leverage_drawn"].max() == 125 and led.loc[led["venue"] == "bybit", "leverage"].max() <= 100


def test_ledger_lp_matches_margin_module(base):
    from liqlab.engine.margin import default_tiers, liquidation_price, model_for_venue

    led = base.truth.ledger.iloc[:500]
    for venue, g in led.groupby("venue"):
        lp = liquidation_price(g["entry_price"].to_numpy(), g["leverage"].to_numpy(), g["side"].to_numpy(),
                               model=model_for_venue(venue), tiers=default_tiers(venue, as_of="2025-01-01"),
                               notional=g["notional_usd"].to_numpy())
        np.testing.assert_allclose(g["liq_price_initial"], lp, rtol=1e-12)


# -------------------------------------------------------------------------------------------- CLI


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liqlab", "simulate", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("args,needle", [
    (["--days", "0"], "days"),
    (["--venues", "binanceusdm,kraken"], "kraken"),
    (["--days", "-1"], "days"),
])
def test_cli_bad_input_one_line_exit_2_nothing_written(tmp_path, args, needle):
    out = tmp_path / "sim"
    r = _cli(*args, "--out", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_to_overwrite_foreign_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    r = _cli("--days", "1", "--out", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "precious" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_simulation_written_by_an_earlier_version_is_recognised_and_reused(tmp_path):
    from liqlab.sim.simulation import is_simulation

    out = tmp_path / "old"
    kw = dict(days=0.1, warmup_days=0.1, seed=1, venues=("okx",), progress=False)
    simulate(out=out, **kw)
    cfg = out / "truth" / "config.json"
    cfg.write_text(cfg.read_text().replace('"source": "liqlab.sim.simulation"', '"source": "liqlab.simulation"'))
    assert json.loads(cfg.read_text())["source"] == "liqlab.simulation" and is_simulation(out)
    assert simulate(out=out, reuse=True, **kw).meta["reused"] is True
    assert not is_simulation(tmp_path)


def test_cli_writes_and_reuse_skips(tmp_path):
    out = tmp_path / "sim"
    r = _cli("--days", "1", "--seed", "2", "--venues", "okx", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "prices" in r.stderr and "market" in r.stderr  # timings per phase
    stamp = (out / "okx" / "ohlcv.parquet").stat().st_mtime_ns
    r = _cli("--days", "1", "--seed", "2", "--venues", "okx", "--out", str(out), "--reuse", cwd=tmp_path)
    assert r.returncode == 0 and "nothing done" in r.stderr
    assert (out / "okx" / "ohlcv.parquet").stat().st_mtime_ns == stamp
    coll = load_collection(out)
    assert coll.venues == ("okx",) and len(coll["okx"].ohlcv) == 1440


def test_hunter_drifts_toward_the_heavier_nearby_cluster():
    """Recompute the hunter's view from the truth (true map on its 10 bp log grid) and check its push."""
    from liqlab.sim.market_loop import HIST_BIN, HIST_HALF
    from liqlab.sim.truth import true_heatmap

    m = simulate_market(**SMALL, hunt_intensity=0.3)
    c = m.config
    idx = m.truth.index
    decay = 0.5 ** (1.0 / c.impact_halflife_min)
    drift = idx["impact"].to_numpy()[1:] - idx["impact"].to_numpy()[:-1] * decay
    origin = np.log(c.base_price) - HIST_HALF * HIST_BIN
    ib = np.floor((np.log(idx["index_close"].to_numpy()[:-1]) - origin) / HIST_BIN).astype(int)
    R = int(round(c.hunt_range / HIST_BIN))
    rows = np.linspace(10, len(drift) - 10, 60).astype(int)
    k0, k1 = ib[rows].min() - R - 1, ib[rows].max() + R + 2
    edges = np.exp(origin + HIST_BIN * np.arange(k0, k1 + 1))
    times = idx["ts"].iloc[rows] + pd.Timedelta("1min")  # state after each bar
    L, S = true_heatmap(m.truth, times, edges)
    agree = 0
    for j, t in enumerate(rows):
        d = np.arange(1, R + 1)
        w = 1.0 - (d - 0.5) / R
        below = (w * L[j, ib[t] - d - k0]).sum()
        above = (w * S[j, ib[t] + d - k0]).sum()
        if abs(above - below) > 0.05 * (above + below):
            assert np.sign(drift[t]) == np.sign(above - below)
            assert abs(drift[t]) <= c.hunt_intensity * idx["sigma"].iloc[t + 1] * (1 + 1e-9)
            agree += 1
    assert agree > 20


def test_mark_price_is_smoother_than_last(base):
    for d in base.collection:
        rough = lambda x: np.abs(np.diff(np.log(x.to_numpy()), 2)).mean()  # noqa: E731
        assert rough(d.ohlcv["mark_close"]) < rough(d.ohlcv["close"])
        assert (np.abs(np.log(d.ohlcv["mark_close"] / d.ohlcv["close"])) < 0.01).all()


def test_several_assets_go_to_one_folder_each(tmp_path):
    """--symbols BTC,ETH: OUT/BTC and OUT/ETH, complete collections; BTC is the plain simulation."""
    from liqlab.app.cli import main
    from liqlab.sim.simulation import simulate_assets

    out = tmp_path / "multi"
    assert main(["simulate", "--days", "0.5", "--venues", "binanceusdm,okx", "--symbols", "BTC,ETH",
                 "--out", str(out), "--quiet"]) == 0
    btc, eth = load_collection(out / "BTC"), load_collection(out / "ETH")
    assert btc.symbol == "BTC/USDT:USDT" and eth.symbol == "ETH/USDT:USDT" and eth.synthetic and btc.synthetic
    plain = simulate(days=0.5, venues=("binanceusdm", "okx"), out=tmp_path / "plain", progress=False)
    for a, b in zip(btc.datasets, plain.datasets):
        pd.testing.assert_frame_equal(a.ohlcv, b.ohlcv)
    e0 = eth.datasets[0].ohlcv["close"].iloc[0]
    assert 2000 < e0 < 5000   # the ETH preset's price level
    one = simulate_assets("ETH", tmp_path / "eth-only", days=0.5, venues=("okx",), progress=False)
    assert (tmp_path / "eth-only" / "okx").is_dir() and list(one) == ["ETH"]
    with pytest.raises(Exception, match="DOGE"):
        simulate_assets("BTC,DOGE", tmp_path / "x", days=0.5, progress=False)
    assert not (tmp_path / "x").exists()
