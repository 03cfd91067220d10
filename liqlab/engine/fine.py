"""The fine pass: one venue's bars and open-interest observations → its step inputs (docs/ENGINE.md).

Open interest at ts t is the OI at that instant; a deposit at t uses the bars with open time in
[t_prev, t) and belongs to the step j with start_j < t <= end_j; later bars of step j clear it. A gap
t − t_prev > ``oi_max_gap_hours`` (or a zero previous OI) resets the baseline: no deposit and no removal
across the gap. :func:`fine_pass` runs these named steps in order:

1. :func:`_bars` — the bars in the time range, with their step;
2. :func:`_clearing` — per step, the bins the bars traded through (long bins ≥ lo, short bins ≤ hi),
   and the suffix thresholds that clear a deposit within its own step;
3. :func:`_oi_intervals` — consecutive OI observations that make a deposit or a removal;
4. :func:`_side_shares` — the long share of each interval's new exposure (``side_split``);
5. :func:`_oi_factors` — OI decreases: per-step factor products, or removals by highest leverage;
6. :func:`_entry_range` — the entry price range of each interval (``entry_price``);
7. LP coefficients and deposits (:mod:`liqlab.engine.deposits`);
8. :func:`_funding_shift` — the funding drift in bins per step.

Numbers: USD notional; bins of the shared grid; times int64 ns UTC. The numba twins of the hot loops
(:mod:`liqlab.engine.fine_kernels`) give the same arrays as the numpy paths here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import to_ns
from liqlab.engine.deposits import deposit_function, lp_coefficients
from liqlab.engine.grid import bin_centres
from liqlab.engine.inputs import VenueSteps, empty_csr
from liqlab.engine.params import HeatmapParams

__all__ = ["fine_pass"]


@dataclass(frozen=True, eq=False)
class _Bars:
    """Bars with open time in [t0, end): ts int64 ns, prices USD, volume base units, step (n,) int64."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker: np.ndarray | None
    mark: np.ndarray | None
    step: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, eq=False)
class _Clearing:
    """lo/hi (T,) int64: per-step clearing thresholds; suf_lo/suf_hi (n bars,): the thresholds of the bars
    from each bar to the end of its step."""

    lo: np.ndarray
    hi: np.ndarray
    suf_lo: np.ndarray
    suf_hi: np.ndarray


@dataclass(frozen=True, eq=False)
class _Intervals:
    """Valid OI intervals (m,): bars [a, e), step j, previous and current OI (base units)."""

    n_obs: int
    n_reset: int
    a: np.ndarray
    e: np.ndarray
    j: np.ndarray
    oi_prev: np.ndarray
    oi_cur: np.ndarray


@dataclass(frozen=True, eq=False)
class _Flows:
    """What the intervals add to the step inputs: OI factors, removals, fresh CSRs, off-grid USD."""

    g: np.ndarray
    rm_long: np.ndarray
    rm_short: np.ndarray
    fresh: dict[str, tuple]
    dropped: dict[str, np.ndarray]


