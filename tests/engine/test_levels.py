"""liqlab.engine.levels: the cluster peak rule, levels with per-leverage columns, alerts and pull."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from liqlab.errors import ParameterError
from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.levels import (LEVEL_COLUMNS, alerts, compare_assets, distance_pct, lev_column, levels, peak_bins,
                                   pull)
from test_heatmap import random_dataset
from liqlab.io.dataset import Collection


@functools.lru_cache(maxsize=None)
def _hm(oi_decrease: str = "proportional"):
    """A small 2-venue map (1 day of 1m bars, seed 7 and 8), built once per rule."""
    coll = Collection(datasets=(random_dataset("binanceusdm", days=1, seed=7), random_dataset("okx", days=1, seed=8)))
    return build_heatmap(coll, oi_decrease=oi_decrease, progress=False)


def test_peak_rule_on_a_hand_made_profile():
    x = np.array([0.0, 1.0, 3.0, 3.0, 2.0, 0.0, 5.0, 0.0, 0.0, 4.0])
    # the flat top 3, 3 counts once at its upper end; the edge bin 9 is a peak; zeros never are
    assert list(peak_bins(x)) == [3, 6, 9]
    assert list(peak_bins(np.zeros(5))) == [] and list(peak_bins(np.zeros(0))) == []


def test_columns_and_largest_first():
    hm = _hm()
    lv = levels(hm)
    assert list(lv.columns) == list(LEVEL_COLUMNS) + [lev_column(x) for x in hm.leverages]
    assert len(lv) > 5
    assert (np.diff(lv["notional_usd"].to_numpy()) <= 0).all()
    assert (lv["time"] == pd.Timestamp(hm.times[-1], tz="UTC")).all()
    assert set(lv["side"]) <= {"long", "short"}
    assert lev_column(12.5) == "lev_12.5" and lev_column(10) == "lev_10"


def test_top_clusters_reads_the_same_rows():
    hm = _hm()
    top = hm.top_clusters(20, n=8)
    lv = levels(hm, 20, n=8)
    np.testing.assert_array_equal(top["notional"].to_numpy(), lv["notional_usd"].to_numpy())
    np.testing.assert_array_equal(top["price"].to_numpy(), lv["price"].to_numpy())
    assert list(top["side"]) == list(lv["side"]) and list(top["venues"]) == list(lv["venues"])
    np.testing.assert_array_equal(top["age_hours"].to_numpy(), lv["age_hours"].to_numpy())


def test_venue_names_agree_with_counts():
    lv = levels(_hm(), n=20)
    for count, names in zip(lv["venues"], lv["venue_names"]):
        assert count == (len(names.split(", ")) if names else 0)


def test_empty_and_bad_arguments():
    hm = _hm()
    empty = levels(hm, 0, min_usd=1e30)
    assert len(empty) == 0 and list(empty.columns)[: len(LEVEL_COLUMNS)] == list(LEVEL_COLUMNS)
    for kw, name in (({"n": -1}, "n:"), ({"min_usd": -1.0}, "min_usd:"), ({"min_usd": float("nan")}, "min_usd:")):
        with pytest.raises(ParameterError, match=name):
            levels(hm, **kw)
    with pytest.raises(ParameterError, match="within_pct:"):
        alerts(hm, within_pct=0.0, min_usd=0.0)
    with pytest.raises(ParameterError, match="within_pct:"):
        pull(hm, within_pct=-1.0)
    with pytest.raises(ParameterError, match="t:"):
        levels(hm, "no time")


@settings(max_examples=25, deadline=None)
@given(j=st.integers(0, 23), rule=st.sampled_from(["proportional", "highest_leverage"]))
def test_lev_columns_sum_to_notional(j, rule):
    hm = _hm(rule)
    lv = levels(hm, j)
    lev = lv[[lev_column(x) for x in hm.leverages]].to_numpy().sum(axis=1)
    np.testing.assert_allclose(lev, lv["notional_usd"].to_numpy(), rtol=1e-9, atol=1e-6)
    assert (lv[[lev_column(x) for x in hm.leverages]].to_numpy() >= 0).all()


@settings(max_examples=40, deadline=None)
@given(j=st.integers(0, 23), within=st.floats(0.01, 20.0), q=st.floats(0.0, 1.0))
def test_alerts_are_a_subset_of_levels(j, within, q):
    hm = _hm()
    lv = levels(hm, j)
    min_usd = float(np.quantile(lv["notional_usd"], q)) if len(lv) else 0.0
    al = alerts(hm, within_pct=within, min_usd=min_usd, t=j)
    keys = set(zip(lv["side"], lv["price"]))
    assert set(zip(al["side"], al["price"])) <= keys
    assert (al["notional_usd"] >= min_usd).all() and (al["distance_pct"].abs() <= within).all()
    # and every qualifying level is an alert
    want = lv[(lv["notional_usd"] >= min_usd) & (lv["distance_pct"].abs() <= within)]
    assert len(al) == len(want)


@st.composite
def _sided_maps(draw):
    """A (T, B) map pair where longs sit below each snapshot's close and shorts above it."""
    T, B = 3, len(_hm().prices)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close_bin = draw(st.lists(st.integers(2, B - 3), min_size=T, max_size=T))
    long = np.zeros((T, B))
    short = np.zeros((T, B))
    for j, c in enumerate(close_bin):
        long[j, :c] = rng.exponential(1e6, c) * (rng.random(c) < 0.6)
        short[j, c + 1:] = rng.exponential(1e6, B - c - 1) * (rng.random(B - c - 1) < 0.6)
    return long, short, np.array(close_bin)


