"""Tests of liqlab.stats.facts: golden values on hand-made series (expected numbers computed here from the
definitions with numpy), the lead/lag on shifted series, gaps, missing prices, no open interest,
funding and liquidation grids, the CLI, and the real files when present."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liqlab.app.cli import main
from liqlab.io.dataset import Collection, Dataset, make_meta, validate_table, write_dataset
from liqlab.stats.facts import (DEFINITIONS, FACTS, excess_kurtosis, facts_side_by_side, stylized_facts,
                          top_share)

T0 = pd.Timestamp("2025-01-01", tz="UTC")
M5 = pd.Timedelta("5min")
H = pd.Timedelta("1h")


def market(closes, oi, oi_ts=None, *, bar=M5, bar_ts=None, funding=None, liquidations=None, venue="binanceusdm",
           synthetic=True) -> Dataset:
    """Bars labelled by their open (default T0 + j·bar) with the given closes; OI snapshots at the instants
    ``oi_ts`` (default T0 + (i+1)·bar: snapshot i at the end of bar i); funding/liquidations as frames."""
    closes = np.asarray(closes, dtype=float)
    ts = pd.DatetimeIndex(bar_ts) if bar_ts is not None else T0 + bar * np.arange(len(closes))
    opens = np.r_[closes[0], closes[:-1]]
    ohlcv = pd.DataFrame({"ts": ts, "open": opens, "high": np.maximum(opens, closes),
                          "low": np.minimum(opens, closes), "close": closes, "volume": 1.0})
    oi = np.asarray(oi, dtype=float)
    oi_ts = pd.DatetimeIndex(oi_ts) if oi_ts is not None else T0 + bar * np.arange(1, len(oi) + 1)
    oidf = pd.DataFrame({"ts": oi_ts, "open_interest": oi, "open_interest_value": oi * 100.0})
    fund = funding if funding is not None else pd.DataFrame({"ts": pd.DatetimeIndex([], tz="UTC"),
                                                              "funding_rate": []})
    meta = make_meta(venue, "BTC/USDT:USDT", source="tests/stats/test_facts.py hand-made series", synthetic=synthetic)
    return Dataset(meta=meta, ohlcv=validate_table("ohlcv", ohlcv), open_interest=validate_table("open_interest", oidf),
                   funding=validate_table("funding", fund),
                   liquidations=None if liquidations is None else validate_table("liquidations", liquidations))


def row(ds, step="native", **kw) -> pd.Series:
    f = stylized_facts(ds, steps=(step,), **kw)
    assert len(f) == 1
    return f.iloc[0]


def np_kurtosis(x):
    d = x - x.mean()
    return np.mean(d**4) / np.mean(d**2) ** 2 - 3.0


def np_top(x, frac):
    k = math.ceil(frac * len(x))
    top = np.sort(x)[::-1][:k]
    return top[top > 0].sum() / x[x > 0].sum()


def corr(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return np.corrcoef(a[ok], b[ok])[0, 1]


# ------------------------------------------------------------------------------ statistics by hand


def test_excess_kurtosis_and_top_share_known_values():
    assert excess_kurtosis(np.array([1.0, -1.0, 1.0, -1.0])) == pytest.approx(-2.0)  # m4/m2² = 1
    assert excess_kurtosis(np.array([0.0, 0.0, 0.0, 2.0])) == pytest.approx(-2 / 3)  # m2 = 0.75, m4 = 1.3125
    assert math.isnan(excess_kurtosis(np.array([1.0, 1.0, 1.0, 1.0])))
    x = np.array([3.0, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # n=10: the one largest (3) of a positive total 12
    assert top_share(x, 0.1) == pytest.approx(0.25)
    assert top_share(np.r_[x, -5.0], 0.1) == pytest.approx(4 / 12)  # n=11: two largest, 3+1
    assert top_share(np.array([1.0, -1, -1, -1, -1, -1, -1, -1, -1, -1]), 0.1) == pytest.approx(1.0)
    assert math.isnan(top_share(np.array([-1.0, -2.0]), 0.1))


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.integers(4, 60), elements=st.floats(-1e3, 1e3, allow_nan=False)),
       st.floats(0.01, 100), st.floats(-100, 100))
def test_excess_kurtosis_is_scipy_fisher_biased_and_affine_invariant(x, a, b):
    from scipy.stats import kurtosis

    if np.ptp(x) < 1e-6 * max(1.0, np.abs(x).max()):
        return  # (near) constant: NaN or round-off
    k = excess_kurtosis(x)
    assert k == pytest.approx(kurtosis(x, fisher=True, bias=True), rel=1e-7, abs=1e-7)
    assert excess_kurtosis(a * x + b) == pytest.approx(k, rel=1e-6, abs=1e-6)
    assert k >= -2.0 - 1e-9


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 80), elements=st.floats(-1e3, 1e3, allow_nan=False)),
       st.sampled_from([0.01, 0.1, 0.5]))
def test_top_share_bounds(x, frac):
    s = top_share(x, frac)
    if not (x > 0).any():
        assert math.isnan(s)
        return
    assert 0 < s <= 1 + 1e-12
    if (x > 0).sum() <= math.ceil(frac * x.size):
        assert s == pytest.approx(1.0)
    assert s == pytest.approx(np_top(x, frac))


# ---------------------------------------------------------------------------------- golden series

CLOSES = [100.0, 101, 99, 102, 103, 101, 104, 108, 107, 105, 110, 109, 111]
OI = [1000.0, 1010, 1005, 1030, 1020, 1020, 1100, 1090, 1095, 1080, 1150, 1140, 1160]


def expected_native(closes, oi, gone=()):
    """ΔOI/OI and returns by the definitions: snapshot i sits at the end of bar i, so p(snapshot i) = close i;
    snapshot indices in ``gone`` are missing (no change across the hole)."""
    c = np.log(np.asarray(closes))
    o = np.asarray(oi)
    keep = [i for i in range(len(o)) if i not in gone]
    d, r, rp, rn = [], [], [], []
    for a, b in zip(keep[:-1], keep[1:]):
        if b - a != 1:
            continue
        d.append((o[b] - o[a]) / o[a])
        r.append(c[b] - c[b - 1])
        rp.append(c[b - 1] - c[b - 2] if b >= 2 else np.nan)
        rn.append(c[b + 1] - c[b] if b + 1 < len(c) else np.nan)
    return tuple(np.array(v) for v in (d, r, rp, rn))


def test_golden_values_on_a_hand_made_series():
    f = row(market(CLOSES, OI))
    d, r, rp, rn = expected_native(CLOSES, OI)
    assert f["step_used"] == "5min" and f["n_steps"] == 12 == len(d)
    assert f["doi_sd"] == pytest.approx(np.sqrt(np.mean((d - d.mean()) ** 2)))
    assert f["doi_kurtosis"] == pytest.approx(np_kurtosis(d))
    # 12 changes: the top ⌈1.2⌉ = 2 are +7.84 % (1020→1100) and +6.48 % (1080→1150)
    assert f["doi_top10_share"] == pytest.approx((80 / 1020 + 70 / 1080) / d[d > 0].sum())
    assert f["corr_abs_doi_abs_r"] == pytest.approx(corr(np.abs(d), np.abs(r)))
    assert f["corr_doi_r"] == pytest.approx(corr(d, r))
    assert f["corr_doi_r_prev"] == pytest.approx(corr(d, rp))
    assert f["corr_doi_r_next"] == pytest.approx(corr(d, rn))
    assert f["doi_acf1"] == pytest.approx(corr(d[1:], d[:-1]))
    assert f["oi_usd_median"] == pytest.approx(np.median(OI) * 100.0)
    assert f["note"] == "no funding; no realized liquidations"


def test_returns_use_the_close_of_the_bar_ending_at_the_snapshot():
    """OI that moves exactly with the price of its own instant correlates +1 with r_t, not with r_{t±1}."""
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    f = row(market(closes, 1e4 * closes / closes[0]))  # snapshot i at the end of bar i: OI ∝ close i
    assert f["corr_doi_r"] > 0.999
    assert abs(f["corr_doi_r_prev"]) < 0.2 and abs(f["corr_doi_r_next"]) < 0.2


def test_gaps_are_never_differenced_across():
    gone = (4, 5, 9)
    oi_ts = [T0 + M5 * (i + 1) for i in range(len(OI)) if i not in gone]
    f = row(market(CLOSES, [o for i, o in enumerate(OI) if i not in gone], oi_ts))
    d, r, rp, rn = expected_native(CLOSES, OI, gone)
    assert f["n_steps"] == len(d) == 7
    assert f["doi_sd"] == pytest.approx(np.std(d))
    assert f["doi_kurtosis"] == pytest.approx(np_kurtosis(d))
    assert f["corr_doi_r"] == pytest.approx(corr(d, r))
    assert f["corr_doi_r_next"] == pytest.approx(corr(d, rn))
    # adjacent changes only: (1,2),(2,3),(3,4)... pairs that straddle a hole are not lag-1 neighbours
    pairs = [(a, b) for a, b in zip(range(1, 12), range(2, 13)) if not {a, b, a - 1, b - 1} & set(gone)]
    o = np.asarray(OI)
    x = np.array([(o[a] - o[a - 1]) / o[a - 1] for a, _ in pairs])
    y = np.array([(o[b] - o[b - 1]) / o[b - 1] for _, b in pairs])
    assert f["doi_acf1"] == pytest.approx(corr(y, x))


def test_missing_bars_give_missing_returns_not_wrong_ones():
    drop = 7  # bar 7 missing: no price at the end of bar 7, so r_7 and r_8 are unknown
    bar_ts = [T0 + M5 * j for j in range(len(CLOSES)) if j != drop]
    f = row(market([c for j, c in enumerate(CLOSES) if j != drop], OI, bar_ts=bar_ts))
    d, r, rp, rn = expected_native(CLOSES, OI)
    r[[6, 7]] = np.nan  # changes into snapshots 7 and 8 (index = snapshot − 1)
    assert f["n_steps"] == 12
    assert f["corr_doi_r"] == pytest.approx(corr(d, r))
    assert f["corr_abs_doi_abs_r"] == pytest.approx(corr(np.abs(d), np.abs(r)))


def test_one_hour_step_keeps_the_last_snapshot_of_each_utc_hour():
    rng = np.random.default_rng(5)
    n = 12 * 10  # ten hours of 5m bars; snapshots at 00:05 ... 10:00
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    oi = 1e4 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    f = row(market(closes, oi), step="1h")
    # last snapshot of hour h is at h:55 = end of bar 12h + 10 (snapshot index 12h + 10); the 10:00 one is
    # alone in its hour and 5 min after 09:55, so it makes no 1h change
    idx = np.arange(10) * 12 + 10
    d = np.diff(oi[idx]) / oi[idx][:-1]
    r = np.diff(np.log(closes[idx]))
    assert f["step_used"] == "1h" and f["n_steps"] == 9
    assert f["doi_sd"] == pytest.approx(np.std(d))
    assert f["doi_kurtosis"] == pytest.approx(np_kurtosis(d))
    assert f["corr_doi_r"] == pytest.approx(corr(d, r))
    assert f["corr_doi_r_next"] == pytest.approx(corr(d[:-1], r[1:]))


# --------------------------------------------------------------------------------------- lead/lag


def lagged_market(lag: int, seed: int = 0, n: int = 3000, shift_oi: int = 0) -> Dataset:
    """ΔOI_t/OI = 0.8·r_{t+lag} + noise; ``shift_oi`` stores every snapshot that many steps late."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.002, n)
    closes = 100 * np.exp(np.cumsum(r))  # r[j] = log close j − log close j−1 = return of snapshot j
    noise = rng.normal(0, 0.0008, n)
    rel = np.zeros(n)
    src = np.arange(n) + lag
    ok = (src >= 1) & (src < n)
    rel[ok] = 0.8 * r[src[ok]]
    oi = 1e5 * np.cumprod(1 + rel + noise)
    oi_ts = T0 + M5 * (np.arange(1, n + 1) + shift_oi)
    return market(closes, oi, oi_ts)


