"""Trader behaviour of the simulated market (liqlab.sim.traders) and the named worlds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.sim import traders
from liqlab.sim.simulation import make_config, simulate_market


def test_leverage_choice_without_tilt_is_generator_choice():
    c = make_config(world="homogeneous")
    w = np.asarray(c.leverage_weights) / np.sum(c.leverage_weights)
    a = np.random.default_rng(3).choice(len(w), size=5000, p=w)
    u = np.random.default_rng(3).random(5000)
    assert np.array_equal(traders.leverage_choice(c, u, np.ones(5000)), a)


def test_leverage_tilts_toward_low_leverage_when_volatile():
    c = make_config(leverage_vol_elasticity=1.0)
    sd_bar = c.bar_sd
    u = np.random.default_rng(0).random(20000)
    lev = np.asarray(c.leverages)
    calm = lev[traders.leverage_choice(c, u, np.full(20000, sd_bar / 3))]
    wild = lev[traders.leverage_choice(c, u, np.full(20000, sd_bar * 3))]
    assert np.median(wild) < np.median(calm)
    assert np.mean(wild >= 50) < np.mean(calm >= 50)


def test_breakout_arrivals_only_beyond_the_range_and_on_its_side():
    c = make_config(breakout_window_min=10, breakout_intensity=1.0)
    close = np.r_[np.zeros(30), np.linspace(0.0, 0.01, 10), np.full(30, 0.01), np.linspace(0.01, -0.01, 10)]
    sd = np.full(len(close), 1e-3)
    up, dn = traders.breakout_rate(c, close, sd, mean_rate=1.0)
    assert up[:31].sum() == 0 and up[31:40].min() > 0  # new highs during the rally
    assert dn[:71].sum() == 0 and dn[71:].min() > 0     # below the 10-bar range from the first step down
    assert np.all(up * dn == 0)


def test_fade_arrivals_open_against_large_moves():
    c = make_config(fade_window_min=5, fade_threshold=2.0, fade_intensity=1.0)
    close = np.r_[np.zeros(20), -0.02 * np.ones(20)]
    sd = np.full(len(close), 1e-3)
    longs, shorts = traders.fade_rate(c, close, sd, mean_rate=1.0)
    assert longs[20:25].min() > 0 and shorts.sum() == 0 and longs[:20].sum() == 0


@settings(max_examples=15, deadline=None)
@given(n=st.floats(0.1, 0.8), seed=st.integers(0, 1000))
def test_followers_have_the_branching_ratios_mean(n, seed):
    c = make_config(herding_branching=n, breakout_intensity=0.0, fade_intensity=0.0, herding_delay_min=1.0)
    nb = 200_000
    parents = np.random.default_rng(seed).integers(0, nb // 2, 3000)
    a = traders.arrivals(c, np.zeros(nb), np.ones(nb), 1.0, parents, np.ones(3000, np.int8),
                         np.random.default_rng(seed + 1))
    expected = 3000 * n / (1 - n)
    assert abs(len(a) - expected) < 6 * math.sqrt(3000 * n / (1 - n) ** 3) + 5
    assert np.all(a.kind == traders.KIND_FOLLOWER) and np.all(a.entry < nb)


def test_whale_sizes_have_a_pareto_tail():
    c = make_config(whale_share=1.0, whale_min_usd=1e6, whale_alpha=1.5, size_max_usd=1e12)
    rng = np.random.default_rng(0)
    s = traders.sizes(c, np.full(50_000, 10.0), np.full(50_000, -10.0), 1e15, rng)  # body tiny: all tail
    alpha_hat = len(s) / np.sum(np.log(s / 1e6))  # Pareto MLE
    assert abs(alpha_hat - 1.5) < 0.05
    capped = traders.sizes(c, np.full(1000, 10.0), np.zeros(1000), 5e6, np.random.default_rng(1))
    assert capped.max() <= 5e6


def test_sentiment_is_an_ar1_with_the_configured_sd():
    c = make_config(sentiment_sd=0.05, sentiment_halflife_hours=2.0)
    s = traders.sentiment(c, 400_000, np.random.default_rng(0))
    assert abs(s.std() - 0.05) < 0.01
    phi = 0.5 ** (1 / 120)
    assert abs(np.corrcoef(s[:-120], s[120:])[0, 1] - phi**120) < 0.05
    assert not traders.sentiment(make_config(world="homogeneous"), 10, np.random.default_rng(0)).any()


def test_default_world_ledger_names_populations_and_price_stays_exogenous():
    m = simulate_market(days=2, seed=3, venues=("okx",))
    pops = set(m.truth.ledger["population"])
    assert pops <= set(traders.KIND_NAMES) and {"base", "follower"} <= pops
    other = simulate_market(days=2, seed=3, venues=("okx",), trader_seed=99, herding_branching=0.2)
    assert np.array_equal(m.truth.index["index_close"], other.truth.index["index_close"])


def test_cli_world_flag(tmp_path):
    from liqlab.app.cli import main

    out = tmp_path / "w"
    assert main(["simulate", "--world", "homogeneous", "--days", "1", "--venues", "okx", "--out", str(out), "--quiet"]) == 0
    import json

    cfg = json.loads((out / "truth" / "config.json").read_text())
    assert cfg["config"]["world"] == "homogeneous" and cfg["config"]["herding_branching"] == 0.0
    assert main(["simulate", "--world", "mars", "--days", "1", "--out", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_default_world_facts_inside_the_real_bands_on_two_seeds():
    """The acceptance check of the default world (seeds 12 and 14, binanceusdm, 30 days)."""
    from liqlab.stats.facts import band_check, stylized_facts

    for seed in (12, 14):
        m = simulate_market(days=30, seed=seed, venues=("binanceusdm",))
        checks = band_check(stylized_facts(m.collection))
        assert checks["inside"].all(), checks[~checks["inside"]].to_string()


def test_homogeneous_world_is_outside_the_bands():
    """The first simulator's open interest lacks the real fat tails: the bands tell the worlds apart."""
    from liqlab.stats.facts import band_check, stylized_facts

    m = simulate_market(days=10, seed=12, venues=("binanceusdm",), world="homogeneous")
    checks = band_check(stylized_facts(m.collection)).set_index(["step", "fact"])
    assert not checks.loc[("native", "doi_kurtosis"), "inside"]
    assert not checks.loc[("native", "doi_top10_share"), "inside"]
