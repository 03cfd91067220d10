"""liqlab.engine.kernel: the step recursion (numba == numpy; semantics against a brute-force particle model)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqlab.engine.kernel import decay_factor, layer_decay, max_age_steps, numba_available, run_steps


def make_replay(seed: int, T: int = 12, B: int = 16, K: int = 3, *, shifts: bool = True, density: float = 0.5,
                hl: bool = False, prop: bool = True):
    """A random replay (one venue) with unique (k, b) entries per step."""
    rng = np.random.default_rng(seed)
    csr = {}
    for side in ("long", "short"):
        ptr, ks, bs, vs = [0], [], [], []
        for _ in range(T):
            cells = [(k, b) for k in range(K) for b in range(B) if rng.random() < density * 0.3]
            for k, b in cells:
                ks.append(k)
                bs.append(b)
                vs.append(float(rng.uniform(1.0, 1000.0)))
            ptr.append(len(ks))
        csr[side] = (np.array(ptr, np.int64), np.array(ks, np.int32), np.array(bs, np.int32), np.array(vs, np.float64))
    lo = rng.integers(B // 3, B + 1, T).astype(np.int32)
    lo[rng.random(T) < 0.4] = B
    hi = rng.integers(-1, 2 * B // 3, T).astype(np.int32)
    hi[rng.random(T) < 0.4] = -1
    g = np.where(rng.random(T) < 0.3, rng.uniform(0.5, 1.0, T), 1.0) if prop else np.ones(T)
    rm_l = np.where(rng.random(T) < 0.5, rng.uniform(0, 3000, T), 0.0) if hl else np.zeros(T)
    rm_s = np.where(rng.random(T) < 0.5, rng.uniform(0, 3000, T), 0.0) if hl else np.zeros(T)
    shift = (rng.integers(-2, 3, T) * (rng.random(T) < 0.3)).astype(np.int32) if shifts else np.zeros(T, np.int32)
    lev = np.sort(rng.choice([2.0, 5, 10, 20, 50, 100], K, replace=False))
    return SimpleNamespace(fresh_long=csr["long"], fresh_short=csr["short"], lo=lo, hi=hi, g=g, rm_long=rm_l,
                           rm_short=rm_s, shift=shift, n_bins=B, step_hours=1.0, leverages=lev)


def brute_force(rv, w, half_life, A, oi_decrease, side, gamma=0.0):
    """Reference: track every deposit as a particle (layer, bin, value, age); drop it at age A."""
    ptr, kk, bb, vv = getattr(rv, f"fresh_{side}")
    T, B, K = len(rv.g), rv.n_bins, len(w)
    lev = np.asarray(rv.leverages, dtype=float)
    d = [decay_factor(rv.step_hours, half_life * (lev[k] / 10.0) ** (-gamma)) for k in range(K)]
    order = np.argsort(-np.asarray(rv.leverages), kind="stable")
    parts: list[list] = []  # [k, b, value, step deposited]
    out = np.zeros((K, T, B))
    for j in range(T):
        s = int(rv.shift[j])
        for p in parts:
            p[1] += s
        parts = [p for p in parts if 0 <= p[1] < B]
        for p in parts:
            p[2] *= d[p[0]] * rv.g[j]
        if side == "long":
            parts = [p for p in parts if p[1] < rv.lo[j]]
        else:
            parts = [p for p in parts if p[1] > rv.hi[j]]
        rm = (rv.rm_long if side == "long" else rv.rm_short)[j]
        if oi_decrease == "highest_leverage" and rm > 0:
            S = np.zeros(K)
            for p in parts:
                S[p[0]] += p[2]
            rem = rm
            for k in order:
                if rem <= 0:
                    break
                W = w[k] * S[k]
                if W <= 0:
                    continue
                take = min(rem, W)
                for p in parts:
                    if p[0] == k:
                        p[2] *= 1.0 - take / W
                rem -= take
        for e in range(ptr[j], ptr[j + 1]):
            parts.append([int(kk[e]), int(bb[e]), float(vv[e]), j])
        if A > 0:
            parts = [p for p in parts if j - p[3] < A]
        for p in parts:
            out[p[0], j, p[1]] += p[2]
    return out


def _close(a, b, scale):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale)


@pytest.mark.parametrize("oi_decrease", ["proportional", "highest_leverage", "ignore"])
@pytest.mark.parametrize("A", [0, 1, 3])
@pytest.mark.parametrize("gamma", [0.0, 0.8])
def test_kernel_matches_particle_model(oi_decrease, A, gamma):
    rv = make_replay(7 + A, hl=oi_decrease == "highest_leverage", prop=oi_decrease == "proportional")
    w = np.array([0.5, 0.3, 0.2])
    for use_numba in (False, True):
        L, S = run_steps(rv, w, 5.0, A, oi_decrease, use_numba=use_numba, half_life_exponent=gamma)
        assert L.shape == S.shape == (3, 12, 16) and L.dtype == np.float32
        scale = max(1.0, float(np.abs(L).max()), float(np.abs(S).max()))
        # float32 output: compare at float32 precision
        ref_l = brute_force(rv, w, 5.0, A, oi_decrease, "long", gamma)
        ref_s = brute_force(rv, w, 5.0, A, oi_decrease, "short", gamma)
        np.testing.assert_allclose(L, ref_l, rtol=1e-6, atol=1e-6 * scale)
        np.testing.assert_allclose(S, ref_s, rtol=1e-6, atol=1e-6 * scale)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), A=st.integers(0, 6), hl=st.booleans(), half=st.sampled_from([1.0, 3.0, np.inf]),
       shifts=st.booleans(), T=st.integers(1, 15), B=st.integers(1, 12), gamma=st.sampled_from([0.0, 0.5, 1.3]))
def test_numba_equals_numpy(seed, A, hl, half, shifts, T, B, gamma):
    if not numba_available():
        pytest.skip("numba not importable here")  # pragma: no cover
    rv = make_replay(seed, T=T, B=B, K=3, shifts=shifts, hl=hl)
    w = np.random.default_rng(seed).dirichlet(np.ones(3))
    rule = "highest_leverage" if hl else "proportional"
    a = run_steps(rv, w, half, A, rule, use_numba=True, half_life_exponent=gamma)
    b = run_steps(rv, w, half, A, rule, use_numba=False, half_life_exponent=gamma)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def with_duplicate_cells(rv):
    """The same replay with every fresh entry present twice in its step (two deposits in one cell)."""
    def dup(csr):
        ptr, kk, bb, vv = csr
        P, K2, B2, V2 = [0], [], [], []
        for j in range(len(ptr) - 1):
            sl = slice(ptr[j], ptr[j + 1])
            for _ in range(2):
                K2 += kk[sl].tolist()
                B2 += bb[sl].tolist()
                V2 += (vv[sl] / 2).tolist()
            P.append(len(K2))
        return (np.array(P, np.int64), np.array(K2, np.int32), np.array(B2, np.int32), np.array(V2, np.float64))

    return SimpleNamespace(**{**vars(rv), "fresh_long": dup(rv.fresh_long), "fresh_short": dup(rv.fresh_short)})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), A=st.integers(1, 4), hl=st.booleans())
def test_numba_equals_numpy_with_several_deposits_in_one_cell(seed, A, hl):
    """Max-age subtraction of a cohort with two entries in one (layer, bin) must subtract both."""
    if not numba_available():
        pytest.skip("numba not importable here")  # pragma: no cover
    rv = with_duplicate_cells(make_replay(seed, T=10, B=8, K=3, hl=hl))
    w = np.random.default_rng(seed).dirichlet(np.ones(3))
    rule = "highest_leverage" if hl else "proportional"
    a = run_steps(rv, w, 2.0, A, rule, use_numba=True)
    b = run_steps(rv, w, 2.0, A, rule, use_numba=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@given(seed=st.integers(0, 10_000), A=st.integers(1, 5), hl=st.booleans())
@settings(max_examples=25, deadline=None)
def test_max_age_equals_brute_force(seed, A, hl):
    rv = make_replay(seed, T=10, B=10, K=2, hl=hl)
    w = np.array([0.6, 0.4])
    rule = "highest_leverage" if hl else "proportional"
    L, S = run_steps(rv, w, 4.0, A, rule, use_numba=False)
    for side, got in (("long", L), ("short", S)):
        ref = brute_force(rv, w, 4.0, A, rule, side)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6 * max(1.0, ref.max()))


def _single(T, B, k, b, v, **kw):
    ptr = np.zeros(T + 1, np.int64)
    ptr[1:] = 1
    one = (ptr, np.array([k], np.int32), np.array([b], np.int32), np.array([v]))
    empty = (np.zeros(T + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    base = dict(fresh_long=one, fresh_short=empty, lo=np.full(T, B, np.int32), hi=np.full(T, -1, np.int32),
                g=np.ones(T), rm_long=np.zeros(T), rm_short=np.zeros(T), shift=np.zeros(T, np.int32), n_bins=B,
                step_hours=1.0, leverages=np.array([10.0, 20.0]))
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("use_numba", [False, True])
def test_decay_halves_mass_after_one_half_life(use_numba):
    rv = _single(25, 8, 0, 3, 1000.0)
    L, _ = run_steps(rv, np.array([0.5, 0.5]), 6.0, 0, "ignore", use_numba=use_numba)
    tot = L.sum(axis=(0, 2))
    assert tot[0] == pytest.approx(1000.0)
    np.testing.assert_allclose(tot[6] / tot[0], 0.5, rtol=1e-6)
    np.testing.assert_allclose(tot[24] / tot[0], 1 / 16, rtol=1e-6)
    L_inf, _ = run_steps(rv, np.array([0.5, 0.5]), np.inf, 0, "ignore", use_numba=use_numba)
    assert np.all(L_inf[0, :, 3] == 1000.0)


@pytest.mark.parametrize("use_numba", [False, True])
def test_clearing_removes_levels_price_traded_through(use_numba):
    T, B = 6, 10
    lo = np.full(T, B, np.int32)
    lo[3] = 5  # price fell to bin 5 during step 3: long levels at bins >= 5 are liquidated
    hi = np.full(T, -1, np.int32)
    hi[4] = 6  # price rose to bin 6 during step 4: short levels at bins <= 6 are liquidated
    ptr = np.array([0, 4, 4, 4, 4, 4, 4], np.int64)
    entries = (ptr, np.zeros(4, np.int32), np.array([2, 4, 5, 8], np.int32), np.full(4, 100.0))
    rv = _single(T, B, 0, 0, 0.0, fresh_long=entries, fresh_short=entries, lo=lo, hi=hi)
    L, S = run_steps(rv, np.array([1.0, 0.0]), np.inf, 0, "ignore", use_numba=use_numba)
    assert list(L[0, 2, [2, 4, 5, 8]]) == [100.0] * 4
    assert list(L[0, 3, [2, 4, 5, 8]]) == [100.0, 100.0, 0.0, 0.0]
    assert list(S[0, 3, [2, 4, 5, 8]]) == [100.0] * 4
    assert list(S[0, 4, [2, 4, 5, 8]]) == [0.0, 0.0, 0.0, 100.0]


def test_proportional_factor_and_shift():
    T, B = 4, 6
    g = np.array([1.0, 0.5, 1.0, 1.0])
    shift = np.array([0, 0, 2, -1], np.int32)
    rv = _single(T, B, 1, 1, 80.0, g=g, shift=shift)
    rv.fresh_long = (np.array([0, 1, 1, 1, 1], np.int64),) + rv.fresh_long[1:]
    L, _ = run_steps(rv, np.array([0.5, 0.5]), np.inf, 0, "proportional", use_numba=False)
    assert L[1, 0, 1] == 80.0 and L[1, 1, 1] == 40.0
    assert L[1, 2, 3] == 40.0 and L[1, 2, 1] == 0.0  # moved up two bins
    assert L[1, 3, 2] == 40.0


def test_highest_leverage_removes_top_layer_first():
    T, B = 2, 4
    ptr = np.array([0, 2, 2], np.int64)
    entries = (ptr, np.array([0, 1], np.int32), np.array([1, 1], np.int32), np.array([100.0, 100.0]))
    rv = _single(T, B, 0, 0, 0.0, fresh_long=entries, rm_long=np.array([0.0, 30.0]),
                 leverages=np.array([10.0, 50.0]))
    w = np.array([0.5, 0.5])  # weighted layer totals 50 and 50; 30 USD removed from the 50x layer only
    L, _ = run_steps(rv, w, np.inf, 0, "highest_leverage", use_numba=False)
    assert L[0, 1, 1] == 100.0
    assert L[1, 1, 1] == pytest.approx(40.0)  # 50 weighted − 30 = 20 weighted = 40 unweighted
    rv.rm_long = np.array([0.0, 70.0])  # more than the 50x layer holds: the rest comes from 10x
    L, _ = run_steps(rv, w, np.inf, 0, "highest_leverage", use_numba=False)
    assert L[1, 1, 1] == 0.0 and L[0, 1, 1] == pytest.approx(60.0)


def test_layer_decay_halves_each_layer_after_its_own_half_life():
    d = layer_decay(1.0, 10.0, [5.0, 10.0, 40.0], 1.0)  # half-lives 20 h, 10 h, 2.5 h
    np.testing.assert_allclose(d ** np.array([20.0, 10.0, 2.5]), 0.5)
    assert layer_decay(1.0, 10.0, [5.0, 10.0], 0.0).tolist() == [decay_factor(1.0, 10.0)] * 2
    assert layer_decay(1.0, np.inf, [5.0, 100.0], 2.0).tolist() == [1.0, 1.0]


def test_helpers():
    assert decay_factor(1.0, np.inf) == 1.0
    assert decay_factor(2.0, 2.0) == 0.5
    assert max_age_steps(None, 1.0) == 0
    assert max_age_steps(0.2, 1.0) == 1
    assert max_age_steps(24, 4.0) == 6


def test_env_var_selects_numpy(monkeypatch):
    rv = make_replay(3)
    w = np.array([0.2, 0.3, 0.5])
    from liqlab._jit import want_numba

    monkeypatch.setenv("LIQLAB_NO_NUMBA", "1")
    assert want_numba(None) is False and want_numba(True) is True
    a = run_steps(rv, w, 3.0, 2, "proportional")
    monkeypatch.delenv("LIQLAB_NO_NUMBA")
    b = run_steps(rv, w, 3.0, 2, "proportional", use_numba=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
