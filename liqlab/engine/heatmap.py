"""Liquidation heatmap estimation: ``build_heatmap`` → ``Heatmap`` (docs/DESIGN.md, "Heatmap engine").

Two stages:

1. the *fine pass* (this module): per venue, bars and open-interest observations become per-step
   inputs — fresh deposits per leverage layer (CSR), clearing thresholds, OI factors, removals, funding
   shifts — held in a :class:`Replay`;
2. the *step recursion* (:mod:`liqlab.engine.kernel`): decay, clearing, removal, deposits and max age, per
   leverage layer. ``Heatmap.with_params`` re-runs only this stage.

The fine pass and the assembly's weighted sums are numpy with numba twins of their hot loops in
:mod:`liqlab.engine.fine_kernels` (same float64 operations in the same order: the same arrays), selected like
the step recursion (``use_numba``, ``LIQLAB_NO_NUMBA=1``).

Units: USD notional (quote currency) per price bin; times are UTC, ``times[j]`` is the END of step j.
Arrays are time × price (T, B); layers are leverage × time × price (K, T, B).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.engine.agreement import agreement as _agreement
from liqlab.engine.params import DEFAULT_BIN_BP, HeatmapParams, param_info, preset_weights, LEVERAGE_PRESETS

__all__ = ["build_heatmap", "Heatmap", "Replay", "VenueReplay", "make_grid", "fine_pass", "assemble"]

_MAX_BINS = 20_000


# ------------------------------------------------------------------------------------------ replay


@dataclass(frozen=True, eq=False)
class VenueReplay:
    """One venue's step inputs (T steps, B bins, K layers); see docs/DESIGN.md "Replay".

    fresh_long/fresh_short: CSR by step (ptr int64 (T+1,), k int32, b int32, v float64 USD unweighted).
    lo/hi int32 (T,): clearing thresholds; g float64 (T,): OI factor product; rm_long/rm_short float64
    (T,): USD removed by highest_leverage; shift int32 (T,): funding shift in bins; volume_usd (T,)
    traded USD; close (T,) last close in the step (NaN if no bar); dropped_long/short (K,) USD
    deposited off the grid (unweighted per layer).
    """

    venue: str
    fresh_long: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    fresh_short: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    lo: np.ndarray
    hi: np.ndarray
    g: np.ndarray
    rm_long: np.ndarray
    rm_short: np.ndarray
    shift: np.ndarray
    volume_usd: np.ndarray
    close: np.ndarray
    n_bins: int
    step_hours: float
    leverages: np.ndarray
    dropped_long: np.ndarray
    dropped_short: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.g.shape[0])

    def truncated(self, n_steps: int, value_scale: np.ndarray | None = None) -> "VenueReplay":
        """The first ``n_steps`` steps; ``value_scale`` (T,) multiplies each step's fresh values."""
        def csr(c):
            ptr, k, b, v = c
            ptr2 = ptr[: n_steps + 1]
            e = int(ptr2[-1])
            v2 = v[:e]
            if value_scale is not None:
                steps = np.repeat(np.arange(n_steps), np.diff(ptr2))
                v2 = v2 * value_scale[steps]
            return (ptr2, k[:e], b[:e], v2)

        sl = slice(0, n_steps)
        return dataclasses.replace(
            self, fresh_long=csr(self.fresh_long), fresh_short=csr(self.fresh_short), lo=self.lo[sl],
            hi=self.hi[sl], g=self.g[sl], rm_long=self.rm_long[sl], rm_short=self.rm_short[sl],
            shift=self.shift[sl], volume_usd=self.volume_usd[sl], close=self.close[sl])


@dataclass(frozen=True, eq=False)
class Replay:
    """Step inputs of every built venue, on one shared time and price grid."""

    venues: tuple[VenueReplay, ...]
    leverages: np.ndarray
    step_hours: float
    n_bins: int
    times: np.ndarray
    edges: np.ndarray

    def venue(self, name: str) -> VenueReplay:
        for v in self.venues:
            if v.venue == name:
                return v
        raise ParameterError(f"venues: {name!r} not in this heatmap's replay; have {[v.venue for v in self.venues]}")

    @property
    def venue_names(self) -> tuple[str, ...]:
        return tuple(v.venue for v in self.venues)


# -------------------------------------------------------------------------------------------- grid


def _nice(x: float) -> float:
    """Round x down to 1, 2 or 5 × 10^n."""
    e = 10 ** math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * e <= x:
            return m * e
    return e


def make_grid(low: float, high: float, median_price: float, params: HeatmapParams) -> tuple[np.ndarray, float]:
    """Bin edges (B+1,) covering [low·(1−price_range), high·(1+price_range)] and the bin width used.

    ``bp``: log-spaced, edge ratio exp(bin_width·1e-4)… precisely edges = lo·exp(i·ln(1 + bw/1e4)).
    ``usd``: linear, width in USD (default DEFAULT_BIN_BP of the median price rounded to 1/2/5·10^n).
    """
    pr = float(params.price_range)
    lo = low * (1.0 - pr)
    hi = high * (1.0 + pr)
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo > 0):
        raise DataError(f"price range {low}..{high}: cannot build a price grid")
    if params.bin_unit == "bp":
        bw = float(params.bin_width) if params.bin_width is not None else DEFAULT_BIN_BP
        step = math.log1p(bw * 1e-4)
        n = int(math.ceil(math.log(hi / lo) / step))
        if n > _MAX_BINS:
            raise ParameterError(f"bin_width: {bw:g} bp gives {n} bins over {lo:.6g}..{hi:.6g} (max {_MAX_BINS})")
        edges = lo * np.exp(step * np.arange(n + 1, dtype=np.float64))
    else:
        bw = float(params.bin_width) if params.bin_width is not None else _nice(median_price * DEFAULT_BIN_BP * 1e-4)
        if bw > 0.5 * median_price:  # the same 50% cap as for bp widths (HeatmapParams.validate)
            raise ParameterError(f"bin_width: {bw:g} USD is wider than 50% of the median price "
                                 f"({median_price:.6g} USD); use a smaller width")
        lo = math.floor(lo / bw) * bw
        if lo <= 0:
            lo = bw * 0.5
        n = int(math.ceil((hi - lo) / bw))
        if n > _MAX_BINS:
            raise ParameterError(f"bin_width: {bw:g} USD gives {n} bins over {lo:.6g}..{hi:.6g} (max {_MAX_BINS})")
        edges = lo + bw * np.arange(n + 1, dtype=np.float64)
    return edges, bw