@settings(max_examples=40, deadline=None)
@given(maps=_sided_maps(), within=st.floats(0.05, 30.0))
def test_distance_sign_matches_side_and_pull_adds_up(maps, within):
    base = _hm()
    long, short, cb = maps
    T, B = long.shape
    prices = base.prices
    hm = dataclasses.replace(base, times=base.times[:T], long=long, short=short,
                             close=prices[cb], agreement=np.zeros((T, B), np.int8),
                             long_layers=np.zeros((len(base.leverages), T, B), np.float32),
                             short_layers=np.zeros((len(base.leverages), T, B), np.float32),
                             venue_long={}, venue_short={}, meta={**base.meta, "venues": []})
    for j in range(T):
        lv = levels(hm, j)
        d = lv["distance_pct"].to_numpy()
        assert ((d < 0) == (lv["side"] == "long").to_numpy()).all() and (d != 0).all()
        pu = pull(hm, j, within_pct=within)
        dist = distance_pct(prices, prices[cb[j]])
        band = (np.abs(dist) <= within) & (dist != 0)
        total = float((long[j] + short[j])[band].sum())
        assert pu["above_usd"] + pu["below_usd"] == pytest.approx(total, rel=1e-12, abs=1e-6)
        # on these maps everything above is short and everything below is long
        assert pu["below_usd"] == pytest.approx(float(long[j][band].sum()), rel=1e-12, abs=1e-6)


def test_pull_ratio_and_fields():
    hm = _hm()
    pu = pull(hm, within_pct=3.0)
    assert pu["ratio"] == pytest.approx(pu["above_usd"] / pu["below_usd"])
    assert pu["within_pct"] == 3.0 and pu["time"] == pd.Timestamp(hm.times[-1], tz="UTC")
    assert pu["ref_price"] == hm.close[-1]


def test_compare_assets_reads_the_relative_map_at_each_cluster():
    hm = _hm()
    other = _hm("highest_leverage")
    table = compare_assets({"A": hm, "B": other}, n=4, basis="open_interest")
    assert list(table["asset"]) == ["A"] * 4 + ["B"] * 4 and list(table["rank"]) == [1, 2, 3, 4] * 2
    assert "open interest" in table.attrs["units"]
    for label, h in (("A", hm), ("B", other)):
        rel = h.relative(basis="open_interest")
        rows = table[table["asset"] == label]
        lv = levels(h, n=4)
        np.testing.assert_array_equal(rows["notional_usd"].to_numpy(), lv["notional_usd"].to_numpy())
        for _, r in rows.iterrows():
            b = int(np.flatnonzero(h.prices == r["price"])[0])
            want = (rel.long if r["side"] == "long" else rel.short)[-1, b]
            assert r["relative"] == pytest.approx(want, rel=1e-12) and r["relative_bp"] == pytest.approx(want * 1e4)
