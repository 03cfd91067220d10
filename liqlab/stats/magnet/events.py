"""First-passage events of the magnet test: at non-overlapping decision times, the dominant cluster of
a (T, B) heatmap, its mirror level and which of the two the bars touch first (information up to t only).

:func:`find_events` runs the steps below for each snapshot; :func:`events_for` feeds it a ``Heatmap``
and the bars and funding of one dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab._util import to_ns, utc
from liqlab.errors import DataError, ParameterError
from liqlab.stats.magnet.params import HOUR_NS, Bars, MagnetParams

__all__ = ["EVENT_COLUMNS", "decided", "events_for", "find_events", "funding_arrays", "touch_dataset"]

EVENT_COLUMNS = (
    "t", "price", "atr", "sigma_h", "side", "dist", "level", "mirror", "mass", "dominance",
    "y", "double", "untouched", "tau_cluster_h", "tau_mirror_h", "post_cluster_bp", "post_mirror_bp",
    "momentum", "funding", "step",
)


@dataclass(frozen=True)
class _Setup:
    """What every decision time reads: horizon and windows (ns, bars), ATR-period sums, the test span."""

    p: MagnetParams
    bars: Bars
    H: int            # horizon (ns)
    post_n: int       # acceleration window (bars)
    mom_ns: int       # momentum lookback (ns)
    dmin: float       # minimum log-distance
    log_prices: np.ndarray  # (B,)
    pend: np.ndarray  # ATR period end times (ns)
    csum_tr: np.ndarray
    csum_r: np.ndarray
    csum_r2: np.ndarray
    lo_t: int
    hi_t: int
    f_ts: np.ndarray | None
    f_rate: np.ndarray | None


def _period_stats(bars: Bars, period_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fixed period (anchored at the epoch): end time (ns), true range (USD), log return."""
    per = bars.ts // period_ns
    starts = np.flatnonzero(np.r_[True, per[1:] != per[:-1]])
    hi = np.maximum.reduceat(bars.high, starts)
    lo = np.minimum.reduceat(bars.low, starts)
    ends = np.r_[starts[1:], len(per)] - 1
    cl = bars.close[ends]
    prev = np.r_[bars.open[0], cl[:-1]]
    tr = np.maximum(hi, prev) - np.minimum(lo, prev)
    ret = np.log(cl / prev)
    end_ns = (per[starts] + 1) * period_ns
    return end_ns, tr, ret


def _time_ns(x) -> int:
    """One time (int ns, or anything :func:`liqlab._util.utc` reads) as int ns UTC."""
    if isinstance(x, (int, np.integer)):
        return int(x)
    return int(utc(x).value)


def _setup(prices: np.ndarray, bars: Bars, p: MagnetParams, funding, start, end) -> _Setup:
    pend, ptr, pret = _period_stats(bars, int(round(p.atr_hours * HOUR_NS)))
    data_end = int(bars.ts[-1]) + bars.bar_ns
    f_ts = f_rate = None
    if funding is not None:
        f_ts, f_rate = to_ns(funding[0]), np.asarray(funding[1], dtype=np.float64)
    return _Setup(
        p=p, bars=bars, H=int(round(p.horizon_hours * HOUR_NS)),
        post_n=max(1, int(round(p.post_hours * HOUR_NS / bars.bar_ns))),
        mom_ns=int(round(p.momentum_hours * HOUR_NS)), dmin=p.min_distance_bp * 1e-4, log_prices=np.log(prices),
        pend=pend, csum_tr=np.r_[0.0, np.cumsum(ptr)], csum_r=np.r_[0.0, np.cumsum(pret)],
        csum_r2=np.r_[0.0, np.cumsum(pret * pret)],
        lo_t=int(bars.ts[0]) if start is None else max(int(bars.ts[0]), _time_ns(start)),
        hi_t=data_end if end is None else min(data_end, _time_ns(end)), f_ts=f_ts, f_rate=f_rate,
    )


def _state(s: _Setup, t: int) -> tuple[float, float, float] | None:
    """(price P, ATR (USD), log-return sd per ATR period) at t from completed bars and periods; None in warm-up."""
    n_at, bars = s.p.atr_periods, s.bars
    k_end = int(np.searchsorted(s.pend, t, "right"))  # completed ATR periods before t
    if k_end < n_at:
        return None
    i_now = int(np.searchsorted(bars.ts, t - bars.bar_ns, "right")) - 1  # last bar that ended by t
    if i_now < 0:
        return None
    atr = (s.csum_tr[k_end] - s.csum_tr[k_end - n_at]) / n_at
    mr = (s.csum_r[k_end] - s.csum_r[k_end - n_at]) / n_at
    var = (s.csum_r2[k_end] - s.csum_r2[k_end - n_at]) / n_at - mr * mr
    return float(bars.close[i_now]), atr, math.sqrt(max(var, 0.0) * n_at / (n_at - 1))


def _smooth(row: np.ndarray, w: int) -> np.ndarray:
    if w <= 0:
        return row
    return np.convolve(row, np.ones(2 * w + 1), mode="same")