@pytest.mark.parametrize("lag,column", [(-1, "corr_doi_r_prev"), (0, "corr_doi_r"), (1, "corr_doi_r_next")])
def test_lead_lag_picks_the_one_step_shift(lag, column):
    f = row(lagged_market(lag))
    cols = ["corr_doi_r_prev", "corr_doi_r", "corr_doi_r_next"]
    assert f[column] > 0.8
    assert all(abs(f[c]) < 0.1 for c in cols if c != column)


@pytest.mark.parametrize("shift,column", [(1, "corr_doi_r_prev"), (-1, "corr_doi_r_next")])
def test_a_snapshot_stored_one_step_off_shows_in_the_lead_lag(shift, column):
    f = row(lagged_market(0, seed=1, shift_oi=shift))
    assert f[column] > 0.8 and abs(f["corr_doi_r"]) < 0.1


# ---------------------------------------------------------------------------- funding, liquidations


def three_days(seed=0):
    rng = np.random.default_rng(seed)
    n = 3 * 288
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    oi = 1e4 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    return closes, oi


def expected_funding(closes, oi, pays, rates):
    """Payment m (at m·8h) ends the interval ((m−1)·8h, m·8h]; the snapshot at m·8h is index 96m − 1 and its
    price is close 96m − 1."""
    end, start = 96 * pays - 1, 96 * (pays - 1) - 1
    d = (oi[end] - oi[start]) / oi[start]
    r = np.log(closes[end]) - np.log(closes[start])
    return corr(np.asarray(rates), d), corr(np.asarray(rates), r)


