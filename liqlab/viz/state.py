"""What an explorer page shows, without Bokeh: :func:`explorer_state` computes it once from a heatmap.

:func:`liqlab.viz.explorer.explorer` builds the page's models from an :class:`ExplorerState` and
:func:`liqlab.viz.explorer.update_explorer` copies one into a live page (one source of truth for both).
The state is cheap and safe to build off the document's thread. Maps are (price bin × snapshot) float32
USD; times ms since the epoch (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqlab.viz.colour import (
    LAYERS, LOG_RANGE, MAPPINGS, N_COLOURS, colouring, default_low_cut, default_scale, palettes, usd,
)
from liqlab.viz.overlays import liquidation_events, price_data
from liqlab.viz.payload import active_venues, replay_payload, venue_names
from liqlab.viz.view import MAX_CELLS, View, fit_view, image_geometry

__all__ = ["BOKEH_SOURCES", "ExplorerState", "explorer_state", "page_colours", "title_html"]

#: The explorer's named Bokeh sources in the order ``update_explorer`` replaces them (``replay`` last: its
#: change makes the page drop its JS state).
BOKEH_SOURCES: tuple[str, ...] = ("grid", "profile", "clusters", "liqmap", "liqmap_bands", "price", "price_line",
                                  "liquidations", "heatmap", "replay")
#: The band (% of price) of the profile's directional summary ("pull"): one of the liquidation map's bands.
PULL_PCT: float = 5.0


def lev_name(lv: float) -> str:
    """Name of the page's weight slider of a leverage layer.

    Parameters
    ----------
    lv : float
        The leverage (x).

    Returns
    -------
    str
        ``lev_<L>`` ('lev_10', 'lev_12.5').
    """
    return f"lev_{lv:g}"


def _meta(hm) -> dict:
    return dict(getattr(hm, "meta", None) or {})


def _fmt_ms(ms: float) -> str:
    import pandas as pd

    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def _param_text(hm, view: View) -> str:
    from liqlab.engine.coarsen import step_alias

    p = hm.params
    bw = p.bin_width if p.bin_width is not None else _meta(hm).get("bin_width")
    bins = f"{float(bw):.4g} {p.bin_unit}" if bw is not None else p.bin_unit
    return (f"bins {bins} · step {step_alias(view.step_hours)} · "
            f"OI decrease {p.oi_decrease} · side split {p.side_split} · entry {p.entry_price}")


def title_html(hm, view: View) -> str:
    """The page's initial title (the JS twin ``titleText`` rewrites it when controls move).

    Parameters
    ----------
    hm : Heatmap
        The heatmap shown (``view.hm``).
    view : View
        Its fitted view.

    Returns
    -------
    str
        HTML: SYNTHETIC label when the data is synthetic, symbol, active venues, half-life (hours),
        leverage weights and the engine parameters.
    """
    meta = _meta(hm)
    venues = active_venues(hm)
    weights = np.asarray(hm.weights, dtype=np.float64)
    syn = "<b style='color:#d9534f'>SYNTHETIC</b> · " if meta.get("synthetic") else ""
    hl = float(hm.params.half_life_hours)
    hl_txt = f"{hl:g} h" if math.isfinite(hl) else "no decay"
    lev = np.asarray(hm.leverages, dtype=np.float64)
    parts = [f"{lev[k]:g}x {round(100 * weights[k])}%" for k in range(len(lev)) if weights[k] > 0.005]
    return (f"<div style='font-size:14px'>{syn}<b>{meta.get('symbol', '')}</b> liquidation heatmap · "
            f"{' + '.join(venues) if venues else 'no venue'}<br><span style='font-size:12px;color:#555'>half-life {hl_txt}"
            f" · leverage {', '.join(parts)} · {_param_text(hm, view)}</span></div>")


@dataclass(frozen=True)
class ExplorerState:
    """Everything of an explorer page that follows its heatmap: ``explorer`` builds its models from
    it and ``update_explorer`` copies it into a live page (one source of truth for both).

    ``sources``: ColumnDataSource data by model name (every name of :data:`BOKEH_SOURCES` except ``price``
    and ``liquidations`` when ``data`` gives no candles / no realized liquidations); ``heatmap`` holds
    the (price bin × snapshot) float32 USD maps and their RGBA images. ``controls``: model properties
    by model name, in the order they are set — ``half_life`` (hours), ``time`` (snapshot index) and
    ``lev_<L>`` (start, end, value), ``leverage_preset`` (value), ``venue_<name>`` (active),
    ``time_marker`` / ``close_marker`` (location: ms / USD). ``texts``: HTML or text of ``title``,
    ``note``, ``profile_title``, ``liqmap_text`` (notional within the bands) and ``pull``. ``mapping``,
    ``layers``, ``vmax`` and ``vmin`` (USD: top of the scale, low cut): the colour choices the images and
    the colour-bar ticks were made with. ``view``: the fitted view (``view.hm`` is shown).
    Read-only: the models built from it share its arrays.
    """

    view: View
    sources: dict[str, dict[str, Any]]
    controls: dict[str, dict[str, Any]]
    texts: dict[str, str]
    mapping: str
    layers: str
    vmax: float
    vmin: float

    @property
    def colours(self) -> dict[str, Any]:
        """The colour choices of ``sources['heatmap']`` as keywords: mapping, layers, vmax, vmin (USD)."""
        return {"mapping": self.mapping, "layers": self.layers, "vmax": self.vmax, "vmin": self.vmin}


def page_colours(models: Mapping[str, Any]) -> dict[str, Any]:
    """The colour choices an explorer page shows now.

    Parameters
    ----------
    models : mapping of str to Bokeh model
        The page's named models (name → model).

    Returns
    -------
    dict
        :func:`explorer_state` keywords: ``mapping``, ``layers``, ``vmax`` and ``vmin`` (USD; the
        ``colour_max`` and ``colour_min`` sliders are log10 USD).
    """
    return {"mapping": models["colour_mapping"].value, "layers": LAYERS[models["layers"].active],
            "vmax": 10.0 ** float(models["colour_max"].value), "vmin": 10.0 ** float(models["colour_min"].value)}


def _check_options(hm, mapping: str, layers: str) -> None:
    from liqlab.errors import ParameterError

    if mapping not in MAPPINGS:
        raise ParameterError(f"mapping: must be one of {list(MAPPINGS)}, got {mapping!r}")
    if layers not in LAYERS:
        raise ParameterError(f"layers: must be one of {list(LAYERS)}, got {layers!r}")
    if "relative_window" in _meta(hm):
        raise ParameterError("hm: the explorer re-runs USD heatmaps; build it from the USD heatmap, not hm.relative()")


def _grid_source(view: View, tick_pos: np.ndarray, tick_val: np.ndarray) -> dict[str, list]:
    """The ``grid`` source: the map's shape, axes, engine constants, palettes, ticks and presets."""
    from liqlab.engine.kernel import max_age_steps
    from liqlab.engine.liqmap import BANDS_PCT
    from liqlab.engine.params import LEVERAGE_PRESETS, preset_weights

    hm, params, meta = view.hm, view.hm.params, _meta(view.hm)
    leverages = np.asarray(hm.leverages, dtype=np.float64)
    pal = palettes()
    return {
        "n_steps": [int(np.asarray(hm.long).shape[0])], "n_bins": [view.long.shape[0]], "n_lev": [len(leverages)],
        "stride": [view.stride], "step_hours": [float(params.step_hours)], "times": [view.times_ms],
        "prices": [np.asarray(hm.prices, dtype=np.float64)], "edges": [np.asarray(hm.edges, dtype=np.float64)],
        "close": [view.close], "leverages": [leverages], "half_life_exponent": [float(params.half_life_exponent)],
        "oi_decrease": [str(params.oi_decrease)],
        "max_age_steps": [max_age_steps(params.max_age_hours, params.step_hours)], "n_colours": [N_COLOURS],
        "log_range": [LOG_RANGE], "palette_long": [pal["long_u32"]], "palette_short": [pal["short_u32"]],
        "agreement_threshold": [float(getattr(params, "agreement_threshold", 0.25))],
        "agreement_window_bins": [int(getattr(params, "agreement_window_bins", 1))],
        "symbol": [str(meta.get("symbol", ""))], "synthetic": [bool(meta.get("synthetic", False))],
        "param_text": [_param_text(hm, view)], "tick_pos": [tick_pos], "tick_val": [tick_val],
        "preset_names": [list(LEVERAGE_PRESETS)], "bands_pct": [np.asarray(BANDS_PCT, dtype=np.float64)],
        "pull_pct": [PULL_PCT],
        "preset_weights": [np.concatenate([preset_weights(n, leverages) for n in LEVERAGE_PRESETS])],
    }


