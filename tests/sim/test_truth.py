"""The simulator's truth: loading, and the true heatmap against a brute-force reference."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.errors import DataError, ParameterError
from liqlab.sim.simulation import simulate_market
from liqlab.sim.truth import Truth, liq_price_at, load_truth, outstanding_notional, true_heatmap

T0 = pd.Timestamp("2025-01-01", tz="UTC")


@pytest.fixture(scope="module")
def market():
    return simulate_market(days=2, seed=7, warmup_days=1)


def _brute(truth: Truth, times, edges, venues=None):
    """Reference: per snapshot, every position's LP (liq_price_at) binned with np.histogram."""
    led = truth.ledger
    sel = np.ones(len(led), bool) if venues is None else led["venue"].isin(venues).to_numpy()
    long_ = (led["side"] == "long").to_numpy()
    n = led["notional_usd"].to_numpy()
    L = np.zeros((len(times), len(edges) - 1))
    S = np.zeros_like(L)
    for j, t in enumerate(times):
        lp = liq_price_at(truth, t)
        ok = sel & np.isfinite(lp)
        L[j] = np.histogram(lp[ok & long_], bins=edges, weights=n[ok & long_])[0]
        S[j] = np.histogram(lp[ok & ~long_], bins=edges, weights=n[ok & ~long_])[0]
    return L, S


def test_load_truth_roundtrip(small_sim):
    tr = load_truth(small_sim)
    assert tr.path.name == "truth"
    assert load_truth(small_sim / "truth").ledger.equals(tr.ledger)
    assert set(tr.ledger["status"]) == {"closed", "liquidated", "open"}
    assert tr.config["synthetic"] is True
    assert len(tr.leverage_mix["leverages"]) == len(tr.leverage_mix["leverage_weights"])
    assert tr.venues == ("binanceusdm", "bybit", "okx")


