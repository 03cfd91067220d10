"""Fitting a heatmap to the browser: at most ``MAX_CELLS`` (price bin × snapshot) cells in the page.

:func:`fit_view` keeps a map under the cap by asking the engine for a coarser time step when the data is
at hand (:func:`liqlab.engine.coarsen.coarsen`), otherwise by showing every n-th snapshot (the page still
re-runs every step, so the shown values stay exact). The :class:`View` it returns holds what the figures
and the page get: float32 (B, To) maps, the shown times (ms since the epoch, UTC) and closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_CELLS", "View", "fit_view", "view_heatmap", "times_ms", "image_geometry", "is_log_grid"]

#: Cap on price bins × snapshots sent to the browser (each cell costs ~4 float32/uint32 arrays, 16 B).
#: Above it the time step is coarsened (by rebuilding at a multiple of ``time_step`` when the data is
#: at hand, otherwise by showing every n-th snapshot); a note on the plot says so.
MAX_CELLS: int = 500_000


@dataclass(frozen=True)
class View:
    """What the browser gets: the heatmap used, display stride/offset and the (B, To) float32 maps."""

    hm: Any
    stride: int              # show every stride-th step of hm (1 = all)
    offset: int              # first shown step ((T - 1) % stride, so the last step is shown)
    long: np.ndarray         # (B, To) float32 USD
    short: np.ndarray        # (B, To) float32 USD
    times_ms: np.ndarray     # (To,) float64, ms since epoch UTC, end of each shown step
    close: np.ndarray        # (To,) float64 reference price at those times
    note: str                # '' or what was coarsened and why

    @property
    def step_hours(self) -> float:
        """Hours between two shown snapshots."""
        return float(self.hm.params.step_hours) * self.stride


def times_ms(times) -> np.ndarray:
    """Milliseconds since the epoch of some times.

    Parameters
    ----------
    times : numpy.ndarray or pandas column
        datetime64 values (UTC) or a tz-aware pandas column.

    Returns
    -------
    numpy.ndarray
        float64 ms since 1970-01-01 UTC, one per time.
    """
    if isinstance(times, np.ndarray) and np.issubdtype(times.dtype, np.datetime64):
        return times.astype("datetime64[ns]").astype(np.int64).astype(np.float64) / 1e6
    import pandas as pd

    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8.astype(np.float64) / 1e6


def fit_view(hm, data=None, max_cells: int = MAX_CELLS) -> View:
    """``hm`` fitted under the browser's cell cap.

    Parameters
    ----------
    hm : Heatmap
        The map, T × B (time × price), USD.
    data : Dataset, Collection or path, optional
        The data ``hm`` was built from: over the cap, the engine rebuilds at a coarser time step
        (:func:`liqlab.engine.coarsen.coarsen`). Without it every n-th snapshot is shown.
    max_cells : int
        Cap on shown snapshots × price bins.

    Returns
    -------
    View
        The heatmap shown (possibly rebuilt), stride and offset of the shown steps, the (B, To) float32
        USD maps, the shown times (ms, UTC) and closes, and a note saying what was coarsened ('' if nothing).

    Raises
    ------
    ParameterError
        ``max_cells`` < 1 or below one snapshot's price bins.
    """
    from liqlab.engine.coarsen import coarsen, coarsening_factor, step_alias

    T, B = np.asarray(hm.long).shape
    factor = coarsening_factor(T, B, max_cells)
    note, stride = "", 1
    if factor > 1 and data is not None:
        hm, note = coarsen(hm, data, max_cells)
        T = np.asarray(hm.long).shape[0]
    elif factor > 1:
        stride = factor
        hours = float(hm.params.step_hours)
        note = (f"showing one {step_alias(hours)} snapshot in {stride} ({step_alias(hours * stride)} apart) "
                f"to keep cells ≤ {max_cells:,}; values are exact at the shown times")
    offset = (T - 1) % stride
    long = np.ascontiguousarray(np.asarray(hm.long)[offset::stride].T, dtype=np.float32)
    short = np.ascontiguousarray(np.asarray(hm.short)[offset::stride].T, dtype=np.float32)
    return View(hm=hm, stride=stride, offset=offset, long=long, short=short,
                times_ms=times_ms(hm.times)[offset::stride],
                close=np.asarray(hm.close, dtype=np.float64)[offset::stride], note=note)


def image_geometry(view: View, edges: np.ndarray) -> dict[str, list]:
    """Where the image of a view sits in data coordinates.

    Parameters
    ----------
    view : View
        The fitted view.
    edges : numpy.ndarray
        (B+1,) price-bin edges (USD).

    Returns
    -------
    dict
        Columns ``x`` (ms, UTC), ``y`` (USD), ``dw`` (ms), ``dh`` (USD) of the image glyph, one row each.
    """
    step_ms = view.step_hours * 3_600_000.0
    x0 = float(view.times_ms[0])
    return {"x": [x0], "y": [float(edges[0])], "dw": [step_ms * len(view.times_ms)], "dh": [float(edges[-1] - edges[0])]}


def is_log_grid(edges: np.ndarray) -> bool:
    """Whether price-bin edges are log-spaced (a 'bp' grid: the price axis is then log).

    Parameters
    ----------
    edges : numpy.ndarray
        (B+1,) price-bin edges (USD).

    Returns
    -------
    bool
        True when the edges are positive with a constant ratio and not a constant difference.
    """
    e = np.asarray(edges, dtype=np.float64)
    if len(e) < 3 or np.any(e <= 0):
        return False
    d = np.diff(e)
    if np.allclose(d, d[0], rtol=1e-6):
        return False
    r = e[1:] / e[:-1]
    return bool(np.allclose(r, r[0], rtol=1e-6))


# ---------------------------------------------------------------------- the map the JupyterLab explorer shows


def _build_key(params):
    """``params`` with every field that a kernel-only re-run can change reset to its default: two
    requests with the same key share the fine pass (``Heatmap.with_params`` covers the rest)."""
    import dataclasses

    from liqlab.engine.params import HeatmapParams, param_info

    d = HeatmapParams()
    kernel = {k: getattr(d, k) for k, i in param_info().items() if i["rerun"] != "build"}
    return dataclasses.replace(params, **kernel)


def _kernel_changes(params) -> dict[str, Any]:
    from liqlab.engine.params import param_info

    return {k: getattr(params, k) for k, i in param_info().items() if i["rerun"] != "build"}


#: Fields that decide the (time × price) grid size, hence the time step fit_view fits the map to.
_GRID_FIELDS: tuple[str, ...] = ("time_step", "start", "end", "bin_width", "bin_unit", "price_range", "clearing")


def _build(data, params, max_cells: int, hint: dict | None = None):
    """The fitted all-venue heatmap for ``params``: build_heatmap, then fit_view's cell cap (which
    rebuilds at a coarser time step when the map is too big). ``hint`` remembers that step per grid, so
    the next build with the same grid goes straight to it (same numbers, one build instead of two)."""
    import dataclasses

    from liqlab.engine.heatmap import build_heatmap

    p = dataclasses.replace(params, venues=None)
    grid = (tuple(getattr(p, f) for f in _GRID_FIELDS), max_cells)
    step = hint.get(grid) if hint is not None else None
    hm = build_heatmap(data, p if step is None else p.replace(time_step=step), progress=False)
    fitted = fit_view(hm, data, max_cells).hm
    if hint is not None:
        hint.clear()
        hint[grid] = fitted.params.time_step
    return fitted


def view_heatmap(data, params, max_cells: int | None = None, *, _cache: dict | None = None):
    """The heatmap the explorer shows for some engine parameters.

    ``build_heatmap`` over ALL venues of ``data``, fitted under the browser cell cap by :func:`fit_view`
    (which may rebuild at a coarser ``time_step``), then the venue selection applied with
    ``Heatmap.with_params`` (a kernel-only re-run, so the price grid and the page's venue toggles stay
    those of all venues).

    Parameters
    ----------
    data : Collection
        The data.
    params : HeatmapParams
        The requested engine parameters.
    max_cells : int, optional
        Cell cap; default :data:`MAX_CELLS`.
    _cache : dict, optional
        Lets repeated calls reuse the fine pass when only kernel-level parameters (half-life, preset,
        max age, venues, agreement) changed.

    Returns
    -------
    Heatmap
        USD notional, T × B (time × price).
    """
    cap = MAX_CELLS if max_cells is None else int(max_cells)
    key = (_build_key(params), cap)
    hit = None if _cache is None else _cache.get("fitted")
    fitted = hit[1] if hit is not None and hit[0] == key else None
    if fitted is None:
        hint = _cache.setdefault("grid_step", {}) if _cache is not None else None
        fitted = _build(data, params, cap, hint)
        if _cache is not None:
            _cache.pop("fitted", None)
            _cache["fitted"] = (key, fitted)
    changes = {k: v for k, v in _kernel_changes(params).items() if getattr(fitted.params, k) != v}
    return fitted.with_params(**changes) if changes else fitted