def agree_text(names: list[str], threshold: float) -> str:
    """The clusters table's venue cell (twin of ``agreeText`` in js/explorer.js).

    Parameters
    ----------
    names : list of str
        The venues whose own map has a cluster at the cell.
    threshold : float
        The agreement threshold (share of a venue's own snapshot maximum, 0..1).

    Returns
    -------
    str
        '2 (bybit, okx)', or '0 (no venue ≥ 25% of its own peak)' (a big aggregate cell may sit where no
        single venue has a cluster).
    """
    if names:
        return f"{len(names)} ({', '.join(names)})"
    return f"0 (no venue \u2265 {100 * threshold:g}% of its own peak)"


def _clusters_source(hm, j: int) -> dict[str, np.ndarray]:
    """The ``clusters`` source: the top clusters at step j of ``hm`` (:func:`liqlab.engine.levels.levels`)."""
    from liqlab.engine.levels import levels

    cl = levels(hm, j, n=10)
    thr = float(hm.params.agreement_threshold)
    named = [agree_text([x for x in str(v).split(", ") if x] if n else [], thr)
             for n, v in zip(cl["venues"], cl["venue_names"])]
    return {
        "price": cl["price"].to_numpy(np.float64), "side": cl["side"].to_numpy(dtype=object),
        "notional": cl["notional_usd"].to_numpy(np.float64), "distance_pct": cl["distance_pct"].to_numpy(np.float64),
        "age_hours": cl["age_hours"].to_numpy(np.float64), "venues": np.array(named, dtype=object),
    }


