"""The simulated market's bar loop: liquidations, cascades, voluntary closes, entries, funding, the hunter.

:func:`_market_loop` is a plain Python function in numba's subset; :func:`run_market` runs it compiled
(``liqlab._jit``, cached on disk) or, without numba (``LIQLAB_NO_NUMBA=1``), as plain Python: far slower,
the same numbers. Each venue's open longs and shorts sit in binary heaps keyed by liquidation price, so
a liquidation check costs O(log n). The loop's helpers (``_hpush``, ``_hsift``, ``_hpop``, ``_hbin``) live
in this module with it, so numba's on-disk cache, which watches the kernel's source file, sees them change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from liqlab._jit import compiled
from liqlab.sim.config import SimulationConfig
from liqlab.sim.positions import Pool
from liqlab.sim.prices import Clock

__all__ = ["MarketState", "run_market", "market_kernel", "topup_flags", "HIST_BIN", "HIST_HALF", "TOPUP_STREAM"]

HIST_BIN = 0.001  # hunter's histogram of liquidation levels: log-price bins of 10 bp
HIST_HALF = 4_000  # bins on each side of base_price (± 4 in log price)


def _hpush(keys, ids, base, size, key, pid):
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[base + parent] <= key:
            break
        keys[base + i] = keys[base + parent]
        ids[base + i] = ids[base + parent]
        i = parent
    keys[base + i] = key
    ids[base + i] = pid
    return size + 1


def _hsift(keys, ids, base, size, i):
    key = keys[base + i]
    pid = ids[base + i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and keys[base + c + 1] < keys[base + c]:
            c += 1
        if keys[base + c] >= key:
            break
        keys[base + i] = keys[base + c]
        ids[base + i] = ids[base + c]
        i = c
    keys[base + i] = key
    ids[base + i] = pid


def _hpop(keys, ids, base, size):
    size -= 1
    if size > 0:
        keys[base] = keys[base + size]
        ids[base] = ids[base + size]
        _hsift(keys, ids, base, size, 0)
    return size


def _hbin(lp, origin, nbins):
    if lp <= 0.0:
        return 0
    b = int((math.log(lp) - origin) / HIST_BIN)
    return min(max(b, 0), nbins - 1)



def _topup(pid, s, v, base, hkey, hid, hsize, ep, lp0, lp_cur, hunting, hist, hb, p_notional, origin, nh):
    """Position ``pid`` (side s: 0 long, 1 short; venue v) adds its initial margin again instead of being
    liquidated: its liquidation price moves away from the entry price by the same distance once more, it goes
    back on its heap, and the hunter's histogram follows it."""
    d = abs(ep[pid] - lp_cur[pid])
    new = lp_cur[pid] - d if s == 0 else lp_cur[pid] + d
    lp0[pid] += new - lp_cur[pid]
    lp_cur[pid] = new
    hsize[s, v] = _hpush(hkey[s], hid[s], base, hsize[s, v], -new if s == 0 else new, pid)
    if hunting:
        hist[s, hb[pid]] -= p_notional[pid]
        hb[pid] = _hbin(new, origin, nh)
        hist[s, hb[pid]] += p_notional[pid]


