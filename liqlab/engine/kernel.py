"""The heatmap step recursion (docs/DESIGN.md, "Step recursion"): numba kernel + pure-numpy fallback.

Both paths perform the same float64 operations in the same order, so they give the same numbers (and
so does the browser port). Select the fallback with ``use_numba=False`` or the environment variable
``LIQLAB_NO_NUMBA=1``. Shapes: K leverage layers × T output steps × B price bins; values USD notional.

Per step j (per layer k, per side), with d_k = 2^(−Δ/half_life_k) (``layer_decay``; half_life_k =
half_life for every layer unless ``half_life_exponent`` ≠ 0) and f_{k,j} = d_k·g[j]:

1. shift the state by ``shift[j]`` bins (zero-filled; + = up)
2. ``X_k *= f_{k,j}``
3. clear: long ``X[b >= lo[j]] = 0``; short ``X[b <= hi[j]] = 0``
4. ``highest_leverage``: with S_k = Σ_b X_k[b] (sequential sum) and W_k = w_k·S_k, walk the layers in
   descending leverage, take_k = min(rem, W_k), φ_k = 1 − take_k/W_k, ``X_k *= φ_k``, rem −= take_k
5. ``X[k, b] += v`` for the fresh entries of step j
6. max age A ≥ 1 steps: for every entry (k, b, v) of step c = j − A that survived (never cleared, never
   shifted off the grid), ``X[k, p] = max(X[k, p] − v·m_k, 0)`` at its current bin p, where
   m_k = (((1·f_{k,c+1})·φ_k[c+1])·f_{k,c+2})·φ_k[c+2]… (φ omitted unless highest_leverage)
7. ``out[k, j, :] = float32(X[k, :])``
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liqlab._jit import compiled

__all__ = ["run_steps", "numba_available", "decay_factor", "layer_decay", "max_age_steps", "LEVERAGE_REF"]


def decay_factor(step_hours: float, half_life_hours: float) -> float:
    """Per-step decay multiplier d = 2^(−step/half_life).

    Parameters
    ----------
    step_hours : float
        Step length (hours).
    half_life_hours : float
        Half-life (hours; ``inf`` = no decay).

    Returns
    -------
    float
        d in (0, 1] (1.0 for an infinite half-life).
    """
    return float(2.0 ** (-float(step_hours) / float(half_life_hours)))


#: Reference leverage of ``half_life_exponent``: a 10x layer has exactly ``half_life_hours``.
LEVERAGE_REF = 10.0


def layer_decay(step_hours: float, half_life_hours: float, leverages, half_life_exponent: float = 0.0) -> np.ndarray:
    """Per-layer decay multipliers d_k = 2^(−step / (half_life·(L_k/10)^(−γ))), γ = half_life_exponent.

    γ = 0: every layer decays with ``half_life_hours``; γ > 0: high-leverage layers decay faster.

    Parameters
    ----------
    step_hours : float
        Step length (hours).
    half_life_hours : float
        Half-life of a 10x layer (hours).
    leverages : array_like
        (K,) layer leverages.
    half_life_exponent : float
        γ.

    Returns
    -------
    numpy.ndarray
        (K,) float64.
    """
    lev = np.asarray(leverages, dtype=np.float64)
    out = np.empty(lev.shape[0], dtype=np.float64)
    for k in range(lev.shape[0]):
        hl = float(half_life_hours) * (float(lev[k]) / LEVERAGE_REF) ** (-float(half_life_exponent))
        out[k] = decay_factor(step_hours, hl)
    return out


def max_age_steps(max_age_hours: float | None, step_hours: float) -> int:
    """Max age in whole output steps: round(max_age/step), at least 1.

    Parameters
    ----------
    max_age_hours : float or None
        Max age (hours); None = no max age.
    step_hours : float
        Step length (hours).

    Returns
    -------
    int
        Steps (0 = none).
    """
    if max_age_hours is None:
        return 0
    return max(1, int(round(float(max_age_hours) / float(step_hours))))


def numba_available() -> bool:
    """Whether the numba step recursion compiles (or loads from its disk cache) here.

    Returns
    -------
    bool
        False when numba is missing or fails on the kernel; the numpy twin then runs.
    """
    return compiled(_side_loop, use_numba=True) is not None


def run_steps(
    rv: Any,
    weights,
    half_life_hours: float,
    max_age_steps: int,
    oi_decrease: str,
    *,
    step_hours: float | None = None,
    n_bins: int | None = None,
    use_numba: bool | None = None,
    sides: tuple[str, ...] = ("long", "short"),
    half_life_exponent: float = 0.0,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Run the step recursion for one venue's step inputs.

    Parameters
    ----------
    rv : VenueSteps or an object with its fields
        fresh_long/fresh_short CSR, lo, hi, g, rm_long, rm_short, shift, and ``n_bins``/``step_hours``
        unless given (``leverages`` too; 10x layers when absent).
    weights : array_like
        (K,) layer weights, used only by ``highest_leverage``.
    half_life_hours : float
        Half-life of a 10x layer (hours).
    max_age_steps : int
        Max age in steps (0 = none).
    oi_decrease : str
        ``'proportional'``, ``'highest_leverage'`` or ``'ignore'``.
    step_hours, n_bins : optional
        Override ``rv.step_hours`` (hours) and ``rv.n_bins``.
    use_numba : bool or None
        True/False forces the kernel; None = numba unless ``LIQLAB_NO_NUMBA`` is set.
    sides : tuple of str
        Sides to run.
    half_life_exponent : float
        γ: layer k's half-life is ``half_life_hours·(L_k/10)^(−γ)`` (see :func:`layer_decay`).

    Returns
    -------
    long_layers, short_layers : numpy.ndarray or None
        (K, T, B) float32 USD per layer (unweighted), time × price; None for a side not in ``sides``.
    """
    w = np.ascontiguousarray(weights, dtype=np.float64)
    K = int(w.shape[0])
    B = int(n_bins if n_bins is not None else rv.n_bins)
    sh_hours = float(step_hours if step_hours is not None else rv.step_hours)
    A = int(max_age_steps or 0)
    do_hl = oi_decrease == "highest_leverage"
    lev = np.asarray(getattr(rv, "leverages", np.full(K, LEVERAGE_REF)), dtype=np.float64)
    d = layer_decay(sh_hours, half_life_hours, lev, half_life_exponent)
    order = np.argsort(-lev, kind="stable").astype(np.int64)
    g = np.ascontiguousarray(rv.g, dtype=np.float64)
    T = int(g.shape[0])
    shift = np.ascontiguousarray(rv.shift, dtype=np.int64)
    cs = np.cumsum(shift)
    fn = compiled(_side_loop, use_numba=use_numba)
    results: list[np.ndarray | None] = []
    for side in ("long", "short"):
        if side not in sides:
            results.append(None)
            continue
        ptr, kk, bb, vv = (np.ascontiguousarray(a) for a in getattr(rv, f"fresh_{side}"))
        ptr = ptr.astype(np.int64, copy=False)
        kk = kk.astype(np.int64, copy=False)
        bb = bb.astype(np.int64, copy=False)
        vv = vv.astype(np.float64, copy=False)
        thr = np.ascontiguousarray(rv.lo if side == "long" else rv.hi, dtype=np.int64)
        rm = np.ascontiguousarray(getattr(rv, f"rm_{side}"), dtype=np.float64)
        out = np.empty((K, T, B), dtype=np.float32)
        if fn is not None:
            fn(ptr, kk, bb, vv, thr, side == "long", g, rm, shift, cs, w, order, d, A, do_hl, B, out)
        else:
            _side_numpy(ptr, kk, bb, vv, thr, side == "long", g, rm, shift, cs, w, order, d, A, do_hl, B, out)
        results.append(out)
    return results[0], results[1]