def bin_centres(edges: np.ndarray, unit: str) -> np.ndarray:
    """Centres (B,): geometric mean of the edges for bp bins, arithmetic for USD bins."""
    if unit == "bp":
        return np.sqrt(edges[:-1] * edges[1:])
    return 0.5 * (edges[:-1] + edges[1:])


# ------------------------------------------------------------------------------------------ margin


def _lp_coefficients(ds, params: HeatmapParams, ref_price: float):
    """(a_long, b_long, a_short, b_short, size_weights, info): LP = a·entry + b (USD), a and b (K, Q) per
    leverage and position-size node (Q = 1 unless ``position_size_sigma`` > 0), size_weights (Q,) sum 1.

    margin_model 'venue': the venue's own formula with the dataset's leverage_tiers (or the bundled
    table, generic if the symbol has none); 'binance'/'bybit'/'okx': that formula and that venue's
    bundled tiers; 'flat': EP·(1 ∓ 1/L).
    """
    from liqlab.engine import margin
    from liqlab.io import tiers as tiers_mod

    lev = np.asarray(params.leverages, dtype=np.float64)
    venue_of = {"binance": "binanceusdm", "bybit": "bybit", "okx": "okx"}
    mm = params.margin_model
    info: dict[str, Any] = {}
    if mm == "flat":
        model, tiers = "flat", None
        info["tiers"] = "none (flat: EP·(1 ∓ 1/L))"
    else:
        if mm == "venue":
            try:
                model = margin.model_for_venue(ds.venue)
            except ParameterError:
                raise ParameterError(f"margin_model: venue {ds.venue!r} has no margin model; use margin_model='binance'|'bybit'|'okx'|'flat'") from None
            tv = ds.venue
        else:
            model, tv = mm, venue_of[mm]
        if ds.leverage_tiers is not None and len(ds.leverage_tiers) and tv == ds.venue:
            tiers = tiers_mod.TierTable.from_frame(ds.leverage_tiers, venue=ds.venue, symbol=ds.symbol)
            info["tiers"] = f"dataset leverage_tiers ({len(tiers)} tiers)"
        else:
            tiers = tiers_mod.default_tiers(tv, ds.symbol, fallback=True)
            info["tiers"] = f"bundled {tiers.venue} {tiers.symbol} as of {tiers.as_of}"
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
    return out[0], out[1], out[2], out[3], qw, info


#: Number of equal-probability nodes used for a lognormal position-size distribution (position_size_sigma > 0).
SIZE_NODES = 9


def size_nodes(params: HeatmapParams) -> tuple[np.ndarray, np.ndarray]:
    """Position notionals (K, Q) USD per leverage layer and their notional shares (Q,) summing to 1.

    The median at leverage L is ``position_size_usd``·(L/10)^(−position_size_leverage_exponent).
    ``position_size_sigma`` = 0: that single size (Q = 1). Otherwise SIZE_NODES equal-probability
    quantiles of the lognormal share-of-notional distribution with that median and log-sd
    ``position_size_sigma``.
    """
    from scipy.special import ndtri

    from liqlab.engine.kernel import LEVERAGE_REF

    lev = np.asarray(params.leverages, dtype=np.float64)
    med = float(params.position_size_usd) * (lev / LEVERAGE_REF) ** (-float(params.position_size_leverage_exponent))
    sig = float(params.position_size_sigma)
    if sig <= 0:
        return med[:, None], np.ones(1)
    q = (np.arange(SIZE_NODES) + 0.5) / SIZE_NODES
    return med[:, None] * np.exp(sig * ndtri(q))[None, :], np.full(SIZE_NODES, 1.0 / SIZE_NODES)


# -------------------------------------------------------------------------------------- fine pass


def _ns(x) -> np.ndarray:
    """A datetime column → int64 ns since epoch (UTC)."""
    return np.asarray(pd.DatetimeIndex(pd.to_datetime(x, utc=True)).as_unit("ns").asi8, dtype=np.int64)


def _segmented_suffix(vals: np.ndarray, seg: np.ndarray, width: int, op: str) -> np.ndarray:
    """Suffix min ('min') or max ('max') of int ``vals`` within runs of equal non-decreasing ``seg``."""
    if len(vals) == 0:
        return vals.copy()
    seg = seg.astype(np.int64)
    if op == "min":
        key = vals.astype(np.int64) + seg * width
        r = np.minimum.accumulate(key[::-1])[::-1]
        return r - seg * width
    key = vals.astype(np.int64) - seg * width
    r = np.maximum.accumulate(key[::-1])[::-1]
    return r + seg * width


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


