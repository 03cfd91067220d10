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

:func:`fine_window` runs the same steps on a window of a venue's arrays (:class:`VenueArrays`) from a
given step on, continuing the few running sums that span the whole history from a :class:`FineCarry`
(``liqlab.engine.extend`` appends to a map with it); :func:`fine_pass` is the window that starts at step 0.

Numbers: USD notional; bins of the shared grid; times int64 ns UTC. The numba twins of the hot loops
(:mod:`liqlab.engine.fine_kernels`) give the same arrays as the numpy paths here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab._util import to_ns
from liqlab.engine.deposits import LPCoefficients, deposit_function, lp_coefficients
from liqlab.engine.grid import bin_centres
from liqlab.engine.inputs import VenueSteps, empty_csr
from liqlab.engine.params import HeatmapParams

__all__ = ["fine_pass", "fine_window", "oi_usd_steps", "venue_arrays", "VenueArrays", "FineCarry"]


@dataclass(frozen=True, eq=False)
class VenueArrays:
    """One venue's tables as arrays (times int64 ns UTC, sorted): bars ``ts``, ``open``, ``high``, ``low``,
    ``close`` (USD), ``volume`` and ``taker`` (base units; None without taker volume), ``mark`` (USD or
    None); open interest ``oi_ts``, ``oi`` (base units); funding ``funding_ts``, ``funding_rate``
    (fraction per interval; empty without funding); ``oi_value`` (USD, NaN where absent). Every array is (rows of its table,)."""

    venue: str
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    taker: np.ndarray | None
    mark: np.ndarray | None
    oi_ts: np.ndarray
    oi: np.ndarray
    oi_value: np.ndarray
    funding_ts: np.ndarray
    funding_rate: np.ndarray


def venue_arrays(ds) -> VenueArrays:
    """A Dataset's tables as :class:`VenueArrays`.

    Parameters
    ----------
    ds : Dataset
        One venue's data.

    Returns
    -------
    VenueArrays
        float64 columns, int64 ns times.
    """
    o = ds.ohlcv
    col = lambda df, c: df[c].to_numpy(np.float64)  # noqa: E731
    fund = ds.funding if ds.funding is not None else None
    has_f = fund is not None and len(fund) > 0
    return VenueArrays(
        venue=ds.venue, ts=to_ns(o["ts"]), open=col(o, "open"), high=col(o, "high"), low=col(o, "low"),
        close=col(o, "close"), volume=col(o, "volume"),
        taker=col(o, "taker_buy_volume") if "taker_buy_volume" in o.columns else None,
        mark=col(o, "mark_close") if "mark_close" in o.columns else None,
        oi_ts=to_ns(ds.open_interest["ts"]), oi=col(ds.open_interest, "open_interest"),
        oi_value=(col(ds.open_interest, "open_interest_value") if "open_interest_value" in ds.open_interest.columns
                  else np.full(len(ds.open_interest), np.nan)),
        funding_ts=to_ns(fund["ts"]) if has_f else np.zeros(0, np.int64),
        funding_rate=col(fund, "funding_rate") if has_f else np.zeros(0))


@dataclass(frozen=True)
class FineCarry:
    """Where a fine-pass window starts and the running sums it continues.

    ``first_step``: the first step computed (earlier steps of the result are placeholders); ``cut_step``:
    the step at which the sums are read out for the next window (None = the end). The sums, each over
    everything before the window in the order a full pass adds them: ``volume0``/``taker0`` bar volume
    and taker volume (base units) before the window's first bar; ``log_g0`` Σ log OI factors of the valid
    intervals before the first interval of step ``first_step``; ``funding0`` the funding drift (bins,
    unrounded) accumulated over steps < ``first_step``; ``dropped_long0``/``dropped_short0`` (K,) USD
    deposited off the grid by intervals of steps < ``first_step`` (None = zeros).
    """

    first_step: int = 0
    cut_step: int | None = None
    volume0: float = 0.0
    taker0: float = 0.0
    log_g0: float = 0.0
    funding0: float = 0.0
    dropped_long0: np.ndarray | None = None
    dropped_short0: np.ndarray | None = None


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
    dropped_cut: dict[str, np.ndarray]


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
    va = venue_arrays(ds)

    def lp(bars_close: np.ndarray) -> LPCoefficients:
        return lp_coefficients(ds, params, float(np.median(bars_close)))

    steps, notes, _ = fine_window(va, lp, params, t0_ns, T, edges, FineCarry(), use_numba=use_numba)
    return steps, notes


