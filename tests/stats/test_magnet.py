"""Tests of liqlab.stats.magnet: the first-passage statistic on constructed paths where the answer is known,
the inference helpers (bootstrap, HAC, logit, BY, SPA/StepM, Kaplan–Meier), and the pipeline."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom

from liqlab.errors import DataError, ParameterError
from liqlab.stats.magnet import (
    HOUR_NS,
    Bars,
    MagnetParams,
    acceleration,
    by_qvalues,
    dose_response,
    find_events,
    hac_mean_test,
    kaplan_meier,
    lift_test,
    logit_test,
    random_level_hits,
    spa_grid,
    touch_curves,
)

T0 = np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64)
MIN_NS = 60_000_000_000


# ----------------------------------------------------------------------------------- constructions


def bars_from_logpath(x: np.ndarray, sub: int = 4) -> Bars:
    """1m bars from a log-price path sampled ``sub`` times per bar (open = first, close = last)."""
    n = (len(x) - 1) // sub
    seg = np.stack([x[i * sub : i * sub + sub + 1] for i in range(n)])
    p = np.exp(seg)
    ts = T0 + np.arange(n, dtype=np.int64) * MIN_NS
    return Bars(ts=ts, open=p[:, 0], high=p.max(axis=1), low=p.min(axis=1), close=p[:, -1], bar_ns=MIN_NS)


def grid_heatmap(bars: Bars, step_hours: float = 1.0, bin_bp: float = 5.0):
    """Empty (T, B) maps on a log grid around the traded range, times = step ends."""
    step = int(step_hours * HOUR_NS)
    end = int(bars.ts[-1]) + bars.bar_ns
    times = np.arange(T0 + step, end + 1, step, dtype=np.int64)
    lo, hi = math.log(bars.low.min()) - 0.1, math.log(bars.high.max()) + 0.1
    prices = np.exp(np.arange(lo, hi, bin_bp * 1e-4))
    z = np.zeros((len(times), len(prices)))
    return times, prices, z.copy(), z.copy()


def price_at(bars: Bars, t: int) -> float:
    return float(bars.close[np.searchsorted(bars.ts, t - bars.bar_ns, "right") - 1])


def put(prices, row, P, d, mass=1e6):
    """Put ``mass`` USD in the bin nearest to log-distance d (signed) from P."""
    b = int(np.argmin(np.abs(np.log(prices) - (math.log(P) + d))))
    row[b] += mass
    return b


def zigzag_path(days: int, up_first: bool, amp: float = 0.015, period_h: int = 4, sub: int = 4) -> np.ndarray:
    """Log path: in every period go ±amp over the first half and back over the second (+ tiny noise)."""
    n_per = period_h * 60 * sub
    half = n_per // 2
    one = np.r_[np.linspace(0, amp, half, endpoint=False), np.linspace(amp, 0, n_per - half, endpoint=False)]
    if not up_first:
        one = -one
    x = np.tile(one, days * 24 // period_h)
    return math.log(50_000) + np.r_[x, 0.0]


PARAMS = MagnetParams(horizon_hours=4.0, k_atr=3.0, atr_periods=24, min_distance_bp=5.0, bootstrap_reps=199)


def cluster_each_step(bars, times, prices, long, short, side: int, d: float):
    for j, t in enumerate(times):
        if t <= bars.ts[0] + bars.bar_ns:
            continue
        P = price_at(bars, int(t))
        put(prices, short[j] if side > 0 else long[j], P, side * d)


# ------------------------------------------------------------------------------- known answers


def test_path_that_always_hits_the_cluster_gives_p_hat_one():
    bars = bars_from_logpath(zigzag_path(6, up_first=True))
    times, prices, long, short = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long, short, side=+1, d=0.01)  # cluster 1% above, mirror 1% below
    ev = find_events(times, prices, long, short, bars, PARAMS)
    decided = ev[ev["y"].notna()]
    assert len(decided) >= 20
    assert (ev["side"] == 1).all()
    assert decided["y"].eq(1.0).all()
    assert not ev["untouched"].any() and not ev["double"].any()
    res = lift_test(decided["y"].to_numpy(), reps=199)
    assert res["p_hat"] == 1.0 and res["lift"] == 0.5
    assert res["ci_low"] == 1.0 and res["p_value"] < 0.01


def test_path_that_never_hits_the_cluster_gives_p_hat_zero():
    bars = bars_from_logpath(zigzag_path(6, up_first=True))
    times, prices, long, short = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long, short, side=-1, d=0.01)  # cluster below; price rises to the mirror
    ev = find_events(times, prices, long, short, bars, PARAMS)
    decided = ev[ev["y"].notna()]
    assert len(decided) >= 20
    assert (ev["side"] == -1).all() and decided["y"].eq(0.0).all()
    res = lift_test(decided["y"].to_numpy(), reps=199)
    assert res["p_hat"] == 0.0 and res["ci_high"] == 0.0 and res["p_value"] < 0.01


def test_untouched_levels_are_counted_not_decided():
    # amplitude 0.5% never reaches a level 1% away: every event is untouched
    bars = bars_from_logpath(zigzag_path(4, up_first=True, amp=0.005))
    times, prices, long, short = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long, short, side=+1, d=0.01)
    ev = find_events(times, prices, long, short, bars, PARAMS.replace(k_atr=10.0))
    assert len(ev) > 5 and ev["untouched"].all() and ev["y"].isna().all()
    assert np.isnan(ev["tau_cluster_h"]).all()


def test_same_bar_double_touch_is_dropped_and_counted():
    # one huge bar right after each decision time spans both levels
    n = 4 * 24 * 60
    ts = T0 + np.arange(n, dtype=np.int64) * MIN_NS
    close = np.full(n, 50_000.0)
    high = close * 1.001
    low = close * 0.999
    rng = np.random.default_rng(1)
    high *= np.exp(np.abs(rng.normal(0, 0.002, n)))
    low *= np.exp(-np.abs(rng.normal(0, 0.002, n)))
    for i in range(0, n, 240):  # each 4h decision at multiples of 4h: the first bar of the window is wide
        if i > 0:
            high[i] = close[i] * 1.05
            low[i] = close[i] * 0.95
    bars = Bars.from_arrays(ts, high, low, close, open=close.copy())
    times, prices, long, short = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long, short, side=+1, d=0.004)
    ev = find_events(times, prices, long, short, bars, PARAMS.replace(k_atr=1.0, min_distance_bp=1.0))
    assert len(ev) > 5
    assert ev["double"].all() and ev["y"].isna().all()


def test_only_information_up_to_t_is_used():
    """Changing the maps after a decision time, or the bars after the window, leaves that event alone."""
    rng = np.random.default_rng(3)
    bars = bars_from_logpath(math.log(50_000) + np.r_[0, np.cumsum(rng.normal(0, 4e-4, 4 * 1440 * 4))])
    times, prices, long, short = grid_heatmap(bars)
    for j, t in enumerate(times[1:], start=1):
        P = price_at(bars, int(t))
        put(prices, short[j], P, rng.uniform(0.002, 0.01))
        put(prices, long[j], P, -rng.uniform(0.002, 0.01), mass=rng.uniform(0.5e6, 2e6))
    ev = find_events(times, prices, long, short, bars, PARAMS)
    assert len(ev) > 3
    e0 = ev.iloc[1]
    j0 = int(e0["step"])
    long2, short2 = long.copy(), short.copy()
    long2[j0 + 1 :] = rng.uniform(0, 1e7, long2[j0 + 1 :].shape)
    short2[j0 + 1 :] = rng.uniform(0, 1e7, short2[j0 + 1 :].shape)
    ev2 = find_events(times, prices, long2, short2, bars, PARAMS)
    pd.testing.assert_series_equal(ev.iloc[1], ev2.iloc[1], check_names=False)
    # bars after the window end don't change it either (post-touch columns aside)
    t_end = int(e0["t"].value) + int(PARAMS.horizon_hours * HOUR_NS)
    cut = bars.between(None, t_end + 2 * HOUR_NS)
    ev3 = find_events(times[times <= int(e0["t"].value)], prices, long[: j0 + 1], short[: j0 + 1], cut, PARAMS)
    cols = ["t", "price", "side", "dist", "level", "mirror", "y", "tau_cluster_h", "tau_mirror_h", "dominance"]
    pd.testing.assert_series_equal(ev3.iloc[1][cols], e0[cols], check_names=False)


def random_walk_events(seed: int, days: int, params: MagnetParams, sd: float = 4e-4, bars: Bars | None = None):
    """Symmetric random walk in log price (or the given ``bars``), with clusters at random sides and
    distances: p = 1/2."""
    rng = np.random.default_rng(seed)
    sub = 4
    if bars is None:
        x = math.log(50_000) + np.r_[0, np.cumsum(rng.normal(0, sd, days * 1440 * sub))]
        bars = bars_from_logpath(x, sub)
    times, prices, long, short = grid_heatmap(bars, bin_bp=2.0)
    for j, t in enumerate(times[1:], start=1):
        P = price_at(bars, int(t))
        side = rng.choice([-1, 1])
        d = rng.uniform(0.002, 0.012)
        put(prices, short[j] if side > 0 else long[j], P, side * d, mass=2e6)
        put(prices, long[j] if side > 0 else short[j], P, -side * rng.uniform(0.002, 0.012), mass=1e6)
    return bars, find_events(times, prices, long, short, bars, params)


def test_symmetric_random_walk_p_hat_near_half_and_ci_covers_it():
    params = PARAMS.replace(horizon_hours=2.0, bootstrap_reps=999)
    _, ev = random_walk_events(seed=11, days=90, params=params)
    y = ev["y"].dropna().to_numpy()
    assert len(y) >= 600
    res = lift_test(y, reps=999, seed=5)
    se = math.sqrt(0.25 / len(y))
    assert abs(res["p_hat"] - 0.5) < 4 * se
    assert res["ci_low"] <= 0.5 <= res["ci_high"]
    assert res["ci_high"] - res["ci_low"] < 8 * se


def test_bootstrap_ci_coverage_on_random_walks():
    """Over independent random walks the 95% CI covers 1/2 at the nominal rate (binomial tolerance)."""
    params = PARAMS.replace(horizon_hours=2.0)
    reps = 80
    cover = reject = 0
    for s in range(reps):
        _, ev = random_walk_events(seed=1000 + s, days=8, params=params)
        res = lift_test(ev["y"].dropna().to_numpy(), reps=199, seed=s)
        cover += res["ci_low"] <= 0.5 <= res["ci_high"]
        reject += res["p_value"] <= 0.05
    # 0.1% binomial bounds around the nominal 95% / 5%
    assert cover >= binom.ppf(0.001, reps, 0.95)
    assert reject <= binom.ppf(0.999, reps, 0.05)


def test_mirror_reflection_invariance():
    """Reflecting log price (x -> 2c - x) and swapping long/short maps flips sides and keeps Y."""
    rng = np.random.default_rng(7)
    x = math.log(50_000) + np.r_[0, np.cumsum(rng.normal(0, 4e-4, 5 * 1440 * 4))]
    c = math.log(50_000)
    params = PARAMS.replace(smooth_bins=0)
    b1 = bars_from_logpath(x)
    b2 = bars_from_logpath(2 * c - x)
    times, prices, long, short = grid_heatmap(b1, bin_bp=2.0)
    # a symmetric grid around c so reflected bins exist exactly
    half = np.arange(1, 600) * 2e-4
    prices = np.exp(c + np.r_[-half[::-1], 0.0, half])
    long = np.zeros((len(times), len(prices)))
    short = np.zeros_like(long)
    for j, t in enumerate(times[1:], start=1):
        P = price_at(b1, int(t))
        put(prices, short[j], P, rng.uniform(0.002, 0.01), mass=rng.uniform(1, 3) * 1e6)
        put(prices, long[j], P, -rng.uniform(0.002, 0.01), mass=rng.uniform(1, 3) * 1e6)
    ev1 = find_events(times, prices, long, short, b1, params)
    ev2 = find_events(times, prices, short[:, ::-1], long[:, ::-1], b2, params)
    # reflection maps bin b to B-1-b: long map of the reflected world is the reversed short map
    assert len(ev1) == len(ev2) > 5
    np.testing.assert_array_equal(ev1["side"].to_numpy(), -ev2["side"].to_numpy())
    np.testing.assert_array_equal(ev1["y"].to_numpy(), ev2["y"].to_numpy())


def test_events_are_non_overlapping_and_dominance_filter():
    bars, ev = random_walk_events(seed=2, days=6, params=PARAMS)
    t = ev["t"].astype("int64").to_numpy()
    assert (np.diff(t) >= PARAMS.horizon_hours * HOUR_NS).all()
    assert (ev["dominance"] >= 1.0).all()
    strict = find_events(*grid_heatmap(bars)[:1], *grid_heatmap(bars)[1:], bars, PARAMS)  # empty maps
    assert len(strict) == 0


def test_find_events_shape_mismatch_raises():
    bars = bars_from_logpath(zigzag_path(2, True))
    times, prices, long, short = grid_heatmap(bars)
    with pytest.raises(DataError, match=r"\(T, B\)"):
        find_events(times, prices, long[:, :-1], short, bars, PARAMS)


def test_params_validation_names_parameter():
    with pytest.raises(ParameterError, match="horizon_hours"):
        MagnetParams(horizon_hours=0)
    with pytest.raises(ParameterError, match="unknown magnet parameter"):
        MagnetParams().replace(horizon=3)
    with pytest.raises(ParameterError, match="p0"):
        MagnetParams(p0=1.0)


# -------------------------------------------------------------------------------- inference helpers


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 48, allow_nan=False), min_size=1, max_size=60), st.data())
def test_kaplan_meier_properties(durations, data):
    d = np.asarray(durations)
    obs = np.asarray(data.draw(st.lists(st.booleans(), min_size=len(d), max_size=len(d))))
    km = kaplan_meier(d, obs)
    s = km["survival"].to_numpy()
    assert s[0] == 1.0 and np.all(np.diff(s) <= 1e-12) and np.all((s >= 0) & (s <= 1))
    if obs.all():  # no censoring: KM equals the empirical survival function
        for t, sv in zip(km["time"].to_numpy()[1:], s[1:]):
            assert sv == pytest.approx(np.mean(d > t), abs=1e-12)


def test_kaplan_meier_censoring_textbook_case():
    # durations 1,2(censored),3,3: S(1)=3/4, S(3)= 3/4 * (1 - 2/2) = 0
    km = kaplan_meier(np.array([1, 2, 3, 3.0]), np.array([True, False, True, True]))
    assert km["survival"].tolist() == [1.0, 0.75, 0.0]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=50))
def test_by_qvalues_properties(p):
    p = np.asarray(p)
    q = by_qvalues(p)
    assert np.all(q >= p - 1e-12) and np.all(q <= 1 + 1e-12)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= -1e-12)  # monotone in p


@settings(max_examples=30, deadline=None)
@given(st.integers(10, 200), st.floats(0.05, 0.95), st.integers(0, 10_000))
def test_lift_test_properties(n, p, seed):
    y = (np.random.default_rng(seed).random(n) < p).astype(float)
    r = lift_test(y, reps=99, seed=seed)
    assert r["n_events"] == n and r["p_hat"] == pytest.approx(y.mean())
    assert r["lift"] == pytest.approx(y.mean() - 0.5)
    assert 0 < r["p_value"] <= 1
    assert r["ci_low"] <= r["p_hat"] + 1e-12 or r["ci_high"] >= r["p_hat"] - 1e-12
    assert 0 <= r["ci_low"] <= r["ci_high"] <= 1


def test_lift_test_few_events_gives_nan_inference():
    r = lift_test(np.array([1.0, 0.0, 1.0]))
    assert r["n_events"] == 3 and math.isnan(r["p_value"]) and math.isnan(r["ci_low"])
    assert lift_test(np.array([]))["n_events"] == 0


def test_hac_matches_iid_se_without_autocorrelation():
    y = (np.random.default_rng(0).random(4000) < 0.5).astype(float)
    r = hac_mean_test(y)
    assert r["se"] == pytest.approx(math.sqrt(y.var() / len(y)), rel=0.1)


def test_logit_recovers_intercept_and_dominance_effect():
    rng = np.random.default_rng(4)
    n = 3000
    dom = np.exp(rng.uniform(0, 2, n))
    mom = rng.normal(0, 0.01, n)
    side = rng.choice([-1, 1], n)
    eta = 0.3 + 0.5 * np.log(dom)
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    ev = pd.DataFrame({"y": y, "side": side, "momentum": mom, "funding": np.zeros(n), "dominance": dom})
    r = logit_test(ev)
    assert r["ok"] and "side_funding" not in r["terms"]  # no variation: dropped
    assert abs(r["coef"]["const"] - 0.3) < 4 * r["se"]["const"]
    assert abs(r["coef"]["log_dominance"] - 0.5) < 4 * r["se"]["log_dominance"]


def test_logit_perfect_separation_reports_not_ok():
    ev = pd.DataFrame({"y": np.ones(50), "side": np.ones(50), "momentum": np.linspace(0, 1, 50),
                       "funding": np.zeros(50), "dominance": np.full(50, 2.0)})
    assert logit_test(ev)["ok"] is False


def test_dose_response_bins_and_wilson_ci():
    rng = np.random.default_rng(0)
    dom = rng.uniform(1, 10, 1000)
    y = (rng.random(1000) < 0.3 + 0.04 * dom).astype(float)
    dr = dose_response(pd.DataFrame({"y": y, "dominance": dom}), n_bins=5)
    assert dr["n"].sum() == 1000 and len(dr) == 5
    assert (dr["ci_low"] <= dr["p_hat"]).all() and (dr["p_hat"] <= dr["ci_high"]).all()
    assert dr["p_hat"].iloc[-1] > dr["p_hat"].iloc[0]


def test_spa_and_stepm_find_the_real_effect_only():
    rng = np.random.default_rng(9)
    T = 400
    null = -(rng.random((T, 4)) < 0.5).astype(float) + 0.5  # loss −(Y − 1/2), mean 0
    good = -((rng.random((T, 1)) < 0.75).astype(float) - 0.5)  # lift 0.25
    r = spa_grid(np.hstack([null, good]), reps=499, seed=1)
    assert r["spa_p_value"] < 0.05 and r["stepm_superior"] == [4]
    r0 = spa_grid(null, reps=499, seed=1)
    assert r0["spa_p_value"] > 0.05 and r0["stepm_superior"] == []


def test_acceleration_and_random_levels_on_random_walk():
    bars, ev = random_walk_events(seed=21, days=10, params=PARAMS)
    a = acceleration(ev)
    assert a["n_cluster"] > 10 and a["n_mirror"] > 10 and math.isfinite(a["t_stat"])
    assert abs(a["t_stat"]) < 4  # no cascade in a random walk
    h = random_level_hits(ev, bars, PARAMS.horizon_hours, seed=0)
    assert h["n"] == len(ev)
    # clusters were placed at random: their hit rate matches the matched random levels (binomial slack)
    se = math.sqrt(0.25 / len(ev))
    assert abs(h["cluster_hit"] - h["random_hit"]) < 5 * math.sqrt(2) * se
    curves = touch_curves(ev, PARAMS.horizon_hours)
    assert set(curves) == {"cluster", "mirror"}
    assert curves["cluster"]["survival"].iloc[-1] < 1


# ------------------------------------------------------------------- pipeline on simulated markets


@pytest.fixture(scope="module")
def null_market():
    """A 5-day one-venue simulated market without feedback (the magnet null), in memory."""
    from liqlab.sim.simulation import simulate_market

    return simulate_market(days=5, seed=1, venues=("binanceusdm",)).collection


def test_magnet_test_pipeline_on_simulated_market(null_market):
    from liqlab.stats.magnet import magnet_test

    grid = {"half_life_hours": [24.0, 168.0], "k_atr": [1.0, 2.0]}
    r = magnet_test(null_market, {"time_step": "1h"}, {"bootstrap_reps": 99}, pipeline_reps=2, grid=grid,
                    progress=False)
    s = r.to_json_dict()
    for k in ("n_events", "untouched_share", "p_hat", "p0", "lift", "ci_low", "ci_high", "p_value", "placebo_lift",
              "spa_p_value", "chosen"):
        assert k in s, k
    assert s["synthetic"] is True and s["n_events"] == int(r.events["y"].notna().sum()) > 0
    assert s["lift"] == pytest.approx(s["p_hat"] - 0.5)
    assert len(r.grid.table) == 4 and set(s["chosen"]) == {"half_life_hours", "k_atr"}
    assert len(r.null_lifts) == 2 and s["pipeline_null"]["reps"] == 2
    tab = r.grid.table.dropna(subset=["p_value"])
    assert len(tab) >= 1 and (tab["q_value_by"] >= tab["p_value"] - 1e-12).all()
    oos = s["grid"]["out_of_sample"]
    assert oos["n_events"] >= 0 and pd.Timestamp(s["grid"]["split_time"]) > pd.Timestamp(s["data_start"])
    json.dumps(s)  # valid JSON (NaN -> null)


def test_placebo_data_has_constant_oi_steps_and_same_prices(null_market):
    from liqlab.stats.magnet import placebo_data

    ds = null_market["binanceusdm"]
    pl = placebo_data(ds)
    d = np.diff(pl.open_interest["open_interest"].to_numpy())
    assert np.allclose(d, d[0]) and d[0] > 0
    pd.testing.assert_frame_equal(pl.ohlcv, ds.ohlcv)
    assert "placebo" in pl.meta["notes"]


def test_bootstrap_path_keeps_ohlc_consistent_and_oi(null_market):
    from liqlab.io.dataset import validate_table
    from liqlab.stats.magnet import bootstrap_path_dataset

    ds = null_market["binanceusdm"]
    b = bootstrap_path_dataset(ds, seed=3)
    validate_table("ohlcv", b.ohlcv)  # high >= max(open, close), low <= min(open, close), prices > 0
    assert not np.allclose(b.ohlcv["close"].to_numpy(), ds.ohlcv["close"].to_numpy())
    np.testing.assert_array_equal(b.open_interest["open_interest"].to_numpy(), ds.open_interest["open_interest"].to_numpy())
    # same multiset of bar log returns (resampled, not invented) up to the blocks drawn
    r0 = np.log(ds.ohlcv["close"].to_numpy()[1:] / ds.ohlcv["close"].to_numpy()[:-1])
    r1 = np.log(b.ohlcv["close"].to_numpy()[1:] / b.ohlcv["close"].to_numpy()[:-1])
    assert np.isin(np.round(r1, 12), np.round(r0, 12)).mean() > 0.99
    b2 = bootstrap_path_dataset(ds, seed=3)
    pd.testing.assert_frame_equal(b.ohlcv, b2.ohlcv)  # seeded


@pytest.mark.slow
def test_strong_hunters_are_detected():
    """30 days with strong hunters (the calibration's largest effect): the primary test rejects, lift > 0."""
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.stats.magnet import events_for
    from liqlab.sim.simulation import simulate_market

    ds = simulate_market(days=30, seed=0, venues=("binanceusdm",), hunt_intensity=0.4).collection["binanceusdm"]
    ev = events_for(build_heatmap(ds, time_step="1h"), ds, MagnetParams())
    r = lift_test(ev["y"].dropna().to_numpy(), reps=499)
    assert r["lift"] > 0 and r["p_value"] < 0.05 and r["ci_low"] > 0.5


def test_cli_magnet_writes_json_and_bad_input_is_one_line(small_sim, tmp_path, capsys):
    from liqlab.app.cli import main

    out = tmp_path / "m.json"
    rc = main(["magnet", str(small_sim), "--json", str(out), "--bootstrap-reps", "99", "--no-progress",
               "--grid", "k_atr=1,2;horizon_hours=1,2"])
    assert rc == 0
    s = json.loads(out.read_text())
    assert {"n_events", "untouched_share", "p_hat", "p0", "lift", "ci_low", "ci_high", "p_value", "placebo_lift",
            "spa_p_value", "chosen"} <= set(s)
    assert "SYNTHETIC" in capsys.readouterr().out
    for argv, needle in ((["magnet", str(tmp_path / "nope"), "--json", str(out)], "nope"),
                         (["magnet", str(small_sim), "--json", str(out), "--grid", "speed=1,2"], "grid"),
                         (["magnet", str(small_sim), "--json", str(out), "--horizon", "-1"], "horizon_hours")):
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------- OI-vs-placebo contrasts


def two_maps(bars, oi_side: int, placebo_side: int, d: float = 0.01):
    """An OI map with its cluster on ``oi_side`` and a placebo map with its cluster on ``placebo_side``."""
    times, prices, long, short = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long, short, side=oi_side, d=d)
    _, _, long_pl, short_pl = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long_pl, short_pl, side=placebo_side, d=d)
    return times, prices, long, short, long_pl, short_pl