def test_load_truth_errors(tmp_path):
    with pytest.raises(DataError, match="config.json"):
        load_truth(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON"):
        load_truth(tmp_path)


def test_heatmap_sums_equal_open_notional(market):
    tr = market.truth
    times = pd.date_range(T0 + pd.Timedelta("1min"), periods=48, freq="1h")
    edges = np.array([1.0, 1e7])  # everything: LPs are positive and finite
    L, S = true_heatmap(tr, times, edges)
    ol, os_ = outstanding_notional(tr, times)
    np.testing.assert_allclose(L.sum(axis=1), ol, rtol=1e-9)
    np.testing.assert_allclose(S.sum(axis=1), os_, rtol=1e-9)
    # and equal to the market loop's own running totals (state after the bar before each instant)
    for venue in tr.venues:
        b = tr.bars.loc[tr.bars["venue"] == venue].set_index("ts")
        lv, sv = true_heatmap(tr, times, edges, venues=[venue])
        np.testing.assert_allclose(lv.sum(axis=1), b.loc[times - pd.Timedelta("1min"), "long_open_usd"], rtol=1e-9)
        np.testing.assert_allclose(sv.sum(axis=1), b.loc[times - pd.Timedelta("1min"), "short_open_usd"], rtol=1e-9)
    assert (ol > 1e9).all() and (os_ > 1e9).all()


def test_heatmap_matches_brute_force_on_the_simulation(market):
    tr = market.truth
    times = pd.date_range(T0, periods=9, freq="5h") + pd.Timedelta("37min")
    mid = tr.index["index_close"].median()
    edges = np.linspace(mid * 0.9, mid * 1.1, 301)
    L, S = true_heatmap(tr, times, edges)
    L0, S0 = _brute(tr, times, edges)
    np.testing.assert_allclose(L, L0, rtol=1e-9, atol=1e-3)
    np.testing.assert_allclose(S, S0, rtol=1e-9, atol=1e-3)
    # long levels sit below price and short levels above, mostly
    p = tr.index.set_index("ts").loc[times - pd.Timedelta("1min"), "index_close"].to_numpy()
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert (L * (centres[None, :] < p[:, None])).sum() > 0.99 * L.sum()
    assert (S * (centres[None, :] > p[:, None])).sum() > 0.99 * S.sum()


def test_heatmap_venue_filter_adds_up(market):
    tr = market.truth
    times = pd.date_range(T0, periods=5, freq="7h")
    edges = np.geomspace(1e4, 2e5, 200)
    L, S = true_heatmap(tr, times, edges)
    parts = [true_heatmap(tr, times, edges, venues=[v]) for v in tr.venues]
    np.testing.assert_allclose(sum(p[0] for p in parts), L, rtol=1e-9, atol=1e-3)
    np.testing.assert_allclose(sum(p[1] for p in parts), S, rtol=1e-9, atol=1e-3)
    with pytest.raises(ParameterError, match="unknown venue"):
        true_heatmap(tr, times, edges, venues=["kraken"])


def test_heatmap_rejects_bad_grids(market):
    with pytest.raises(ParameterError, match="edges"):
        true_heatmap(market.truth, [T0], [3.0, 2.0, 1.0])
    with pytest.raises(ParameterError, match="sorted"):
        true_heatmap(market.truth, [T0 + pd.Timedelta("1h"), T0], [1.0, 2.0])


# ------------------------------------------------------------------------ property: synthetic ledgers


@st.composite
def ledgers(draw):
    n = draw(st.integers(0, 25))
    nf = draw(st.integers(0, 4))
    minutes = st.integers(-50, 400)
    rows = []
    for i in range(n):
        e = draw(minutes)
        life = draw(st.one_of(st.none(), st.integers(1, 300)))
        rows.append({
            "position_id": i, "venue": draw(st.sampled_from(["a", "b"])), "side": draw(st.sampled_from(["long", "short"])),
            "notional_usd": draw(st.floats(1.0, 1e6)), "entry_time": T0 + pd.Timedelta(minutes=e),
            "end_time": pd.NaT if life is None else T0 + pd.Timedelta(minutes=e + life),
            "liq_price_initial": draw(st.floats(50.0, 150.0)), "lp_funding_coef": draw(st.floats(0.9, 1.1)),
            "funding_index_entry": draw(st.floats(-1.0, 1.0)),
        })
    led = pd.DataFrame(rows, columns=["position_id", "venue", "side", "notional_usd", "entry_time", "end_time",
                                      "liq_price_initial", "lp_funding_coef", "funding_index_entry"])
    led["entry_time"] = pd.to_datetime(led["entry_time"], utc=True)
    led["end_time"] = pd.to_datetime(led["end_time"], utc=True)
    f = []
    for v in ("a", "b"):
        ts = sorted(set(draw(st.lists(st.integers(-60, 420), min_size=nf, max_size=nf))))
        idx = np.cumsum([draw(st.floats(-5.0, 5.0)) for _ in ts])
        f += [{"ts": T0 + pd.Timedelta(minutes=t), "venue": v, "index": x} for t, x in zip(ts, idx)]
    fi = pd.DataFrame(f, columns=["ts", "venue", "index"])
    fi["ts"] = pd.to_datetime(fi["ts"], utc=True)
    times = sorted(draw(st.lists(st.integers(-60, 450), min_size=1, max_size=12)))
    return Truth(ledger=led, events=None, funding_index=fi, leverage_mix={}, config={"config": {"venues": ["a", "b"]}}), \
        [T0 + pd.Timedelta(minutes=t) for t in times]


@settings(max_examples=150, deadline=None)
@given(ledgers(), st.integers(1, 40))
def test_heatmap_equals_brute_force_on_any_ledger(case, nbins):
    truth, times = case
    edges = np.linspace(40.0, 160.0, nbins + 1)
    L, S = true_heatmap(truth, times, edges)
    L0, S0 = _brute(truth, times, edges)
    assert L.shape == S.shape == (len(times), nbins)
    np.testing.assert_allclose(L, L0, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(S, S0, rtol=1e-9, atol=1e-6)
    ol, os_ = outstanding_notional(truth, times)
    wide = np.array([-1e9, 1e9])
    Lw, Sw = true_heatmap(truth, times, wide)
    np.testing.assert_allclose(Lw[:, 0], ol, rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(Sw[:, 0], os_, rtol=1e-9, atol=1e-6)


def test_true_heatmap_speed_is_reported_not_asserted(market, capsys):
    """A smoke run at one month of hourly steps (T=720, B=1000); the figure is printed by `liqlab bench`."""
    tr = market.truth
    times = pd.date_range(T0, periods=720, freq="4min")
    edges = np.linspace(40_000, 80_000, 1001)
    t = time.perf_counter()
    L, S = true_heatmap(tr, times, edges)
    print(f"true_heatmap T=720 B=1000 n={len(tr.ledger)}: {time.perf_counter() - t:.3f}s")
    assert L.shape == (720, 1000) and np.isfinite(L).all() and np.isfinite(S).all()