def fine_window(va: VenueArrays, lp: Callable[[np.ndarray], LPCoefficients], params: HeatmapParams, t0_ns: int,
                T: int, edges: np.ndarray, carry: FineCarry, *,
                use_numba: bool | None = None) -> tuple[VenueSteps, dict[str, str], FineCarry]:
    """The fine pass over a window of one venue's arrays, from step ``carry.first_step`` on.

    The window must hold every bar of the steps from ``first_step`` on, the bar before the first
    open-interest row it holds, every OI row from the one before the first row of step ``first_step``,
    and every funding row of those steps; earlier steps of the result are placeholders.

    Parameters
    ----------
    va : VenueArrays
        The window's rows.
    lp : callable
        The bars' closes (n,) USD → :class:`~liqlab.engine.deposits.LPCoefficients` (called only when
        there are deposits).
    params, t0_ns, T, edges, use_numba
        As for :func:`fine_pass`.
    carry : FineCarry
        Where the window starts and the running sums before it.

    Returns
    -------
    steps : VenueSteps
        (T,) arrays, exact from ``first_step`` on; the fresh CSRs hold only deposits of those steps.
    notes : dict[str, str]
        As for :func:`fine_pass`.
    carry_out : FineCarry
        The running sums at ``carry.cut_step`` (``first_step`` = that step); ``volume0``/``taker0`` are left
        at 0 (the caller recomputes those sums from its stored bars).
    """
    venue = va.venue
    step_ns = int(round(params.step_hours * 3600e9))
    B = len(edges) - 1
    lev = np.asarray(params.leverages, dtype=np.float64)
    bars = _bars(va, t0_ns, t0_ns + T * step_ns, step_ns)
    notes: dict[str, str] = {}
    clear = _clearing(venue, bars, params, edges, T, use_numba, notes)
    volume_usd, close = _volume_close(bars, T)
    oi_usd = oi_usd_steps(va, close, params, t0_ns, T, step_ns)
    oi = _oi_intervals(va, bars, params, t0_ns, T, step_ns)
    info: dict[str, Any] = {"bars": int(bars.n), "oi_observations": int(oi.n_obs)}
    if oi.n_reset:
        info["oi_resets"] = oi.n_reset
    cut = T if carry.cut_step is None else int(carry.cut_step)
    if len(oi.j):
        flows, info["margin"], log_g_cut = _interval_flows(va, lp, bars, oi, clear, params, edges, T, use_numba,
                                                           notes, carry, cut)
    else:
        z = np.zeros(len(lev))
        flows = _Flows(g=np.ones(T), rm_long=np.zeros(T), rm_short=np.zeros(T),
                       fresh={"long": empty_csr(T), "short": empty_csr(T)},
                       dropped={s: (z.copy() if c is None else c.copy()) for s, c in
                                (("long", carry.dropped_long0), ("short", carry.dropped_short0))},
                       dropped_cut={})
        log_g_cut = carry.log_g0
    shift, total_shift, funding_cut = _funding_shift(va, bars, params, edges, t0_ns, T, step_ns, carry, cut)
    if total_shift is not None:
        info["funding_shift_bins"] = total_shift
    out = FineCarry(first_step=cut, log_g0=log_g_cut, funding0=funding_cut,
                    dropped_long0=flows.dropped_cut.get("long", flows.dropped["long"]),
                    dropped_short0=flows.dropped_cut.get("short", flows.dropped["short"]))
    return VenueSteps(
        venue=venue, fresh_long=flows.fresh["long"], fresh_short=flows.fresh["short"], lo=clear.lo.astype(np.int32),
        hi=clear.hi.astype(np.int32), g=flows.g, rm_long=flows.rm_long, rm_short=flows.rm_short,
        shift=shift.astype(np.int32), volume_usd=volume_usd, close=close, n_bins=B, step_hours=params.step_hours,
        leverages=lev, dropped_long=flows.dropped["long"], dropped_short=flows.dropped["short"], info=info,
        oi_usd=oi_usd), notes, out


