"""Fresh deposits: open-interest increases → liquidation levels on the price grid, packed by step.

:func:`lp_coefficients` gives the affine liquidation price LP = a·entry + b (USD) per leverage layer and
position-size node from the margin model; :func:`deposits_numpy` spreads each deposit's LP range over
the bins, drops what a later bar of the same step clears, and sums per (step, layer, bin) into a step
CSR. Its numba twin is ``_deposit_loop`` in :mod:`liqlab.engine.fine_kernels` (same float64 operations,
same arrays); :func:`deposit_function` picks one.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqlab.errors import ParameterError
from liqlab.engine.grid import size_nodes
from liqlab.engine.inputs import empty_csr
from liqlab.engine.params import HeatmapParams

__all__ = ["LPCoefficients", "lp_coefficients", "deposits_numpy", "deposit_function"]

_VENUE_OF_MODEL = {"binance": "binanceusdm", "bybit": "bybit", "okx": "okx"}


@dataclass(frozen=True, eq=False)
class LPCoefficients:
    """LP = a·entry + b (USD) per leverage layer and size node: a_*, b_* (K, Q); size_weights (Q,) sum 1;
    info: the margin model and tiers used (JSON-friendly)."""

    a_long: np.ndarray
    b_long: np.ndarray
    a_short: np.ndarray
    b_short: np.ndarray
    size_weights: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _margin_tiers(ds, params: HeatmapParams, info: dict[str, Any]):
    """(formula name, tiers or None) for ``params.margin_model`` on dataset ``ds``; records them in ``info``."""
    from liqlab.engine import margin
    from liqlab.io import tiers as tiers_mod

    mm = params.margin_model
    if mm == "flat":
        info["tiers"] = "none (flat: EP·(1 ∓ 1/L))"
        return "flat", None
    if mm == "venue":
        try:
            model = margin.model_for_venue(ds.venue)
        except ParameterError:
            raise ParameterError(f"margin_model: venue {ds.venue!r} has no margin model; use margin_model='binance'|'bybit'|'okx'|'flat'") from None
        tv = ds.venue
    else:
        model, tv = mm, _VENUE_OF_MODEL[mm]
    if ds.leverage_tiers is not None and len(ds.leverage_tiers) and tv == ds.venue:
        tiers = tiers_mod.TierTable.from_frame(ds.leverage_tiers, venue=ds.venue, symbol=ds.symbol)
        info["tiers"] = f"dataset leverage_tiers ({len(tiers)} tiers)"
    else:
        tiers = tiers_mod.default_tiers(tv, ds.symbol, fallback=True)
        info["tiers"] = f"bundled {tiers.venue} {tiers.symbol} as of {tiers.as_of}"
    return model, tiers


def lp_coefficients(ds, params: HeatmapParams, ref_price: float) -> LPCoefficients:
    """The affine liquidation price of every leverage layer and position-size node.

    margin_model 'venue': the venue's own formula with the dataset's leverage_tiers (or the bundled
    table, generic if the symbol has none); 'binance'/'bybit'/'okx': that formula and that venue's
    bundled tiers; 'flat': EP·(1 ∓ 1/L). With ``position_size_sigma`` > 0 or a size exponent, the sizes of
    :func:`~liqlab.engine.grid.size_nodes` spread a layer over tiers (a leverage above a tier's max is
    lowered to it). Inverse contracts: LP proportional to entry, the slope taken at ``ref_price``.

    Parameters
    ----------
    ds : Dataset
        One venue's data (venue, symbol, ``leverage_tiers``, ``meta['kind']``).
    params : HeatmapParams
        ``leverages``, ``margin_model`` and the ``position_size_*`` fields are used.
    ref_price : float
        Reference price (USD; the median close) for inverse contracts.

    Returns
    -------
    LPCoefficients
        a, b (K, Q) per side; Q = 1 unless sizes are spread. Layers whose leverage no tier supports have
        non-finite coefficients and are listed in ``info['unsupported_leverages']``.
    """
    from liqlab.engine import margin
    from liqlab.io import tiers as tiers_mod

    lev = np.asarray(params.leverages, dtype=np.float64)
    info: dict[str, Any] = {}
    model, tiers = _margin_tiers(ds, params, info)
    info["model"] = model
    inverse = ds.meta.get("kind") == "inverse"
    inv_tiers = tiers
    if inverse and isinstance(tiers, tiers_mod.TierTable) and tiers.kind != "inverse":
        inv_tiers = float(tiers.mmr[0])  # linear (USD) tiers do not apply: tier-1 MMR, flat
        info["tiers"] = f"flat MMR {inv_tiers:g} (tier 1 of {info['tiers']}; no coin-margined tiers)"
    out = []
    sizes, size_w = size_nodes(params)          # (K, Q) USD, (Q,)
    spread = (sizes.shape[1] > 1 or float(params.position_size_leverage_exponent) != 0.0) and not inverse and tiers is not None
    if spread:
        cap = tiers.cap if isinstance(tiers, tiers_mod.TierTable) else math.inf
        sizes = np.minimum(sizes, cap * (1.0 - 1e-9))
        info["position_sizes_usd"] = {f"{L:g}": [float(x) for x in row] for L, row in zip(lev, sizes)}
    for side in ("long", "short"):
        if spread:  # (K, Q): a size distribution over tiers; a leverage above a tier's max is lowered to it
            a, b = margin.lp_affine(lev[:, None], side, model=model, tiers=tiers, notional=sizes, over_max="clip")
            out += [np.broadcast_to(np.asarray(a, dtype=np.float64), sizes.shape).copy(),
                    np.broadcast_to(np.asarray(b, dtype=np.float64), sizes.shape).copy()]
            continue
        if not inverse:
            a, b = margin.lp_affine(lev, side, model=model, tiers=tiers, notional=params.position_size_usd)
        else:  # inverse LP is affine only approximately: slope at the reference price
            lp = margin.liquidation_price(ref_price, lev, side, model=model, tiers=inv_tiers,
                                          notional=None if inv_tiers is not tiers else params.position_size_usd,
                                          inverse=True)
            a, b = np.asarray(lp, dtype=np.float64) / ref_price, np.zeros_like(lev)
            info["note"] = "inverse contract: LP treated as proportional to entry (slope at the median price)"
        out += [np.broadcast_to(np.asarray(a, dtype=np.float64), lev.shape).copy()[:, None],
                np.broadcast_to(np.asarray(b, dtype=np.float64), lev.shape).copy()[:, None]]
    bad = ~(np.isfinite(out[0]) & np.isfinite(out[2])).all(axis=1)
    if bad.any():
        info["unsupported_leverages"] = [float(x) for x in lev[bad]]
    qw = size_w if spread else np.ones(1)
    return LPCoefficients(out[0], out[1], out[2], out[3], qw, info)


def _spread_range(lp_lo: np.ndarray, lp_hi: np.ndarray, edges: np.ndarray):
    """Distribute uniform mass on [lp_lo, lp_hi] over bins: (row, bin, fraction) and the off-grid fraction per row."""
    B = len(edges) - 1
    n = len(lp_lo)
    width = lp_hi - lp_lo
    point = ~(width > 0)
    b0 = np.searchsorted(edges, lp_lo, "right") - 1
    b1 = np.searchsorted(edges, lp_hi, "right") - 1
    c0 = np.clip(b0, 0, B - 1)
    c1 = np.clip(b1, 0, B - 1)
    # rows entirely off grid have no bins
    off = (b1 < 0) | (b0 >= B) | point
    cnt = np.where(off, 0, c1 - c0 + 1)
    rows = np.repeat(np.arange(n), cnt)
    start = np.repeat(np.cumsum(cnt) - cnt, cnt)
    bins = c0[rows] + (np.arange(rows.size) - start)
    lo = np.maximum(edges[bins], lp_lo[rows])
    hi = np.minimum(edges[bins + 1], lp_hi[rows])
    frac = np.clip(hi - lo, 0.0, None) / width[rows]
    covered = np.bincount(rows, weights=frac, minlength=n)
    # point masses (zero width): the bin holding the point
    pb = b0
    pin = point & (pb >= 0) & (pb < B) & np.isfinite(lp_lo)
    prow = np.flatnonzero(pin)
    rows = np.concatenate([rows, prow])
    bins = np.concatenate([bins, pb[prow]])
    frac = np.concatenate([frac, np.ones(prow.size)])
    covered = covered + pin
    return rows, bins, frac, np.clip(1.0 - covered, 0.0, 1.0)


def deposits_numpy(j_obs: np.ndarray, amount: np.ndarray, e_lo: np.ndarray, e_hi: np.ndarray, thr: np.ndarray,
                   is_long: bool, a: np.ndarray, b: np.ndarray, q_w: np.ndarray, edges: np.ndarray, T: int,
                   dropped0: np.ndarray | None = None):
    """One side's fresh-deposit CSR and off-grid USD (numpy; ``fine_kernels._deposit_loop`` is its numba twin).

    Rows are (deposit i, layer k, size node q) in that order. Off-grid mass (a finite LP outside the
    grid) is reported; a leverage no tier supports (non-finite LP) is not deposited.

    Parameters
    ----------
    j_obs : numpy.ndarray
        (n,) int, the step of each deposit.
    amount : numpy.ndarray
        (n,) USD per layer (unweighted).
    e_lo, e_hi : numpy.ndarray
        (n,) entry price range (USD).
    thr : numpy.ndarray
        (n,) int, clearing threshold of the step's later bars (long: bins ≥ thr cleared; short: ≤ thr).
    is_long : bool
        Which side.
    a, b : numpy.ndarray
        (K, Q): LP = a·entry + b (USD).
    q_w : numpy.ndarray
        (Q,) size-node shares.
    edges : numpy.ndarray
        (B+1,) bin edges (USD).
    T : int
        Number of steps.
    dropped0 : numpy.ndarray, optional
        (K,) USD off the grid before these deposits: the sums continue from it (default zeros).

    Returns
    -------
    csr : tuple of numpy.ndarray
        (ptr int64 (T+1,), k int32, b int32, v float64 USD) by step.
    dropped : numpy.ndarray
        (K,) float64 USD deposited off the grid (``dropped0`` plus these deposits').
    """
    K, Q = a.shape
    B = len(edges) - 1
    rows_obs = np.repeat(np.arange(len(j_obs)), K * Q)
    rows_kq = np.tile(np.arange(K * Q), len(j_obs))
    rows_k = rows_kq // Q
    aa = a.ravel()[rows_kq]
    bb_ = b.ravel()[rows_kq]
    lp1 = aa * e_lo[rows_obs] + bb_
    lp2 = aa * e_hi[rows_obs] + bb_
    lp_lo = np.minimum(lp1, lp2)
    lp_hi = np.maximum(lp1, lp2)
    amt = amount[rows_obs] if Q == 1 else amount[rows_obs] * q_w[rows_kq % Q]
    ok = np.isfinite(lp_lo) & np.isfinite(lp_hi)
    lp_lo = np.where(ok, lp_lo, -1.0)
    lp_hi = np.where(ok, lp_hi, -1.0)
    r, bins, frac, offg = _spread_range(lp_lo, lp_hi, edges)
    dropped = np.zeros(K) if dropped0 is None else np.array(dropped0, dtype=np.float64)
    np.add.at(dropped, rows_k, np.where(ok, offg * amt, 0.0))
    vals = amt[r] * frac
    t_r = thr[rows_obs[r]]
    alive = (bins < t_r) if is_long else (bins > t_r)
    alive &= vals > 0
    return _to_csr(j_obs[rows_obs[r]][alive], rows_k[r][alive], bins[alive], vals[alive], T, K, B), dropped


def _to_csr(j, k, b, v, T: int, K: int, B: int):
    """Aggregate entries by (step, layer, bin) and pack them CSR by step."""
    if len(j) == 0:
        return empty_csr(T)
    key = (j.astype(np.int64) * K + k) * B + b
    uk, inv = np.unique(key, return_inverse=True)
    vs = np.bincount(inv, weights=v, minlength=len(uk))
    js = uk // (K * B)
    ks = (uk // B) % K
    bs = uk % B
    ptr = np.searchsorted(js, np.arange(T + 1), "left").astype(np.int64)
    return ptr, ks.astype(np.int32), bs.astype(np.int32), vs.astype(np.float64)


def deposit_function(use_numba: bool | None, j_obs: np.ndarray) -> Callable:
    """:func:`deposits_numpy` or its numba twin (same arguments, same arrays).

    Parameters
    ----------
    use_numba : bool or None
        True/False forces the choice; None = numba unless ``LIQLAB_NO_NUMBA`` is set.
    j_obs : numpy.ndarray
        (n,) deposit steps; the numba twin needs them in step order (else the numpy path runs).

    Returns
    -------
    callable
        With the signature of :func:`deposits_numpy`.
    """
    from liqlab.engine import fine_kernels

    ordered = len(j_obs) < 2 or (np.diff(j_obs) >= 0).all()
    fn = fine_kernels.compiled_loop("deposits", use_numba) if ordered else None
    if fn is None:
        return deposits_numpy
    return functools.partial(fine_kernels.deposits, fn)
