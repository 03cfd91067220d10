"""Tests of liqlab.engine.margin: golden values from exchange documentation (docs/MARGIN.md), tier tables,
the ccxt normaliser and hypothesis properties of the liquidation-price formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.engine import margin
from liqlab.io import tiers
from liqlab.errors import DataError, ParameterError
from liqlab.engine.margin import bankruptcy_price, liquidation_price, lp_affine
from liqlab.io.tiers import TierTable, default_tiers, maintenance_amounts, normalize_ccxt_tiers

# --------------------------------------------------------------------------------------------------
# golden values from exchange documentation


def test_binance_doc_example():
    # Binance's isolated-margin example: 1 BTC at 60,000, 20x, MMR 0.4 %, cum 0 -> 57,228.92 / 62,749.00
    assert liquidation_price(60_000, 20, "long", model="binance", tiers=0.004) == pytest.approx(57_228.92, abs=0.005)
    assert liquidation_price(60_000, 20, "short", model="binance", tiers=0.004) == pytest.approx(62_749.00, abs=0.005)


def test_binance_doc_example_through_bundled_table():
    # 60,000 USD notional is tier 2 of the 2021 table (MMR 0.5 %, cum 50): the Binance formula per unit size
    t = default_tiers("binanceusdm", as_of="2021-03-18")
    q, ep, lev = 1.0, 60_000.0, 20
    expect_long = (q * ep * (1 - 1 / lev) - 50) / (q * (1 - 0.005))
    expect_short = (q * ep * (1 + 1 / lev) + 50) / (q * (1 + 0.005))
    assert liquidation_price(ep, lev, "long", tiers=t, notional=q * ep) == pytest.approx(expect_long, rel=1e-12)
    assert liquidation_price(ep, lev, "short", tiers=t, notional=q * ep) == pytest.approx(expect_short, rel=1e-12)


def test_bybit_doc_example():
    # Bybit's documented example: 50x at 20,000, MMR 0.5 % -> 19,700 (and the short mirror 20,300)
    assert liquidation_price(20_000, 50, "long", model="bybit", tiers=0.005) == pytest.approx(19_700.0, abs=1e-9)
    assert liquidation_price(20_000, 50, "short", model="bybit", tiers=0.005) == pytest.approx(20_300.0, abs=1e-9)
    # bundled Bybit table, 20,000 USD position: tier 1 (MMR 0.5 %, deduction 0)
    assert liquidation_price(20_000, 50, "long", model="bybit", notional=20_000) == pytest.approx(19_700.0)


def test_bybit_inverse_doc_example():
    # Bybit UTA isolated inverse example: 60,000 USD long at 50,000, 10x, MMR 0.5 %
    pv = 60_000 / 50_000
    expect = 60_000 / (pv + (pv / 10 - pv * 0.005))
    got = liquidation_price(50_000, 10, "long", model="bybit", tiers=0.005, inverse=True)
    assert got == pytest.approx(expect, rel=1e-12)
    assert got == pytest.approx(45_662.10, abs=0.005)


def test_inverse_simplifications():
    ep, lev, mmr = 40_000.0, np.array([2.0, 10.0, 50.0]), 0.005
    long_ = liquidation_price(ep, lev, "long", model="bybit", tiers=mmr, inverse=True)
    short = liquidation_price(ep, lev, "short", model="bybit", tiers=mmr, inverse=True)
    np.testing.assert_allclose(long_, ep / (1 + 1 / lev - mmr), rtol=1e-13)
    np.testing.assert_allclose(short, ep / (1 - 1 / lev + mmr), rtol=1e-13)
    # flat inverse: EP/(1 ± 1/L); a 1x inverse short is never liquidated
    assert liquidation_price(ep, 1, "short", model="flat", inverse=True) == math.inf
    assert liquidation_price(ep, 4, "long", model="flat", inverse=True) == pytest.approx(ep / 1.25)
    # Binance COIN-M form from first principles: LP_long = EP(1 + MMR)/(1 + 1/L)
    np.testing.assert_allclose(
        liquidation_price(ep, lev, "long", model="binance", tiers=mmr, inverse=True), ep * (1 + mmr) / (1 + 1 / lev))
    np.testing.assert_allclose(
        liquidation_price(ep, lev, "short", model="binance", tiers=mmr, inverse=True), ep * (1 - mmr) / (1 - 1 / lev))


def test_flat_model():
    np.testing.assert_allclose(liquidation_price(100.0, [2, 10], "long", model="flat"), [50.0, 90.0])
    np.testing.assert_allclose(liquidation_price(100.0, [2, 10], "short", model="flat"), [150.0, 110.0])


def test_bankruptcy_price():
    assert bankruptcy_price(60_000, 20, "long") == pytest.approx(57_000.0)
    assert bankruptcy_price(60_000, 20, "short") == pytest.approx(63_000.0)
    assert bankruptcy_price(60_000, 1, "short", inverse=True) == math.inf
    # the liquidation price lies between entry and bankruptcy price
    assert 57_000 < liquidation_price(60_000, 20, "long", tiers=0.004) < 60_000


# --------------------------------------------------------------------------------------------------
# maintenance-amount recursion and tier tables

BINANCE_2021_CUM = [0, 50, 1_300, 16_300, 266_300, 1_266_300, 2_516_300, 5_016_300, 25_016_300, 100_016_300]


def test_cum_recursion_reproduces_binance_2021_table():
    t = default_tiers("binanceusdm", "BTCUSDT", as_of="2021-03-18")
    assert t.as_of == "2021-03-18"
    np.testing.assert_array_equal(t.maintenance_amount, BINANCE_2021_CUM)
    np.testing.assert_allclose(maintenance_amounts(t.min_notional, t.mmr), BINANCE_2021_CUM, rtol=0, atol=1e-6)
    assert t.maintenance_amount[1] == 50 and t.maintenance_amount[2] == 1_300


def test_maintenance_margin_is_continuous_at_floors():
    # the recursion makes MM = N·MMR − cum continuous at every bracket floor
    tables = [t for group in tiers._bundled().values() for t in group]
    assert len(tables) == len(tiers.available_tiers()) >= 8
    for t in tables:
        floors = t.min_notional[1:]
        below = floors * t.mmr[:-1] - t.maintenance_amount[:-1]
        above = floors * t.mmr[1:] - t.maintenance_amount[1:]
        np.testing.assert_allclose(above, below, rtol=1e-9, atol=1e-6)


def test_bracket_vectorised():
    t = default_tiers("binanceusdm", as_of="2021-03-18")
    idx = t.bracket([0.0, 49_999.0, 50_000.0, 250_000.0, 9e6, 1e12, -5.0])
    np.testing.assert_array_equal(idx, [0, 0, 1, 2, 3, 9, 0])
    assert t.bracket(60_000.0) == 1


def test_frame_roundtrip_and_dataset_validation():
    from liqlab.io.dataset import validate_table

    t = default_tiers("bybit")
    df = t.to_frame()
    assert list(df.columns) == ["tier", "min_notional", "max_notional", "maintenance_margin_rate",
                                "maintenance_amount", "max_leverage"]
    validate_table("leverage_tiers", df)  # the dataset accepts it
    back = TierTable.from_frame(df, venue=t.venue, symbol=t.symbol, as_of=t.as_of, source=t.source)
    for f in ("min_notional", "max_notional", "mmr", "maintenance_amount", "max_leverage"):
        np.testing.assert_array_equal(getattr(back, f), getattr(t, f))
    # missing maintenance amounts are recomputed by the recursion (Bybit deduction = same recursion)
    df2 = df.copy()
    df2["maintenance_amount"] = np.nan
    re = TierTable.from_frame(df2, venue="bybit", symbol="BTC/USDT:USDT")
    np.testing.assert_allclose(re.maintenance_amount, maintenance_amounts(t.min_notional, t.mmr))
    assert re.maintenance_amount[1] == pytest.approx(2e6 * 0.005)


def test_tier_table_rejects_bad_rows():
    with pytest.raises(DataError, match="tier 2.*sorted"):
        TierTable(venue="x", symbol="y", as_of="", source="", min_notional=[0, 0], max_notional=[1, 2],
                  mmr=[0.01, 0.02], maintenance_amount=[0, 0], max_leverage=[10, 5])
    with pytest.raises(DataError, match="tier 1.*maintenance margin rate"):
        TierTable(venue="x", symbol="y", as_of="", source="", min_notional=[0], max_notional=[1],
                  mmr=[1.5], maintenance_amount=[0], max_leverage=[10])
    t = default_tiers("okx")
    with pytest.raises(ValueError):
        t.mmr[0] = 0.5  # arrays are read-only


def test_default_tiers_metadata_and_errors():
    for venue in ("binanceusdm", "bybit", "okx"):
        for sym in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
            t = default_tiers(venue, sym)
            assert t.venue == venue and t.symbol == sym and t.source and t.as_of
            assert t.mmr[0] > 0 and t.min_notional[0] == 0
    assert default_tiers("binance", "BTCUSDT").as_of == "2024-10"  # newest by default, aliases accepted
    assert default_tiers("okx", "BTC-USDT-SWAP").symbol == "BTC/USDT:USDT"
    assert "APPROXIMATION" in default_tiers("okx").source
    assert "EXTRAPOLATED" in default_tiers("bybit").notes
    with pytest.raises(ParameterError, match="'kraken'"):
        default_tiers("kraken")
    with pytest.raises(ParameterError, match="'DOGE/USDT:USDT'"):
        default_tiers("bybit", "DOGE/USDT:USDT")
    g = default_tiers("bybit", "DOGE/USDT:USDT", fallback=True)
    assert g.venue == "generic" and "GENERIC" in g.source


def test_okx_table_converted_from_contracts():
    raw = json.loads((tiers.TIERS_DIR / "okx_BTC-USDT-SWAP_2023-05.json").read_text())
    t = default_tiers("okx")
    usd_per_contract = raw["contract_size"] * raw["reference_price"]
    assert raw["contract_size"] == 0.01
    np.testing.assert_allclose(t.max_notional, [r["max"] * usd_per_contract for r in raw["tiers"]])


# --------------------------------------------------------------------------------------------------
# tier switching


def _true_lp(ep: float, lev: float, side: int, notional: float, t: TierTable, model: str) -> float:
    """Independent reference: bisection on equity(P) = MM(P), with the tier of the notional at P."""
    q = notional / ep
    wb = notional / lev

    def gap(p):
        idx = int(t.bracket(q * p)) if model == "binance" else int(t.bracket(notional))
        mm = (q * p if model == "binance" else notional) * t.mmr[idx] - t.maintenance_amount[idx]
        return wb + side * q * (p - ep) - mm  # > 0: still safe

    lo, hi = (0.0, ep) if side == 1 else (ep, ep * 10)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (gap(mid) > 0) == (side == 1):
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("notional,lev,side", [(3.05e6, 10, 1), (590_000.0, 10, -1), (12.5e6, 5, 1), (1e4, 100, 1)])
def test_tier_switch_recomputes_with_lp_bracket(notional, lev, side):
    t = default_tiers("binanceusdm", as_of="2024-10")
    entry_tier = int(t.bracket(notional))
    lp = liquidation_price(60_000.0, lev, side, tiers=t, notional=notional)
    assert lp == pytest.approx(_true_lp(60_000.0, lev, side, notional, t, "binance"), rel=1e-9)
    lp_tier = int(t.bracket(notional * lp / 60_000.0))
    a_entry, _ = lp_affine(lev, side, tiers=t, notional=notional, tier=entry_tier)
    a_lp, _ = lp_affine(lev, side, tiers=t, notional=notional, tier=lp_tier)
    assert lp == pytest.approx(float(a_lp) * 60_000.0, rel=1e-12)
    if notional != 1e4:  # the big positions do cross a bracket
        assert lp_tier != entry_tier
        assert abs(lp - float(a_entry) * 60_000.0) > 1.0


def test_bybit_keeps_entry_tier():
    # Bybit's documented MM is on the entry position value: no re-selection at the LP
    t = default_tiers("bybit")
    n = 2.1e6  # tier 2 at entry; a 10x long's LP notional (~1.9e6) would be tier 1
    lp = liquidation_price(60_000.0, 10, "long", model="bybit", tiers=t, notional=n)
    assert lp == pytest.approx(_true_lp(60_000.0, 10, 1, n, t, "bybit"), rel=1e-9)
    assert lp == pytest.approx(60_000.0 * (1 - 0.1 + 0.01) - t.maintenance_amount[1] * 60_000.0 / n, rel=1e-12)


def _inverse_table() -> TierTable:
    lo = np.array([0.0, 50.0, 200.0, 1_000.0])  # coin
    mmr = np.array([0.005, 0.01, 0.025, 0.05])
    return TierTable(venue="binancecoinm", symbol="BTC/USD:BTC", as_of="test", source="test", kind="inverse",
                     min_notional=lo, max_notional=np.r_[lo[1:], 5_000.0], mmr=mmr,
                     maintenance_amount=maintenance_amounts(lo, mmr), max_leverage=[125, 50, 20, 10])


@pytest.mark.parametrize("q,lev,side", [(2.9e6, 10, 1), (3.2e6, 10, -1), (5e4, 50, 1), (6e7, 5, -1)])
def test_inverse_tier_switch_matches_root_finder(q, lev, side):
    t, ep = _inverse_table(), 60_000.0
    lp = liquidation_price(ep, lev, side, tiers=t, notional=q, inverse=True)
    wb = q / ep / lev  # coin

    def gap(p):  # equity − maintenance margin, coin; MM on the coin value at p, tier of that value
        idx = int(t.bracket(q / p))
        return wb + side * q * (1 / ep - 1 / p) - (q / p * t.mmr[idx] - t.maintenance_amount[idx])

    lo, hi = (ep / 100, ep) if side == 1 else (ep, ep * 100)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (gap(mid) > 0) == (side == 1):
            hi = mid
        else:
            lo = mid
    assert lp == pytest.approx(0.5 * (lo + hi), rel=1e-9)
    if q in (2.9e6, 3.2e6):  # these cross the 50-coin floor between entry and liquidation
        assert t.bracket(q / ep) != t.bracket(q / lp)
    with pytest.raises(ParameterError, match="inverse"):
        liquidation_price(ep, lev, side, tiers=t, notional=q)  # coin table used as linear


def test_tier_switch_vectorised_matches_scalar():
    t = default_tiers("binanceusdm")
    notional = np.array([1e3, 5e4, 6.1e5, 3.05e6, 1.3e7, 7.2e7])
    lev = np.array([50, 20, 10, 10, 5, 3])
    for side in ("long", "short"):
        vec = liquidation_price(65_000.0, lev, side, tiers=t, notional=notional)
        sca = [liquidation_price(65_000.0, int(L), side, tiers=t, notional=float(n)) for L, n in zip(lev, notional)]
        np.testing.assert_array_equal(vec, sca)


def test_leverage_above_tier_max_is_nan():
    t = default_tiers("binanceusdm")  # tier 1 max 125x, tier 4 (3M..12M) max 50x
    assert math.isnan(liquidation_price(60_000, 126, "long", tiers=t, notional=1e4))
    assert math.isnan(liquidation_price(60_000, 60, "short", tiers=t, notional=5e6))
    assert not math.isnan(liquidation_price(60_000, 50, "short", tiers=t, notional=5e6))
    assert math.isnan(liquidation_price(60_000, 2, "long", tiers=t, notional=5e9))  # beyond the last cap
    out = liquidation_price(60_000, np.array([10, 200]), "long", tiers=t)
    assert np.isfinite(out[0]) and np.isnan(out[1])


def test_over_max_clip_uses_the_tier_max():
    t = default_tiers("bybit")  # tier 1 max 100x
    clipped = liquidation_price(60_000, np.array([100.0, 125.0]), "long", model="bybit", tiers=t, notional=1e4,
                                over_max="clip")
    assert clipped[0] == clipped[1] == pytest.approx(60_000 * (1 - 1 / 100 + 0.005))
    inv = _inverse_table()  # tier 2 (50..200 coin) max 50x
    q = 100 * 60_000.0
    a = liquidation_price(60_000.0, 80, "short", tiers=inv, notional=q, inverse=True, over_max="clip")
    b = liquidation_price(60_000.0, 50, "short", tiers=inv, notional=q, inverse=True)
    assert a == b and math.isnan(liquidation_price(60_000.0, 80, "short", tiers=inv, notional=q, inverse=True))
    with pytest.raises(ParameterError, match="over_max"):
        liquidation_price(60_000, 10, "long", over_max="ignore")


def test_parameter_errors():
    with pytest.raises(ParameterError, match="leverage"):
        liquidation_price(100, 0.5, "long")
    with pytest.raises(ParameterError, match="side"):
        liquidation_price(100, 5, "up")
    with pytest.raises(ParameterError, match="side"):
        liquidation_price(100, 5, 2)
    with pytest.raises(ParameterError, match="model"):
        liquidation_price(100, 5, "long", model="kraken")
    with pytest.raises(ParameterError, match="entry"):
        liquidation_price(-1, 5, "long")
    with pytest.raises(ParameterError, match="notional"):
        liquidation_price(100, 5, "long", notional=0)
    with pytest.raises(ParameterError, match="tier"):
        lp_affine(5, "long", tier=99)
    with pytest.raises(ParameterError, match="venue"):
        margin.model_for_venue("ftx")


def test_side_forms_and_model_for_venue():
    a = liquidation_price(100.0, 10, np.array(["long", "short", "buy", "sell"]), model="flat")
    b = liquidation_price(100.0, 10, np.array([1, -1, 1, -1]), model="flat")
    np.testing.assert_array_equal(a, b)
    assert margin.model_for_venue("binanceusdm") == "binance"
    assert margin.model_for_venue("OKX") == "okx"


# --------------------------------------------------------------------------------------------------
# ccxt normaliser


def test_normalize_ccxt_binance_keeps_raw_cum():
    tiers = [
        {"tier": 1, "symbol": "BTC/USDT:USDT", "minNotional": 0, "maxNotional": 50_000, "maintenanceMarginRate": 0.004,
         "maxLeverage": 125, "info": {"cum": "0.0"}},
        {"tier": 2, "symbol": "BTC/USDT:USDT", "minNotional": 50_000, "maxNotional": 250_000,
         "maintenanceMarginRate": 0.005, "maxLeverage": 100, "info": {"cum": "51.0"}},  # raw, not the recursion
    ]
    t = normalize_ccxt_tiers(tiers, venue="binanceusdm", as_of="2024-01-01")
    assert t.symbol == "BTC/USDT:USDT" and t.venue == "binanceusdm"
    np.testing.assert_array_equal(t.maintenance_amount, [0.0, 51.0])
    for row in tiers:
        del row["info"]["cum"]
    np.testing.assert_array_equal(normalize_ccxt_tiers(tiers, venue="binance").maintenance_amount, [0.0, 50.0])


def test_normalize_ccxt_bybit_deduction_and_recursion():
    tiers = [
        {"tier": 1, "minNotional": 0, "maxNotional": 2e6, "maintenanceMarginRate": 0.005, "maxLeverage": 100,
         "info": {"riskLimitValue": "2000000", "mmDeduction": ""}},
        {"tier": 2, "minNotional": 2e6, "maxNotional": 4e6, "maintenanceMarginRate": 0.01, "maxLeverage": 57.14,
         "info": {"riskLimitValue": "4000000", "mmDeduction": ""}},
    ]
    t = normalize_ccxt_tiers(tiers, venue="bybit", symbol="BTC/USDT:USDT")
    np.testing.assert_allclose(t.maintenance_amount, [0.0, 10_000.0])
    tiers[1]["info"]["mmDeduction"] = "10000"
    tiers[0]["info"]["mmDeduction"] = "0"
    np.testing.assert_allclose(normalize_ccxt_tiers(tiers, venue="bybit").maintenance_amount, [0.0, 10_000.0])


def test_normalize_ccxt_okx_contracts_to_usd():
    tiers = [
        {"tier": 1, "minNotional": 0, "maxNotional": 500, "maintenanceMarginRate": 0.004, "maxLeverage": 100,
         "info": {"minSz": "0", "maxSz": "500"}},
        {"tier": 2, "minNotional": 500, "maxNotional": 1000, "maintenanceMarginRate": 0.005, "maxLeverage": 75,
         "info": {"minSz": "500", "maxSz": "1000"}},
    ]
    t = normalize_ccxt_tiers(tiers, venue="okx", contract_size=0.01, price=50_000)
    np.testing.assert_allclose(t.max_notional, [250_000.0, 500_000.0])
    np.testing.assert_allclose(t.maintenance_amount, [0.0, 250_000.0 * 0.001])
    with pytest.raises(ParameterError, match="price"):
        normalize_ccxt_tiers(tiers, venue="okx", contract_size=0.01)


def test_normalize_ccxt_bad_rows():
    with pytest.raises(DataError, match="row 0: maintenanceMarginRate"):
        normalize_ccxt_tiers([{"minNotional": 0, "maxNotional": 1, "maxLeverage": 5}], venue="bybit")
    with pytest.raises(DataError, match="empty"):
        normalize_ccxt_tiers([], venue="bybit")
    with pytest.raises(ParameterError, match="venue"):
        normalize_ccxt_tiers([{}], venue="kraken")


@pytest.mark.real_data
def test_real_binance_tiers_normalise_and_match_recursion(real_data):
    raw = json.loads((real_data / "binance_usdm_leverage_tiers_2024-10.json").read_text())
    checked = 0
    for sym, rows in raw.items():
        if not rows or any("cum" not in (r.get("info") or {}) for r in rows):
            continue
        t = normalize_ccxt_tiers(rows, venue="binanceusdm", symbol=sym, as_of="2024-10")
        np.testing.assert_allclose(t.maintenance_amount, t.cum_from_recursion(), rtol=1e-9, atol=1e-6,
                                   err_msg=sym)
        checked += 1
    assert checked == len(raw) > 300  # every market carries cum and normalises
    for sym in ("BTC/USDT:USDT", "ETH/USDT:USDT"):
        norm = normalize_ccxt_tiers(raw[sym], venue="binanceusdm", as_of="2024-10")
        bundled = default_tiers("binanceusdm", sym, as_of="2024-10-31")
        for f in ("min_notional", "max_notional", "mmr", "maintenance_amount", "max_leverage"):
            np.testing.assert_array_equal(getattr(norm, f), getattr(bundled, f))


# --------------------------------------------------------------------------------------------------
# properties

MODELS = st.sampled_from(["binance", "bybit", "okx", "flat"])
ENTRY = st.floats(min_value=1.0, max_value=200_000.0)
LEV = st.floats(min_value=1.0, max_value=50.0)
NOTIONAL = st.one_of(st.none(), st.floats(min_value=10.0, max_value=5e7))


def _tables(model):
    return None if model == "flat" else default_tiers({"binance": "binanceusdm"}.get(model, model))


@settings(max_examples=150, deadline=None)
@given(model=MODELS, ep=ENTRY, lev=LEV, notional=NOTIONAL, fee=st.floats(0, 0.001))
def test_long_below_entry_below_short(model, ep, lev, notional, fee):
    kw = dict(model=model, tiers=_tables(model), notional=notional, fee_rate=fee)
    lo = liquidation_price(ep, lev, "long", **kw)
    hi = liquidation_price(ep, lev, "short", **kw)
    if math.isnan(lo) or math.isnan(hi):  # leverage above the tier's max, or notional beyond the cap
        t = _tables(model)
        assert t is not None and notional is not None
        assert lev > t.max_leverage[int(t.bracket(notional))] or notional >= t.cap
        return
    assert lo < ep < hi


@settings(max_examples=150, deadline=None)
@given(model=MODELS, ep=ENTRY, l1=LEV, l2=LEV, notional=NOTIONAL)
def test_monotone_in_leverage(model, ep, l1, l2, notional):
    lo_l, hi_l = sorted((l1, l2))
    kw = dict(model=model, tiers=_tables(model), notional=notional)
    lp_long = liquidation_price(ep, np.array([lo_l, hi_l]), "long", **kw)
    lp_short = liquidation_price(ep, np.array([lo_l, hi_l]), "short", **kw)
    if np.isnan(lp_long).any():
        return
    tol = 1e-9 * ep
    assert lp_long[1] >= lp_long[0] - tol
    assert lp_short[1] <= lp_short[0] + tol


@settings(max_examples=150, deadline=None)
@given(model=MODELS, e1=ENTRY, e2=ENTRY, lev=LEV, notional=NOTIONAL, side=st.sampled_from(["long", "short"]),
       funding=st.floats(-0.01, 0.01), fee=st.floats(0, 0.001))
def test_affine_in_entry_and_lp_affine_agrees(model, e1, e2, lev, notional, side, funding, fee):
    kw = dict(model=model, tiers=_tables(model), notional=notional, fee_rate=fee, funding=funding)
    a, b = lp_affine(lev, side, **kw)
    lps = liquidation_price(np.array([e1, e2, 0.5 * (e1 + e2)]), lev, side, **kw)
    np.testing.assert_allclose(lps, a * np.array([e1, e2, 0.5 * (e1 + e2)]) + b, rtol=1e-12, equal_nan=True)
    if np.isfinite(lps).all():
        assert lps[2] == pytest.approx(0.5 * (lps[0] + lps[1]), rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(model=MODELS, ep=ENTRY, lev=LEV, f=st.floats(1e-6, 0.02), inverse=st.booleans())
def test_positive_funding_shifts_both_sides_up(model, ep, lev, f, inverse):
    kw = dict(model=model, tiers=None if model == "flat" else 0.005, inverse=inverse)
    for side in ("long", "short"):
        base = liquidation_price(ep, lev, side, **kw)
        up = liquidation_price(ep, lev, side, funding=f, **kw)
        down = liquidation_price(ep, lev, side, funding=-f, **kw)
        if math.isinf(base):
            continue
        assert up > base > down
        if not inverse and model == "binance":  # funding: shift = EP·f/(1 ∓ MMR)
            assert up - base == pytest.approx(ep * f / (1 - (0.005 if side == "long" else -0.005)), rel=1e-9)


@settings(max_examples=150, deadline=None)
@given(model=MODELS, ep=ENTRY, lev=st.floats(1.5, 50.0), fee=st.floats(1e-5, 0.002), inverse=st.booleans())
def test_fee_moves_lp_toward_entry(model, ep, lev, fee, inverse):
    kw = dict(model=model, tiers=None if model == "flat" else 0.005, inverse=inverse)
    for side in ("long", "short"):
        base = liquidation_price(ep, lev, side, **kw)
        with_fee = liquidation_price(ep, lev, side, fee_rate=fee, **kw)
        if math.isinf(base):
            continue
        assert abs(with_fee - ep) < abs(base - ep)


@settings(max_examples=60, deadline=None)
@given(model=MODELS, data=st.data(), n=st.integers(1, 20), inverse=st.booleans())
def test_vectorised_equals_scalar(model, data, n, inverse):
    ep = np.array(data.draw(st.lists(ENTRY, min_size=n, max_size=n)))
    lev = np.array(data.draw(st.lists(LEV, min_size=n, max_size=n)))
    side = np.array(data.draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n)))
    notional = np.array(data.draw(st.lists(st.floats(10.0, 5e7), min_size=n, max_size=n)))
    tiers = _tables(model) if not inverse else (None if model == "flat" else 0.005)
    kw = dict(model=model, tiers=tiers, inverse=inverse)
    vec = liquidation_price(ep, lev, side, notional=notional, **kw)
    sca = np.array([liquidation_price(float(e), float(L), int(s), notional=float(q), **kw)
                    for e, L, s, q in zip(ep, lev, side, notional)])
    np.testing.assert_array_equal(vec, sca)


@settings(max_examples=100, deadline=None)
@given(ep=ENTRY, lev=LEV, notional=st.floats(1e3, 4e7), side=st.sampled_from([1, -1]))
def test_matches_independent_root_finder(ep, lev, notional, side):
    t = default_tiers("binanceusdm")
    lp = liquidation_price(ep, lev, side, tiers=t, notional=notional)
    if math.isnan(lp) or lp <= 0:
        return
    assert lp == pytest.approx(_true_lp(ep, lev, side, notional, t, "binance"), rel=1e-8, abs=ep * 1e-9)


def test_large_arrays_are_vectorised():
    rng = np.random.default_rng(0)
    n = 200_000
    ep = rng.uniform(20_000, 80_000, n)
    lev = rng.choice([5.0, 10.0, 25.0, 50.0, 100.0], n)
    side = rng.choice([1, -1], n)
    out = liquidation_price(ep, lev, side, notional=rng.uniform(1e3, 2e7, n))
    assert out.shape == (n,) and out.dtype == np.float64
    ok = np.isfinite(out)
    assert ok.mean() > 0.5
    assert np.all(np.where(side[ok] == 1, out[ok] < ep[ok], out[ok] > ep[ok]))


def test_pandas_series_inputs():
    ep = pd.Series([100.0, 200.0])
    out = liquidation_price(ep, 10, "long", model="flat")
    np.testing.assert_allclose(out, [90.0, 180.0])