def _interval_flows(va: VenueArrays, lp_fn, bars: _Bars, oi: _Intervals, clear: _Clearing, params: HeatmapParams,
                    edges: np.ndarray, T: int, use_numba: bool | None, notes: dict[str, str], carry: FineCarry,
                    cut: int) -> tuple[_Flows, dict[str, Any], float]:
    """Deposits and OI factors of the valid intervals; (flows, the margin model's info, Σ log OI factors
    before step ``cut``). Adds notes."""
    K = len(params.leverages)
    H = _range_reduce(bars.high, oi.a, oi.e, np.maximum)     # interval aggregates over bars [a, e)
    L = _range_reduce(bars.low, oi.a, oi.e, np.minimum)
    C = bars.close[oi.e - 1]
    d_oi = oi.oi_cur - oi.oi_prev
    N = np.maximum(d_oi, 0.0) * C                          # new exposure (USD)
    R = np.maximum(-d_oi, 0.0) * C                         # closed exposure (USD)
    share = _side_shares(va.venue, bars, oi, C, bars.open[oi.a], params, notes, carry)
    g_all, after, rm_l, rm_s, S = _oi_factors(oi, d_oi, R, share, params, T, carry.log_g0)
    n_before = int(np.searchsorted(oi.j, cut, "left"))
    log_g_cut = float(S[n_before - 1]) if n_before > 0 else carry.log_g0
    thr = _clearing_thresholds(bars, oi, clear, len(edges) - 1)
    lp = lp_fn(bars.close)
    if "unsupported_leverages" in lp.info:
        notes[f"{va.venue}/leverages"] = (
            f"{va.venue}: leverage(s) {lp.info['unsupported_leverages']} exceed the tier's max leverage "
            f"at position_size_usd={params.position_size_usd:g}; those layers stay empty")
    E_lo, E_hi = _entry_range(params.entry_price, H, L, C)
    pos = N > 0
    deposits = deposit_function(use_numba, oi.j)
    fresh: dict[str, tuple] = {}
    dropped: dict[str, np.ndarray] = {}
    dropped_cut: dict[str, np.ndarray] = {}
    for side, a_c, b_c, d0 in (("long", lp.a_long, lp.b_long, carry.dropped_long0),
                               ("short", lp.a_short, lp.b_short, carry.dropped_short0)):
        amount = N * share[side] * after           # USD per layer (unweighted)
        sel = np.flatnonzero(pos & (amount > 0))
        acc = np.zeros(K) if d0 is None else np.array(d0, dtype=np.float64)
        parts = []
        for i, part in enumerate((sel[oi.j[sel] < cut], sel[oi.j[sel] >= cut])):  # sums read out at step cut
            if len(part):
                csr, acc = deposits(oi.j[part], amount[part], E_lo[part], E_hi[part], thr[side][part],
                                    side == "long", a_c, b_c, lp.size_weights, edges, T, dropped0=acc)
                parts.append(csr)
            if i == 0:
                dropped_cut[side] = acc.copy()
        fresh[side] = _join_csr(parts, T)
        dropped[side] = acc
    return _Flows(g=g_all, rm_long=rm_l, rm_short=rm_s, fresh=fresh, dropped=dropped,
                  dropped_cut=dropped_cut), lp.info, log_g_cut


def _join_csr(parts: list[tuple], T: int) -> tuple:
    """Step CSRs of consecutive step ranges joined into one."""
    if not parts:
        return empty_csr(T)
    if len(parts) == 1:
        return parts[0]
    ptr = sum(p[0] for p in parts)
    return (ptr, *(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3)))


# ------------------------------------------------------------------------------------------ steps