def test_discordant_race_path_to_the_oi_side_rejects():
    from liqlab.stats.magnet import discordant_contrast

    bars = bars_from_logpath(zigzag_path(6, up_first=True))  # price goes up first: the OI side wins every race
    times, prices, long, short, long_pl, short_pl = two_maps(bars, oi_side=+1, placebo_side=-1)
    ev = find_events(times, prices, long, short, bars, PARAMS)
    ev_pl = find_events(times, prices, long_pl, short_pl, bars, PARAMS)
    res = discordant_contrast(ev, ev_pl, PARAMS)
    assert res["n_common"] == len(ev) and res["discordant_share"] == 1.0 and res["n_events"] >= 20
    assert res["p_hat"] == 1.0 and res["p_value"] < 0.01
    # the paired difference is +1 at every time (OI wins, placebo loses)
    assert res["paired"]["lift_diff"] == 1.0
    lose = discordant_contrast(ev_pl, ev, PARAMS)  # the maps swapped: the OI side loses every race
    assert lose["p_hat"] == 0.0 and lose["p_value"] < 0.01


def test_discordant_race_identical_maps_have_no_race():
    from liqlab.stats.magnet import discordant_contrast

    bars = bars_from_logpath(zigzag_path(6, up_first=True))
    times, prices, long, short, _, _ = two_maps(bars, oi_side=+1, placebo_side=+1)
    ev = find_events(times, prices, long, short, bars, PARAMS)
    res = discordant_contrast(ev, ev.copy(), PARAMS)
    assert res["n_discordant"] == 0 and res["discordant_share"] == 0.0 and res["level_differs_share"] == 0.0
    assert res["n_events"] == 0 and math.isnan(res["p_value"])
    assert res["paired"]["lift_diff"] == 0.0