def fine_pass(ds, params: HeatmapParams, t0_ns: int, T: int, edges: np.ndarray, *,
              use_numba: bool | None = None) -> tuple[VenueSteps, dict[str, str]]:
    """Per-step inputs of one venue on the shared grid (see the module docstring for the rules).

    Parameters
    ----------
    ds : Dataset
        One venue's data (ohlcv, open_interest, funding, leverage_tiers).
    params : HeatmapParams
        The build's parameters.
    t0_ns : int
        Start of step 0 (ns since the epoch, UTC).
    T : int
        Number of steps.
    edges : numpy.ndarray
        (B+1,) bin edges (USD) of the shared grid.
    use_numba : bool or None
        True/False forces the numba kernels; None = numba unless ``LIQLAB_NO_NUMBA`` is set (the numpy
        path gives the same arrays).

    Returns
    -------
    steps : VenueSteps
        Arrays over the T steps and B bins.
    notes : dict[str, str]
        Topic (``'<venue>/<topic>'``) → one line, for what the data could not support as asked.
    """
    venue = ds.venue
    step_ns = int(round(params.step_hours * 3600e9))
    B = len(edges) - 1
    lev = np.asarray(params.leverages, dtype=np.float64)
    bars = _bars(ds, t0_ns, t0_ns + T * step_ns, step_ns)
    notes: dict[str, str] = {}
    clear = _clearing(venue, bars, params, edges, T, use_numba, notes)
    volume_usd, close = _volume_close(bars, T)
    oi_usd = _oi_usd(ds, close, params, t0_ns, T, step_ns)
    oi = _oi_intervals(ds, bars, params, t0_ns, T, step_ns)
    info: dict[str, Any] = {"bars": int(bars.n), "oi_observations": int(oi.n_obs)}
    if oi.n_reset:
        info["oi_resets"] = oi.n_reset
    if len(oi.j):
        flows, info["margin"] = _interval_flows(ds, bars, oi, clear, params, edges, T, use_numba, notes)
    else:
        flows = _Flows(g=np.ones(T), rm_long=np.zeros(T), rm_short=np.zeros(T),
                       fresh={"long": empty_csr(T), "short": empty_csr(T)},
                       dropped={"long": np.zeros(len(lev)), "short": np.zeros(len(lev))})
    shift, total_shift = _funding_shift(ds, bars, params, edges, t0_ns, T, step_ns)
    if total_shift is not None:
        info["funding_shift_bins"] = total_shift
    return VenueSteps(
        venue=venue, fresh_long=flows.fresh["long"], fresh_short=flows.fresh["short"], lo=clear.lo.astype(np.int32),
        hi=clear.hi.astype(np.int32), g=flows.g, rm_long=flows.rm_long, rm_short=flows.rm_short,
        shift=shift.astype(np.int32), volume_usd=volume_usd, close=close, n_bins=B, step_hours=params.step_hours,
        leverages=lev, dropped_long=flows.dropped["long"], dropped_short=flows.dropped["short"], info=info,
        oi_usd=oi_usd), notes


def _interval_flows(ds, bars: _Bars, oi: _Intervals, clear: _Clearing, params: HeatmapParams, edges: np.ndarray,
                    T: int, use_numba: bool | None, notes: dict[str, str]) -> tuple[_Flows, dict[str, Any]]:
    """Deposits and OI factors of the valid intervals; (flows, the margin model's info). Adds notes."""
    B = len(edges) - 1
    K = len(params.leverages)
    H = _range_reduce(bars.high, oi.a, oi.e, np.maximum)     # interval aggregates over bars [a, e)
    L = _range_reduce(bars.low, oi.a, oi.e, np.minimum)
    C = bars.close[oi.e - 1]
    d_oi = oi.oi_cur - oi.oi_prev
    N = np.maximum(d_oi, 0.0) * C                          # new exposure (USD)
    R = np.maximum(-d_oi, 0.0) * C                         # closed exposure (USD)
    share = _side_shares(ds.venue, bars, oi, C, bars.open[oi.a], params, notes)
    g_all, after, rm_l, rm_s = _oi_factors(oi, d_oi, R, share, params, T)
    thr = _clearing_thresholds(bars, oi, clear, B)
    lp = lp_coefficients(ds, params, float(np.median(bars.close)))
    if "unsupported_leverages" in lp.info:
        notes[f"{ds.venue}/leverages"] = (
            f"{ds.venue}: leverage(s) {lp.info['unsupported_leverages']} exceed the tier's max leverage "
            f"at position_size_usd={params.position_size_usd:g}; those layers stay empty")
    E_lo, E_hi = _entry_range(params.entry_price, H, L, C)
    pos = N > 0
    deposits = deposit_function(use_numba, oi.j)
    fresh: dict[str, tuple] = {"long": empty_csr(T), "short": empty_csr(T)}
    dropped = {"long": np.zeros(K), "short": np.zeros(K)}
    for side, a_c, b_c in (("long", lp.a_long, lp.b_long), ("short", lp.a_short, lp.b_short)):
        amount = N * share[side] * after           # USD per layer (unweighted)
        sel = np.flatnonzero(pos & (amount > 0))
        fresh[side], dropped[side] = deposits(oi.j[sel], amount[sel], E_lo[sel], E_hi[sel], thr[side][sel],
                                              side == "long", a_c, b_c, lp.size_weights, edges, T)
    return _Flows(g=g_all, rm_long=rm_l, rm_short=rm_s, fresh=fresh, dropped=dropped), lp.info


