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

__all__ = ["run_steps", "run_window", "numba_available", "decay_factor", "layer_decay", "max_age_steps", "LEVERAGE_REF"]


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
    setup = _setup(rv, weights, half_life_hours, max_age_steps, oi_decrease, step_hours, n_bins, half_life_exponent)
    K, T, B = len(setup["w"]), len(setup["g"]), setup["B"]
    results: list[np.ndarray | None] = []
    for side in ("long", "short"):
        if side not in sides:
            results.append(None)
            continue
        out = np.empty((K, T, B), dtype=np.float32)
        _run_side(rv, side, setup, np.zeros((K, B)), np.ones((K, T)), 0, T, out, use_numba)
        results.append(out)
    return results[0], results[1]


def run_window(rv: Any, weights, half_life_hours: float, max_age_steps: int, oi_decrease: str, *, j0: int, j1: int,
               state: dict, use_numba: bool | None = None, half_life_exponent: float = 0.0) -> dict[str, np.ndarray]:
    """Run the step recursion over steps j0..j1−1 only, from a saved state (appending to a map).

    Parameters
    ----------
    rv, weights, half_life_hours, max_age_steps, oi_decrease, use_numba, half_life_exponent
        As for :func:`run_steps` (``rv`` holds at least steps 0..j1−1; the max age reads steps from j0 − A on).
    j0, j1 : int
        The steps to run.
    state : dict
        Side → (X (K, B) float64 USD, the state at the end of step j0 − 1; phi (K, ≥ j1) float64, the
        highest-leverage factors of the earlier steps, ones from j0 on). Both are updated in place: X
        becomes the state at the end of step j1 − 1.

    Returns
    -------
    dict
        Side → (K, j1 − j0, B) float32 USD per layer, the same numbers :func:`run_steps` gives for those steps.
    """
    setup = _setup(rv, weights, half_life_hours, max_age_steps, oi_decrease, None, None, half_life_exponent)
    out = {}
    for side, (X, phi) in state.items():
        out[side] = np.empty((len(setup["w"]), j1 - j0, setup["B"]), dtype=np.float32)
        _run_side(rv, side, setup, X, phi, j0, j1, out[side], use_numba)
    return out


def _setup(rv, weights, half_life_hours, max_age_steps, oi_decrease, step_hours, n_bins, half_life_exponent) -> dict:
    """The arrays both sides of the recursion share: weights, decays, layer order, OI factors, shifts."""
    w = np.ascontiguousarray(weights, dtype=np.float64)
    K = int(w.shape[0])
    sh_hours = float(step_hours if step_hours is not None else rv.step_hours)
    lev = np.asarray(getattr(rv, "leverages", np.full(K, LEVERAGE_REF)), dtype=np.float64)
    shift = np.ascontiguousarray(rv.shift, dtype=np.int64)
    return {"w": w, "B": int(n_bins if n_bins is not None else rv.n_bins), "A": int(max_age_steps or 0),
            "do_hl": oi_decrease == "highest_leverage", "d": layer_decay(sh_hours, half_life_hours, lev, half_life_exponent),
            "order": np.argsort(-lev, kind="stable").astype(np.int64), "g": np.ascontiguousarray(rv.g, dtype=np.float64),
            "shift": shift, "cs": np.cumsum(shift)}


def _run_side(rv, side: str, st: dict, X: np.ndarray, phi: np.ndarray, j0: int, j1: int, out: np.ndarray,
              use_numba: bool | None) -> None:
    """One side's recursion over steps j0..j1−1 into ``out`` (K, j1−j0, B); only the fresh entries the
    window reads (steps from j0 − A on) are converted."""
    ptr, kk, bb, vv = getattr(rv, f"fresh_{side}")
    ptr = np.ascontiguousarray(ptr, dtype=np.int64)
    e0 = int(ptr[max(j0 - st["A"], 0)]) if j0 > 0 else 0
    e1 = int(ptr[j1])
    if e0:
        ptr = ptr - e0
    kk = np.ascontiguousarray(kk[e0:e1], dtype=np.int64)
    bb = np.ascontiguousarray(bb[e0:e1], dtype=np.int64)
    vv = np.ascontiguousarray(vv[e0:e1], dtype=np.float64)
    thr = np.ascontiguousarray(rv.lo if side == "long" else rv.hi, dtype=np.int64)
    rm = np.ascontiguousarray(getattr(rv, f"rm_{side}"), dtype=np.float64)
    args = (ptr, kk, bb, vv, thr, side == "long", st["g"], rm, st["shift"], st["cs"], st["w"], st["order"], st["d"],
            st["A"], st["do_hl"], st["B"], X, phi, int(j0), int(j1), out)
    fn = compiled(_side_loop, use_numba=use_numba)
    (fn or _side_numpy)(*args)


# ------------------------------------------------------------------------------------ numpy fallback


def _side_numpy(ptr, kk, bb, vv, thr, is_long, g, rm, shift, cs, w, order, d, A, do_hl, B, X, phi, j0, j1, out) -> None:
    K = w.shape[0]
    for j in range(j0, j1):
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
        out[:, j - j0, :] = X


# ---------------------------------------------------------------------------------------- numba path


def _side_loop(ptr, kk, bb, vv, thr, is_long, g, rm, shift, cs, w, order, d, A, do_hl, B, X, phi, j0, j1, out):  # pragma: no cover - compiled
    K = w.shape[0]
    S = np.zeros(K, dtype=np.float64)
    for j in range(j0, j1):
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
                out[k, j - j0, b] = X[k, b]