def test_discordant_race_is_calibrated_on_random_walks():
    """Two independent random maps on exogenous random walks: the race rejects at about alpha."""
    from liqlab.stats.magnet import discordant_contrast

    params = PARAMS.replace(horizon_hours=2.0)
    reps = 60
    reject = 0
    p_hats = []
    for s in range(reps):
        bars, ev = random_walk_events(seed=2000 + s, days=8, params=params)
        _, ev_pl = random_walk_events(seed=5000 + s, days=8, params=params, bars=bars)
        res = discordant_contrast(ev, ev_pl, params)
        assert 0.3 < res["discordant_share"] < 0.7  # independent sides disagree about half the time
        reject += res["p_value"] <= 0.05
        p_hats.append(res["p_hat"])
    assert reject <= binom.ppf(0.999, reps, 0.05)
    assert abs(np.mean(p_hats) - 0.5) < 4 * math.sqrt(0.25 / reps / 40)


def test_excess_maps_known_answer():
    from liqlab.stats.magnet import excess_maps

    pl_long = np.array([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pl_short = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    # OI map = 2 x placebo plus 4 USD at the last bin; the per-row scale is 12/4 = 3
    long, short = 2 * pl_long, 2 * pl_short + np.array([[0, 0, 0, 4.0], [0, 0, 0, 0]])
    el, es = excess_maps(long, short, pl_long, pl_short)
    np.testing.assert_allclose(el, 0.0)
    np.testing.assert_allclose(es, [[0, 0, 0, 4.0], [0, 0, 0, 0]])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 10.0))