# ------------------------------------------------------------------------------------ numpy fallback


def _side_numpy(ptr, kk, bb, vv, thr, is_long, g, rm, shift, cs, w, order, d, A, do_hl, B, out) -> None:
    K = w.shape[0]
    T = g.shape[0]
    X = np.zeros((K, B), dtype=np.float64)
    phi = np.ones((K, T), dtype=np.float64)
    for j in range(T):
        s = int(shift[j])
        if s > 0:
            X[:, s:] = X[:, : B - s].copy() if s < B else 0.0
            X[:, : min(s, B)] = 0.0
        elif s < 0:
            if -s < B:
                X[:, : B + s] = X[:, -s:].copy()
            X[:, max(B + s, 0):] = 0.0
        f = d * g[j]
        X *= f[:, None]
        t = int(thr[j])
        if is_long:
            if t < B:
                X[:, max(t, 0):] = 0.0
        elif t >= 0:
            X[:, : min(t + 1, B)] = 0.0
        if do_hl and rm[j] > 0.0:
            S = np.cumsum(X, axis=1)[:, -1] if B > 0 else np.zeros(K)
            rem = rm[j]
            for k in order:
                if rem <= 0.0:
                    break
                W = w[k] * S[k]
                if W <= 0.0:
                    continue
                take = rem if rem < W else W
                ph = 1.0 - take / W
                phi[k, j] = ph
                X[k] *= ph
                rem -= take
        a, e = ptr[j], ptr[j + 1]
        if e > a:
            np.add.at(X, (kk[a:e], bb[a:e]), vv[a:e])
        if A > 0 and j >= A:
            c = j - A
            a, e = ptr[c], ptr[c + 1]
            if e > a:
                win = slice(c + 1, j + 1)
                fw = d[:, None] * g[win][None, :]
                if do_hl:
                    seq = np.empty((K, 2 * A), dtype=np.float64)
                    seq[:, 0::2] = fw
                    seq[:, 1::2] = phi[:, win]
                    m = np.cumprod(seq, axis=1)[:, -1]
                else:
                    m = np.cumprod(fw, axis=1)[:, -1]
                csw = cs[win]
                q = bb[a:e] - cs[c]
                if is_long:
                    ok = (q < np.min(thr[win] - csw)) & (q >= -np.min(csw))
                else:
                    ok = (q > np.max(thr[win] - csw)) & (q < B - np.max(csw))
                if ok.any():
                    ks = kk[a:e][ok]
                    ps = q[ok] + cs[j]
                    vs = vv[a:e][ok]
                    flat = ks.astype(np.int64) * B + ps
                    if len(np.unique(flat)) == len(flat):
                        val = X[ks, ps] - vs * m[ks]
                        X[ks, ps] = np.where(val > 0.0, val, 0.0)
                    else:  # several entries in one cell: subtract one at a time, as the numba path does
                        for k1, p1, v1 in zip(ks.tolist(), ps.tolist(), vs.tolist()):
                            val1 = X[k1, p1] - v1 * m[k1]
                            X[k1, p1] = val1 if val1 > 0.0 else 0.0
        out[:, j, :] = X


