"""The build's steps before the recursion: select the data, lay the shared grid, run every venue's fine pass
and describe the result (``build_heatmap`` in :mod:`liqlab.engine.heatmap` strings them together).

Times are int64 ns since the epoch (UTC); prices USD; the grid is T steps × B price bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab._util import progress as progress_bar, to_ns, utc
from liqlab.errors import DataError, ParameterError
from liqlab.engine.grid import make_grid
from liqlab.engine.inputs import VenueSteps
from liqlab.engine.params import HeatmapParams

__all__ = ["Grid", "select", "shared_grid", "fine_passes", "build_meta"]


@dataclass(frozen=True, eq=False)
class Grid:
    """The shared grid of a build: steps from ``t0`` (ns UTC) of ``step_ns``, T of them; price ``edges``
    (B+1,) USD of ``bin_width`` (bp or USD); ``n_venues`` venues with bars in range."""

    t0: int
    step_ns: int
    T: int
    edges: np.ndarray
    bin_width: float
    n_venues: int

    @property
    def times(self) -> np.ndarray:
        """(T,) datetime64[ns] UTC: the end of each step."""
        return (self.t0 + self.step_ns * np.arange(1, self.T + 1, dtype=np.int64)).astype("datetime64[ns]")


def select(coll, p: HeatmapParams):
    """The collection's venues and time range that the parameters select.

    Parameters
    ----------
    coll : Collection
        The data.
    p : HeatmapParams
        ``venues``, ``start`` and ``end`` (UTC) are used.

    Returns
    -------
    Collection
        Unknown venues raise ParameterError naming ``venues``.
    """
    if p.venues is not None:
        try:
            coll = coll.select(p.venues)
        except DataError as exc:
            raise ParameterError(f"venues: {exc}") from None
    start = utc(p.start) if p.start is not None else None
    end = utc(p.end) if p.end is not None else None
    return coll.between(start, end)


def shared_grid(coll, p: HeatmapParams) -> Grid:
    """The grid every venue is built on: steps covering the bars (or ``start``..``end``), price bins
    covering their range.

    Parameters
    ----------
    coll : Collection
        The selected data.
    p : HeatmapParams
        ``time_step``, ``start``, ``end``, ``clearing`` and the price-grid fields are used.

    Returns
    -------
    Grid
        Raises DataError without bars, ParameterError for an empty time range or too many bins.
    """
    step_ns = int(round(p.step_hours * 3600e9))
    firsts, lasts, lows, highs, closes = [], [], [], [], []
    for ds in coll:
        if len(ds.ohlcv) == 0:
            continue
        tsv = to_ns(ds.ohlcv["ts"])
        firsts.append(tsv[0])
        dt = int(np.median(np.diff(tsv))) if len(tsv) > 1 else step_ns
        lasts.append(tsv[-1] + dt)
        lo_col = ds.ohlcv["low"].to_numpy(np.float64)
        hi_col = ds.ohlcv["high"].to_numpy(np.float64)
        if p.clearing == "mark" and "mark_close" in ds.ohlcv.columns:
            mk = ds.ohlcv["mark_close"].to_numpy(np.float64)
            lo_col, hi_col = np.minimum(lo_col, mk), np.maximum(hi_col, mk)
        lows.append(lo_col.min())
        highs.append(hi_col.max())
        closes.append(ds.ohlcv["close"].to_numpy(np.float64))
    if not firsts:
        raise DataError(f"{coll.path or 'data'}: no OHLCV bars in the selected time range")
    t_first = utc(p.start).value if p.start is not None else min(firsts)
    t0 = (t_first // step_ns) * step_ns
    t_last = utc(p.end).value if p.end is not None else max(lasts)
    T = int(-(-(t_last - t0) // step_ns))
    if T <= 0:
        raise ParameterError(f"start/end: empty time range {p.start}..{p.end}")
    edges, bw = make_grid(min(lows), max(highs), float(np.median(np.concatenate(closes))), p)
    return Grid(t0=t0, step_ns=step_ns, T=T, edges=edges, bin_width=bw, n_venues=len(firsts))


def fine_passes(coll, p: HeatmapParams, grid: Grid, *, progress: bool | None = None,
                use_numba: bool | None = None) -> tuple[list[VenueSteps], dict[str, str]]:
    """The fine pass of every venue with bars and at least two open-interest rows.

    Parameters
    ----------
    coll : Collection
        The selected data.
    p : HeatmapParams
        The build's parameters.
    grid : Grid
        The shared grid.
    progress : bool or None
        A progress bar over venues (None = only on a terminal).
    use_numba : bool or None
        True/False forces the numba kernels; None = numba unless ``LIQLAB_NO_NUMBA`` is set.

    Returns
    -------
    venues : list of VenueSteps
        One per built venue, in collection order (DataError when none can be built).
    notes : dict[str, str]
        Topic (``'<venue>/<topic>'``) → one line: skipped venues, the fine passes' notes and the dataset's
        note on where its open interest came from when it was not observed (``'<venue>/open_interest'``).
    """
    from liqlab.engine.fine import fine_pass

    notes: dict[str, str] = {}
    venues = []
    for ds in progress_bar(list(coll), desc="fine pass", unit="venue", enabled=progress):
        if len(ds.ohlcv) == 0 or len(ds.open_interest) < 2:
            notes[f"{ds.venue}/skipped"] = (f"{ds.venue}: too little data in range (bars {len(ds.ohlcv)}, "
                                            f"OI rows {len(ds.open_interest)}); skipped")
            continue
        steps, venue_notes = fine_pass(ds, p, grid.t0, grid.T, grid.edges, use_numba=use_numba)
        venues.append(steps)
        notes.update(venue_notes)
        notes.update(oi_source_note(ds))
    if not venues:
        raise no_usable_venue(coll)
    return venues, notes


def oi_source_note(ds) -> dict[str, str]:
    """``{'<venue>/open_interest': text}`` when the dataset's open interest was not observed (a proxy), else {}."""
    from liqlab.io.schema import OPEN_INTEREST_NOTE, notes_dict

    source = notes_dict(ds.meta.get("notes")).get(OPEN_INTEREST_NOTE)
    return {f"{ds.venue}/{OPEN_INTEREST_NOTE}": source} if source else {}