def _cluster(s: _Setup, long_row, short_row, P: float, dmax: float) -> tuple[int, float, float, float] | None:
    """The dominant cluster within [d_min, dmax] of P: (side, log-distance d, mass USD, dominance), or None."""
    dl = s.log_prices - math.log(P)
    up = (dl >= s.dmin) & (dl <= dmax)
    dn = (-dl >= s.dmin) & (-dl <= dmax)
    s_row = np.where(up, _smooth(np.asarray(short_row, dtype=np.float64), s.p.smooth_bins), 0.0)
    l_row = np.where(dn, _smooth(np.asarray(long_row, dtype=np.float64), s.p.smooth_bins), 0.0)
    bu, bd = int(np.argmax(s_row)), int(np.argmax(l_row))
    mu, md = float(s_row[bu]), float(l_row[bd])
    if max(mu, md) <= 0.0:
        return None
    side, b, mass, opp = (1, bu, mu, md) if mu >= md else (-1, bd, md, mu)
    dom = mass / opp if opp > 0 else math.inf
    if dom < s.p.min_dominance:
        return None
    return side, abs(float(dl[b])), mass, dom


def _first_passage(s: _Setup, t: int, side: int, level: float, mirror: float) -> tuple[int, int, float, bool, bool]:
    """First bars in (t, t+H] touching the cluster level and the mirror (−1 = none), Y, double, untouched."""
    bars = s.bars
    upper, lower = (level, mirror) if side > 0 else (mirror, level)
    a = int(np.searchsorted(bars.ts, t, "left"))
    e = int(np.searchsorted(bars.ts, t + s.H, "left"))
    hit_u = np.flatnonzero(bars.high[a:e] >= upper)
    hit_l = np.flatnonzero(bars.low[a:e] <= lower)
    iu = int(hit_u[0]) + a if len(hit_u) else -1
    il = int(hit_l[0]) + a if len(hit_l) else -1
    ic, im = (iu, il) if side > 0 else (il, iu)
    double = ic >= 0 and ic == im
    untouched = ic < 0 and im < 0
    if double or untouched:
        y = math.nan
    elif im < 0 or (ic >= 0 and ic < im):
        y = 1.0
    else:
        y = 0.0
    return ic, im, y, double, untouched


def _after_touch(s: _Setup, t: int, i: int, lev: float, direction: int) -> tuple[float, float]:
    """(hours from t to the end of touching bar i, signed return in bp ``post_hours`` later); NaNs if untouched."""
    bars = s.bars
    if i < 0:
        return math.nan, math.nan
    tau = (int(bars.ts[i]) + bars.bar_ns - t) / HOUR_NS
    if i + s.post_n >= len(bars.close):
        return tau, math.nan
    return tau, direction * math.log(bars.close[i + s.post_n] / lev) * 1e4


def _controls(s: _Setup, t: int, P: float) -> tuple[float, float]:
    """(log momentum over ``momentum_hours`` to t, last funding rate known at t); NaN where unknown."""
    bars = s.bars
    i_mom = int(np.searchsorted(bars.ts, t - s.mom_ns - bars.bar_ns, "right")) - 1
    mom = math.log(P / bars.close[i_mom]) if i_mom >= 0 and t - s.mom_ns >= int(bars.ts[0]) else math.nan
    fr = math.nan
    if s.f_ts is not None and len(s.f_ts):
        i_f = int(np.searchsorted(s.f_ts, t, "right")) - 1
        fr = float(s.f_rate[i_f]) if i_f >= 0 else math.nan
    return mom, fr


def _event(s: _Setup, t: int, j: int, P: float, atr: float, sig: float, cluster) -> tuple:
    """One row of ``EVENT_COLUMNS`` for the cluster (side, d, mass, dominance) chosen at snapshot j."""
    side, d, mass, dom = cluster
    level, mirror = P * math.exp(side * d), P * math.exp(-side * d)
    ic, im, y, double, untouched = _first_passage(s, t, side, level, mirror)
    tau_c, post_c = _after_touch(s, t, ic, level, side)
    tau_m, post_m = _after_touch(s, t, im, mirror, -side)
    mom, fr = _controls(s, t, P)
    sigma_h = sig * math.sqrt(s.p.horizon_hours / s.p.atr_hours)
    return (t, P, atr, sigma_h, side, d, level, mirror, mass, dom, y, double, untouched,
            tau_c, tau_m, post_c, post_m, mom, fr, j)


def _frame(rows: list[tuple]) -> pd.DataFrame:
    ev = pd.DataFrame.from_records(rows, columns=list(EVENT_COLUMNS))
    ev["t"] = pd.to_datetime(ev["t"].astype(np.int64), utc=True)
    ev["side"] = ev["side"].astype(np.int64)
    ev["double"] = ev["double"].astype(bool)
    ev["untouched"] = ev["untouched"].astype(bool)
    ev["step"] = ev["step"].astype(np.int64)
    return ev