# ---------------------------------------------------------------------------------------- numba path


def _side_loop(ptr, kk, bb, vv, thr, is_long, g, rm, shift, cs, w, order, d, A, do_hl, B, out):  # pragma: no cover - compiled
    K = w.shape[0]
    T = g.shape[0]
    X = np.zeros((K, B), dtype=np.float64)
    phi = np.ones((K, T), dtype=np.float64)
    S = np.zeros(K, dtype=np.float64)
    for j in range(T):
        s = shift[j]
        if s > 0:
            for k in range(K):
                for b in range(B - 1, -1, -1):
                    X[k, b] = X[k, b - s] if b - s >= 0 else 0.0
        elif s < 0:
            for k in range(K):
                for b in range(B):
                    X[k, b] = X[k, b - s] if b - s < B else 0.0
        t = thr[j]
        for k in range(K):
            f = d[k] * g[j]
            for b in range(B):
                X[k, b] *= f
            if is_long:
                for b in range(max(t, 0), B):
                    X[k, b] = 0.0
            else:
                for b in range(0, min(t + 1, B)):
                    X[k, b] = 0.0
        if do_hl and rm[j] > 0.0:
            for k in range(K):
                acc = 0.0
                for b in range(B):
                    acc += X[k, b]
                S[k] = acc
            rem = rm[j]
            for oi in range(K):
                if rem <= 0.0:
                    break
                k = order[oi]
                W = w[k] * S[k]
                if W <= 0.0:
                    continue
                take = rem if rem < W else W
                ph = 1.0 - take / W
                phi[k, j] = ph
                for b in range(B):
                    X[k, b] *= ph
                rem -= take
        for e in range(ptr[j], ptr[j + 1]):
            X[kk[e], bb[e]] += vv[e]
        if A > 0 and j >= A:
            c = j - A
            if ptr[c + 1] > ptr[c]:
                # window aggregates over steps c+1..j
                tmin = 1 << 60
                tmax = -(1 << 60)
                cmin = 1 << 60
                cmax = -(1 << 60)
                for i in range(c + 1, j + 1):
                    v = thr[i] - cs[i]
                    if v < tmin:
                        tmin = v
                    if v > tmax:
                        tmax = v
                    if cs[i] < cmin:
                        cmin = cs[i]
                    if cs[i] > cmax:
                        cmax = cs[i]
                for e in range(ptr[c], ptr[c + 1]):
                    q = bb[e] - cs[c]
                    if is_long:
                        ok = q < tmin and q >= -cmin
                    else:
                        ok = q > tmax and q < B - cmax
                    if not ok:
                        continue
                    k = kk[e]
                    m = 1.0
                    for i in range(c + 1, j + 1):
                        m *= d[k] * g[i]
                        if do_hl:
                            m *= phi[k, i]
                    p = q + cs[j]
                    val = X[k, p] - vv[e] * m
                    X[k, p] = val if val > 0.0 else 0.0
        for k in range(K):
            for b in range(B):
                out[k, j, b] = X[k, b]