def _deposits_numpy(j_obs: np.ndarray, amount: np.ndarray, e_lo: np.ndarray, e_hi: np.ndarray, thr: np.ndarray,
                    is_long: bool, a: np.ndarray, b: np.ndarray, q_w: np.ndarray, edges: np.ndarray, T: int):
    """One side's fresh-deposit CSR and off-grid USD (numpy; ``liqlab.engine.fine_kernels`` is its numba twin).

    Per deposit i (n,): step ``j_obs``, ``amount`` USD per layer (unweighted), entry range
    ``e_lo``..``e_hi`` (USD), ``thr`` clearing threshold of the step's later bars (long: bins ≥ thr are
    cleared; short: bins ≤ thr). ``a``, ``b`` (K, Q): LP = a·entry + b; ``q_w`` (Q,) size-node shares.
    Rows are (i, k, q) in that order. Returns ((ptr, k, b, v) CSR by step, dropped (K,) USD off the grid).
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
    # off-grid mass (finite LP outside the grid) is reported; unsupported leverage is not deposited
    dropped = np.zeros(K)
    np.add.at(dropped, rows_k, np.where(ok, offg * amt, 0.0))
    vals = amt[r] * frac
    t_r = thr[rows_obs[r]]
    alive = (bins < t_r) if is_long else (bins > t_r)
    alive &= vals > 0
    return _to_csr(j_obs[rows_obs[r]][alive], rows_k[r][alive], bins[alive], vals[alive], T, K, B), dropped


def _compiled(name: str, use_numba: bool | None):
    """The numba kernel ``name`` of liqlab.engine.fine_kernels when numba is wanted (``kernel._want_numba``) and
    loads; else None (the numpy twin runs)."""
    from liqlab.engine.kernel import _want_numba

    if not _want_numba(use_numba):
        return None
    from liqlab.engine.fine_kernels import compiled

    return compiled(name)


def _deposit_function(use_numba: bool | None, j_obs: np.ndarray):
    """``_deposits_numpy`` or its numba twin (same arguments, same arrays); numba needs deposits in step order."""
    fn = _compiled("deposits", use_numba) if len(j_obs) < 2 or (np.diff(j_obs) >= 0).all() else None
    if fn is None:
        return _deposits_numpy
    from liqlab.engine.fine_kernels import deposits

    return functools.partial(deposits, fn)


def _searchsorted(a: np.ndarray, x: np.ndarray, side: str, use_numba: bool | None) -> np.ndarray:
    """``np.searchsorted(a, x, side)`` as int64; the numba twin walks from the previous answer (bars move little)."""
    fn = _compiled("search", use_numba)
    if fn is None:
        return np.searchsorted(a, x, side).astype(np.int64)
    from liqlab.engine.fine_kernels import search

    return search(fn, a, x, side)


def fine_pass(ds, params: HeatmapParams, t0_ns: int, T: int, edges: np.ndarray, notes: list[str], *,
              use_numba: bool | None = None) -> VenueReplay:
    """Per-step inputs of one venue (docs/DESIGN.md, "Fine pass") on the shared grid.

    Open interest at ts t is the OI at that instant; a deposit at t uses the bars with open time in
    [t_prev, t) and belongs to the step j with start_j < t <= end_j; later bars of step j clear it.
    A gap t − t_prev > ``oi_max_gap_hours`` (or a zero previous OI) resets the baseline: no deposit and
    no removal across the gap. ``use_numba``: None = the numba kernels unless LIQLAB_NO_NUMBA=1 (the
    numpy path gives the same arrays).
    """
    venue = ds.venue
    step_ns = int(round(params.step_hours * 3600e9))
    B = len(edges) - 1
    centres = bin_centres(edges, params.bin_unit)
    lev = np.asarray(params.leverages, dtype=np.float64)
    K = len(lev)
    end_ns = t0_ns + T * step_ns

    # ---- bars
    o = ds.ohlcv
    ts = _ns(o["ts"])
    keep = (ts >= t0_ns) & (ts < end_ns)
    ts = ts[keep]
    op, hi_, lo_, cl = (o[c].to_numpy(np.float64)[keep] for c in ("open", "high", "low", "close"))
    vol = o["volume"].to_numpy(np.float64)[keep]
    tb = o["taker_buy_volume"].to_numpy(np.float64)[keep] if "taker_buy_volume" in o.columns else None
    mark = o["mark_close"].to_numpy(np.float64)[keep] if "mark_close" in o.columns else None
    n_bars = len(ts)
    sb = (ts - t0_ns) // step_ns  # step of each bar

    clear_lo, clear_hi = lo_, hi_
    if params.clearing == "mark":
        if mark is not None:
            clear_lo = clear_hi = mark
        else:
            notes.append(f"{venue}: clearing='mark' but no mark_close column; cleared by high/low")
    if params.clearing == "none":  # levels stay when price trades through them (the naive baseline)
        lo_u = np.full(n_bars, B, dtype=np.int64)
        hi_u = np.full(n_bars, -1, dtype=np.int64)
    else:
        lo_u = _searchsorted(centres, clear_lo, "left", use_numba)        # long bins b >= lo_u cleared
        hi_u = _searchsorted(centres, clear_hi, "right", use_numba) - 1   # short bins b <= hi_u cleared
    LO = np.full(T, B, dtype=np.int64)
    HI = np.full(T, -1, dtype=np.int64)
    np.minimum.at(LO, sb, lo_u)
    np.maximum.at(HI, sb, hi_u)
    suf_lo = _segmented_suffix(lo_u, sb, B + 2, "min")
    suf_hi = _segmented_suffix(hi_u, sb, B + 2, "max")
    volume_usd = np.zeros(T)
    np.add.at(volume_usd, sb, vol * cl)
    close = np.full(T, np.nan)
    if n_bars:
        last = np.r_[np.flatnonzero(np.diff(sb)), n_bars - 1]
        close[sb[last]] = cl[last]

    # ---- open interest observations
    oi_df = ds.open_interest
    t_oi = _ns(oi_df["ts"])
    oi = oi_df["open_interest"].to_numpy(np.float64)
    m = (t_oi >= t0_ns) & (t_oi <= end_ns)
    t_oi, oi = t_oi[m], oi[m]
    n_obs = len(t_oi)
    g_all = np.ones(T)
    rm_l = np.zeros(T)
    rm_s = np.zeros(T)
    empty = (np.zeros(T + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64))
    fresh = {"long": empty, "short": empty}
    dropped = {"long": np.zeros(K), "short": np.zeros(K)}
    info: dict[str, Any] = {"bars": int(n_bars), "oi_observations": int(n_obs)}
    if n_obs >= 2 and n_bars:
        tp, tc = t_oi[:-1], t_oi[1:]
        oip, oic = oi[:-1], oi[1:]
        j_obs = -(-(tc - t0_ns) // step_ns) - 1      # start_j < t <= end_j
        a_i = np.searchsorted(ts, tp, "left")
        e_i = np.searchsorted(ts, tc, "left")
        has_bar = e_i > 0
        emp = e_i <= a_i
        a_i = np.where(emp, e_i - 1, a_i)             # no bar in the interval: the last bar before t
        gap = (tc - tp) > params.oi_max_gap_hours * 3600e9
        valid = has_bar & ~gap & (oip > 0) & (j_obs >= 0) & (j_obs < T)
        n_reset = int((gap | (oip <= 0)).sum())
        if n_reset:
            info["oi_resets"] = n_reset
        idx = np.flatnonzero(valid)
        a_v, e_v, j_v = a_i[idx], e_i[idx], j_obs[idx]
        if len(idx):
            # interval aggregates over bars [a, e)
            H = _range_reduce(hi_, a_v, e_v, np.maximum)
            L = _range_reduce(lo_, a_v, e_v, np.minimum)
            C = cl[e_v - 1]
            Op = op[a_v]
            P = C
            d_oi = oic[idx] - oip[idx]
            N = np.maximum(d_oi, 0.0) * P
            R = np.maximum(-d_oi, 0.0) * P
            g = np.where(d_oi < 0, oic[idx] / oip[idx], 1.0)
            # side split
            split = params.side_split
            if split == "taker":
                if tb is None:
                    notes.append(f"{venue}: side_split='taker' but no taker_buy_volume column; used long_share={params.long_share:g}")
                    alpha = np.full(len(idx), float(params.long_share))
                else:
                    cs_v = np.r_[0.0, np.cumsum(vol)]
                    cs_t = np.r_[0.0, np.cumsum(tb)]
                    vsum = cs_v[e_v] - cs_v[a_v]
                    tsum = cs_t[e_v] - cs_t[a_v]
                    with np.errstate(invalid="ignore", divide="ignore"):
                        alpha = np.where(vsum > 0, tsum / np.where(vsum > 0, vsum, 1.0), float(params.long_share))
                    alpha = np.clip(alpha, 0.0, 1.0)
            elif split == "candle":
                alpha = np.where(C > Op, 1.0, np.where(C < Op, 0.0, 0.5))
            elif split == "fixed":
                alpha = np.full(len(idx), float(params.long_share))
            else:  # both
                alpha = None
            share = {"long": np.ones(len(idx)) if alpha is None else alpha,
                     "short": np.ones(len(idx)) if alpha is None else 1.0 - alpha}
            # OI factors: per step product, and the product after each deposit within its step
            if params.oi_decrease == "proportional":
                np.multiply.at(g_all, j_v, g)
                lg = np.log(np.maximum(g, 1e-300))
                S = np.cumsum(lg)
                last_in_step = np.searchsorted(j_v, j_v, "right") - 1
                after = np.exp(S[last_in_step] - S)
                after = np.where(last_in_step == np.arange(len(idx)), 1.0, after)
            else:
                after = np.ones(len(idx))
                if params.oi_decrease == "highest_leverage":
                    np.add.at(rm_l, j_v, R * share["long"])
                    np.add.at(rm_s, j_v, R * share["short"])
            # first bar after the deposit, if it is in the same step
            nxt = e_v
            in_step = nxt < n_bars
            nxt_c = np.minimum(nxt, max(n_bars - 1, 0))
            in_step &= sb[nxt_c] == j_v
            thr_long = np.where(in_step, suf_lo[nxt_c], B)
            thr_short = np.where(in_step, suf_hi[nxt_c], -1)
            # entry price
            ref = float(np.median(cl))
            a_l, b_l, a_s, b_s, q_w, minfo = _lp_coefficients(ds, params, ref)
            info["margin"] = minfo
            if "unsupported_leverages" in minfo:
                notes.append(f"{venue}: leverage(s) {minfo['unsupported_leverages']} exceed the tier's max leverage "
                             f"at position_size_usd={params.position_size_usd:g}; those layers stay empty")
            if params.entry_price == "close":
                E_lo = E_hi = C
            elif params.entry_price == "typical":
                E_lo = E_hi = (H + L + C) / 3.0
            else:
                E_lo, E_hi = L, H
            pos = N > 0
            deposits = _deposit_function(use_numba, j_v)
            for side, a_c, b_c, thr in (("long", a_l, b_l, thr_long), ("short", a_s, b_s, thr_short)):
                amount = N * share[side] * after           # USD per layer (unweighted)
                sel = np.flatnonzero(pos & (amount > 0))
                fresh[side], dropped[side] = deposits(j_v[sel], amount[sel], E_lo[sel], E_hi[sel], thr[sel],
                                                      side == "long", a_c, b_c, q_w, edges, T)
    shift = np.zeros(T, dtype=np.int64)
    if params.funding_drift and ds.funding is not None and len(ds.funding) and n_bars:
        tf = _ns(ds.funding["ts"])
        fr = ds.funding["funding_rate"].to_numpy(np.float64)
        mf = (tf >= t0_ns) & (tf < end_ns)
        tf, fr = tf[mf], fr[mf]
        jf = (tf - t0_ns) // step_ns
        if params.bin_unit == "usd":
            ib = np.clip(np.searchsorted(ts, tf, "right") - 1, 0, n_bars - 1)
            bw = edges[1] - edges[0]
            raw = fr * cl[ib] / bw
        else:
            raw = fr / math.log(edges[1] / edges[0])
        per_step = np.zeros(T)
        np.add.at(per_step, jf, raw)
        cum = np.rint(np.cumsum(per_step)).astype(np.int64)
        shift = np.diff(np.r_[0, cum])
        info["funding_shift_bins"] = int(cum[-1]) if T else 0
    return VenueReplay(
        venue=venue, fresh_long=fresh["long"], fresh_short=fresh["short"], lo=LO.astype(np.int32),
        hi=HI.astype(np.int32), g=g_all, rm_long=rm_l, rm_short=rm_s, shift=shift.astype(np.int32),
        volume_usd=volume_usd, close=close, n_bins=B, step_hours=params.step_hours, leverages=lev,
        dropped_long=dropped["long"], dropped_short=dropped["short"], info=info)


def _range_reduce(x: np.ndarray, a: np.ndarray, e: np.ndarray, op) -> np.ndarray:
    """op-reduce x[a_i:e_i] for each i (non-empty ranges; they may overlap)."""
    if len(a) == 0:
        return np.zeros(0)
    mark = np.zeros(len(x) + 1, dtype=bool)     # = np.unique(np.r_[a, e]), without a sort
    mark[a] = True
    mark[e] = True
    bounds = np.flatnonzero(mark)
    starts = bounds[bounds < len(x)]
    red = op.reduceat(x, starts)                 # segment s = x[starts[s]:starts[s+1]]
    sa = np.searchsorted(starts, a)
    nseg = np.searchsorted(bounds, e) - np.searchsorted(bounds, a)
    out = red[sa]
    for i in np.flatnonzero(nseg != 1):          # ranges split by another range's boundary (rare)
        out[i] = op.reduce(x[a[i]:e[i]])
    return out


def _to_csr(j, k, b, v, T: int, K: int, B: int):
    """Aggregate entries by (step, layer, bin) and pack them CSR by step."""
    if len(j) == 0:
        return (np.zeros(T + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64))
    key = (j.astype(np.int64) * K + k) * B + b
    uk, inv = np.unique(key, return_inverse=True)
    vs = np.bincount(inv, weights=v, minlength=len(uk))
    js = uk // (K * B)
    ks = (uk // B) % K
    bs = uk % B
    ptr = np.searchsorted(js, np.arange(T + 1), "left").astype(np.int64)
    return ptr, ks.astype(np.int32), bs.astype(np.int32), vs.astype(np.float64)


# ---------------------------------------------------------------------------------------- assembly


def _as_collection(data):
    from liqlab.io.dataset import Collection, Dataset, load_collection

    if isinstance(data, Collection):
        return data
    if isinstance(data, Dataset):
        return Collection(datasets=(data,), path=data.path)
    if isinstance(data, (str, os.PathLike)):
        return load_collection(data)
    raise ParameterError(f"data: need a Dataset, Collection or path, got {type(data).__name__}")


def heatmap_bytes(steps: int, bins: int, layers: int, venues: int) -> int:
    """Peak bytes of one heatmap build (the assembly; the fine pass is O(observations), not O(T·B)).

    Per cell of the (T, B) grid: the accumulated long and short layers (2·K float32), one venue's
    layers before they are added (2·K float32, with several venues), the weighted long and short maps
    and one venue's weighted maps before the float32 copy (4 float64), the per-venue maps (2·V float32)
    and the agreement counts (int8).
    """
    per_cell = 4 * 2 * layers + (4 * 2 * layers if venues > 1 else 0) + 8 * 4 + 4 * 2 * venues + 1
    return int(steps) * int(bins) * per_cell


def _check_heatmap_memory(steps: int, bins: int, params: HeatmapParams, bin_width: float, venues: int,
                          max_memory) -> None:
    """Refuse (ParameterError) a build whose :func:`heatmap_bytes` exceed the memory budget."""
    from liqlab.engine.memory import check_fits, resolve_budget

    k = len(params.leverages)
    unit = "bp" if params.bin_unit == "bp" else "USD"
    check_fits(heatmap_bytes(steps, bins, k, venues), resolve_budget(max_memory),
               f"the heatmap ({steps:,} steps of time_step={params.time_step} x {bins:,} price bins of "
               f"bin_width={bin_width:g} {unit} x {k} leverage layers x {venues} venue(s))",
               "use a longer time_step, a wider bin_width, a shorter start..end or fewer venues")


def build_heatmap(data, params: HeatmapParams | dict | None = None, *, progress: bool | None = None,
                  use_numba: bool | None = None, max_memory: int | str | None = None, **overrides) -> "Heatmap":
    """Estimate the liquidation heatmap of a Dataset, Collection or path (USD notional, time × price).

    ``params``: HeatmapParams or dict; keyword ``overrides`` replace single fields. ``progress``: tqdm
    bar over venues (None = only on a terminal). ``use_numba``: None = numba unless LIQLAB_NO_NUMBA=1.
    ``max_memory``: byte budget (int or '8G'; None = half the available memory, see liqlab.engine.memory); a
    build whose output would not fit is refused before anything large is allocated.
    """
    p = HeatmapParams.coerce(params, **overrides)
    coll = _as_collection(data)
    if p.venues is not None:
        try:
            coll = coll.select(p.venues)
        except DataError as exc:
            raise ParameterError(f"venues: {exc}") from None
    step_ns = int(round(p.step_hours * 3600e9))
    start = _utc(p.start) if p.start is not None else None
    end = _utc(p.end) if p.end is not None else None
    coll = coll.between(start, end)
    # time grid
    firsts, lasts, lows, highs, closes = [], [], [], [], []
    for ds in coll:
        if len(ds.ohlcv) == 0:
            continue
        tsv = _ns(ds.ohlcv["ts"])
        firsts.append(tsv[0])
        dt = int(np.median(np.diff(tsv))) if len(tsv) > 1 else step_ns
        lasts.append(tsv[-1] + dt)
        lo_col = ds.ohlcv["low"].to_numpy(np.float64)
        hi_col = ds.ohlcv["high"].to_numpy(np.float64)
        if p.clearing == "mark" and "mark_close" in ds.ohlcv.columns:
            mk = ds.ohlcv["mark_close"].to_numpy(np.float64)
            lo_col, hi_col = np.minimum(lo_col, mk), np.maximum(hi_col, mk)
        lows.append(lo_col.min())
        highs.append(hi_col.max())
        closes.append(ds.ohlcv["close"].to_numpy(np.float64))
    if not firsts:
        raise DataError(f"{coll.path or 'data'}: no OHLCV bars in the selected time range")
    t_first = start.value if start is not None else min(firsts)
    t0 = (t_first // step_ns) * step_ns
    t_last = end.value if end is not None else max(lasts)
    T = int(-(-(t_last - t0) // step_ns))
    if T <= 0:
        raise ParameterError(f"start/end: empty time range {p.start}..{p.end}")
    edges, bw = make_grid(min(lows), max(highs), float(np.median(np.concatenate(closes))), p)
    _check_heatmap_memory(T, len(edges) - 1, p, bw, len(firsts), max_memory)
    times = (t0 + step_ns * np.arange(1, T + 1, dtype=np.int64)).astype("datetime64[ns]")
    notes: list[str] = []
    venues = []
    from tqdm.auto import tqdm

    for ds in tqdm(list(coll), desc="fine pass", unit="venue", disable=_no_progress(progress), leave=False):
        if len(ds.ohlcv) == 0 or len(ds.open_interest) < 2:
            notes.append(f"{ds.venue}: too little data in range (bars {len(ds.ohlcv)}, OI rows {len(ds.open_interest)}); skipped")
            continue
        venues.append(fine_pass(ds, p, t0, T, edges, notes, use_numba=use_numba))
    if not venues:
        raise DataError(f"{coll.path or 'data'}: no venue has bars and at least two open-interest rows in range")
    replay = Replay(venues=tuple(venues), leverages=np.asarray(p.leverages, dtype=np.float64), step_hours=p.step_hours,
                    n_bins=len(edges) - 1, times=times, edges=edges)
    meta = {
        "symbol": coll.symbol,
        "venues": [v.venue for v in venues],
        "synthetic": bool(coll.synthetic),
        "data_start": pd.Timestamp(t0, tz="UTC").isoformat(),
        "data_end": pd.Timestamp(t0 + T * step_ns, tz="UTC").isoformat(),
        "bin_width": bw,
        "bin_unit": p.bin_unit,
        "units": "USD notional",
        "notes": notes,
        "venue_info": {v.venue: v.info for v in venues},
        "source": [str(ds.meta.get("source", "")) for ds in coll],
    }
    if meta["synthetic"]:
        meta["label"] = "SYNTHETIC data"
    return assemble(replay, p, meta, use_numba=use_numba)


def _no_progress(progress: bool | None) -> bool | None:
    if progress is None:
        return None  # tqdm: disable when not a TTY
    return not progress


def _utc(x) -> pd.Timestamp:
    ts = pd.Timestamp(x)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def assemble(replay: Replay, params: HeatmapParams, meta: dict, *, use_numba: bool | None = None) -> "Heatmap":
    """Run the step recursion for the selected venues and build the Heatmap (USD, time × price)."""
    from liqlab.engine.kernel import max_age_steps, run_steps

    w = params.weights()
    if len(w) != len(replay.leverages) or not np.allclose(np.asarray(params.leverages, float), replay.leverages):
        raise ParameterError("leverages: differ from the replay's leverage set; rebuild with build_heatmap")
    names = params.venues if params.venues is not None else replay.venue_names
    sel = [replay.venue(n) for n in names]
    A = max_age_steps(params.max_age_hours, replay.step_hours)
    T = len(replay.times)
    long_layers = short_layers = None
    venue_long: dict[str, np.ndarray] = {}
    venue_short: dict[str, np.ndarray] = {}
    long = short = None
    for rv in sel:
        L, S = run_steps(rv, w, params.half_life_hours, A, params.oi_decrease, use_numba=use_numba,
                         half_life_exponent=params.half_life_exponent)
        vl, vs = _weighted(L, w, use_numba), _weighted(S, w, use_numba)
        venue_long[rv.venue] = vl.astype(np.float32)
        venue_short[rv.venue] = vs.astype(np.float32)
        if long_layers is None:
            long_layers, short_layers = L, S
            long, short = vl, vs        # = _weighted(long_layers, w) while there is one venue
        else:
            long_layers += L
            short_layers += S
            long = short = None
        del L, S, vl, vs
    if long is None:
        long = _weighted(long_layers, w, use_numba)
        short = _weighted(short_layers, w, use_numba)
    agreement = _agreement(venue_long, venue_short, params.agreement_threshold, params.agreement_window_bins,
                           _block_rows(len(replay.edges) - 1))
    close = _close(sel, T)
    meta = dict(meta)
    meta["venues"] = [rv.venue for rv in sel]
    meta["dropped_usd"] = {rv.venue: {"long": float(rv.dropped_long @ w), "short": float(rv.dropped_short @ w)} for rv in sel}
    meta["deposited_usd"] = {rv.venue: {"long": float(_csr_weighted_total(rv.fresh_long, w)),
                                        "short": float(_csr_weighted_total(rv.fresh_short, w))} for rv in sel}
    return Heatmap(times=replay.times, prices=bin_centres(replay.edges, params.bin_unit), edges=replay.edges,
                   long=long, short=short, leverages=replay.leverages.copy(), weights=w, long_layers=long_layers,
                   short_layers=short_layers, venue_long=venue_long, venue_short=venue_short, agreement=agreement,
                   close=close, params=params, meta=meta, replay=replay)


def _csr_weighted_total(csr, w) -> float:
    ptr, k, b, v = csr
    return float(np.dot(np.bincount(k, weights=v, minlength=len(w)), w)) if len(v) else 0.0


#: Elements (float64) per row block in the assembly's blocked loops: temporaries stay in the CPU cache.
_BLOCK_ELEMS = 1 << 15


def _block_rows(B: int) -> int:
    """Rows of B elements per block: about _BLOCK_ELEMS elements, at least one row."""
    return max(1, _BLOCK_ELEMS // max(B, 1))


def _row_blocks(T: int, B: int):
    """Slices over T rows of B elements, _block_rows(B) rows each."""
    step = _block_rows(B)
    return (slice(r0, min(T, r0 + step)) for r0 in range(0, T, step))


def _weighted(layers: np.ndarray, w: np.ndarray, use_numba: bool | None = None) -> np.ndarray:
    """Σ_k w_k·layers[k] in float64 (T, B) for layers (K, T, B): from 0, layers k = 0..K−1 in order, zero
    weights skipped (the same sums whatever the blocking; the numba twin adds in the same order)."""
    fn = _compiled("weighted", use_numba)
    if fn is not None:
        from liqlab.engine.fine_kernels import weighted

        return weighted(fn, layers, w)
    K, T, B = layers.shape
    out = np.zeros((T, B), dtype=np.float64)
    tmp = np.empty((min(T, _block_rows(B)), B), dtype=np.float64)
    for rows in _row_blocks(T, B):
        o = out[rows]
        t = tmp[: o.shape[0]]
        for k in range(K):
            if w[k] != 0.0:
                np.multiply(layers[k, rows], w[k], out=t)
                o += t
    return out


def _close(sel, T: int) -> np.ndarray:
    """Mean over venues of each venue's last close in the step (carried forward through empty steps)."""
    cols = []
    for rv in sel:
        c = pd.Series(rv.close).ffill().to_numpy()
        cols.append(c)
    arr = np.vstack(cols)
    with np.errstate(invalid="ignore"):
        cnt = np.isfinite(arr).sum(axis=0)
        s = np.nansum(arr, axis=0)
        return np.where(cnt > 0, s / np.maximum(cnt, 1), np.nan)


