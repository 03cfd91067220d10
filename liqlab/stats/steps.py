"""Per-step series of a validation: the USD notional each step's bars sweep from the heatmap snapshot
taken BEFORE the step (no look-ahead), the realized liquidations of the step, the bars aggregated to
steps, and the simple baselines computed from those bars.

For every validation step j (length Δ, the heatmap's ``time_step``) the snapshot at the END of step j−1
says how much USD notional step j's bars sweep: long levels with bin centre ≥ the step's low, short
levels with centre ≤ its high (the engine's own clearing rule). Steps are [start, end) in UTC
(naive datetime64[ns] values); series are (T,), maps (T, B) = time × price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab._util import to_ns
from liqlab.errors import DataError, ParameterError

__all__ = ["SIDES", "StepBars", "baseline_series", "data_step", "heatmap_step_edges", "heatmap_swept", "infer_step",
           "offset_text", "realized_per_step", "step_bars", "swept_notional", "validation_step", "venue_datasets"]

SIDES = ("long", "short")


def venue_datasets(data) -> list:
    """The datasets of a Dataset (itself) or a Collection (one per venue), in order.

    Parameters
    ----------
    data : Dataset or Collection

    Returns
    -------
    list of Dataset
    """
    return list(getattr(data, "datasets", None) or (data,))


def swept_notional(
    long_map: np.ndarray, short_map: np.ndarray, prices: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """USD notional each step's bars sweep, read from the snapshot BEFORE the step.

    ``long_map``/``short_map`` (T, B) USD are snapshots at the END of steps 0..T−1; ``low``/``high``
    (T,) are the extremes of step j's bars (NaN = no bars). Returns (long, short) (T,): entry j sums
    long[j−1, centre ≥ low[j]] and short[j−1, centre ≤ high[j]]; entry 0 (no prior snapshot) and steps
    without bars are NaN.

    Parameters
    ----------
    long_map, short_map : np.ndarray
        (T, B) = time × price snapshots, USD.
    prices : np.ndarray
        (B,) bin centres, USD, increasing.
    low, high : np.ndarray
        (T,) extremes of each step's bars, USD.

    Returns
    -------
    tuple of np.ndarray
        (long, short), (T,) USD each.
    """
    L = np.asarray(long_map, dtype=np.float64)
    S = np.asarray(short_map, dtype=np.float64)
    prices = np.asarray(prices, dtype=float)
    T, B = L.shape
    if S.shape != (T, B) or prices.shape != (B,) or np.shape(low) != (T,) or np.shape(high) != (T,):
        raise ParameterError(f"swept_notional: shapes map {L.shape}/{S.shape}, prices {prices.shape}, "
                             f"low {np.shape(low)}, high {np.shape(high)} do not agree")
    out_l = np.full(T, np.nan)
    out_s = np.full(T, np.nan)
    if T < 2:
        return out_l, out_s
    # suffix sums of long (bins b..B-1), prefix sums of short (bins 0..b)
    suf = np.zeros((T - 1, B + 1))
    suf[:, :B] = np.cumsum(L[:-1, ::-1], axis=1)[:, ::-1]
    pre = np.zeros((T - 1, B + 1))
    pre[:, 1:] = np.cumsum(S[:-1], axis=1)
    lo, hi = np.asarray(low, float)[1:], np.asarray(high, float)[1:]
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo_idx = np.searchsorted(prices, np.where(ok, lo, 0.0), side="left")  # first centre >= low
    hi_idx = np.searchsorted(prices, np.where(ok, hi, 0.0), side="right")  # count of centres <= high
    rows = np.arange(T - 1)
    out_l[1:] = np.where(ok, suf[rows, lo_idx], np.nan)
    out_s[1:] = np.where(ok, pre[rows, hi_idx], np.nan)
    return out_l, out_s


@dataclass(frozen=True)
class StepBars:
    """One venue's bars aggregated to validation steps [start, end) (all (T,), NaN = no bars)."""

    start: np.ndarray  # datetime64[ns] UTC (naive values)
    end: np.ndarray
    open: np.ndarray  # price
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume_usd: np.ndarray  # Σ volume·close (USD); NaN if the venue reports no volume
    oi_usd: np.ndarray  # open interest value (USD) at the step's start (last observation at or before)