def no_usable_venue(coll) -> DataError:
    """The one-line error for data where no venue can be built (no bars, or fewer than two OI rows)."""
    return DataError(f"{coll.path or 'data'}: no venue has bars and at least two open-interest rows in range "
                     "(a map needs open interest; for OHLCV alone, ask for the volume proxy: --oi-proxy volume)")


def build_meta(coll, p: HeatmapParams, grid: Grid, venues: list[VenueSteps], notes: dict[str, str]) -> dict:
    """The heatmap's metadata.

    Parameters
    ----------
    coll, p, grid
        The selected data, the parameters and the shared grid, as for :func:`fine_passes`.
    venues : list of VenueSteps
        The built venues.
    notes : dict[str, str]
        From :func:`fine_passes`.

    Returns
    -------
    dict
        symbol, venues, synthetic, data_start/data_end (ISO UTC), bin_width, bin_unit, units, notes,
        venue_info, source, and label 'SYNTHETIC data' when synthetic.
    """
    meta = {
        "symbol": coll.symbol,
        "venues": [v.venue for v in venues],
        "synthetic": bool(coll.synthetic),
        "data_start": pd.Timestamp(grid.t0, tz="UTC").isoformat(),
        "data_end": pd.Timestamp(grid.t0 + grid.T * grid.step_ns, tz="UTC").isoformat(),
        "bin_width": grid.bin_width,
        "bin_unit": p.bin_unit,
        "units": "USD notional",
        "notes": notes,
        "venue_info": {v.venue: v.info for v in venues},
        "source": [str(ds.meta.get("source", "")) for ds in coll],
    }
    if meta["synthetic"]:
        meta["label"] = "SYNTHETIC data"
    return meta
