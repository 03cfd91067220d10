"""Numeric liquidation levels of one snapshot: clusters, alerts near price, and the pull above vs below.

This module is the one home of the *cluster peak rule*: a cluster is a local maximum of one side's
map at a snapshot (> 0, ≥ the bin below it and > the bin above it, so a flat top counts once, at its
upper end). ``Heatmap.top_clusters``, the explorer's clusters table, ``liqlab levels`` and
``liqlab alert`` all read their rows from :func:`levels`.

Units: notional in USD (or in ``hm.meta['units']`` for a relative map), prices in USD (quote currency),
distances in % of the snapshot's reference close, ages in hours, times UTC. Maps are time × price (T, B).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from liqlab.errors import ParameterError

__all__ = ["peak_bins", "distance_pct", "lev_column", "levels", "alerts", "pull", "levels_table", "compare_assets", "LEVEL_COLUMNS"]

#: The columns of :func:`levels` before the per-leverage ``lev_<L>`` columns.
LEVEL_COLUMNS: tuple[str, ...] = ("time", "price", "side", "notional_usd", "distance_pct", "age_hours", "venues",
                                  "venue_names")


def peak_bins(x: np.ndarray) -> np.ndarray:
    """The cluster peak rule on one side's profile.

    Parameters
    ----------
    x : numpy.ndarray
        (B,) notional per price bin (USD), one side at one snapshot.

    Returns
    -------
    numpy.ndarray
        int64 bins b with x[b] > 0, x[b] ≥ x[b−1] and x[b] > x[b+1] (outside the grid counts as −inf).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, np.int64)
    left = np.r_[-np.inf, x[:-1]]
    right = np.r_[x[1:], -np.inf]
    return np.flatnonzero((x > 0) & (x >= left) & (x > right)).astype(np.int64)


def distance_pct(price, ref: float) -> np.ndarray:
    """Distance of prices from the reference price, in % (positive above, negative below).

    Parameters
    ----------
    price : array_like
        Prices (USD).
    ref : float
        Reference price (USD); NaN gives NaN distances.

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``price``: (price / ref − 1) · 100.
    """
    p = np.asarray(price, dtype=np.float64)
    if not np.isfinite(ref) or ref <= 0:
        return np.full(p.shape, np.nan)
    return (p / ref - 1.0) * 100.0


def _check_positive(name: str, value: float) -> float:
    """``value`` as a float when it is finite and > 0, else ParameterError naming ``name``."""
    if not math.isfinite(float(value)) or value <= 0:
        raise ParameterError(f"{name}: need a finite number > 0, got {value!r}")
    return float(value)


def lev_column(leverage: float) -> str:
    """Name of the per-leverage column of a leverage layer: ``lev_<L>`` ('lev_10', 'lev_12.5')."""
    return f"lev_{float(leverage):g}"