def find_events(
    times: np.ndarray,
    prices: np.ndarray,
    long: np.ndarray,
    short: np.ndarray,
    bars: Bars,
    params: MagnetParams | None = None,
    *,
    funding: tuple[np.ndarray, np.ndarray] | None = None,
    start=None,
    end=None,
) -> pd.DataFrame:
    """Build first-passage events from a (T, B) heatmap and bars (information up to t only).

    Decision times are snapshot times spaced >= H apart with a full window (t, t+H] of bars inside
    [start, end) and ``atr_periods`` completed ATR periods before t. A decision time is used (windows do
    not overlap) whether or not it yields an event.

    Parameters
    ----------
    times : np.ndarray
        (T,) snapshot times (end of each step, UTC; any form :func:`liqlab._util.to_ns` reads).
    prices : np.ndarray
        (B,) bin centres, USD.
    long, short : np.ndarray
        (T, B) = time × price maps, USD.
    bars : Bars
        The bars that decide touches.
    params : MagnetParams, optional
    funding : tuple of np.ndarray, optional
        (ts, rate) arrays; the last rate known at t is the funding control.
    start, end : time, optional
        Limits of the tested span (UTC; int = ns).

    Returns
    -------
    pd.DataFrame
        One row per decision time with a cluster, columns ``EVENT_COLUMNS``: ``y`` is 1/0 for decided
        events and NaN for untouched or same-bar double-touched ones; ``t`` UTC, distances in log
        price, ``tau_*_h`` in hours, ``post_*_bp`` in bp.
    """
    p = params or MagnetParams()
    times = to_ns(times)
    prices = np.asarray(prices, dtype=np.float64)
    long, short = np.asarray(long), np.asarray(short)
    if long.shape != short.shape or long.shape != (len(times), len(prices)):
        raise DataError(f"heatmap maps must be (T, B) = ({len(times)}, {len(prices)}), got {long.shape} and {short.shape}")
    if len(bars.ts) < 3:
        raise DataError("magnet test: fewer than 3 bars")
    s = _setup(prices, bars, p, funding, start, end)
    rows: list[tuple] = []
    next_ok = s.lo_t
    for j in range(len(times)):
        t = int(times[j])
        if t < next_ok or t + s.H > s.hi_t:
            continue
        state = _state(s, t)
        if state is None:
            continue
        P, atr, sig = state
        dmax = p.k_atr * atr / P
        if not dmax > s.dmin:
            continue
        next_ok = t + s.H
        cluster = _cluster(s, long[j], short[j], P, dmax)
        if cluster is not None:
            rows.append(_event(s, t, j, P, atr, sig, cluster))
    return _frame(rows)


def touch_dataset(data, venue: str | None):
    """``(data, dataset)``: the data (loaded if a path) and the dataset whose bars decide touches.

    Parameters
    ----------
    data : Dataset, Collection or path
    venue : str or None
        The venue; None = binanceusdm if present, else the first.

    Returns
    -------
    tuple
        (Dataset or Collection, Dataset). ParameterError when ``venue`` is not in the data.
    """
    from liqlab.io.dataset import Collection, Dataset, load

    if not isinstance(data, (Dataset, Collection)):
        data = load(data)
    if isinstance(data, Dataset):
        if venue is not None and venue != data.venue:
            raise ParameterError(f"venue: {venue!r} not in the data (have {data.venue!r})")
        return data, data
    if venue is not None:
        if venue not in data.venues:
            raise ParameterError(f"venue: {venue!r} not in the data (have {list(data.venues)})")
        return data, data[venue]
    return data, data["binanceusdm"] if "binanceusdm" in data.venues else data.datasets[0]


def funding_arrays(ds) -> tuple[np.ndarray, np.ndarray] | None:
    """(ts, rate) arrays of a dataset's funding table, or None when it has none.

    Parameters
    ----------
    ds : Dataset

    Returns
    -------
    tuple of np.ndarray or None
        (ts UTC, funding rate per interval), (n,) each.
    """
    f = ds.funding
    return (f["ts"].to_numpy(), f["funding_rate"].to_numpy(float)) if f is not None and len(f) else None


def events_for(heatmap, ds, params: MagnetParams, *, start=None, end=None) -> pd.DataFrame:
    """Events of a ``Heatmap`` with the bars and funding of dataset ``ds``.

    Parameters
    ----------
    heatmap : Heatmap
        ``times`` (T,), ``prices`` (B,), ``long``/``short`` (T, B) USD.
    ds : Dataset
        Its ``ohlcv`` decides touches; its ``funding`` is the funding control.
    params : MagnetParams
    start, end : time, optional
        Limits of the tested span (UTC).

    Returns
    -------
    pd.DataFrame
        As :func:`find_events`.
    """
    bars = Bars.from_frame(ds.ohlcv, source=f"{ds.path or ds.name}: ohlcv")
    return find_events(heatmap.times, heatmap.prices, heatmap.long, heatmap.short, bars, params,
                       funding=funding_arrays(ds), start=start, end=end)


def decided(ev: pd.DataFrame) -> pd.DataFrame:
    """The events with an outcome (``y`` not NaN).

    Parameters
    ----------
    ev : pd.DataFrame
        Events (``EVENT_COLUMNS``).

    Returns
    -------
    pd.DataFrame
        The rows with ``y`` in {0, 1}.
    """
    return ev[ev["y"].notna()]