def test_funding_against_the_interval_change_and_return():
    closes, oi = three_days()
    rates = np.array([2e-4, 1e-4, 3e-4, -2e-4, 0.5e-4, 4e-4, -1e-4, 2e-4, 0.0])
    fund = pd.DataFrame({"ts": T0 + pd.Timedelta("8h") * np.arange(1, 10), "funding_rate": rates})  # 08:00 … 72h
    f = row(market(closes, oi, funding=fund))
    # the 08:00 payment's interval starts at 00:00, before the first snapshot (00:05): 8 intervals remain
    e_doi, e_r = expected_funding(closes, oi, np.arange(2, 10), rates[1:])
    assert f["n_funding"] == 8
    assert f["funding_corr_doi"] == pytest.approx(e_doi)
    assert f["funding_corr_r"] == pytest.approx(e_r)


def test_funding_sampled_per_bar_is_read_at_each_8h_payment():
    closes, oi = three_days(1)
    rng = np.random.default_rng(2)
    per_bar = rng.normal(1e-4, 1e-4, len(closes))  # the rate in force, one row per 5m bar (labelled by open)
    fund = pd.DataFrame({"ts": T0 + M5 * np.arange(len(closes)), "funding_rate": per_bar})
    f = row(market(closes, oi, funding=fund))
    # payments at 16:00, day 2 00:00, …, 72h (08:00 lacks OI at 00:00); the rate paid = the last row
    # before the payment (the bar opening 5 min earlier: row 96m − 1)
    pays = np.arange(2, 10)
    e_doi, e_r = expected_funding(closes, oi, pays, per_bar[96 * pays - 1])
    assert f["n_funding"] == 8
    assert f["funding_corr_doi"] == pytest.approx(e_doi)
    assert f["funding_corr_r"] == pytest.approx(e_r)
    assert row(market(closes, oi, funding=fund), funding_hours=4)["n_funding"] == 17