def _peaks(hm, j: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every cluster at snapshot j, largest first (ties: long before short, lower bin first)."""
    sides, bins, vals = [], [], []
    for side, arr in (("long", hm.long[j]), ("short", hm.short[j])):
        x = np.asarray(arr, dtype=np.float64)
        b = peak_bins(x)
        sides += [side] * len(b)
        bins.append(b)
        vals.append(x[b])
    b = np.concatenate(bins) if bins else np.zeros(0, np.int64)
    v = np.concatenate(vals) if vals else np.zeros(0)
    order = np.argsort(-v, kind="stable")
    return [sides[i] for i in order], b[order], v[order]


def _empty(hm) -> pd.DataFrame:
    cols = list(LEVEL_COLUMNS) + [lev_column(lv) for lv in hm.leverages]
    dt = {"time": "datetime64[ns, UTC]", "side": object, "venues": "int64", "venue_names": object}
    return pd.DataFrame({c: pd.Series(dtype=dt.get(c, "float64")) for c in cols})


def levels(hm, t=None, *, n: int | None = None, min_usd: float = 0.0) -> pd.DataFrame:
    """The liquidation clusters of one snapshot, largest first.

    Parameters
    ----------
    hm : Heatmap
        The map (T × B, time × price).
    t : str, datetime, Timestamp, int or None
        The snapshot (``Heatmap.index_at``: nearest time, index, or None = the latest).
    n : int, optional
        Most rows returned (after ``min_usd``); None = every cluster.
    min_usd : float
        Smallest notional kept (USD; in the map's units for a relative map).

    Returns
    -------
    pandas.DataFrame
        One row per cluster: time (UTC, the snapshot), price (bin centre, USD), side ('long'|'short'),
        notional_usd (that bin's notional), distance_pct (vs the snapshot's reference close, %),
        age_hours (notional-weighted mean age of the levels in the bin), venues (number of venues
        agreeing, int), venue_names (those venues, comma-separated), and ``lev_<L>`` per leverage layer
        (that layer's weighted notional in the bin; they sum to notional_usd up to float32 rounding of
        the layers).
    """
    if n is not None and (isinstance(n, bool) or int(n) != n or n < 0):
        raise ParameterError(f"n: need a non-negative whole number, got {n!r}")
    if not math.isfinite(float(min_usd)) or min_usd < 0:
        raise ParameterError(f"min_usd: need a finite number >= 0, got {min_usd!r}")
    j = hm.index_at(t)
    sides, bins, vals = _peaks(hm, j)
    keep = vals >= float(min_usd)
    sides = [s for s, k in zip(sides, keep) if k]
    bins, vals = bins[keep], vals[keep]
    if n is not None:
        sides, bins, vals = sides[: int(n)], bins[: int(n)], vals[: int(n)]
    if len(bins) == 0:
        return _empty(hm)
    return _rows(hm, j, sides, bins, vals)


def _rows(hm, j: int, sides: list[str], bins: np.ndarray, vals: np.ndarray) -> pd.DataFrame:
    """The :func:`levels` frame of the given clusters at snapshot j."""
    from liqlab.engine.agreement import agreeing_venues

    p = hm.params
    age_l, age_s = hm._mean_age(j)
    is_long = np.array([s == "long" for s in sides])
    named = agreeing_venues(hm.venue_long, hm.venue_short, j, [int(b) for b in bins], p.agreement_threshold,
                            int(p.agreement_window_bins))
    price = np.asarray(hm.prices, dtype=np.float64)[bins]
    out = {
        "time": pd.DatetimeIndex([pd.Timestamp(hm.times[j], tz="UTC")] * len(bins)),
        "price": price, "side": np.array(sides, dtype=object), "notional_usd": vals.astype(np.float64),
        "distance_pct": distance_pct(price, float(hm.close[j])),
        "age_hours": np.where(is_long, age_l[bins], age_s[bins]).astype(np.float64),
        "venues": (hm.agreement[j, bins].astype(np.int64) if hm.agreement.size else np.zeros(len(bins), np.int64)),
        "venue_names": np.array([", ".join(v) for v in named], dtype=object),
    }
    w = np.asarray(hm.weights, dtype=np.float64)
    for k, lv in enumerate(hm.leverages):
        lo = np.asarray(hm.long_layers[k, j], dtype=np.float64)[bins]
        sh = np.asarray(hm.short_layers[k, j], dtype=np.float64)[bins]
        out[lev_column(lv)] = w[k] * np.where(is_long, lo, sh)
    return pd.DataFrame(out)


def alerts(hm, *, within_pct: float, min_usd: float, t=None) -> pd.DataFrame:
    """The clusters worth an alert: at least ``min_usd`` and within ``within_pct`` % of the price.

    Parameters
    ----------
    hm : Heatmap
        The map (T × B).
    within_pct : float
        Largest |distance_pct| kept (%, > 0).
    min_usd : float
        Smallest notional kept (USD, ≥ 0).
    t : optional
        The snapshot (None = the latest, i.e. the latest price).

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`levels` that qualify, largest first (same columns).
    """
    _check_positive("within_pct", within_pct)
    lv = levels(hm, t, min_usd=min_usd)
    return lv[lv["distance_pct"].abs() <= float(within_pct)].reset_index(drop=True)


def pull(hm, t=None, *, within_pct: float = 5.0) -> dict:
    """The directional summary of a snapshot ("pull" or "gravity"): notional just above vs just below.

    Whether this imbalance moves the price is an empirical question (the magnet test answers it); this
    is only the bookkeeping.

    Parameters
    ----------
    hm : Heatmap
        The map (T × B).
    t : optional
        The snapshot (None = the latest).
    within_pct : float
        Half-width of the band around the reference close (%, > 0).

    Returns
    -------
    dict
        above_usd: long + short notional in bins centred in (ref, ref·(1 + x/100)]; below_usd: in
        [ref·(1 − x/100), ref); ratio: above_usd / below_usd (inf when only above, NaN when neither);
        within_pct: x; time: the snapshot (UTC); ref_price: the reference close (USD). A bin centred
        exactly at the reference counts on neither side.
    """
    x = _check_positive("within_pct", within_pct)
    j = hm.index_at(t)
    ref = float(hm.close[j])
    from liqlab.engine.liqmap import band_totals

    tot = np.asarray(hm.long[j], dtype=np.float64) + np.asarray(hm.short[j], dtype=np.float64)
    lo, hi = band_totals(tot, hm.prices, ref, (x,))
    above, below = float(hi[0]), float(lo[0])
    ratio = above / below if below > 0 else (math.inf if above > 0 else math.nan)
    return {"above_usd": above, "below_usd": below, "ratio": ratio, "within_pct": x,
            "time": pd.Timestamp(hm.times[j], tz="UTC"), "ref_price": ref}


def levels_table(hm, t=None, *, pull_pct: float = 5.0, n: int | None = None, min_usd: float = 0.0) -> pd.DataFrame:
    """The exported levels of a snapshot: :func:`levels` plus the snapshot's :func:`pull` on every row.

    Parameters
    ----------
    hm, t, n, min_usd
        As :func:`levels` (a T × B map; the snapshot, None = the latest).
    pull_pct : float
        Band of the directional summary (%, > 0).

    Returns
    -------
    pandas.DataFrame
        The :func:`levels` columns, then pull_pct (%), pull_above_usd, pull_below_usd (USD) and
        ref_price (USD, the snapshot's reference close), the same on every row.
    """
    _check_positive("pull_pct", pull_pct)
    lv = levels(hm, t, n=n, min_usd=min_usd)
    pu = pull(hm, t, within_pct=pull_pct)
    return lv.assign(pull_pct=float(pull_pct), pull_above_usd=pu["above_usd"], pull_below_usd=pu["below_usd"],
                     ref_price=pu["ref_price"])


def compare_assets(maps, *, n: int = 5, basis: str = "volume", window: str = "7D") -> pd.DataFrame:
    """The largest clusters of several assets side by side, in USD and on the relative scale.

    Parameters
    ----------
    maps : mapping of str to Heatmap
        Asset label → its USD map (each at its latest snapshot).
    n : int
        Clusters per asset, largest in USD first.
    basis, window
        The relative scale (:meth:`~liqlab.engine.heatmap.Heatmap.relative`): notional over trailing
        traded volume in ``window`` or over open interest (USD/USD).

    Returns
    -------
    pandas.DataFrame
        Per asset and cluster: asset, symbol, synthetic, rank (1 = largest in USD), time (UTC), side,
        price (USD), distance_pct, notional_usd, relative (fraction of the basis, USD/USD; NaN where the
        basis is unknown) and relative_bp (the same in basis points); ``attrs['units']`` names the basis.
    """
    frames, units = [], ""
    for label, hm in maps.items():
        if "relative_window" in hm.meta:
            raise ParameterError(f"compare_assets: {label}: the map is already relative; pass the USD map")
        lv = levels(hm, n=n)
        div, units = hm.relative_divisor(window, basis=basis)   # only the divisor: the map is never divided
        d = float(div[hm.index_at(None)])
        r = lv["notional_usd"].to_numpy(np.float64) / d if d > 0 else np.full(len(lv), np.nan)
        frames.append(pd.DataFrame({
            "asset": str(label), "symbol": str(hm.meta.get("symbol", "")), "synthetic": bool(hm.synthetic),
            "rank": np.arange(1, len(lv) + 1), "time": lv["time"], "side": lv["side"], "price": lv["price"],
            "distance_pct": lv["distance_pct"], "notional_usd": lv["notional_usd"], "relative": r.astype(np.float64),
            "relative_bp": r.astype(np.float64) * 1e4}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["units"] = units
    return out
