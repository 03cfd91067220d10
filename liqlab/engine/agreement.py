"""Cross-venue agreement: how many venues see a liquidation cluster at a cell of the map.

A venue has a cluster at a cell when its own map there (long + short, USD) is > 0 and at least
``threshold`` × that snapshot's maximum of its map; it *agrees* at bin b when it has a cluster within
``window`` bins of b. This module is the rule's one home in Python: :func:`agreement` gives the
``Heatmap.agreement`` counts, :func:`agreeing_venues` names the venues at a few cells (the explorer's
clusters table). The page's ``cellInfo`` in ``liqlab/viz/js/explorer.js`` is its JavaScript twin.
Maps are time × price (T, B).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["cluster_cells", "agreement", "agreeing_venues"]


def cluster_cells(m: np.ndarray, threshold: float, window: int) -> np.ndarray:
    """Cells within ``window`` bins of one venue's clusters.

    Parameters
    ----------
    m : numpy.ndarray
        (R, B) float64 USD: one venue's map (long + short), R snapshots × B price bins.
    threshold : float
        Share of the snapshot's maximum a cell needs to be a cluster (0..1).
    window : int
        Bins on each side a cluster covers (0 = the cell itself).

    Returns
    -------
    numpy.ndarray
        (R, B) bool.
    """
    mx = m.max(axis=1, keepdims=True) if m.shape[1] else np.zeros((m.shape[0], 1))
    c = (m > 0) & (m >= threshold * mx)
    if window > 0:
        d = c.copy()
        for s in range(1, window + 1):
            d[:, s:] |= c[:, :-s]
            d[:, :-s] |= c[:, s:]
        c = d
    return c


def agreement(venue_long: Mapping[str, np.ndarray], venue_short: Mapping[str, np.ndarray], threshold: float,
              window: int, rows_per_block: int | None = None) -> np.ndarray:
    """The number of venues agreeing at every cell.

    Parameters
    ----------
    venue_long, venue_short : mapping of str to numpy.ndarray
        Per venue, (T, B) USD maps of long and short liquidation levels (time × price).
    threshold : float
        Share of a snapshot's maximum a cell needs to be a cluster (0..1).
    window : int
        Bins on each side a cluster covers.
    rows_per_block : int, optional
        Snapshots handled at once (bounds the float64 temporaries); default all. The counts do not depend
        on it.

    Returns
    -------
    numpy.ndarray
        (T, B) int8 venue counts; (0, 0) without venues.
    """
    if not venue_long:
        return np.zeros((0, 0), np.int8)
    T, B = next(iter(venue_long.values())).shape
    step = max(1, int(rows_per_block)) if rows_per_block is not None else max(T, 1)
    out = np.zeros((T, B), dtype=np.int8)
    for r0 in range(0, T, step):
        rows = slice(r0, min(T, r0 + step))
        for v in venue_long:
            m = venue_long[v][rows].astype(np.float64) + venue_short[v][rows]
            out[rows] += cluster_cells(m, threshold, window)
    return out


def agreeing_venues(venue_long: Mapping[str, np.ndarray], venue_short: Mapping[str, np.ndarray], j: int,
                    bins: Sequence[int], threshold: float, window: int) -> list[list[str]]:
    """The venues agreeing at a few cells of one snapshot.

    Parameters
    ----------
    venue_long, venue_short : mapping of str to numpy.ndarray
        Per venue, (T, B) USD maps (time × price).
    j : int
        The snapshot (row).
    bins : sequence of int
        Price bins (columns) in 0..B-1.
    threshold, window
        As :func:`agreement`.

    Returns
    -------
    list of list of str
        Per bin, the agreeing venues in the order of ``venue_long``; ``len`` of each equals
        ``agreement(...)[j, b]``.
    """
    masks = {v: cluster_cells((venue_long[v][j].astype(np.float64) + venue_short[v][j])[None, :], threshold, window)[0]
             for v in venue_long}
    return [[v for v, mask in masks.items() if mask[int(b)]] for b in bins]