def _liqmap_sources(hm, j: int) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """The liquidation map at step j: the ``liqmap`` source (per bin: ``price``, ``width`` USD, ``k<i>`` =
    long + short USD of leverage layer i, ``cum_long``, ``cum_short``), the ``liqmap_bands`` source
    (``pct``, ``below``, ``above`` USD) and the texts of the bands and of the pull."""
    from liqlab.engine.liqmap import liquidation_map

    m = liquidation_map(hm, j)
    edges = np.asarray(hm.edges, dtype=np.float64)
    src: dict[str, Any] = {"price": m.prices, "width": np.diff(edges) * 0.9}
    for k in range(len(m.leverages)):
        src[f"k{k}"] = m.long[k] + m.short[k]
    src["cum_long"], src["cum_short"] = m.cum_long, m.cum_short
    bands = {"pct": np.asarray(m.bands_pct, dtype=np.float64), "below": m.below, "above": m.above}
    return src, bands, bands_text(m.bands_pct, m.below, m.above), pull_text(m.bands_pct, m.below, m.above)


def bands_text(pcts, below, above) -> str:
    """The notional within each band, drawn on the liquidation map (twin of ``bandsText`` in js/explorer.js).

    Parameters
    ----------
    pcts : sequence of float
        Band half-widths (% of price).
    below, above : sequence of float
        USD notional within each band below and above the price.

    Returns
    -------
    str
        One line per band: '±1%: $47M below · $30M above'.
    """
    return "\n".join(f"\u00b1{x:g}%: {usd(lo)} below \u00b7 {usd(hi)} above" for x, lo, hi in zip(pcts, below, above))


def pull_text(pcts, below, above) -> str:
    """The profile's directional summary at :data:`PULL_PCT` (twin of ``pullText`` in js/explorer.js).

    Parameters
    ----------
    pcts, below, above
        As :func:`bands_text` (one band must be :data:`PULL_PCT`).

    Returns
    -------
    str
        Two lines: the notional above and below the price within ±5 % and their ratio (the page prints
        the caveat beside it: the magnet test, not this number, says whether such an imbalance moves the price).
    """
    i = [float(x) for x in pcts].index(PULL_PCT)
    lo, hi = float(below[i]), float(above[i])
    ratio = f"{hi / lo:.2f}" if lo > 0 else "-"
    return f"pull \u00b1{PULL_PCT:g}%: {usd(hi)} above\nvs {usd(lo)} below (ratio {ratio})"


#: The caveat printed under the pull.
PULL_CAVEAT: str = ("<i style='font-size:11px;color:#555'>pull = notional within \u00b15% above vs below the price: "
                    "bookkeeping only. Whether such an imbalance moves the price is what the magnet test "
                    "(<code>liqlab magnet</code>) measures.</i>")


def _sources(view: View, data, images: dict, tick_pos: np.ndarray, tick_val: np.ndarray,
             ti: int, liqmap: tuple) -> dict[str, dict[str, Any]]:
    """Every source's data, in :data:`BOKEH_SOURCES` order (``price``/``liquidations`` only when present)."""
    hm = view.hm
    edges = np.asarray(hm.edges, dtype=np.float64)
    sources: dict[str, dict[str, Any]] = {"grid": _grid_source(view, tick_pos, tick_val)}
    sources["profile"] = {"price": np.asarray(hm.prices, dtype=np.float64), "height": np.diff(edges) * 0.9,
                          "long": view.long[:, ti].astype(np.float64), "short": view.short[:, ti].astype(np.float64)}
    j = view.offset + ti * view.stride                        # the shown snapshot's step
    sources["clusters"] = _clusters_source(hm, j)
    sources["liqmap"], sources["liqmap_bands"] = liqmap[0], liqmap[1]
    line, bars = price_data(view, data, (active_venues(hm) or [None])[0])
    if bars is not None:
        sources["price"] = bars
    sources["price_line"] = line
    ev = liquidation_events(data, view.times_ms, view.step_hours, active_venues(hm))
    if ev is not None:
        sources["liquidations"] = ev
    sources["heatmap"] = {**images, "long": [view.long], "short": [view.short], **image_geometry(view, edges),
                          "h_time": [0], "h_price": [0], "h_age": [0], "h_venues": [0]}
    sources["replay"] = replay_payload(hm)
    return sources