def test_excess_maps_properties(seed, k):
    """Non-negative; zero when the OI map is proportional to the placebo map; never above the OI map."""
    from liqlab.stats.magnet import excess_maps

    rng = np.random.default_rng(seed)
    pl_long, pl_short = rng.exponential(1.0, (3, 7)), rng.exponential(1.0, (3, 7))
    el, es = excess_maps(k * pl_long, k * pl_short, pl_long, pl_short)
    assert np.allclose(el, 0.0, atol=1e-9 * k) and np.allclose(es, 0.0, atol=1e-9 * k)
    long, short = rng.exponential(1.0, (3, 7)), rng.exponential(1.0, (3, 7))
    el, es = excess_maps(long, short, pl_long, pl_short)
    assert (el >= 0).all() and (es >= 0).all() and (el <= long + 1e-12).all() and (es <= short + 1e-12).all()


def test_excess_contrast_path_to_the_oi_specific_cluster_rejects():
    """The placebo map's cluster is below price; the OI map adds an OI-specific cluster above, and price
    goes up first: the excess maps point up and win every event."""
    from liqlab.stats.magnet import excess_contrast, excess_maps

    bars = bars_from_logpath(zigzag_path(6, up_first=True))
    times, prices, _, _, long_pl, short_pl = two_maps(bars, oi_side=+1, placebo_side=-1)
    times, prices, long_x, short_x = grid_heatmap(bars)
    cluster_each_step(bars, times, prices, long_x, short_x, side=+1, d=0.01)
    long, short = 3 * long_pl + 0.5 * long_x, 3 * short_pl + 0.5 * short_x  # placebo map dominates below
    assert find_events(times, prices, long, short, bars, PARAMS)["side"].eq(-1).all()
    ev_ex = find_events(times, prices, *excess_maps(long, short, long_pl, short_pl), bars, PARAMS)
    assert ev_ex["side"].eq(1).all()
    res = excess_contrast(ev_ex, PARAMS)
    assert res["n_events"] >= 20 and res["p_hat"] == 1.0 and res["p_value"] < 0.01


