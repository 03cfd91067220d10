"""Known answers for every audited claim's statistic: a world where the claim holds and one where it does
not. Worlds are small (days, one venue, 99 bootstrap replications) and SYNTHETIC; where the agent
simulator has no mechanism for a claim (4, 5, 7), the world is built directly at the series level.
Every simulated pair is checked on two seeds, and the assertions compare on against off."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqlab.sim.simulation import simulate_market
from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings

S = AuditSettings(bootstrap_reps=99)
SEEDS = (11, 12)


def _world(days: float = 8.0, venues=("binanceusdm",), **knobs) -> Subject:
    m = simulate_market(days=days, warmup_days=3.0, venues=venues, **knobs)
    return Subject(name=f"sim {knobs}", kind="synthetic", data=m.collection, seed=knobs.get("seed"))


@pytest.mark.parametrize("seed", SEEDS)
def test_claim1_magnet_lift_sees_the_hunter(seed):
    from liqlab.stats.audit.magnet import magnet_run

    on = magnet_run(_world(seed=seed, hunt_intensity=0.6), S)
    off = magnet_run(_world(seed=seed), S)
    assert on.effect > off.effect + 0.03
    assert on.p_value < 0.1 and on.ci[0] < on.effect < on.ci[1]
    assert not (off.effect > 0 and off.p_value < 0.05)  # no hunter: no attraction beyond ½


def test_claim1_vacuum_race_is_a_fair_coin_without_hunters():
    from liqlab.stats.audit.magnet import vacuum_run

    r = vacuum_run(_world(days=12, seed=SEEDS[0]), S)
    assert r.window.startswith("test")
    assert r.effect is None or (r.ci is None or r.ci[0] <= 0.0 <= r.ci[1]) or r.n < 10


@pytest.mark.parametrize("seed", SEEDS)
def test_claim2_next_range_after_heavy_liquidations_grows_with_cascade_impact(seed):
    from liqlab.stats.audit.cascades import cascade_run

    on = cascade_run(_world(seed=seed, cascade_impact=4.0), S)
    off = cascade_run(_world(seed=seed), S)
    assert on.effect > 0 and on.p_value < 0.05
    assert not (off.effect > 0 and off.p_value < 0.05) and off.effect < on.effect
    assert set(on.extra["dose_response_by_swept_tercile"]) <= {"usd", "share_of_oi"}
    assert on.extra["next_range_change_pct"] == pytest.approx(100 * (math.exp(on.effect) - 1))


def test_claim2_needs_realized_liquidations():
    import dataclasses

    from liqlab.io.dataset import Collection
    from liqlab.stats.audit.cascades import cascade_run

    w = _world(days=3, seed=1)
    ds = dataclasses.replace(w.data.datasets[0], liquidations=None)
    r = cascade_run(Subject("no liq", "synthetic", Collection(datasets=(ds,), path=None, meta=w.data.meta)), S)
    assert r.effect is None and "realized" in r.note


@pytest.mark.parametrize("seed", SEEDS)
def test_claim3_older_levels_lose_weight_when_positions_close_fast(seed):
    from liqlab.stats.audit.age import age_run

    fast = age_run(_world(days=15, seed=seed, holding_median_hours=1.0), S)
    slow = age_run(_world(days=15, seed=seed, holding_median_hours=400.0, holding_max_days=60.0), S)
    assert fast.effect < slow.effect - 0.1  # fast turnover: the older the crossed levels, the less they fire
    assert len(fast.extra["beta_by_bucket"]) == 4 and fast.extra["edges_hours"] == [2.0, 6.0, 24.0]


def test_claim3_bucket_sweeps_add_up_to_the_full_map():
    from liqlab.stats.audit.age import age_sweeps
    from liqlab.stats.steps import heatmap_swept

    w = _world(days=4, seed=2)
    L, S_, _ = age_sweeps(w)
    full_l, full_s = heatmap_swept(w.heatmap.with_params(max_age_hours=None), w.data)
    ok = np.isfinite(full_l)
    np.testing.assert_allclose(L[:, ok].sum(0), full_l[ok], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(S_[:, ok].sum(0), full_s[ok], rtol=1e-6, atol=1e-3)


def test_claim4_rank_statistic_known_answer():
    """A series-level world: steps crossing single-venue clusters fire less (on) or the same (off)."""
    from liqlab.stats.audit.core import block_ci, fire_rank

    rng = np.random.default_rng(5)
    f = rng.uniform(0, 1, 400)
    noise = rng.lognormal(0, 0.5, 400)
    on_rate, off_rate = 0.2 * (1 - 0.8 * f) * noise, 0.2 * noise
    lo, hi, p = block_ci(lambda ix: fire_rank(f[ix], on_rate[ix]), 400, 199, 0)
    assert fire_rank(f, on_rate) < -0.3 and hi < 0 and p < 0.05
    lo, hi, p = block_ci(lambda ix: fire_rank(f[ix], off_rate[ix]), 400, 199, 0)
    assert lo < 0 < hi


def test_claim4_permuted_agreement_carries_nothing():
    from liqlab.stats.audit.venues import venue_run

    w = _world(days=10, seed=SEEDS[0], venues=("binanceusdm", "bybit", "okx"))
    off = venue_run(w, S, permute_seed=1, attraction=False)
    assert off.ci is not None and off.ci[0] < 0 < off.ci[1]
    one = venue_run(_world(days=2, seed=1), S)
    assert one.effect is None and "one venue" in one.note


def test_claim5_pooled_gain_known_answer():
    """Two assets whose next range responds to notional relative to their own size (on) or not at all."""
    from liqlab.stats.audit.assets import pooled_gain

    rng = np.random.default_rng(3)
    parts_on, parts_off = [], []
    for scale in (1e9, 5e7):  # a large and a small market
        x = rng.lognormal(0, 1, 300) * scale * 0.01
        rel = x / scale
        y = np.log(1e-3 + 0.5 * rel) + rng.normal(0, 0.3, 300)
        parts_on.append((x, rel, y))
        parts_off.append((x, rel, rng.normal(-6, 0.3, 300)))
    assert pooled_gain(parts_on) > 0.2
    assert abs(pooled_gain(parts_off)) < 0.1


def test_claim5_needs_two_assets():
    from liqlab.stats.audit.assets import asset_run

    w = _world(days=2, seed=1)
    assert asset_run([w], S).effect is None


@pytest.mark.parametrize("seed", SEEDS)
def test_claim6_topups_lower_the_fire_rate_of_crossed_notional(seed):
    from liqlab.stats.audit.topup import paired_topup_run, share_run

    off = _world(days=10, seed=seed)
    on = paired_topup_run(_world(days=10, seed=seed, margin_topup=0.5), off, S)
    assert on.effect < -0.2 and on.ci[1] < 0 and on.p_value < 0.05
    assert on.extra["fire_rate_on"] < on.extra["fire_rate_off"]
    same = paired_topup_run(off, off, S)
    assert same.effect == 0.0
    share = share_run(off, S)
    assert 0.0 <= share.effect <= 1.0


def _reflecting_market(seed: int, bounce: bool, days: float = 20.0):
    """A 1m random walk with one cluster an hour at 0.5–1.5 σ_H; with ``bounce`` the walk reflects off it."""
    from liqlab.stats.magnet import HOUR_NS, Bars

    rng = np.random.default_rng(seed)
    n, sd = int(days * 1440), 8e-4
    x = np.empty(n + 1)
    x[0] = math.log(50_000.0)
    level = np.full(n, np.nan)
    inc = rng.normal(0, sd, n)
    for h in range(n // 60):
        i0 = h * 60
        d = rng.uniform(0.5, 1.5) * sd * math.sqrt(60) * rng.choice([-1, 1])
        lev = x[i0] + d
        for i in range(i0, i0 + 60):
            level[i] = lev
            nxt = x[i] + inc[i]
            if bounce and (x[i] - lev) * (nxt - lev) <= 0:  # crossing: reflect back to the starting side
                nxt = 2 * lev - nxt
            x[i + 1] = nxt
    p = np.exp(x)
    bar_ns = 60_000_000_000
    ts = np.arange(n, dtype=np.int64) * bar_ns + 1_704_067_200_000_000_000
    bars = Bars(ts=ts, open=p[:-1], high=np.maximum(p[:-1], p[1:]), low=np.minimum(p[:-1], p[1:]), close=p[1:],
                bar_ns=bar_ns)
    times = ts[0] + np.arange(1, int(days * 24), dtype=np.int64) * HOUR_NS
    prices = np.exp(np.arange(x.min() - 0.05, x.max() + 0.05, 5e-4))
    long = np.zeros((len(times), len(prices)))
    short = np.zeros_like(long)
    for j in range(len(times)):
        i = min(j * 60 + 60, n - 1)
        b = int(np.argmin(np.abs(np.log(prices) - level[i])))
        (short if level[i] > x[i] else long)[j, b] = 1e6
    return times, prices, long, short, bars


@pytest.mark.parametrize("seed", SEEDS)
def test_claim7_bounce_difference_known_answer(seed):
    from liqlab.stats.audit.bounce import bounce_run
    from liqlab.stats.magnet import MagnetParams, find_events

    p = MagnetParams(atr_periods=4, min_distance_bp=0.0, k_atr=3.0, bootstrap_reps=99)
    runs = {}
    for bounce in (True, False):
        ev = find_events(*_reflecting_market(seed, bounce), p)
        runs[bounce] = bounce_run(Subject("constructed", "synthetic", None), S, events=ev)
    assert runs[True].effect > 0.2 and runs[True].ci[0] > 0
    assert runs[False].ci[0] < 0 < runs[False].ci[1]


def test_claim7_bounce_difference_counts_each_level_over_its_touches():
    from liqlab.stats.audit.bounce import bounce_difference

    c = np.array([-1.0, -2.0, 3.0, np.nan])
    m = np.array([1.0, np.nan, -1.0, 2.0])
    assert bounce_difference(c, m) == pytest.approx(2 / 3 - 1 / 3)
    assert math.isnan(bounce_difference(np.array([np.nan]), m))