def _market_loop(mhi, mlo, mcl, idx_cl, sd, fund_bar, fund_noise,
                 p_venue, p_side, p_entry, p_notional, p_ep_exo, p_rho, p_coef, close_order, p_plan_end,
                 p_topup, heap_off, prm,
                 status, end_bar, ep, q, lp0, cidx, lp_cur,
                 imp_start, imp_min, imp_max, imp_end, oi, flows, frate, cindex):
    """Sequential market over all bars (see module docstring). Writes into the output arrays.

    oi[v, k, t]: k = 0 long base, 1 short base, 2 long USD, 3 short USD (state after bar t).
    flows[v, k, t]: speculators' base units: k = 0 bought, 1 sold (opens, closes, liquidations).
    p_topup[pid] = 1: the position adds margin instead of its first liquidation (set to 2 once used).
    """
    nv, nb = mcl.shape
    n = p_entry.shape[0]
    cascade, depth, decay, hunt, hunt_bins = prm[0], prm[1], prm[2], prm[3], int(prm[4])
    origin, interest, band, cap, sens = prm[5], prm[6], prm[7], prm[8], prm[9]
    nh = int(prm[10])
    hunting = hunt > 0.0
    hkey = np.empty((2, max(n, 1)))
    hid = np.empty((2, max(n, 1)), dtype=np.int64)
    hsize = np.zeros((2, nv), dtype=np.int64)
    hist = np.zeros((2, nh))
    hb = np.zeros(max(n, 1), dtype=np.int64)
    C = np.zeros(nv)
    imb_sum = np.zeros(nv)
    imb_n = np.zeros(nv)
    tot = np.zeros((nv, 4))
    imp = 0.0
    po = 0
    pc = 0
    for t in range(nb):
        # ---- funding at the open of bar t: rate from the interval's imbalance; LPs move; heaps rebuilt
        if fund_bar[t] and t > 0:
            for v in range(nv):
                avg = imb_sum[v] / imb_n[v] if imb_n[v] > 0 else 0.0
                prem = sens * avg + fund_noise[v, t]
                rate = prem + min(max(interest - prem, -band), band)
                rate = min(max(rate, -cap), cap)
                C[v] += rate * mcl[v, t - 1] * math.exp(imp_end[t - 1])
                frate[v, t] = rate
                imb_sum[v] = 0.0
                imb_n[v] = 0.0
                base = heap_off[v]
                for s in range(2):
                    k = 0
                    for j in range(hsize[s, v]):
                        pid = hid[s, base + j]
                        if status[pid] == 1:
                            new = lp0[pid] + p_coef[pid] * (C[v] - cidx[pid])
                            if hunting:
                                hist[s, hb[pid]] -= p_notional[pid]
                                hb[pid] = _hbin(new, origin, nh)
                                hist[s, hb[pid]] += p_notional[pid]
                            lp_cur[pid] = new
                            hkey[s, base + k] = -new if s == 0 else new
                            hid[s, base + k] = pid
                            k += 1
                    hsize[s, v] = k
                    for i in range(k // 2 - 1, -1, -1):
                        _hsift(hkey[s], hid[s], base, k, i)
        for v in range(nv):
            cindex[v, t] = C[v]
        # ---- liquidations: mark low/high against the heap tops; forced flow may cascade
        imp_start[t] = imp
        lo = imp
        hi = imp
        net = 0.0  # net forced selling in this bar (USD): long liquidations sell, short ones buy
        for _ in range(100):
            flow_long = 0.0
            flow_short = 0.0
            for v in range(nv):
                base = heap_off[v]
                thr = -(mlo[v, t] * math.exp(lo))
                while hsize[0, v] > 0 and hkey[0, base] <= thr:
                    pid = hid[0, base]
                    hsize[0, v] = _hpop(hkey[0], hid[0], base, hsize[0, v])
                    if status[pid] == 1 and p_topup[pid] == 1:
                        p_topup[pid] = 2
                        _topup(pid, 0, v, base, hkey, hid, hsize, ep, lp0, lp_cur, hunting, hist, hb, p_notional,
                               origin, nh)
                    elif status[pid] == 1:
                        status[pid] = 3
                        end_bar[pid] = t
                        flow_long += q[pid] * lp_cur[pid]
                        tot[v, 0] -= q[pid]
                        tot[v, 2] -= p_notional[pid]
                        flows[v, 1, t] += q[pid]
                        if hunting:
                            hist[0, hb[pid]] -= p_notional[pid]
                thr = mhi[v, t] * math.exp(hi)
                while hsize[1, v] > 0 and hkey[1, base] <= thr:
                    pid = hid[1, base]
                    hsize[1, v] = _hpop(hkey[1], hid[1], base, hsize[1, v])
                    if status[pid] == 1 and p_topup[pid] == 1:
                        p_topup[pid] = 2
                        _topup(pid, 1, v, base, hkey, hid, hsize, ep, lp0, lp_cur, hunting, hist, hb, p_notional,
                               origin, nh)
                    elif status[pid] == 1:
                        status[pid] = 3
                        end_bar[pid] = t
                        flow_short += q[pid] * lp_cur[pid]
                        tot[v, 1] -= q[pid]
                        tot[v, 3] -= p_notional[pid]
                        flows[v, 0, t] += q[pid]
                        if hunting:
                            hist[1, hb[pid]] -= p_notional[pid]
            if cascade == 0.0 or (flow_long == 0.0 and flow_short == 0.0):
                break
            # square-root impact of the bar's cumulative net forced flow (concave: cascades stay finite)
            net += flow_long - flow_short
            jump = cascade * 0.01 * math.sqrt(abs(net) / depth)
            imp = imp_start[t] - jump if net > 0 else imp_start[t] + jump
            lo = min(lo, imp)
            hi = max(hi, imp)
        imp_min[t] = lo
        imp_max[t] = hi
        imp_end[t] = imp
        # ---- voluntary closes planned for this bar
        while pc < n and p_plan_end[close_order[pc]] <= t:
            pid = close_order[pc]
            pc += 1
            if status[pid] == 1:
                status[pid] = 2
                end_bar[pid] = t
                v = p_venue[pid]
                s = 0 if p_side[pid] == 1 else 1
                tot[v, s] -= q[pid]
                tot[v, 2 + s] -= p_notional[pid]
                flows[v, 1 - s, t] += q[pid]  # a long closes by selling
                if hunting:
                    hist[s, hb[pid]] -= p_notional[pid]
        # ---- new positions (checked for liquidation from the next bar on)
        while po < n and p_entry[po] == t:
            pid = po
            po += 1
            v = p_venue[pid]
            s = 0 if p_side[pid] == 1 else 1
            e = p_ep_exo[pid] * math.exp(imp_start[t])
            ep[pid] = e
            q[pid] = p_notional[pid] / e
            lp = p_rho[pid] * e
            lp0[pid] = lp
            lp_cur[pid] = lp
            cidx[pid] = C[v]
            status[pid] = 1
            hsize[s, v] = _hpush(hkey[s], hid[s], heap_off[v], hsize[s, v], -lp if s == 0 else lp, pid)
            tot[v, s] += q[pid]
            tot[v, 2 + s] += p_notional[pid]
            flows[v, s, t] += q[pid]  # a long opens by buying
            if hunting:
                hb[pid] = _hbin(lp, origin, nh)
                hist[s, hb[pid]] += p_notional[pid]
        for v in range(nv):
            for k in range(4):
                oi[v, k, t] = tot[v, k]
            both = tot[v, 2] + tot[v, 3]
            if both > 0:
                imb_sum[v] += (tot[v, 2] - tot[v, 3]) / both
                imb_n[v] += 1.0
        # ---- impact decays; the hunter pushes toward the heavier nearby side
        drift = 0.0
        if hunting and t + 1 < nb:
            ib = _hbin(idx_cl[t] * math.exp(imp), origin, nh)
            below = 0.0
            above = 0.0
            for d in range(1, hunt_bins + 1):
                w = 1.0 - (d - 0.5) / hunt_bins
                if ib - d >= 0:
                    below += w * hist[0, ib - d]
                if ib + d < nh:
                    above += w * hist[1, ib + d]
            if above + below > 0:
                drift = hunt * sd[t + 1] * (above - below) / (above + below)
        imp = imp * decay + drift



_HELPERS = {"_hpush": _hpush, "_hsift": _hsift, "_hpop": _hpop, "_hbin": _hbin, "_topup": _topup}


def market_kernel(use_numba: bool | None = None) -> Callable:
    """The bar loop to run: numba-compiled (cached on disk), or the plain Python loop without numba.

    Parameters
    ----------
    use_numba : bool or None
        True or False forces the choice; None: numba unless ``LIQLAB_NO_NUMBA`` is set (``liqlab._jit``).

    Returns
    -------
    callable
        ``_market_loop`` compiled with its heap helpers, or ``_market_loop`` itself (same results).
    """
    return compiled(_market_loop, helpers=_HELPERS, use_numba=use_numba) or _market_loop


@dataclass(frozen=True, eq=False)
class MarketState:
    """What the bar loop made, over all ``nb`` bars (warm-up included); ``nv`` venues, ``n`` positions.

    Marks (USD, exogenous, before impact): ``mhi``, ``mlo``, ``mcl`` (nv, nb); ``idx_close`` (nb,) latent
    index close; ``fund_bar`` (nb,) bool, a funding payment at the bar's open. Per position (n,):
    ``status`` (int8: 0 not yet open, 1 open, 2 closed, 3 liquidated), ``end_bar`` (int64, −1 = none),
    ``ep`` entry price (USD), ``q`` amount (base), ``lp0`` initial and ``lp_cur`` last liquidation price
    (USD), ``cidx`` funding index at entry. Per bar (nb,): log price impact ``imp_start``, ``imp_min``,
    ``imp_max``, ``imp_end``. ``oi`` (nv, 4, nb): long base, short base, long USD, short USD after the
    bar; ``flows`` (nv, 2, nb): speculators' base units bought, sold; ``frate`` (nv, nb) funding rate paid
    at the bar's open; ``cindex`` (nv, nb) cumulative funding index (USD per base unit).
    """

    mhi: np.ndarray
    mlo: np.ndarray
    mcl: np.ndarray
    idx_close: np.ndarray
    fund_bar: np.ndarray
    status: np.ndarray
    end_bar: np.ndarray
    ep: np.ndarray
    q: np.ndarray
    lp0: np.ndarray
    cidx: np.ndarray
    lp_cur: np.ndarray
    imp_start: np.ndarray
    imp_min: np.ndarray
    imp_max: np.ndarray
    imp_end: np.ndarray
    oi: np.ndarray
    flows: np.ndarray
    frate: np.ndarray
    cindex: np.ndarray


def _loop_params(c: SimulationConfig) -> np.ndarray:
    """The loop's scalar knobs in the order ``_market_loop`` unpacks them (float64, (11,))."""
    decay = 0.5 ** (1.0 / c.impact_halflife_min) if math.isfinite(c.impact_halflife_min) else 1.0
    origin = math.log(c.base_price) - HIST_HALF * HIST_BIN
    return np.array([c.cascade_impact, c.impact_depth_usd, decay, c.hunt_intensity,
                     max(1, int(round(c.hunt_range / HIST_BIN))), origin, c.funding_interest, c.funding_band,
                     c.funding_cap, c.funding_sensitivity, 2 * HIST_HALF], dtype=np.float64)


TOPUP_STREAM = 7  # address of the margin top-up draws in liqlab.sim.prices.stream (seed, 7)


def topup_flags(c: SimulationConfig, n: int) -> np.ndarray:
    """Which positions add margin instead of their first liquidation: (n,) int8, 1 = will top up.

    Each position (in the pool's order) tops up with probability ``c.margin_topup``, drawn from its own
    stream so that the other streams, and every output at ``margin_topup = 0``, are unchanged.

    Parameters
    ----------
    c : SimulationConfig
    n : int
        Number of positions.

    Returns
    -------
    np.ndarray
        (n,) int8 flags (all 0 when ``margin_topup`` is 0; no draw is made then).
    """
    from liqlab.sim.prices import stream

    if c.margin_topup <= 0.0:
        return np.zeros(n, dtype=np.int8)
    return (stream(c.seed, TOPUP_STREAM).random(n) < c.margin_topup).astype(np.int8)


def _outputs(n: int, nv: int, nb: int) -> dict[str, np.ndarray]:
    """Zeroed output arrays of the loop (``end_bar`` −1)."""
    out: dict[str, Any] = {"status": np.zeros(n, dtype=np.int8), "end_bar": np.full(n, -1, dtype=np.int64)}
    out.update({k: np.zeros(n) for k in ("ep", "q", "lp0", "cidx", "lp_cur")})
    out.update({k: np.zeros(nb) for k in ("imp_start", "imp_min", "imp_max", "imp_end")})
    out.update(oi=np.zeros((nv, 4, nb)), flows=np.zeros((nv, 2, nb)), frate=np.zeros((nv, nb)),
               cindex=np.zeros((nv, nb)))
    return out


def run_market(c: SimulationConfig, clock: Clock, lat: dict[str, np.ndarray], vps: list[dict[str, np.ndarray]],
               pool: Pool, *, use_numba: bool | None = None) -> MarketState:
    """Run the bar loop over every bar.

    Parameters
    ----------
    c : SimulationConfig
    clock : Clock
        The bars (warm-up included), ``nb`` of them.
    lat : dict
        The latent path, (nb,) arrays (log USD).
    vps : list of dict
        Each venue's prices, (nb,) arrays (log USD), in the order of ``c.venues``.
    pool : Pool
        Every position, sorted by entry bar.
    use_numba : bool or None
        See :func:`market_kernel`.

    Returns
    -------
    MarketState
    """
    fund_bar = (clock.minute % (c.funding_hours * 60)) == 0
    mhi = np.exp(np.stack([vp["m_high"] for vp in vps]))
    mlo = np.exp(np.stack([vp["m_low"] for vp in vps]))
    mcl = np.exp(np.stack([vp["m_close"] for vp in vps]))
    fnoise = np.stack([vp["fund_noise"] for vp in vps])
    idx_close = np.exp(lat["close"])
    o = _outputs(len(pool), len(vps), clock.nb)
    p = pool.cols
    market_kernel(use_numba)(
        mhi, mlo, mcl, idx_close, lat["sd"], fund_bar, fnoise,
        pool.venue, p["side"], p["entry"], p["notional"], p["ep_exo"], p["rho"], p["coef"], pool.close_order,
        p["plan_end"], topup_flags(c, len(pool)), pool.heap_off, _loop_params(c),
        o["status"], o["end_bar"], o["ep"], o["q"], o["lp0"], o["cidx"], o["lp_cur"],
        o["imp_start"], o["imp_min"], o["imp_max"], o["imp_end"], o["oi"], o["flows"], o["frate"], o["cindex"])
    return MarketState(mhi=mhi, mlo=mlo, mcl=mcl, idx_close=idx_close, fund_bar=fund_bar, **o)