def test_liquidations_top_hours_and_corr_with_the_hourly_move():
    closes, oi = three_days(2)
    rng = np.random.default_rng(4)
    ts = (T0 + pd.to_timedelta(np.sort(rng.uniform(0, 72 * 3600, 500)), unit="s")).floor("s")
    usd = rng.pareto(1.5, 500) * 1e4
    liq = pd.DataFrame({"ts": ts, "side": np.where(rng.random(500) < 0.5, "long", "short"), "price": 100.0,
                        "amount": usd / 100, "value": usd})
    f = row(market(closes, oi, liquidations=liq))
    # hour h (1..71) has a return: p(h) = close of the bar ending at h = bar 12h − 1; hour 0 has no p(00:00)
    hours = np.arange(1, 72)
    r = np.log(closes[(hours + 1) * 12 - 1]) - np.log(closes[hours * 12 - 1])
    h_of = ((ts - T0) // H).to_numpy()
    sums = np.array([usd[h_of == h].sum() for h in hours])
    assert f["n_hours"] == 71
    assert f["liq_top1_share"] == pytest.approx(sums.max() / sums.sum())  # ⌈0.71⌉ = 1 hour
    assert f["liq_corr_abs_r"] == pytest.approx(corr(sums, np.abs(r)))
    assert "no realized liquidations" not in f["note"]


def test_dataset_without_open_interest_gives_nan_facts_with_a_reason():
    closes, _ = three_days()
    ds = market(closes, [], oi_ts=pd.DatetimeIndex([], tz="UTC"),
                funding=pd.DataFrame({"ts": T0 + pd.Timedelta("8h") * np.arange(1, 9), "funding_rate": 1e-4}))
    f = stylized_facts(ds)
    assert list(f["step"]) == ["native", "1h"]
    assert f[list(FACTS[:8])].isna().all().all() and (f["n_steps"] == 0).all()
    assert all("no open interest" in n for n in f["note"])
    assert f["funding_corr_doi"].isna().all() and f["n_funding"].eq(0).all()


def test_step_finer_than_native_and_bad_steps():
    from liqlab.errors import ParameterError

    f = row(market(CLOSES, OI), step="1min")
    assert np.isnan(f["doi_sd"]) and "finer than the native" in f["note"]
    with pytest.raises(ParameterError, match="step"):
        stylized_facts(market(CLOSES, OI), steps=("fortnightly",))
    with pytest.raises(ParameterError, match="step"):
        stylized_facts(market(CLOSES, OI), steps=("-5min",))
    with pytest.raises(ParameterError, match="funding_hours"):
        stylized_facts(market(CLOSES, OI), funding_hours=0)


def test_several_datasets_side_by_side():
    a = market(CLOSES, OI)
    b = market(CLOSES[::-1], OI, venue="okx", synthetic=False)
    f = stylized_facts({"sim": Collection(datasets=(a, market(CLOSES, OI[::-1], venue="bybit"))), "real": b})
    assert list(dict.fromkeys(f["dataset"])) == ["sim/binanceusdm", "sim/bybit", "real"]
    t = facts_side_by_side(f)
    assert list(t.columns) == ["sim/binanceusdm", "sim/bybit", "real"]
    assert t.loc[("native", "doi_sd"), "real"] == f.set_index(["dataset", "step"]).loc[("real", "native"), "doi_sd"]
    assert t.loc[("any step", "synthetic")].tolist() == [True, True, False]
    assert set(DEFINITIONS) >= set(FACTS)
    twice = facts_side_by_side(stylized_facts([a, a], steps=("1h",)))  # a list of the same venue twice
    assert list(twice.columns) == ["binanceusdm", "binanceusdm #2"]


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_prints_datasets_as_columns_and_writes_json(tmp_path, capsys):
    write_dataset(market(CLOSES, OI), tmp_path / "a")
    write_dataset(market(CLOSES, [], oi_ts=pd.DatetimeIndex([], tz="UTC"), venue="okx"), tmp_path / "b")
    out = tmp_path / "facts.json"
    assert main(["facts", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0].split()
    assert header == ["a", "b"]
    assert "SYNTHETIC" in text and "note b (native, 1h): no open interest" in text
    rep = json.loads(out.read_text())
    assert set(rep["definitions"]) >= set(FACTS)
    rows = {(r["dataset"], r["step"]): r for r in rep["facts"]}
    assert set(rows) == {("a", "native"), ("a", "1h"), ("b", "native"), ("b", "1h")}
    d, *_ = expected_native(CLOSES, OI)
    assert rows[("a", "native")]["doi_sd"] == pytest.approx(np.std(d))
    assert rows[("b", "native")]["doi_sd"] is None  # NaN -> null


@pytest.mark.parametrize("args,needle", [
    (["nowhere"], "nowhere"),
    (["{a}", "--step", "5 parsecs"], "step"),
    (["{a}", "--json", "{tmp}"], "--json"),
    (["{a}", "--funding-hours", "0"], "funding_hours"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args, needle):
    write_dataset(market(CLOSES, OI), tmp_path / "a")
    argv = ["facts"] + [a.format(a=tmp_path / "a", tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# ---------------------------------------------------------------------------------------- real data

BINANCE_5M = "binance_btcusdt_perp_5m_oi_2026-06-08_2026-06-22.csv"
COINGLASS_1H = "coinglass_btc_1h_liquidations_oi_2025-12-04_2026-05-24.csv"


def real_at_own_instant(path, *, oi_at_close: bool, funding_scale: float) -> Dataset:
    """A CoinGlass-style CSV with each OI value at its own instant: the 5m export's USD OI is the value at the
    bar's open (converted with the open), the 1h export's ``oi_close`` the value at the bar's close."""
    raw = pd.read_csv(path)
    ts = pd.to_datetime(raw["timestamp"], unit="ms", utc=True)
    ohlcv = pd.DataFrame({"ts": ts, "open": raw.price_open, "high": raw.price_high, "low": raw.price_low,
                          "close": raw.price_close, "volume": 0.0})
    px = raw.price_close if oi_at_close else raw.price_open
    oi = pd.DataFrame({"ts": ts + (H if oi_at_close else pd.Timedelta(0)), "open_interest": raw.oi_close / px,
                       "open_interest_value": raw.oi_close})
    fund = pd.DataFrame({"ts": ts, "funding_rate": raw.funding_close * funding_scale})
    liq = None
    if "liquidation_long_usd" in raw:  # per-bar sums, labelled by the bar's open
        liq = pd.concat([pd.DataFrame({"ts": ts, "side": side, "price": np.nan, "amount": raw[col] / raw.price_close,
                                       "value": raw[col]})
                         for side, col in (("long", "liquidation_long_usd"), ("short", "liquidation_short_usd"))])
        liq = validate_table("liquidations", liq.sort_values("ts", kind="stable").reset_index(drop=True))
    meta = make_meta("binanceusdm", "BTC/USDT:USDT", source=path.name, synthetic=False)
    return Dataset(meta=meta, ohlcv=validate_table("ohlcv", ohlcv), open_interest=validate_table("open_interest", oi),
                   funding=validate_table("funding", fund), liquidations=liq)


@pytest.mark.real_data
def test_real_binance_5m_facts_are_heavy_tailed_and_aligned(real_data):
    path = real_data / BINANCE_5M
    if not path.exists():
        pytest.skip(f"{BINANCE_5M} absent")
    ds = real_at_own_instant(path, oi_at_close=False, funding_scale=1.0)
    f = stylized_facts(ds).set_index("step")
    five, hour = f.loc["native"], f.loc["1h"]
    assert five["step_used"] == "5min" and five["n_steps"] > 3900
    assert five["doi_kurtosis"] >= 20 and hour["doi_kurtosis"] >= 8  # heavy tails at both steps
    assert 0.55 <= five["doi_top10_share"] <= 0.75
    lead_lag = five[["corr_doi_r_prev", "corr_doi_r", "corr_doi_r_next"]].abs()
    assert lead_lag.idxmax() == "corr_doi_r"  # OI at its own instant: the same interval dominates
    # converted with the bar's close instead (the price 5 min after the OI's instant): r_{t+1} dominates
    late = Dataset(meta=ds.meta, ohlcv=ds.ohlcv, funding=ds.funding, open_interest=ds.open_interest.assign(
        open_interest=ds.open_interest["open_interest_value"] / ds.ohlcv["close"].to_numpy()))
    bad = row(late)[["corr_doi_r_prev", "corr_doi_r", "corr_doi_r_next"]].abs()
    assert bad.idxmax() == "corr_doi_r_next"
    assert np.isfinite(five["funding_corr_r"])


@pytest.mark.real_data
def test_real_files_through_import_and_the_cli(real_data, tmp_path, capsys):
    files = [(real_data / BINANCE_5M, "b5"), (real_data / COINGLASS_1H, "c1")]
    files = [(p, name) for p, name in files if p.exists()]
    if not files:
        pytest.skip("no real OI file")
    for p, name in files:
        assert main(["import", "--format", "coinglass-csv", str(p), "--out", str(tmp_path / name),
                     "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "facts.json"
    assert main(["facts", *(str(tmp_path / name) for _, name in files), "--json", str(out)]) == 0
    rows = {(r["dataset"], r["step"]): r for r in json.loads(out.read_text())["facts"]}
    for _, name in files:
        assert rows[(name, "native")]["n_steps"] > 3000 and rows[(name, "native")]["doi_kurtosis"] > 3
    if ("c1", "native") in rows:  # the 1h file carries realized liquidations
        c1 = rows[("c1", "native")]
        assert c1["step_used"] == "1h" and c1["n_hours"] > 4000
        assert 0.01 < c1["liq_top1_share"] < 1 and c1["liq_corr_abs_r"] > 0


@pytest.mark.real_data
def test_real_coinglass_1h_at_the_bars_close(real_data):
    path = real_data / COINGLASS_1H
    if not path.exists():
        pytest.skip(f"{COINGLASS_1H} absent")
    f = row(real_at_own_instant(path, oi_at_close=True, funding_scale=0.01))
    assert f["n_steps"] > 4000 and f["doi_kurtosis"] >= 8
    lead_lag = f[["corr_doi_r_prev", "corr_doi_r", "corr_doi_r_next"]]
    assert lead_lag.abs().idxmax() != "corr_doi_r_next"  # the closing OI belongs to the bar's close
    assert np.isfinite(f["funding_corr_doi"]) and f["n_funding"] > 400
    assert f["n_hours"] > 4000 and 0.01 < f["liq_top1_share"] < 1 and f["liq_corr_abs_r"] > 0
