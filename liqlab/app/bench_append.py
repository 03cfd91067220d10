"""``liqlab bench --cases append``: appending one new minute to a live map (SYNTHETIC arrays).

The map: 30 days × 3 venues of 1m bars (:func:`liqlab.app.bench._three_venues`), default parameters,
built with ``extendable=True`` on all but the last ``repeats + 3`` minutes. Each timed run appends one
minute (the bar of every venue, and the open-interest and funding rows of that minute) with
``Heatmap.extend``; ``seconds`` is the median. ``full_rebuild_seconds`` times ``build_heatmap`` on the
whole data in the same run, and ``identical_to_rebuild`` compares every array of the last appended map
with it.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

__all__ = ["append_case"]


def append_case(days: float, *, repeats: int, use_numba: bool | None = None) -> dict[str, Any]:
    """Time ``Heatmap.extend`` by one minute on a ``days`` × 3-venue map.

    Parameters
    ----------
    days : float
        Days of 1m bars per venue.
    repeats : int
        Timed appends after one warm-up append (median reported).
    use_numba : bool or None
        Force numba on or off (None: numba unless ``LIQLAB_NO_NUMBA``).

    Returns
    -------
    dict
        case 'append', seconds (median per appended minute), seconds_all, full_rebuild_seconds,
        identical_to_rebuild, steps, bins, venues, synthetic True.
    """
    import pandas as pd

    from liqlab.app.bench import _numba_used, _three_venues
    from liqlab.engine.heatmap import build_heatmap

    n, coll = _three_venues(days)
    n_new = max(int(repeats), 1) + 3
    end = coll.datasets[0].ohlcv["ts"].iloc[n - n_new]
    minutes = [(end + pd.Timedelta(minutes=i), end + pd.Timedelta(minutes=i + 1)) for i in range(n_new)]
    chunks = [coll.between(a, b) for a, b in minutes]      # sliced beforehand: only the append is timed
    h = build_heatmap(coll.between(None, end), progress=False, extendable=True, use_numba=use_numba)
    times = []
    for i, chunk in enumerate(chunks):
        t = time.perf_counter()
        h = h.extend(chunk)
        if i >= 1:                                         # the first append is the warm-up
            times.append(time.perf_counter() - t)
    t = time.perf_counter()
    full = build_heatmap(coll, progress=False, use_numba=use_numba)
    rebuild_s = time.perf_counter() - t
    return {
        "case": "append", "synthetic": True, "bars": int(n * 3), "venues": 3, "steps": int(len(h.times)),
        "bins": int(len(h.prices)), "seconds": round(statistics.median(times), 6),
        "seconds_all": [round(x, 6) for x in times], "full_rebuild_seconds": round(rebuild_s, 4),
        "identical_to_rebuild": identical(h, full), "numba": _numba_used(use_numba),
    }


def identical(h, r) -> bool:
    """Whether two maps hold equal arrays (maps, layers, venue maps, agreement, close, step inputs) and notes."""
    import numpy as np

    eq = lambda a, b: a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))  # noqa: E731
    names = ("times", "edges", "long", "short", "long_layers", "short_layers", "agreement", "close")
    if not all(eq(getattr(h, n), getattr(r, n)) for n in names) or h.meta.get("notes") != r.meta.get("notes"):
        return False
    if set(h.venue_long) != set(r.venue_long) or not all(
            eq(h.venue_long[v], r.venue_long[v]) and eq(h.venue_short[v], r.venue_short[v]) for v in r.venue_long):
        return False
    for x, y in zip(h.replay.venues, r.replay.venues, strict=True):
        arrays = [(getattr(x, n), getattr(y, n)) for n in ("lo", "hi", "g", "rm_long", "rm_short", "shift",
                                                            "volume_usd", "close", "dropped_long", "dropped_short", "oi_usd")]
        arrays += list(zip(x.fresh_long, y.fresh_long)) + list(zip(x.fresh_short, y.fresh_short))
        if not all(eq(a, b) for a, b in arrays):
            return False
    return True