def _step_index(ts_ns: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Step j with start_j <= t < end_j for each t, or −1."""
    j = np.searchsorted(end_ns, ts_ns, side="right")
    jj = np.minimum(j, len(end_ns) - 1)
    ok = (j < len(end_ns)) & (ts_ns >= start_ns[jj]) & (ts_ns < end_ns[jj])
    return np.where(ok, j, -1)


def step_bars(ds, start: np.ndarray, end: np.ndarray) -> StepBars:
    """Aggregate a Dataset's OHLCV (and OI) to steps [start_j, end_j) (datetime64[ns] arrays).

    Parameters
    ----------
    ds : Dataset
        Its ``ohlcv`` and ``open_interest`` tables.
    start, end : np.ndarray
        (T,) step edges, datetime64[ns] UTC.

    Returns
    -------
    StepBars
        (T,) arrays; NaN for steps without bars.
    """
    s_ns = np.asarray(start, dtype="datetime64[ns]").astype(np.int64)
    e_ns = np.asarray(end, dtype="datetime64[ns]").astype(np.int64)
    T = len(e_ns)
    o = ds.ohlcv
    j = _step_index(to_ns(o["ts"]), s_ns, e_ns)
    keep = j >= 0
    df = pd.DataFrame({
        "j": j[keep],
        "open": o["open"].to_numpy(float)[keep],
        "high": o["high"].to_numpy(float)[keep],
        "low": o["low"].to_numpy(float)[keep],
        "close": o["close"].to_numpy(float)[keep],
        "vusd": (o["volume"].to_numpy(float) * o["close"].to_numpy(float))[keep],
    })
    g = df.groupby("j", sort=True).agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                                       close=("close", "last"), vusd=("vusd", "sum"))
    full = g.reindex(np.arange(T))
    vol = full["vusd"].to_numpy(float)
    if not (o["volume"].to_numpy(float) > 0).any():
        vol = np.full(T, np.nan)  # the venue reports no volume at all
    oi = ds.open_interest
    if len(oi):
        oi_ns = to_ns(oi["ts"])
        k = np.searchsorted(oi_ns, s_ns, side="right") - 1
        val = oi["open_interest_value"].to_numpy(float)
        oi_usd = np.where(k >= 0, val[np.maximum(k, 0)], np.nan)
    else:
        oi_usd = np.full(T, np.nan)
    return StepBars(
        start=s_ns.astype("datetime64[ns]"), end=e_ns.astype("datetime64[ns]"),
        open=full["open"].to_numpy(float), high=full["high"].to_numpy(float), low=full["low"].to_numpy(float),
        close=full["close"].to_numpy(float), volume_usd=vol, oi_usd=oi_usd,
    )


def _liquidation_tables(source) -> list[tuple[str, pd.DataFrame]]:
    """(name, liquidations table) of every dataset in a Dataset/Collection that has one."""
    datasets = getattr(source, "datasets", None) or (source,)
    return [(str(d.path or d.venue), d.liquidations) for d in datasets if d.liquidations is not None]


def infer_step(liquidations: pd.DataFrame) -> pd.Timedelta | None:
    """Time step of a per-bar-sums liquidations table (all prices empty), None for events.

    Parameters
    ----------
    liquidations : pd.DataFrame
        A dataset's ``liquidations`` table.

    Returns
    -------
    pd.Timedelta or None
        The median spacing of the rows for per-bar sums; None for events or fewer than 2 times.
    """
    if liquidations is None or len(liquidations) == 0 or liquidations["price"].notna().any():
        return None
    ts = np.unique(to_ns(liquidations["ts"]))
    if ts.size < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(ts))), unit="ns")


def realized_per_step(source, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Realized long/short liquidations (USD) per step, summed over all venues of ``source``.

    Steps that do not overlap the span of the realized data (first row .. last row, plus one step for
    per-bar sums) are NaN; overlapping steps without rows are 0.
    Raises DataError when ``source`` has no liquidations table.

    Parameters
    ----------
    source : Dataset or Collection
        Holds the ``liquidations`` tables.
    start, end : np.ndarray
        (T,) step edges, datetime64[ns] UTC.

    Returns
    -------
    tuple of np.ndarray
        (long, short), (T,) USD each.
    """
    tables = _liquidation_tables(source)
    if not tables:
        where = getattr(source, "path", None) or "data"
        raise DataError(f"{where}: no liquidations table (realized liquidations are needed; "
                        f"give another dataset with --liquidations)")
    s_ns = np.asarray(start, dtype="datetime64[ns]").astype(np.int64)
    e_ns = np.asarray(end, dtype="datetime64[ns]").astype(np.int64)
    T = len(e_ns)
    out = {"long": np.zeros(T), "short": np.zeros(T)}
    covered = np.zeros(T, dtype=bool)
    for _, liq in tables:
        if len(liq) == 0:
            continue
        ts = to_ns(liq["ts"])
        step = infer_step(liq)
        lo_t = ts.min()
        hi_t = ts.max() + (step.value if step is not None else 1)
        covered |= (s_ns < hi_t) & (e_ns > lo_t)  # the step overlaps the span of the realized data
        j = _step_index(ts, s_ns, e_ns)
        val = liq["value"].to_numpy(float)
        side = liq["side"].astype(str).to_numpy()
        for name in SIDES:
            m = (j >= 0) & (side == name)
            out[name] += np.bincount(j[m], weights=val[m], minlength=T)
    for name in SIDES:
        out[name][~covered] = np.nan
    return out["long"], out["short"]


def baseline_series(bars: Sequence[StepBars]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Simple per-step predictors (long, short), USD, summed over venues.

    - ``excursion_oi``: (open − low)/open · OI for longs, (high − open)/open · OI for shorts.
    - ``abs_return_oi``: |close − open|/open · OI, both sides.
    - ``volume``: traded volume (USD), both sides (absent when no venue reports volume).

    Parameters
    ----------
    bars : sequence of StepBars
        One per venue, on the same (T,) steps.

    Returns
    -------
    dict[str, tuple[np.ndarray, np.ndarray]]
        Baseline name → (long, short), (T,) USD each.
    """
    T = len(bars[0].end)
    exl, exs, ar = np.zeros(T), np.zeros(T), np.zeros(T)
    vol = np.zeros(T)
    has_vol = False
    for b in bars:
        exl = exl + (b.open - b.low) / b.open * b.oi_usd
        exs = exs + (b.high - b.open) / b.open * b.oi_usd
        ar = ar + np.abs(b.close - b.open) / b.open * b.oi_usd
        if np.isfinite(b.volume_usd).any():
            has_vol = True
            vol = vol + b.volume_usd
        else:
            vol = vol + np.nan
    out = {"excursion_oi": (exl, exs), "abs_return_oi": (ar, ar.copy())}
    if has_vol and np.isfinite(vol).any():
        out["volume"] = (vol, vol.copy())
    return out


def _map_of(hm, venue: str, side: str) -> np.ndarray:
    maps = getattr(hm, f"venue_{side}", None) or {}
    if venue in maps:
        return np.asarray(maps[venue])
    if len(maps) <= 1:
        return np.asarray(getattr(hm, side))
    raise DataError(f"heatmap has no map for venue {venue!r}; has {sorted(maps)}")


def heatmap_step_edges(hm) -> tuple[np.ndarray, np.ndarray, pd.Timedelta]:
    """(start, end, Δ) of the heatmap's output steps: step j covers [times[j] − Δ, times[j]).

    Parameters
    ----------
    hm : Heatmap
        ``times`` (T,) step ends (UTC), ``params.time_step``.

    Returns
    -------
    tuple
        (start, end) datetime64[ns] (T,) each, and Δ as a ``pd.Timedelta``.
    """
    end = np.asarray(hm.times, dtype="datetime64[ns]")
    step = None
    rp = getattr(hm, "replay", None)
    if rp is not None and getattr(rp, "step_hours", None):
        step = pd.Timedelta(hours=float(rp.step_hours))
    if step is None:
        ts = getattr(hm.params, "time_step", None)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(ts)) if ts else pd.Timedelta(np.median(np.diff(end)))
    return end - np.timedelta64(step.value, "ns"), end, step


def heatmap_swept(hm, data, bars: Sequence[StepBars] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Swept notional (long, short) per heatmap step, summed over venues, each venue's map crossed by
    that venue's own bars. Steps where any venue has no bars are NaN.

    Parameters
    ----------
    hm : Heatmap
        Per-venue maps ``venue_long``/``venue_short`` (T, B) USD (or the aggregate for one venue).
    data : Dataset or Collection
        The venues' bars.
    bars : sequence of StepBars, optional
        Precomputed :func:`step_bars` of each venue on the heatmap's steps.

    Returns
    -------
    tuple of np.ndarray
        (long, short), (T,) USD each.
    """
    start, end, _ = heatmap_step_edges(hm)
    dss = venue_datasets(data)
    if bars is None:
        bars = [step_bars(d, start, end) for d in dss]
    tl = np.zeros(len(end))
    ts = np.zeros(len(end))
    prices = np.asarray(hm.prices, float)
    for d, b in zip(dss, bars):
        sl, ss = swept_notional(_map_of(hm, d.venue, "long"), _map_of(hm, d.venue, "short"), prices, b.low, b.high)
        tl = tl + sl
        ts = ts + ss
    return tl, ts


def data_step(data) -> pd.Timedelta:
    """Bar length of the data (median spacing of the first venue's OHLCV).

    Parameters
    ----------
    data : Dataset or Collection

    Returns
    -------
    pd.Timedelta
    """
    ts = to_ns(venue_datasets(data)[0].ohlcv["ts"])
    if ts.size < 2:
        raise DataError(f"{getattr(data, 'path', 'data')}: fewer than 2 bars")
    return pd.Timedelta(int(np.median(np.diff(ts))), unit="ns")


def offset_text(td: pd.Timedelta) -> str:
    """A step length as a pandas offset string: whole hours "4h", whole minutes "5min", else seconds "30s".

    Parameters
    ----------
    td : pd.Timedelta

    Returns
    -------
    str
    """
    mins = td.total_seconds() / 60
    if mins >= 60 and mins % 60 == 0:
        return f"{int(mins // 60)}h"
    if mins == int(mins):
        return f"{int(mins)}min"
    return f"{int(td.total_seconds())}s"


def validation_step(data, realized, requested: str | None = None) -> str:
    """The validation time step: the coarsest of the data's bars, the realized sums' step and the
    requested ``time_step`` (the finer series is aggregated to it).

    Parameters
    ----------
    data : Dataset or Collection
        Prices (its bar length).
    realized : Dataset or Collection
        The realized liquidations (the step of per-bar sums).
    requested : str, optional
        A pandas offset alias, e.g. '1h'.

    Returns
    -------
    str
        A pandas offset alias.
    """
    steps = [data_step(data)]
    for _, liq in _liquidation_tables(realized):
        s = infer_step(liq)
        if s is not None:
            steps.append(s)
    if requested:
        try:
            steps.append(pd.Timedelta(pd.tseries.frequencies.to_offset(requested)))
        except (ValueError, TypeError):
            raise ParameterError(f"time_step: not a pandas offset: {requested!r}") from None
    return offset_text(max(steps))


