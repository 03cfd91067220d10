"""The liquidation map of one snapshot: notional per price bin stacked by leverage, the cumulative curves
away from price and the notional within a few percent of price (the "liquidation map" chart traders know).

Everything is read from a :class:`~liqlab.engine.heatmap.Heatmap` at one snapshot: the per-leverage
layers (``long_layers`` / ``short_layers``, unweighted USD summed over the selected venues) times the
leverage weights, so the layers of a bin sum to the map's cell. The reference price is the snapshot's
close (``Heatmap.close``). The explorer's JavaScript (``liqlab/viz/js/liqmap.js``) is the twin of
:func:`liqmap_arrays`. Numpy only: no plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BANDS_PCT", "LiqMap", "liqmap_arrays", "liquidation_map", "band_totals"]

#: Half-widths (percent of the reference price) of the bands whose notional is printed.
BANDS_PCT: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)


@dataclass(frozen=True)
class LiqMap:
    """The liquidation map of one snapshot (K leverage layers, B price bins).

    Attributes
    ----------
    ref_price : float
        The reference price (USD): the snapshot's close.
    prices : numpy.ndarray
        (B,) bin centres (USD).
    leverages : numpy.ndarray
        (K,) leverages (x).
    long, short : numpy.ndarray
        (K, B) float64 USD notional of each leverage layer (weighted) per bin; summed over k they give
        the map's cell.
    cum_long : numpy.ndarray
        (B,) float64 USD: long notional from the reference price down to each bin (bins centred at or
        below the reference); NaN above it.
    cum_short : numpy.ndarray
        (B,) float64 USD: short notional from the reference price up to each bin (bins centred at or
        above the reference); NaN below it.
    bands_pct : tuple of float
        Band half-widths (% of the reference price).
    below, above : numpy.ndarray
        (len(bands_pct),) float64 USD: long + short notional in bins centred in [ref·(1 − x/100), ref)
        and in (ref, ref·(1 + x/100)] (a bin centred exactly at the reference counts on neither side).
    """

    ref_price: float
    prices: np.ndarray
    leverages: np.ndarray
    long: np.ndarray
    short: np.ndarray
    cum_long: np.ndarray
    cum_short: np.ndarray
    bands_pct: tuple[float, ...]
    below: np.ndarray
    above: np.ndarray


def band_totals(total: np.ndarray, prices: np.ndarray, ref: float,
                bands_pct: tuple[float, ...] = BANDS_PCT) -> tuple[np.ndarray, np.ndarray]:
    """Notional within x % below and above a reference price.

    Parameters
    ----------
    total : numpy.ndarray
        (B,) USD notional per bin (long + short).
    prices : numpy.ndarray
        (B,) bin centres (USD).
    ref : float
        Reference price (USD).
    bands_pct : tuple of float
        Half-widths x (%).

    Returns
    -------
    below, above : numpy.ndarray
        (len(bands_pct),) float64 USD: sums over bins with distance d = 100·(price/ref − 1) in [−x, 0)
        and in (0, x].
    """
    from liqlab.engine.levels import distance_pct

    d = distance_pct(prices, ref)
    t = np.asarray(total, dtype=np.float64)
    below = np.array([t[(d < 0) & (d >= -x)].sum() for x in bands_pct], dtype=np.float64)
    above = np.array([t[(d > 0) & (d <= x)].sum() for x in bands_pct], dtype=np.float64)
    return below, above


def _cumulative(v: np.ndarray, prices: np.ndarray, ref: float, downward: bool) -> np.ndarray:
    """Running sum away from ``ref`` over the bins on one side of it (NaN on the other side)."""
    out = np.full(v.shape, np.nan)
    side = prices <= ref if downward else prices >= ref
    idx = np.flatnonzero(side)
    if idx.size:
        order = idx[::-1] if downward else idx          # start next to the price
        out[order] = np.cumsum(v[order])
    return out


def liqmap_arrays(long_layers: np.ndarray, short_layers: np.ndarray, weights: np.ndarray, prices: np.ndarray,
                  ref: float, leverages: np.ndarray, bands_pct: tuple[float, ...] = BANDS_PCT) -> LiqMap:
    """The liquidation map from one snapshot's layers (twin of ``liqlab_liqmap.compute`` in the page).

    Parameters
    ----------
    long_layers, short_layers : numpy.ndarray
        (K, B) unweighted USD per leverage layer and bin at the snapshot.
    weights : numpy.ndarray
        (K,) leverage weights (sum 1).
    prices : numpy.ndarray
        (B,) bin centres (USD).
    ref : float
        Reference price (USD).
    leverages : numpy.ndarray
        (K,) leverages (x).
    bands_pct : tuple of float
        Band half-widths (%).

    Returns
    -------
    LiqMap
    """
    w = np.asarray(weights, dtype=np.float64)[:, None]
    lo = w * np.asarray(long_layers, dtype=np.float64)
    sh = w * np.asarray(short_layers, dtype=np.float64)
    p = np.asarray(prices, dtype=np.float64)
    tl, ts = lo.sum(axis=0), sh.sum(axis=0)
    below, above = band_totals(tl + ts, p, ref, bands_pct)
    return LiqMap(ref_price=float(ref), prices=p, leverages=np.asarray(leverages, dtype=np.float64), long=lo, short=sh,
                  cum_long=_cumulative(tl, p, ref, True), cum_short=_cumulative(ts, p, ref, False),
                  bands_pct=tuple(float(x) for x in bands_pct), below=below, above=above)


def liquidation_map(hm, t=None, *, bands_pct: tuple[float, ...] = BANDS_PCT) -> LiqMap:
    """The liquidation map of a heatmap at one snapshot.

    Parameters
    ----------
    hm : Heatmap
        A USD heatmap (T × B, K leverage layers).
    t : optional
        The snapshot (:meth:`Heatmap.index_at`; None = the latest).
    bands_pct : tuple of float
        Band half-widths (% of the snapshot's close).

    Returns
    -------
    LiqMap
        Per-leverage USD per bin (the layers times the weights), the cumulative curves from the close
        and the notional within each band.
    """
    j = hm.index_at(t)
    return liqmap_arrays(hm.long_layers[:, j, :], hm.short_layers[:, j, :], hm.weights, hm.prices,
                         float(hm.close[j]), hm.leverages, bands_pct)
