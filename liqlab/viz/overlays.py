"""What the heatmap figures draw over the map from the data: price candles (or a close line) and realized
liquidations, both aggregated to the shown snapshots so the page stays fast.

Times are ms since the epoch (UTC); a shown step j covers bars whose open time is in
[times_ms[j] − step, times_ms[j]) and is drawn at its centre. Prices USD, values USD notional.
"""

from __future__ import annotations

import numpy as np

from liqlab.viz.view import View
from liqlab.viz.view import times_ms as _ms  # (the functions' ``times_ms`` parameters are the shown times)

__all__ = ["price_bars", "liquidation_events", "price_data", "REALIZED_COLOURS"]

#: Realized-liquidation markers: colours that stand out from the blue/red map (amber long, magenta short).
REALIZED_COLOURS: dict[str, str] = {"long": "#ffc400", "short": "#ff40ff"}


def _datasets(data) -> list:
    """The datasets of ``data`` (Dataset, Collection or path); [] for None."""
    if data is None:
        return []
    from liqlab.io.dataset import as_collection

    return list(as_collection(data).datasets)


def price_bars(data, times_ms: np.ndarray, step_hours: float, venue: str | None = None) -> dict[str, np.ndarray] | None:
    """OHLC candles per shown step.

    Parameters
    ----------
    data : Dataset, Collection, path or None
        Where the bars come from.
    times_ms : numpy.ndarray
        (To,) float64 ends of the shown steps (ms, UTC).
    step_hours : float
        Hours per shown step.
    venue : str, optional
        The venue whose bars are drawn; default (or when absent) the first dataset.

    Returns
    -------
    dict or None
        Columns ``t`` (step centre, ms), ``open``, ``high``, ``low``, ``close`` (USD), ``width`` (ms),
        ``up`` (int8, close >= open), one row per shown step with bars; None without data or bars.
    """
    dss = _datasets(data)
    if not dss:
        return None
    ds = next((d for d in dss if d.venue == venue), dss[0])
    o = ds.ohlcv
    ts = _ms(o["ts"])
    step_ms = step_hours * 3_600_000.0
    j = np.searchsorted(times_ms, ts, side="right")
    ok = (j < len(times_ms)) & (ts >= times_ms[np.minimum(j, len(times_ms) - 1)] - step_ms)
    if not ok.any():
        return None
    j = j[ok]
    op, hi, lo, cl = (o[c].to_numpy(dtype=np.float64)[ok] for c in ("open", "high", "low", "close"))
    idx, first = np.unique(j, return_index=True)
    last = np.r_[first[1:], len(j)] - 1
    return {
        "t": times_ms[idx] - step_ms / 2,
        "open": op[first],
        "high": np.maximum.reduceat(hi, first),
        "low": np.minimum.reduceat(lo, first),
        "close": cl[last],
        "width": np.full(len(idx), step_ms * 0.7),
        "up": (cl[last] >= op[first]).astype(np.int8),
    }


def _liquidation_rows(data, venues: list[str] | None):
    """One frame of the realized liquidations of ``data`` (t ms, price, value USD, side), or None.
    An event without a price counts at its bar's close."""
    import pandas as pd

    rows = []
    for ds in _datasets(data):
        if venues is not None and ds.venue not in venues:
            continue
        lq = ds.liquidations
        if lq is None or len(lq) == 0:
            continue
        px = lq["price"].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(px).any():
            o = ds.ohlcv
            k = np.searchsorted(_ms(o["ts"]), _ms(lq["ts"]), side="right") - 1
            fill = o["close"].to_numpy(dtype=np.float64)[np.clip(k, 0, len(o) - 1)]
            px = np.where(np.isnan(px), fill, px)
        rows.append(pd.DataFrame({"t": _ms(lq["ts"]), "price": px,
                                  "value": lq["value"].to_numpy(dtype=np.float64),
                                  "side": lq["side"].astype(str).to_numpy()}))
    return pd.concat(rows, ignore_index=True) if rows else None


def liquidation_events(data, times_ms: np.ndarray, step_hours: float,
                       venues: list[str] | None = None) -> dict[str, np.ndarray] | None:
    """Realized liquidations as markers, one per shown step and side (summed over venues).

    Parameters
    ----------
    data, times_ms, step_hours
        As :func:`price_bars` (the data, the (To,) ends of the shown steps in ms UTC, hours per step).
    venues : list of str, optional
        Venues to include (default all).

    Returns
    -------
    dict or None
        Columns ``t`` (step centre, ms), ``price`` (value-weighted mean, USD; an event without a price counts
        at its bar's close), ``value`` (USD), ``count``, ``side``, ``size`` (px, ∝ sqrt(value)), ``colour``;
        None when there are no events in the shown steps.
    """
    df = _liquidation_rows(data, venues)
    if df is None:
        return None
    step_ms = step_hours * 3_600_000.0
    j = np.searchsorted(times_ms, df["t"].to_numpy(), side="right")
    keep = (j < len(times_ms)) & (df["t"].to_numpy() >= times_ms[np.minimum(j, len(times_ms) - 1)] - step_ms)
    df = df[keep].assign(j=j[keep], pv=lambda x: x["price"] * x["value"])
    if df.empty:
        return None
    g = df.groupby(["j", "side"], sort=True).agg(value=("value", "sum"), pv=("pv", "sum"), count=("value", "size")).reset_index()
    value = g["value"].to_numpy(np.float64)
    side = g["side"].to_numpy(dtype=object)
    vmax = float(value.max()) or 1.0
    return {
        "t": times_ms[g["j"].to_numpy()] - step_ms / 2, "price": g["pv"].to_numpy(np.float64) / np.where(value > 0, value, 1.0),
        "value": value, "count": g["count"].to_numpy(np.int64), "side": side,
        "size": 6.0 + 22.0 * np.sqrt(value / vmax),
        "colour": np.where(side == "long", REALIZED_COLOURS["long"], REALIZED_COLOURS["short"]).astype(object),
    }


def price_data(view: View, data, venue: str | None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """The page's price sources of a view.

    Parameters
    ----------
    view : View
        The fitted view.
    data : Dataset, Collection, path or None
        Where the bars come from.
    venue : str or None
        The venue whose bars are drawn (see :func:`price_bars`).

    Returns
    -------
    line : dict
        Columns of the ``price_line`` source: ``t`` (step centre, ms), ``close`` (USD); the heatmap's
        closes when ``data`` has no bars.
    bars : dict or None
        Columns of the ``price`` candles: :func:`price_bars` with ``colour`` instead of ``up``; None without bars.
    """
    bars = price_bars(data, view.times_ms, view.step_hours, venue)
    if bars is None:
        step_ms = view.step_hours * 3_600_000.0
        return {"t": view.times_ms - step_ms / 2, "close": view.close}, None
    line = {"t": bars["t"], "close": bars["close"]}
    bars = dict(bars)
    bars["colour"] = np.where(bars.pop("up") > 0, "#d9d9d9", "#7a7a7a").astype(object)
    return line, bars
