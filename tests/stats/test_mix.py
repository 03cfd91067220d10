"""Tests of liqlab.stats.mix: distances between mixes, the mix regression, and the fast layer sweeps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liqlab.errors import ParameterError
from liqlab.stats import mix as F
from liqlab.stats import steps as V

# ----------------------------------------------------------------------------------------- distance


def test_weights_distance_known_values():
    d = F.weights_distance([5, 10], [1, 1], [5, 10], [2, 2])
    assert d["total_variation"] == 0.0 and d["mean_log_leverage_diff"] == 0.0
    d = F.weights_distance([5], [1], [10], [1])  # disjoint supports
    assert d["total_variation"] == 1.0
    assert d["mean_log_leverage_diff"] == pytest.approx(math.log(5) - math.log(10))
    d = F.weights_distance([5, 10, 20], [0.5, 0.5, 0], [10, 20], [0.5, 0.5])  # aligned on the union
    assert d["total_variation"] == pytest.approx(0.5)
    with pytest.raises(ParameterError):
        F.weights_distance([5], [0], [5], [1])


@settings(deadline=None)
@given(hnp.arrays(np.float64, 4, elements=st.floats(0.01, 10)), hnp.arrays(np.float64, 4, elements=st.floats(0.01, 10)))
def test_weights_distance_is_a_bounded_symmetric_metric(a, b):
    lev = [5, 10, 20, 50]
    ab = F.weights_distance(lev, a, lev, b)["total_variation"]
    ba = F.weights_distance(lev, b, lev, a)["total_variation"]
    assert 0 <= ab <= 1 and ab == pytest.approx(ba)
    assert F.weights_distance(lev, a, lev, a * 3)["total_variation"] == pytest.approx(0, abs=1e-12)


# ------------------------------------------------------------------------------- mix regression


def _layers(K=4, T=400, seed=0):
    rng = np.random.default_rng(seed)
    # sparse, heavy-tailed sweeps (most steps sweep nothing from a layer), USD
    SL = rng.pareto(1.5, (K, T)) * 1e6 * (rng.random((K, T)) < 0.3)
    SS = rng.pareto(1.5, (K, T)) * 1e6 * (rng.random((K, T)) < 0.3)
    return SL, SS


def test_mix_regression_exact_data_gives_the_true_coefficients():
    SL, SS = _layers()
    beta = np.array([0.3, 0.1, 0.0, 0.2])
    rl, rs = beta @ SL + 5e4, beta @ SS + 1e4
    mask = np.ones(SL.shape[1], bool)
    res = F.mix_regression(SL, SS, rl, rs, mask, np.ones(4, bool), np.full(4, 0.25))
    np.testing.assert_allclose(res.coef, beta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.intercepts, (5e4, 1e4), rtol=1e-5)
    np.testing.assert_allclose(res.weights, beta / beta.sum(), atol=1e-8)
    assert res.swept_mass == pytest.approx(0.6) and res.deviance == pytest.approx(0.0, abs=1e-3)
    # a layer left out keeps its prior weight; the others share the rest in proportion to beta
    ident = np.array([True, True, True, False])
    prior = np.array([0.1, 0.2, 0.3, 0.4])
    res = F.mix_regression(SL, SS, beta[:3] @ SL[:3], beta[:3] @ SS[:3], mask, ident, prior)
    np.testing.assert_allclose(res.weights, [0.6 * 0.75, 0.6 * 0.25, 0.0, 0.4], atol=1e-8)
    assert res.coef[3] == 0.0


def test_mix_regression_recovers_the_mix_from_noisy_counts():
    """Realized = a compound-Poisson draw around the model (liquidations come in chunks of $50k)."""
    SL, SS = _layers(T=3000, seed=1)
    beta = np.array([0.05, 0.3, 0.15, 0.0])
    rng = np.random.default_rng(2)
    chunk = 5e4
    rl = rng.poisson((beta @ SL + 2e4) / chunk) * chunk
    rs = rng.poisson((beta @ SS + 2e4) / chunk) * chunk
    res = F.mix_regression(SL, SS, rl, rs, np.ones(3000, bool), np.ones(4, bool), np.full(4, 0.25))
    np.testing.assert_allclose(res.coef, beta, atol=0.01)
    assert F.weights_distance([1, 2, 3, 4], res.weights, [1, 2, 3, 4], beta)["total_variation"] < 0.03


def test_mix_regression_uses_only_masked_finite_steps_and_falls_back_to_the_prior():
    SL, SS = _layers()
    beta = np.array([0.3, 0.1, 0.05, 0.2])
    rl, rs = beta @ SL, beta @ SS
    mask = np.ones(SL.shape[1], bool)
    mask[:100] = False
    rl_bad = rl.copy()
    rl_bad[:100] = 1e12  # outside the mask: ignored
    rl_bad[150] = np.nan  # not finite: ignored
    res = F.mix_regression(SL, SS, rl_bad, rs, mask, np.ones(4, bool), np.full(4, 0.25))
    np.testing.assert_allclose(res.coef, beta, rtol=1e-6)
    prior = np.array([1.0, 2.0, 3.0, 4.0])
    res = F.mix_regression(SL, SS, np.zeros_like(rl), np.zeros_like(rs), mask, np.ones(4, bool), prior)
    np.testing.assert_allclose(res.weights, prior / prior.sum())
    with pytest.raises(ParameterError, match="shapes"):
        F.mix_regression(SL, SS, rl, rs, mask, np.ones(3, bool), prior)


@settings(deadline=None, max_examples=30)
@given(st.integers(0, 10_000), hnp.arrays(np.bool_, 4), hnp.arrays(np.float64, 4, elements=st.floats(0.01, 5)))
def test_mix_regression_weights_are_a_mix_that_keeps_the_prior_where_nothing_is_known(seed, ident, prior):
    SL, SS = _layers(T=100, seed=seed)
    rng = np.random.default_rng(seed)
    rl, rs = rng.random(100) * 1e6, rng.random(100) * 1e6
    res = F.mix_regression(SL, SS, rl, rs, np.ones(100, bool), ident, prior)
    assert res.weights.sum() == pytest.approx(1.0) and (res.weights >= 0).all() and (res.coef >= 0).all()
    assert (res.coef[~ident] == 0).all()
    p = prior / prior.sum()
    if (~ident).any() and ident.any() and res.coef.sum() > 0:
        np.testing.assert_allclose(res.weights[~ident], p[~ident], rtol=1e-9)


# ---------------------------------------------------------------------------------- with the engine


@pytest.fixture(scope="module")
def sim(small_sim):
    from liqlab.io.dataset import load_collection

    return load_collection(small_sim)


def test_layer_sweeps_equal_the_weighted_map_sweep(sim):
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.params import preset_weights

    for rule in ("proportional", "highest_leverage"):
        hm = build_heatmap(sim, oi_decrease=rule)
        start, end, _ = V.heatmap_step_edges(hm)
        bars = [V.step_bars(d, start, end) for d in sim]
        sw = F.LayerSweeps(hm, sim, bars)
        w = preset_weights("retail-high", hm.params.leverages)
        got_l, got_s = sw.swept(48.0, w, 0.5)
        hm2 = hm.with_params(leverage_preset="retail-high", half_life_hours=48.0, half_life_exponent=0.5)
        want_l, want_s = V.heatmap_swept(hm2, sim, bars)
        np.testing.assert_allclose(got_l[1:], want_l[1:], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(got_s[1:], want_s[1:], rtol=1e-5, atol=1e-3)
        assert np.isnan(got_l[0])
