"""numba kernels of ``build_heatmap`` outside the step recursion, beside the names of their numpy twins.

- ``_deposit_loop``: one side's open-interest deposits → the step-CSR of fresh levels, the job of
  :func:`liqlab.engine.deposits.deposits_numpy` (LP range per layer and size node → overlap with the
  price bins → clearing within the step → sum per (step, layer, bin)). Per cell, the range entries are
  added in row order, then the point entries (zero-width LP ranges) in row order, as ``np.bincount``
  does there.
- ``_search_loop``: ``np.searchsorted`` for needles that come in a slowly moving order (bar lows/highs):
  a short walk from the previous answer, a bisection when that fails.
- ``_weighted_loop``: the assembly's Σ_k w_k·layers[k] (float64), layers in order from 0, as
  ``heatmap._weighted``.

Each performs the same float64 operations in the same order as its twin, so both give the same arrays
(tests compare them with ``assert_array_equal``). Nothing is compiled at import: :func:`compiled_loop`
compiles on first use through the one numba shim, :func:`liqlab._jit.compiled` (``use_numba``,
``LIQLAB_NO_NUMBA=1``); ``deposits``, ``search`` and ``weighted`` call a compiled loop with the arrays
it needs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from liqlab._jit import compiled

__all__ = ["compiled_loop", "deposits", "search", "weighted"]


def _deposit_loop(j_obs, amount, e_lo, e_hi, thr, is_long, a_kq, b_kq, q_w, Q, edges, T, dropped):  # pragma: no cover - compiled
    """Rows are (observation i, layer k, size node q) in that order; see ``deposits`` for the arguments;
    ``dropped`` (K,) is added to in place."""
    n = j_obs.shape[0]
    KQ = a_kq.shape[0]
    K = KQ // Q
    B = edges.shape[0] - 1
    ptr = np.zeros(T + 1, dtype=np.int64)
    acc = np.zeros(K * B, dtype=np.float64)          # the current step's sums per cell k·B + b
    seen = np.zeros(K * B, dtype=np.bool_)
    touched = np.empty(K * B, dtype=np.int64)
    most = 0                                          # most deposits in one step
    i0 = 0
    while i0 < n:
        i1 = i0
        while i1 < n and j_obs[i1] == j_obs[i0]:
            i1 += 1
        most = max(most, i1 - i0)
        i0 = i1
    pt_cell = np.empty(most * KQ, dtype=np.int64)     # point entries wait until the step's range entries are in
    pt_val = np.empty(most * KQ, dtype=np.float64)
    hint = np.zeros((2, KQ), dtype=np.int64)          # last answer per LP end and row kind: LPs move little
    pos = np.zeros(2, dtype=np.int64)
    cap = max(16, n * KQ)
    out_k = np.empty(cap, dtype=np.int32)
    out_b = np.empty(cap, dtype=np.int32)
    out_v = np.empty(cap, dtype=np.float64)
    m = 0
    i0 = 0
    for j in range(T):
        ptr[j] = m
        i1 = i0
        while i1 < n and j_obs[i1] == j:
            i1 += 1
        if i1 == i0:
            continue
        nt = 0
        npt = 0
        for i in range(i0, i1):
            t_i = thr[i]
            for kq in range(KQ):
                k = kq // Q
                lp1 = a_kq[kq] * e_lo[i] + b_kq[kq]
                lp2 = a_kq[kq] * e_hi[i] + b_kq[kq]
                ok = np.isfinite(lp1) and np.isfinite(lp2)  # = min and max both finite
                lo = min(lp1, lp2) if ok else -1.0
                hi = max(lp1, lp2) if ok else -1.0
                amt = amount[i] if Q == 1 else amount[i] * q_w[kq % Q]
                width = hi - lo
                point = not (width > 0)
                # pos[r] = searchsorted(edges, lo or hi, 'right'): a short walk from the hint, else a bisection
                for r in range(1 if point else 2):
                    x = lo if r == 0 else hi
                    g = hint[r, kq]
                    walk = 0
                    while walk < 8 and g <= B and edges[g] <= x:
                        g += 1
                        walk += 1
                    while walk < 8 and g > 0 and edges[g - 1] > x:
                        g -= 1
                        walk += 1
                    if not ((g == 0 or edges[g - 1] <= x) and (g == B + 1 or edges[g] > x)):
                        g = np.searchsorted(edges, x, side="right")
                    hint[r, kq] = g
                    pos[r] = g
                b0 = pos[0] - 1
                covered = 0.0
                if point:
                    if b0 >= 0 and b0 < B:
                        covered = 1.0
                        alive = (b0 < t_i) if is_long else (b0 > t_i)
                        if alive and amt > 0:  # fraction 1
                            pt_cell[npt] = k * B + b0
                            pt_val[npt] = amt
                            npt += 1
                else:
                    b1 = pos[1] - 1
                    if not (b1 < 0 or b0 >= B):
                        c0 = min(max(b0, 0), B - 1)
                        c1 = min(max(b1, 0), B - 1)
                        for b in range(c0, c1 + 1):
                            x = min(edges[b + 1], hi) - max(edges[b], lo)
                            frac = (x if x > 0.0 else 0.0) / width
                            covered += frac
                            v = amt * frac
                            alive = (b < t_i) if is_long else (b > t_i)
                            if alive and v > 0:
                                c = k * B + b
                                if not seen[c]:
                                    seen[c] = True
                                    touched[nt] = c
                                    nt += 1
                                acc[c] += v
                if ok:
                    off = 1.0 - covered
                    off = 0.0 if off < 0.0 else (1.0 if off > 1.0 else off)
                    dropped[k] += off * amt
        for e in range(npt):
            c = pt_cell[e]
            if not seen[c]:
                seen[c] = True
                touched[nt] = c
                nt += 1
            acc[c] += pt_val[e]
        cells = np.sort(touched[:nt])
        if m + nt > cap:
            while m + nt > cap:
                cap *= 2
            nk = np.empty(cap, dtype=np.int32)
            nb = np.empty(cap, dtype=np.int32)
            nv = np.empty(cap, dtype=np.float64)
            nk[:m] = out_k[:m]
            nb[:m] = out_b[:m]
            nv[:m] = out_v[:m]
            out_k, out_b, out_v = nk, nb, nv
        for e in range(nt):
            c = cells[e]
            out_k[m] = c // B
            out_b[m] = c % B
            out_v[m] = acc[c]
            acc[c] = 0.0
            seen[c] = False
            m += 1
        i0 = i1
    ptr[T] = m
    return ptr, out_k[:m].copy(), out_b[:m].copy(), out_v[:m].copy()


def _search_loop(a, x, right, out):  # pragma: no cover - compiled
    """out[i] = np.searchsorted(a, x[i], 'right' if right else 'left') for sorted, NaN-free ``a``."""
    n = a.shape[0]
    g = 0
    for i in range(x.shape[0]):
        v = x[i]
        if v != v:  # NaN sorts last in numpy
            g = n
            out[i] = n
            continue
        walk = 0
        if right:
            while walk < 8 and g < n and a[g] <= v:
                g += 1
                walk += 1
            while walk < 8 and g > 0 and a[g - 1] > v:
                g -= 1
                walk += 1
            if not ((g == 0 or a[g - 1] <= v) and (g == n or a[g] > v)):
                g = np.searchsorted(a, v, side="right")
        else:
            while walk < 8 and g < n and a[g] < v:
                g += 1
                walk += 1
            while walk < 8 and g > 0 and a[g - 1] >= v:
                g -= 1
                walk += 1
            if not ((g == 0 or a[g - 1] < v) and (g == n or a[g] >= v)):
                g = np.searchsorted(a, v, side="left")
        out[i] = g


def _weighted_loop(layers, w, out):  # pragma: no cover - compiled
    """out[t, b] = Σ_k w[k]·float64(layers[k, t, b]), from 0.0, k in order, zero weights skipped."""
    K, T, B = layers.shape
    for t in range(T):
        for b in range(B):
            out[t, b] = 0.0
        for k in range(K):
            wk = w[k]
            if wk != 0.0:
                for b in range(B):
                    out[t, b] += wk * np.float64(layers[k, t, b])


_LOOPS = {"deposits": _deposit_loop, "search": _search_loop, "weighted": _weighted_loop}


def compiled_loop(name: str, use_numba: bool | None = None) -> Callable | None:
    """A loop of this module compiled by numba, or None (the numpy twin runs).

    Parameters
    ----------
    name : str
        ``'deposits'``, ``'search'`` or ``'weighted'``.
    use_numba : bool or None
        True/False forces the choice; None = numba unless ``LIQLAB_NO_NUMBA`` is set.

    Returns
    -------
    callable or None
        The compiled loop (cached on disk and per process), or None when numba is unwanted, missing or
        fails to compile it.
    """
    return compiled(_LOOPS[name], use_numba=use_numba)


def deposits(fn: Callable, j_obs: np.ndarray, amount: np.ndarray, e_lo: np.ndarray, e_hi: np.ndarray, thr: np.ndarray,
             is_long: bool, a: np.ndarray, b: np.ndarray, q_w: np.ndarray, edges: np.ndarray, T: int,
             dropped0: np.ndarray | None = None):
    """:func:`liqlab.engine.deposits.deposits_numpy` with the compiled 'deposits' loop ``fn``.

    Parameters
    ----------
    fn : callable
        ``compiled_loop('deposits')``.
    j_obs, amount, e_lo, e_hi, thr, is_long, a, b, q_w, edges, T, dropped0
        As for ``deposits_numpy``; the deposits sorted by step ``j_obs``.

    Returns
    -------
    csr : tuple of numpy.ndarray
        (ptr int64 (T+1,), k int32, b int32, v float64 USD) by step, the numpy twin's arrays.
    dropped : numpy.ndarray
        (K,) float64 USD deposited off the grid.
    """
    f64 = lambda x: np.ascontiguousarray(x, dtype=np.float64)  # noqa: E731
    dropped = np.zeros(a.shape[0]) if dropped0 is None else np.array(dropped0, dtype=np.float64)
    ptr, k, bb, v = fn(
        np.ascontiguousarray(j_obs, dtype=np.int64), f64(amount), f64(e_lo), f64(e_hi),
        np.ascontiguousarray(thr, dtype=np.int64), bool(is_long), f64(a).ravel(), f64(b).ravel(), f64(q_w),
        int(q_w.shape[0]), f64(edges), int(T), dropped)
    return (ptr, k, bb, v), dropped


def search(fn: Callable, a: np.ndarray, x: np.ndarray, side: str) -> np.ndarray:
    """``np.searchsorted(a, x, side)`` with the compiled 'search' loop ``fn``; fast when consecutive ``x`` are close.

    Parameters
    ----------
    fn : callable
        ``compiled_loop('search')``.
    a : numpy.ndarray
        (B,) sorted, without NaN (bin centres, USD).
    x : numpy.ndarray
        (n,) needles (prices, USD; NaN sorts last).
    side : str
        ``'left'`` or ``'right'``.

    Returns
    -------
    numpy.ndarray
        (n,) int64 insertion points.
    """
    out = np.empty(len(x), dtype=np.int64)
    fn(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(x, dtype=np.float64), side == "right", out)
    return out


def weighted(fn: Callable, layers: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Σ_k w_k·layers[k] with the compiled 'weighted' loop ``fn``.

    Parameters
    ----------
    fn : callable
        ``compiled_loop('weighted')``.
    layers : numpy.ndarray
        (K, T, B) float32 USD per leverage layer, time × price.
    w : numpy.ndarray
        (K,) layer weights.

    Returns
    -------
    numpy.ndarray
        (T, B) float64 USD.
    """
    out = np.empty(layers.shape[1:], dtype=np.float64)
    fn(np.ascontiguousarray(layers), np.ascontiguousarray(w, dtype=np.float64), out)
    return out