def _controls(view: View, ti: int) -> dict[str, dict[str, Any]]:
    """The page's control properties for ``view.hm`` with snapshot ``ti`` shown."""
    hm, params = view.hm, view.hm.params
    To = view.long.shape[1]
    hl = float(params.half_life_hours)
    hl = hl if math.isfinite(hl) else 0.0   # the slider's 0 = no decay
    active = active_venues(hm)
    leverages = np.asarray(hm.leverages, dtype=np.float64)
    weights = np.asarray(hm.weights, dtype=np.float64)
    return {
        "half_life": {"start": 0.0, "end": max(720.0, hl), "value": hl},
        "time": {"start": 0, "end": max(To - 1, 1), "value": ti},
        "leverage_preset": {"value": params.leverage_preset if params.leverage_weights is None else "custom"},
        **{f"venue_{v}": {"active": v in active} for v in venue_names(hm)},
        **{lev_name(lv): {"start": 0.0, "end": 1.0, "value": float(w)} for lv, w in zip(leverages, weights)},
        "time_marker": {"location": float(view.times_ms[ti])},
        "close_marker": {"location": float(view.close[ti])},
        "liqmap_price": {"location": float(view.close[ti])},
        "liqmap_range": {"start": float(view.close[ti]) * 0.88, "end": float(view.close[ti]) * 1.12},
    }


def explorer_state(hm, data=None, *, mapping: str = MAPPINGS[0], layers: str = LAYERS[0], vmax: float | None = None,
                   max_cells: int = MAX_CELLS, time_index: int | None = None, note: str = "",
                   vmin: float | None = None) -> ExplorerState:
    """What the explorer of ``hm`` shows (no Bokeh models: cheap, and safe to build off the document's thread).

    Parameters
    ----------
    hm : Heatmap
        A USD heatmap, T × B (time × price).
    data : Dataset, Collection, path, optional
        The data ``hm`` was built from: candles, realized liquidations, and a rebuild at a coarser time
        step when the map is over the cell cap.
    mapping : {'log', 'linear', 'percentile'}
        Colour mapping.
    layers : {'blend', 'long', 'short', 'side by side'}
        What the image shows.
    vmax : float, optional
        Top of the colour scale (USD); default :func:`~liqlab.viz.colour.default_scale` of the fitted maps.
    max_cells : int
        Cap on shown snapshots × price bins (:func:`~liqlab.viz.view.fit_view`).
    time_index : int, optional
        The snapshot of the profile and clusters table (index of the shown snapshots); default the latest.
    note : str
        Appended to the cell-cap note under the plot.
    vmin : float, optional
        The low cut (USD): cells below it are transparent; default
        :func:`~liqlab.viz.colour.default_low_cut` of ``vmax``.

    Returns
    -------
    ExplorerState
        Sources, control properties, texts and colour choices of the page.

    Raises
    ------
    ParameterError
        An unknown mapping or layers, a relative heatmap, or a bad ``max_cells``.
    """
    _check_options(hm, mapping, layers)
    view = fit_view(hm, data, max_cells)
    To = view.long.shape[1]
    vmax = float(vmax) if vmax is not None else default_scale(view.long, view.short)
    vmin = float(vmin) if vmin is not None else default_low_cut(vmax)
    images, tick_pos, tick_val = colouring(view.long, view.short, mapping, layers, vmax, vmin)
    ti = To - 1 if time_index is None else int(np.clip(time_index, 0, To - 1))
    notes = " · ".join(x for x in (view.note, note) if x)
    texts = {"title": title_html(view.hm, view), "note": f"<i>{notes}</i>" if notes else "",
             "profile_title": f"profile {_fmt_ms(view.times_ms[ti])}"}
    lm = _liqmap_sources(view.hm, view.offset + ti * view.stride)
    texts["liqmap_text"], texts["pull"] = lm[2], lm[3]
    return ExplorerState(view=view, sources=_sources(view, data, images, tick_pos, tick_val, ti, lm),
                         controls=_controls(view, ti), texts=texts, mapping=mapping, layers=layers, vmax=vmax,
                         vmin=vmin)