# ----------------------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class Heatmap:
    """Estimated liquidation levels: USD notional per price bin per output step (time × price).

    ``long``: long positions' liquidation levels (below price); ``short``: above price. ``times[j]`` is
    the end of step j (UTC). See docs/DESIGN.md "Result" and docs/ENGINE.md.
    """

    times: np.ndarray
    prices: np.ndarray
    edges: np.ndarray
    long: np.ndarray
    short: np.ndarray
    leverages: np.ndarray
    weights: np.ndarray
    long_layers: np.ndarray
    short_layers: np.ndarray
    venue_long: dict
    venue_short: dict
    agreement: np.ndarray
    close: np.ndarray
    params: HeatmapParams
    meta: dict
    replay: Replay

    # ------------------------------------------------------------------------------ basic accessors

    @property
    def synthetic(self) -> bool:
        return bool(self.meta.get("synthetic", False))

    @property
    def title(self) -> str:
        """A label for plots: symbol, venues, and SYNTHETIC when the data is."""
        t = f"{self.meta.get('symbol', '')} liquidation heatmap ({', '.join(self.meta.get('venues', []))})"
        return ("SYNTHETIC — " + t) if self.synthetic else t

    def index_at(self, t=None) -> int:
        """Snapshot index nearest to ``t`` (timestamp, ISO string or int index; None = last)."""
        T = len(self.times)
        if t is None:
            return T - 1
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
            j = int(t)
            if not -T <= j < T:
                raise ParameterError(f"t: index {j} outside 0..{T - 1}")
            return j % T
        try:
            ts = _utc(t)
        except (ValueError, TypeError):
            raise ParameterError(f"t: not a timestamp or index: {t!r}") from None
        tv = self.times.astype("datetime64[ns]").astype(np.int64)
        return int(np.argmin(np.abs(tv - ts.value)))

    def profile(self, t=None) -> pd.DataFrame:
        """Columns price, long, short (USD) at the snapshot nearest ``t`` (None = last)."""
        j = self.index_at(t)
        return pd.DataFrame({"price": self.prices, "long": self.long[j], "short": self.short[j]})

    def mix(self, weights) -> tuple[np.ndarray, np.ndarray]:
        """(long, short) (T, B) float64 for other leverage weights: a weighted sum of the layers.

        Exact for 'proportional'/'ignore'; for 'highest_leverage' the layers depend on the weights, so use
        ``with_params(leverage_weights=...)``.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != self.weights.shape or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ParameterError(f"weights: need {len(self.weights)} finite non-negative weights, got {weights!r}")
        w = w / w.sum()
        return _weighted(self.long_layers, w), _weighted(self.short_layers, w)

    def band(self, mixes: dict | None = None) -> dict[str, np.ndarray]:
        """Per-cell low / median / high over plausible leverage mixes (default: every preset).

        Returns {'long': (3, T, B), 'short': (3, T, B), 'mixes': names}: rows are min, median, max (USD).
        """
        if mixes is None:
            mixes = {n: preset_weights(n, self.leverages) for n in LEVERAGE_PRESETS}
        ls, ss = [], []
        for name, w in mixes.items():
            if self.params.oi_decrease == "highest_leverage":
                h = self.with_params(leverage_weights=tuple(float(x) for x in np.asarray(w) / np.sum(w)))
                ls.append(h.long)
                ss.append(h.short)
            else:
                lo, sh = self.mix(w)
                ls.append(lo)
                ss.append(sh)
        L = np.stack(ls)
        S = np.stack(ss)
        q = lambda a: np.stack([a.min(axis=0), np.median(a, axis=0), a.max(axis=0)])  # noqa: E731
        return {"long": q(L), "short": q(S), "mixes": list(mixes)}

    def top_clusters(self, t=None, n: int = 10) -> pd.DataFrame:
        """The ``n`` largest clusters at the snapshot nearest ``t`` (None = last).

        A cluster is a local maximum of one side's map (≥ both neighbours, > 0). Columns: time, price,
        side, notional (USD in that bin), distance_pct (price vs reference close, %), age_hours
        (notional-weighted mean age of the levels in the bin), venues (venues agreeing), single_venue.
        """
        j = self.index_at(t)
        rows = []
        for side, arr in (("long", self.long[j]), ("short", self.short[j])):
            x = np.asarray(arr, dtype=np.float64)
            if x.size == 0:
                continue
            left = np.r_[-np.inf, x[:-1]]
            right = np.r_[x[1:], -np.inf]
            peak = (x > 0) & (x >= left) & (x > right)
            for b in np.flatnonzero(peak):
                rows.append((side, int(b), float(x[b])))
        rows.sort(key=lambda r: -r[2])
        rows = rows[: max(int(n), 0)]
        cols = ["time", "price", "side", "notional", "distance_pct", "age_hours", "venues", "single_venue"]
        if not rows:
            return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
        age_l, age_s = self._mean_age(j)
        ref = self.close[j]
        nv = len(self.meta.get("venues", []))
        out = []
        for side, b, v in rows:
            agree = int(self.agreement[j, b]) if self.agreement.size else 0
            age = (age_l if side == "long" else age_s)[b]
            out.append({
                "time": pd.Timestamp(self.times[j], tz="UTC"), "price": float(self.prices[b]), "side": side,
                "notional": v, "distance_pct": float((self.prices[b] / ref - 1.0) * 100.0) if np.isfinite(ref) else np.nan,
                "age_hours": float(age), "venues": agree, "single_venue": bool(nv > 1 and agree <= 1),
            })
        return pd.DataFrame(out, columns=cols)

    def _mean_age(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Notional-weighted mean age (hours) per bin at snapshot j, per side (NaN where empty).

        Re-runs the recursion on steps 0..j with each deposit scaled by (its step + 1): every operation
        is a per-bin linear scaling, so the ratio to the plain run is the mean deposit step. Exact for
        'proportional'/'ignore'; approximate for 'highest_leverage' (removals follow the scaled mass).
        """
        from liqlab.engine.kernel import max_age_steps, run_steps

        p = self.params
        A = max_age_steps(p.max_age_hours, self.replay.step_hours)
        names = p.venues if p.venues is not None else self.replay.venue_names
        scale = np.arange(1, j + 2, dtype=np.float64)
        zl = np.zeros(len(self.prices))
        zs = np.zeros(len(self.prices))
        xl = np.zeros(len(self.prices))
        xs = np.zeros(len(self.prices))
        for name in names:
            rv = self.replay.venue(name)
            base = rv.truncated(j + 1)
            sc = rv.truncated(j + 1, value_scale=scale)
            L0, S0 = run_steps(base, self.weights, p.half_life_hours, A, p.oi_decrease, half_life_exponent=p.half_life_exponent)
            L1, S1 = run_steps(sc, self.weights, p.half_life_hours, A, p.oi_decrease, half_life_exponent=p.half_life_exponent)
            xl += self.weights @ L0[:, -1, :].astype(np.float64)
            xs += self.weights @ S0[:, -1, :].astype(np.float64)
            zl += self.weights @ L1[:, -1, :].astype(np.float64)
            zs += self.weights @ S1[:, -1, :].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            dep_l = np.where(xl > 0, zl / xl, np.nan) - 1.0
            dep_s = np.where(xs > 0, zs / xs, np.nan) - 1.0
        h = self.replay.step_hours
        return (j - dep_l) * h, (j - dep_s) * h

    # ------------------------------------------------------------------------------------- re-runs

    def with_params(self, **changes) -> "Heatmap":
        """Re-run the step recursion only, for parameters whose metadata says rerun='kernel'
        (half_life_hours, leverage_preset, leverage_weights, max_age_hours, venues, agreement_*).
        Other parameters need ``build_heatmap``: ParameterError names them."""
        info = param_info()
        bad = [k for k in changes if k in info and info[k]["rerun"] == "build"]
        if bad:
            raise ParameterError(f"{bad[0]}: changing it needs a full rebuild (build_heatmap); with_params re-runs only "
                                 f"{sorted(k for k, i in info.items() if i['rerun'] != 'build')}")
        p = self.params.replace(**changes)
        if p.venues is not None:
            for v in p.venues:
                self.replay.venue(v)
        meta = {k: v for k, v in self.meta.items() if k not in ("dropped_usd", "deposited_usd")}
        h = assemble(self.replay, p, meta)
        if "relative_window" in self.meta:
            h = h.relative(self.meta["relative_window"])
        return h

    def relative(self, window: str = "7D") -> "Heatmap":
        """Notional divided by the trailing traded volume (USD) over ``window`` (pandas offset, incl. the
        current step): per venue by that venue's volume, the aggregate and layers by the summed volume."""
        from liqlab.engine.params import step_hours as _sh

        if "relative_window" in self.meta:
            raise ParameterError("relative: this heatmap is already relative")
        try:
            n = max(1, int(round(_sh(window) / self.replay.step_hours)))
        except ParameterError:
            raise ParameterError(f"window: not a fixed pandas offset like '7D': {window!r}") from None
        vols = {}
        for name in self.venue_long:
            v = self.replay.venue(name).volume_usd
            c = np.cumsum(np.r_[0.0, v])
            idx = np.arange(1, len(v) + 1)
            vols[name] = c[idx] - c[np.maximum(idx - n, 0)]
        tot = sum(vols.values())

        def div(a, d):
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(d[:, None] > 0, a / np.where(d > 0, d, 1.0)[:, None], np.nan)

        def div3(a, d):
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.where(d[None, :, None] > 0, a / np.where(d > 0, d, 1.0)[None, :, None], np.nan)
            return r.astype(np.float32)

        meta = dict(self.meta)
        meta["units"] = f"fraction of trailing {window} traded volume (USD/USD)"
        meta["relative_window"] = window
        return dataclasses.replace(
            self, long=div(self.long, tot), short=div(self.short, tot),
            long_layers=div3(self.long_layers, tot), short_layers=div3(self.short_layers, tot),
            venue_long={k: div(v, vols[k]).astype(np.float32) for k, v in self.venue_long.items()},
            venue_short={k: div(v, vols[k]).astype(np.float32) for k, v in self.venue_short.items()},
            meta=meta)

    # --------------------------------------------------------------------------------- export / io

    def to_frame(self) -> pd.DataFrame:
        """Long-format table: time, price, long, short (USD), one row per non-empty cell."""
        T, B = self.long.shape
        nz = (self.long > 0) | (self.short > 0)
        jj, bb = np.nonzero(nz)
        return pd.DataFrame({
            "time": pd.to_datetime(self.times[jj]).tz_localize("UTC"), "price": self.prices[bb],
            "long": self.long[jj, bb], "short": self.short[jj, bb]})

    def save(self, path) -> Path:
        """Write an .npz (atomically): grids, maps, venue maps, agreement, replay and JSON params/meta.
        Layers are not stored; ``load`` recomputes them from the replay (same numbers)."""
        from liqlab.io import atomic

        path = Path(path)
        if "relative_window" in self.meta:
            raise ParameterError("save: save the absolute heatmap (relative views are recomputed with .relative())")
        arrays: dict[str, np.ndarray] = {
            "times": self.times.astype("datetime64[ns]").astype(np.int64), "prices": self.prices,
            "edges": self.edges, "long": self.long, "short": self.short, "leverages": self.leverages,
            "weights": self.weights, "agreement": self.agreement, "close": self.close,
        }
        for name in self.venue_long:
            arrays[f"venue_long/{name}"] = self.venue_long[name]
            arrays[f"venue_short/{name}"] = self.venue_short[name]
        for i, rv in enumerate(self.replay.venues):
            for f in ("lo", "hi", "g", "rm_long", "rm_short", "shift", "volume_usd", "close", "dropped_long", "dropped_short"):
                arrays[f"replay/{i}/{f}"] = getattr(rv, f)
            for side in ("long", "short"):
                for name, a in zip(("ptr", "k", "b", "v"), getattr(rv, f"fresh_{side}")):
                    arrays[f"replay/{i}/fresh_{side}/{name}"] = a
        header = {
            "format": "liqlab-heatmap", "version": 1, "params": self.params.to_dict(), "meta": self.meta,
            "replay": {"step_hours": self.replay.step_hours, "n_bins": self.replay.n_bins,
                       "venues": [{"venue": rv.venue, "info": rv.info} for rv in self.replay.venues]},
        }
        arrays["header"] = np.frombuffer(json.dumps(header, default=str).encode(), dtype=np.uint8)
        with atomic.atomic_path(path, ".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        return path

    @classmethod
    def load(cls, path, *, use_numba: bool | None = None) -> "Heatmap":
        """Read a file written by ``save`` (layers recomputed from the replay)."""
        path = Path(path)
        try:
            z = np.load(path, allow_pickle=False)
            header = json.loads(bytes(z["header"]).decode())
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: not a liqlab heatmap file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        if header.get("format") != "liqlab-heatmap":
            raise DataError(f"{path}: not a liqlab heatmap file (format {header.get('format')!r})")
        params = HeatmapParams.from_dict(header["params"])
        rh = header["replay"]
        lev = z["leverages"]
        venues = []
        for i, vinfo in enumerate(rh["venues"]):
            g = lambda f: z[f"replay/{i}/{f}"]  # noqa: E731
            venues.append(VenueReplay(
                venue=vinfo["venue"], info=vinfo.get("info", {}),
                fresh_long=tuple(g(f"fresh_long/{n}") for n in ("ptr", "k", "b", "v")),
                fresh_short=tuple(g(f"fresh_short/{n}") for n in ("ptr", "k", "b", "v")),
                lo=g("lo"), hi=g("hi"), g=g("g"), rm_long=g("rm_long"), rm_short=g("rm_short"), shift=g("shift"),
                volume_usd=g("volume_usd"), close=g("close"), n_bins=int(rh["n_bins"]),
                step_hours=float(rh["step_hours"]), leverages=lev, dropped_long=g("dropped_long"),
                dropped_short=g("dropped_short")))
        times = z["times"].astype("datetime64[ns]")
        replay = Replay(venues=tuple(venues), leverages=lev, step_hours=float(rh["step_hours"]),
                        n_bins=int(rh["n_bins"]), times=times, edges=z["edges"])
        meta = {k: v for k, v in header["meta"].items() if k not in ("dropped_usd", "deposited_usd")}
        return assemble(replay, params, meta, use_numba=use_numba)

    def summary(self) -> dict[str, Any]:
        """Small JSON-friendly description (shapes, range, totals at the last snapshot)."""
        return {
            "symbol": self.meta.get("symbol"), "venues": self.meta.get("venues"), "synthetic": self.synthetic,
            "steps": int(len(self.times)), "bins": int(len(self.prices)), "leverages": [float(x) for x in self.leverages],
            "start": self.meta.get("data_start"), "end": self.meta.get("data_end"),
            "price_min": float(self.edges[0]), "price_max": float(self.edges[-1]),
            "last_long_usd": float(self.long[-1].sum()) if len(self.long) else 0.0,
            "last_short_usd": float(self.short[-1].sum()) if len(self.short) else 0.0,
            "dropped_usd": self.meta.get("dropped_usd"), "notes": self.meta.get("notes"),
        }