# ------------------------------------------------------------------------------------------ steps


def _bars(ds, t0_ns: int, end_ns: int, step_ns: int) -> _Bars:
    """The bars with open time in [t0, end) and the step each falls in."""
    o = ds.ohlcv
    ts = to_ns(o["ts"])
    keep = (ts >= t0_ns) & (ts < end_ns)
    ts = ts[keep]
    op, hi_, lo_, cl = (o[c].to_numpy(np.float64)[keep] for c in ("open", "high", "low", "close"))
    return _Bars(
        ts=ts, open=op, high=hi_, low=lo_, close=cl, volume=o["volume"].to_numpy(np.float64)[keep],
        taker=o["taker_buy_volume"].to_numpy(np.float64)[keep] if "taker_buy_volume" in o.columns else None,
        mark=o["mark_close"].to_numpy(np.float64)[keep] if "mark_close" in o.columns else None,
        step=(ts - t0_ns) // step_ns)


def _clearing(venue: str, bars: _Bars, params: HeatmapParams, edges: np.ndarray, T: int,
              use_numba: bool | None, notes: dict[str, str]) -> _Clearing:
    """Clearing thresholds per step and per bar suffix (``clearing``: high/low, mark, or none)."""
    B = len(edges) - 1
    clear_lo, clear_hi = bars.low, bars.high
    if params.clearing == "mark":
        if bars.mark is not None:
            clear_lo = clear_hi = bars.mark
        else:
            notes[f"{venue}/clearing"] = f"{venue}: clearing='mark' but no mark_close column; cleared by high/low"
    if params.clearing == "none":  # levels stay when price trades through them (the naive baseline)
        lo_u = np.full(bars.n, B, dtype=np.int64)
        hi_u = np.full(bars.n, -1, dtype=np.int64)
    else:
        centres = bin_centres(edges, params.bin_unit)
        lo_u = _searchsorted(centres, clear_lo, "left", use_numba)        # long bins b >= lo_u cleared
        hi_u = _searchsorted(centres, clear_hi, "right", use_numba) - 1   # short bins b <= hi_u cleared
    LO = np.full(T, B, dtype=np.int64)
    HI = np.full(T, -1, dtype=np.int64)
    np.minimum.at(LO, bars.step, lo_u)
    np.maximum.at(HI, bars.step, hi_u)
    return _Clearing(lo=LO, hi=HI, suf_lo=_segmented_suffix(lo_u, bars.step, B + 2, "min"),
                     suf_hi=_segmented_suffix(hi_u, bars.step, B + 2, "max"))


def _volume_close(bars: _Bars, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Traded USD per step (T,) and the last close in each step (T,; NaN without a bar)."""
    volume_usd = np.zeros(T)
    np.add.at(volume_usd, bars.step, bars.volume * bars.close)
    close = np.full(T, np.nan)
    if bars.n:
        last = np.r_[np.flatnonzero(np.diff(bars.step)), bars.n - 1]
        close[bars.step[last]] = bars.close[last]
    return volume_usd, close


def _oi_usd(ds, close: np.ndarray, params: HeatmapParams, t0_ns: int, T: int, step_ns: int) -> np.ndarray:
    """Open interest in USD at the end of each step (T,): the last observation at or before it
    (``open_interest_value``, else base units × the step's last close, carried forward); NaN before the
    first observation or when the last one is older than ``oi_max_gap_hours``."""
    out = np.full(T, np.nan)
    oi_df = ds.open_interest
    if oi_df is None or not len(oi_df):
        return out
    ts = to_ns(oi_df["ts"])
    base = oi_df["open_interest"].to_numpy(np.float64)
    usd = (oi_df["open_interest_value"].to_numpy(np.float64) if "open_interest_value" in oi_df.columns
           else np.full(len(ts), np.nan))
    ends = t0_ns + (np.arange(T, dtype=np.int64) + 1) * step_ns
    i = np.searchsorted(ts, ends, "right") - 1
    ok = (i >= 0) & ((ends - ts[np.maximum(i, 0)]) <= params.oi_max_gap_hours * 3600e9)
    i = np.maximum(i, 0)
    k = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(T), -1))  # carried through empty steps
    last_close = np.where(k >= 0, close[np.maximum(k, 0)], np.nan)
    val = np.where(np.isfinite(usd[i]), usd[i], base[i] * last_close)
    return np.where(ok, val, np.nan)


def _oi_intervals(ds, bars: _Bars, params: HeatmapParams, t0_ns: int, T: int, step_ns: int) -> _Intervals:
    """Consecutive OI observations in [t0, end] with bars, no gap and a positive previous OI."""
    oi_df = ds.open_interest
    t_oi = to_ns(oi_df["ts"])
    oi = oi_df["open_interest"].to_numpy(np.float64)
    m = (t_oi >= t0_ns) & (t_oi <= t0_ns + T * step_ns)
    t_oi, oi = t_oi[m], oi[m]
    n_obs = len(t_oi)
    none = np.zeros(0, np.int64)
    if n_obs < 2 or not bars.n:
        return _Intervals(n_obs, 0, none, none, none, np.zeros(0), np.zeros(0))
    tp, tc = t_oi[:-1], t_oi[1:]
    oip, oic = oi[:-1], oi[1:]
    j_obs = -(-(tc - t0_ns) // step_ns) - 1      # start_j < t <= end_j
    a_i = np.searchsorted(bars.ts, tp, "left")
    e_i = np.searchsorted(bars.ts, tc, "left")
    has_bar = e_i > 0
    emp = e_i <= a_i
    a_i = np.where(emp, e_i - 1, a_i)             # no bar in the interval: the last bar before t
    gap = (tc - tp) > params.oi_max_gap_hours * 3600e9
    valid = has_bar & ~gap & (oip > 0) & (j_obs >= 0) & (j_obs < T)
    idx = np.flatnonzero(valid)
    return _Intervals(n_obs, int((gap | (oip <= 0)).sum()), a_i[idx], e_i[idx], j_obs[idx], oip[idx], oic[idx])


def _side_shares(venue: str, bars: _Bars, oi: _Intervals, C: np.ndarray, Op: np.ndarray, params: HeatmapParams,
                 notes: dict[str, str]) -> dict[str, np.ndarray]:
    """Share of each interval's new exposure going long and short (``side_split``; 'both': all to each)."""
    n = len(oi.j)
    split = params.side_split
    if split == "taker":
        if bars.taker is None:
            notes[f"{venue}/side_split"] = (f"{venue}: side_split='taker' but no taker_buy_volume column; "
                                            f"used long_share={params.long_share:g}")
            alpha = np.full(n, float(params.long_share))
        else:
            cs_v = np.r_[0.0, np.cumsum(bars.volume)]
            cs_t = np.r_[0.0, np.cumsum(bars.taker)]
            vsum = cs_v[oi.e] - cs_v[oi.a]
            tsum = cs_t[oi.e] - cs_t[oi.a]
            with np.errstate(invalid="ignore", divide="ignore"):
                alpha = np.where(vsum > 0, tsum / np.where(vsum > 0, vsum, 1.0), float(params.long_share))
            alpha = np.clip(alpha, 0.0, 1.0)
    elif split == "candle":
        alpha = np.where(C > Op, 1.0, np.where(C < Op, 0.0, 0.5))
    elif split == "fixed":
        alpha = np.full(n, float(params.long_share))
    else:  # both
        alpha = None
    return {"long": np.ones(n) if alpha is None else alpha,
            "short": np.ones(n) if alpha is None else 1.0 - alpha}


def _oi_factors(oi: _Intervals, d_oi: np.ndarray, R: np.ndarray, share: dict[str, np.ndarray], params: HeatmapParams,
                T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OI decreases (``oi_decrease``): (g (T,) factor product per step, after (m,) the product after each
    deposit within its step, rm_long (T,), rm_short (T,) USD removed by highest leverage)."""
    g_all = np.ones(T)
    rm_l = np.zeros(T)
    rm_s = np.zeros(T)
    n = len(oi.j)
    if params.oi_decrease == "proportional":
        g = np.where(d_oi < 0, oi.oi_cur / oi.oi_prev, 1.0)
        np.multiply.at(g_all, oi.j, g)
        S = np.cumsum(np.log(np.maximum(g, 1e-300)))
        last_in_step = np.searchsorted(oi.j, oi.j, "right") - 1
        after = np.exp(S[last_in_step] - S)
        after = np.where(last_in_step == np.arange(n), 1.0, after)
        return g_all, after, rm_l, rm_s
    if params.oi_decrease == "highest_leverage":
        np.add.at(rm_l, oi.j, R * share["long"])
        np.add.at(rm_s, oi.j, R * share["short"])
    return g_all, np.ones(n), rm_l, rm_s


def _clearing_thresholds(bars: _Bars, oi: _Intervals, clear: _Clearing, B: int) -> dict[str, np.ndarray]:
    """Per interval, the threshold of the later bars of its own step (none: B for long, −1 for short)."""
    nxt = oi.e                                    # the first bar after the deposit, if in the same step
    in_step = nxt < bars.n
    nxt_c = np.minimum(nxt, max(bars.n - 1, 0))
    in_step &= bars.step[nxt_c] == oi.j
    return {"long": np.where(in_step, clear.suf_lo[nxt_c], B), "short": np.where(in_step, clear.suf_hi[nxt_c], -1)}


def _entry_range(entry_price: str, H: np.ndarray, L: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry price range per interval (USD): 'close' C, 'typical' (H+L+C)/3, 'range' [L, H]."""
    if entry_price == "close":
        return C, C
    if entry_price == "typical":
        typical = (H + L + C) / 3.0
        return typical, typical
    return L, H


def _funding_shift(ds, bars: _Bars, params: HeatmapParams, edges: np.ndarray, t0_ns: int, T: int,
                   step_ns: int) -> tuple[np.ndarray, int | None]:
    """Funding drift in whole bins per step (T,) int64 and the total (None when ``funding_drift`` is off
    or there is nothing to drift)."""
    shift = np.zeros(T, dtype=np.int64)
    if not (params.funding_drift and ds.funding is not None and len(ds.funding) and bars.n):
        return shift, None
    tf = to_ns(ds.funding["ts"])
    fr = ds.funding["funding_rate"].to_numpy(np.float64)
    mf = (tf >= t0_ns) & (tf < t0_ns + T * step_ns)
    tf, fr = tf[mf], fr[mf]
    jf = (tf - t0_ns) // step_ns
    if params.bin_unit == "usd":
        ib = np.clip(np.searchsorted(bars.ts, tf, "right") - 1, 0, bars.n - 1)
        raw = fr * bars.close[ib] / (edges[1] - edges[0])
    else:
        raw = fr / math.log(edges[1] / edges[0])
    per_step = np.zeros(T)
    np.add.at(per_step, jf, raw)
    cum = np.rint(np.cumsum(per_step)).astype(np.int64)
    return np.diff(np.r_[0, cum]), (int(cum[-1]) if T else 0)


# ------------------------------------------------------------------------------------- array tools


def _searchsorted(a: np.ndarray, x: np.ndarray, side: str, use_numba: bool | None) -> np.ndarray:
    """``np.searchsorted(a, x, side)`` as int64; the numba twin walks from the previous answer (bars move little)."""
    from liqlab.engine import fine_kernels

    fn = fine_kernels.compiled_loop("search", use_numba)
    if fn is None:
        return np.searchsorted(a, x, side).astype(np.int64)
    return fine_kernels.search(fn, a, x, side)


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