def _bars(va: VenueArrays, t0_ns: int, end_ns: int, step_ns: int) -> _Bars:
    """The bars with open time in [t0, end) and the step each falls in."""
    ts = va.ts
    i0, i1 = np.searchsorted(ts, [t0_ns, end_ns], "left")
    sl = slice(int(i0), int(i1))
    ts = ts[sl]
    return _Bars(ts=ts, open=va.open[sl], high=va.high[sl], low=va.low[sl], close=va.close[sl],
                 volume=va.volume[sl], taker=None if va.taker is None else va.taker[sl],
                 mark=None if va.mark is None else va.mark[sl], step=(ts - t0_ns) // step_ns)


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


def oi_usd_steps(va: VenueArrays, close: np.ndarray, params: HeatmapParams, t0_ns: int, T: int,
                 step_ns: int) -> np.ndarray:
    """Open interest in USD at the end of each step (T,): the last observation at or before it
    (``open_interest_value``, else base units × the step's last close, carried forward); NaN before the
    first observation or when the last one is older than ``oi_max_gap_hours``. ``close`` (T,) is the
    last close per step (NaN without a bar)."""
    out = np.full(T, np.nan)
    ts, base, usd = va.oi_ts, va.oi, va.oi_value
    if not len(ts):
        return out
    ends = t0_ns + (np.arange(T, dtype=np.int64) + 1) * step_ns
    i = np.searchsorted(ts, ends, "right") - 1
    ok = (i >= 0) & ((ends - ts[np.maximum(i, 0)]) <= params.oi_max_gap_hours * 3600e9)
    i = np.maximum(i, 0)
    k = np.maximum.accumulate(np.where(np.isfinite(close), np.arange(T), -1))  # carried through empty steps
    last_close = np.where(k >= 0, close[np.maximum(k, 0)], np.nan)
    val = np.where(np.isfinite(usd[i]), usd[i], base[i] * last_close)
    return np.where(ok, val, np.nan)


def _oi_intervals(va: VenueArrays, bars: _Bars, params: HeatmapParams, t0_ns: int, T: int, step_ns: int) -> _Intervals:
    """Consecutive OI observations in [t0, end] with bars, no gap and a positive previous OI."""
    t_oi, oi = va.oi_ts, va.oi
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
                 notes: dict[str, str], carry: FineCarry) -> dict[str, np.ndarray]:
    """Share of each interval's new exposure going long and short (``side_split``; 'both': all to each)."""
    n = len(oi.j)
    split = params.side_split
    if split == "taker":
        if bars.taker is None:
            notes[f"{venue}/side_split"] = (f"{venue}: side_split='taker' but no taker_buy_volume column; "
                                            f"used long_share={params.long_share:g}")
            alpha = np.full(n, float(params.long_share))
        else:
            cs_v = np.cumsum(np.r_[carry.volume0, bars.volume])   # running sums continued from the carry
            cs_t = np.cumsum(np.r_[carry.taker0, bars.taker])
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
                T: int, log_g0: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """OI decreases (``oi_decrease``): (g (T,) factor product per step, after (m,) the product after each
    deposit within its step, rm_long (T,), rm_short (T,) USD removed by highest leverage, S (m,) the
    running Σ log factor continued from ``log_g0``)."""
    g_all = np.ones(T)
    rm_l = np.zeros(T)
    rm_s = np.zeros(T)
    n = len(oi.j)
    if params.oi_decrease == "proportional":
        g = np.where(d_oi < 0, oi.oi_cur / oi.oi_prev, 1.0)
        np.multiply.at(g_all, oi.j, g)
        S = np.cumsum(np.r_[log_g0, np.log(np.maximum(g, 1e-300))])[1:]
        last_in_step = np.searchsorted(oi.j, oi.j, "right") - 1
        after = np.exp(S[last_in_step] - S)
        after = np.where(last_in_step == np.arange(n), 1.0, after)
        return g_all, after, rm_l, rm_s, S
    if params.oi_decrease == "highest_leverage":
        np.add.at(rm_l, oi.j, R * share["long"])
        np.add.at(rm_s, oi.j, R * share["short"])
    return g_all, np.ones(n), rm_l, rm_s, np.full(n, log_g0)


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


def _funding_shift(va: VenueArrays, bars: _Bars, params: HeatmapParams, edges: np.ndarray, t0_ns: int, T: int,
                   step_ns: int, carry: FineCarry, cut: int) -> tuple[np.ndarray, int | None, float]:
    """Funding drift in whole bins per step (T,) int64, the total (None when ``funding_drift`` is off or
    there is nothing to drift) and the unrounded drift accumulated before step ``cut`` (bins)."""
    shift = np.zeros(T, dtype=np.int64)
    if not (params.funding_drift and len(va.funding_ts) and bars.n):
        return shift, None, carry.funding0
    tf, fr = va.funding_ts, va.funding_rate
    mf = (tf >= t0_ns + carry.first_step * step_ns) & (tf < t0_ns + T * step_ns)
    tf, fr = tf[mf], fr[mf]
    jf = (tf - t0_ns) // step_ns
    if params.bin_unit == "usd":
        ib = np.clip(np.searchsorted(bars.ts, tf, "right") - 1, 0, bars.n - 1)
        raw = fr * bars.close[ib] / (edges[1] - edges[0])
    else:
        raw = fr / math.log(edges[1] / edges[0])
    per_step = np.zeros(T)
    np.add.at(per_step, jf, raw)
    s0 = carry.first_step
    run = np.cumsum(np.r_[carry.funding0, per_step[s0:]])       # running drift continued from the carry
    cum = np.zeros(T, dtype=np.int64)
    cum[s0:] = np.rint(run[1:]).astype(np.int64)
    prev = np.r_[int(np.rint(carry.funding0)) if s0 > 0 else 0, cum[s0:-1]] if T > s0 else np.zeros(0, np.int64)
    shift[s0:] = cum[s0:] - prev
    funding_cut = float(run[cut - s0]) if cut > s0 else carry.funding0
    return shift, (int(cum[-1]) if T else 0), funding_cut


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