def test_cli_magnet_takes_the_shared_engine_parameters(small_sim, tmp_path, capsys):
    """`liqlab magnet` builds its map from the same engine flags as `liqlab heatmap`/`validate`/`fit`, so the
    side split and margin model can be set; --heatmap-params is the same as --params-file; a bad engine
    value is one line naming the flag's parameter."""
    from liqlab.app.cli import main
    from liqlab.engine.params import HeatmapParams

    out = tmp_path / "m.json"
    pfile = tmp_path / "p.json"
    pfile.write_text(json.dumps(HeatmapParams().replace(half_life_hours=24.0).to_dict()))
    rc = main(["magnet", str(small_sim), "--json", str(out), "--bootstrap-reps", "99", "--no-progress", "--no-placebo",
               "--side-split", "candle", "--margin-model", "flat", "--time-step", "2h", "--heatmap-params", str(pfile)])
    assert rc == 0
    hp = json.loads(out.read_text())["heatmap_params"]
    assert (hp["side_split"], hp["margin_model"], hp["time_step"], hp["half_life_hours"]) == ("candle", "flat", "2h", 24.0)
    capsys.readouterr()
    rc = main(["magnet", str(small_sim), "--json", str(out), "--side-split", "sideways"])
    err = capsys.readouterr().err
    assert rc == 2 and "side_split" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
