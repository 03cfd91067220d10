"""The rank metrics of liqlab.stats.metrics: known values, scipy cross-checks and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liqlab.errors import ParameterError
from liqlab.stats import metrics as M

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
small_ints = st.integers(-5, 5).map(float)  # many ties


def _arr(n_min=3, n_max=60, elements=finite):
    return hnp.arrays(np.float64, st.integers(n_min, n_max), elements=elements)


# ------------------------------------------------------------------------------------------ ranks


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_rank_metrics_depend_only_on_the_ranks_ties_included(data):
    """Average ranks: a strictly increasing transform of either series (ties stay ties) changes neither
    Spearman nor the AUC, and Spearman is symmetric."""
    n = data.draw(st.integers(3, 40))
    el = st.one_of(finite, small_ints)
    x = data.draw(hnp.arrays(np.float64, n, elements=el))
    y = data.draw(hnp.arrays(np.float64, n, elements=el))
    fx = np.where(x > 0, 8.0 * x, 2.0 * x)  # strictly increasing, not linear, exact in floating point
    a, b = M.spearman(x, y), M.spearman(fx, y)
    assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-9)
    c = M.spearman(y, x)
    assert (math.isnan(a) and math.isnan(c)) or a == pytest.approx(c, abs=1e-12)
    u, v = M.auc_exceedance(x, y), M.auc_exceedance(fx, y)
    assert (math.isnan(u) and math.isnan(v)) or u == pytest.approx(v, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_spearman_matches_scipy(data):
    from scipy.stats import spearmanr

    n = data.draw(st.integers(3, 40))
    el = st.one_of(finite, small_ints)
    x = data.draw(hnp.arrays(np.float64, n, elements=el))
    y = data.draw(hnp.arrays(np.float64, n, elements=el))
    ours = M.spearman(x, y)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(spearmanr(x, y)[0], abs=1e-9)


def test_spearman_known_values_and_nan_pairs():
    x = np.arange(10.0)
    assert M.spearman(x, x**3) == pytest.approx(1.0)
    assert M.spearman(x, -x) == pytest.approx(-1.0)
    y = x.copy()
    y[3] = np.nan  # dropped pair, still monotone
    assert M.spearman(x, y) == pytest.approx(1.0)
    assert math.isnan(M.spearman([1.0, 2.0], [1.0, 2.0]))


# ----------------------------------------------------------------------------- top-decile capture


def test_top_decile_capture_known_cases():
    n = 100
    real = np.zeros(n)
    real[:10] = 1.0  # all realized value in 10 steps
    good = np.zeros(n)
    good[:10] = 5.0
    assert M.top_decile_capture(good, real) == pytest.approx(1.0)
    assert M.top_decile_capture(-good, real) == pytest.approx(0.0)
    # a constant prediction picks 10% of the steps at random: expected capture = 10%
    assert M.top_decile_capture(np.ones(n), real) == pytest.approx(0.1)
    # half the value in the top decile
    half = np.zeros(n)
    half[:5] = 2.0
    half[50:55] = 2.0
    assert M.top_decile_capture(half, real) == pytest.approx(0.5)


def test_top_decile_capture_ties_at_cutoff_count_fractionally():
    # 20 steps: top 2 slots; three steps tied at the top, realized 3, 0, 0 -> 3 * 2/3 / 3 = 2/3
    pred = np.zeros(20)
    pred[:3] = 1.0
    real = np.zeros(20)
    real[0] = 3.0
    assert M.top_decile_capture(pred, real) == pytest.approx(2 / 3)


@settings(deadline=None)
@given(_arr(5, 60, st.one_of(small_ints, finite)), st.randoms(use_true_random=False))
def test_top_decile_capture_bounds_and_oracle(p, rnd):
    real = np.abs(np.array([rnd.random() for _ in p]))
    c = M.top_decile_capture(p, real)
    if real.sum() == 0:
        assert math.isnan(c)
        return
    assert 0.0 <= c <= 1.0 + 1e-12
    assert M.top_decile_capture(real, real) >= c - 1e-12  # the oracle captures the most


def test_top_decile_capture_rejects_bad_fraction():
    with pytest.raises(ParameterError):
        M.top_decile_capture([1, 2], [1, 2], fraction=0)


# ------------------------------------------------------------------------------------------- AUC


def _brute_auc(p, y):
    pos, neg = p[y], p[~y]
    tot = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg)
    return tot / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_auc_matches_pairwise_count(data):
    n = data.draw(st.integers(25, 60))
    p = data.draw(hnp.arrays(np.float64, n, elements=st.one_of(small_ints, finite)))
    r = data.draw(hnp.arrays(np.float64, n, elements=st.floats(0, 1e6)))
    y = r > np.quantile(r, 0.95)
    got = M.auc_exceedance(p, r)
    if y.all() or not y.any():
        assert math.isnan(got)
    else:
        assert got == pytest.approx(_brute_auc(p, y))


def test_auc_known_values():
    r = np.arange(100.0)  # top 5 steps exceed the 95th percentile
    assert M.auc_exceedance(r, r) == pytest.approx(1.0)
    assert M.auc_exceedance(-r, r) == pytest.approx(0.0)
    assert M.auc_exceedance(np.zeros(100), r) == pytest.approx(0.5)


# ------------------------------------------------------------------------------- partial Spearman


def test_partial_spearman_removes_common_driver():
    rng = np.random.default_rng(1)
    z = rng.normal(size=3000)
    x = z + 0.3 * rng.normal(size=3000)
    y = z + 0.3 * rng.normal(size=3000)
    assert M.spearman(x, y) > 0.8
    assert abs(M.partial_spearman(x, y, z)) < 0.1
    # with an independent extra component shared by x and y the partial stays clearly positive
    w = rng.normal(size=3000)
    assert M.partial_spearman(x + w, y + w, z) > 0.4


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000))
def test_partial_spearman_equals_rank_residual_correlation(seed):
    rng = np.random.default_rng(seed)
    n = 50
    x, y, z = rng.normal(size=(3, n))
    from scipy.stats import rankdata

    rx, ry, rz = (rankdata(a) for a in (x, y, z))
    X = np.column_stack([np.ones(n), rz])
    ex = rx - X @ np.linalg.lstsq(X, rx, rcond=None)[0]
    ey = ry - X @ np.linalg.lstsq(X, ry, rcond=None)[0]
    want = np.corrcoef(ex, ey)[0, 1]
    assert M.partial_spearman(x, y, z) == pytest.approx(want, abs=1e-9)


# ------------------------------------------------------------------------------------- bootstrap


def test_r2_gain_detects_real_information_and_rejects_noise():
    rng = np.random.default_rng(0)
    n = 1500
    exc = np.exp(rng.normal(size=n))
    extra = np.exp(rng.normal(size=n))
    real = np.expm1(np.log1p(exc) + np.log1p(extra) + 0.1 * rng.normal(size=n)).clip(0)
    informative = M.r2_gain(extra, exc, real, n_boot=200)
    assert informative["gain"] > 0.2 and informative["ci"][0] > 0
    assert informative["r2_full"] > informative["r2_base"]
    noise = M.r2_gain(np.exp(rng.normal(size=n)), exc, real, n_boot=200)
    assert noise["ci"][0] < 0 < noise["ci"][1] or noise["gain"] <= 0
    assert informative["n_train"] == 900 and informative["n_test"] == 600


def test_r2_gain_too_short_returns_empty_and_rejects_negative():
    out = M.r2_gain(np.ones(6), np.ones(6), np.ones(6))
    assert out["gain"] is None
    with pytest.raises(ParameterError):
        M.r2_gain(-np.ones(20), np.ones(20), np.ones(20))


def test_partial_spearman_ci_covers_estimate():
    rng = np.random.default_rng(5)
    z = rng.normal(size=400)
    x = z + rng.normal(size=400)
    y = x + rng.normal(size=400)
    out = M.partial_spearman_ci(x, y, z, n_boot=200)
    lo, hi = out["ci"]
    assert lo < out["estimate"] < hi and lo > 0
