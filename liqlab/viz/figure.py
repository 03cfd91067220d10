"""The heatmap figure: a time × price image of the two maps on one fixed USD scale, with colour bars, price
candles (or a close line) and realized liquidations; :func:`heatmap_figure` is the static view (no
controls), and the explorer builds its panels from the same pieces. Functions return Bokeh models and
never call ``show()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liqlab.viz.colour import BACKGROUND, MAPPINGS, colouring, default_scale, palettes
from liqlab.viz.overlays import liquidation_events, price_data
from liqlab.viz.payload import active_venues
from liqlab.viz.state import title_html
from liqlab.viz.view import MAX_CELLS, View, fit_view, image_geometry, is_log_grid

__all__ = ["CANDLE_LIMIT", "heatmap_figure", "main_figure", "colour_bars", "price_glyphs", "events_glyph",
           "bin_label", "time_label"]

#: Above this many visible snapshots the price is drawn as a line instead of candles.
CANDLE_LIMIT: int = 300

# The colour bars' tick labels: the nearest tick's USD value as a short label (twin of colour.usd).
_TICK_LABEL_JS = """
const tk = heatmap.__liqlab_ticks || {pos: grid.data.tick_pos[0], val: grid.data.tick_val[0]};
let best = 0, bd = Infinity;
for (let i = 0; i < tk.pos.length; i++) { const dd = Math.abs(tk.pos[i] - tick); if (dd < bd) { bd = dd; best = i; } }
const v = tk.val[best], a = Math.abs(v);
if (!isFinite(v)) return "-";
if (a >= 1e9) return "$" + (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "B";
if (a >= 1e6) return "$" + (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
if (a >= 1e3) return "$" + (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
return "$" + v.toFixed(0);
"""


def bin_label(hm) -> str:
    """What one cell's colour measures, with the grid's actual bin width.

    Parameters
    ----------
    hm : Heatmap
        The map; its ``edges`` (USD) give the bin width, ``meta['units']`` the unit of a relative map.

    Returns
    -------
    str
        'USD per 10 bp bin' (log grid: width from the edge ratio), 'USD per 25 USD bin' (linear grid),
        or '<meta units> per … bin' for a relative map.
    """
    edges = np.asarray(hm.edges, dtype=np.float64)
    unit = str((getattr(hm, "meta", None) or {}).get("units") or "USD")
    if len(edges) < 2:
        return f"{unit} per bin"
    if is_log_grid(edges):
        width = f"{(edges[1] / edges[0] - 1.0) * 1e4:.3g} bp"
    else:
        width = f"{edges[1] - edges[0]:.4g} USD"
    return f"{unit} per {width} bin"


def time_label(times_ms: np.ndarray) -> str:
    """The time axis label: time zone and year(s).

    Parameters
    ----------
    times_ms : numpy.ndarray
        (To,) float64 snapshot times (ms since the epoch, UTC).

    Returns
    -------
    str
        'time (UTC), 2025' or 'time (UTC), 2024–2025'.
    """
    import pandas as pd

    if len(times_ms) == 0:
        return "time (UTC)"
    y0, y1 = (pd.Timestamp(int(times_ms[i]), unit="ms", tz="UTC").year for i in (0, -1))
    return f"time (UTC), {y0}" if y0 == y1 else f"time (UTC), {y0}–{y1}"


def main_figure(view: View, width: int, height: int, title: str | None = None, x_range=None, y_range=None):
    """An empty heatmap figure for a view: datetime x axis, price y axis (log for a 'bp' grid), dark background.

    Parameters
    ----------
    view : View
        The fitted view (its heatmap gives the price edges, USD).
    width, height : int
        Size (px).
    title : str, optional
        Figure title.
    x_range, y_range : Bokeh range, optional
        Ranges to share (default: the view's time span in ms UTC, the grid's price span in USD).

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import DatetimeTickFormatter, NumeralTickFormatter
    from bokeh.plotting import figure

    edges = np.asarray(view.hm.edges, dtype=np.float64)
    kw: dict[str, Any] = dict(
        width=width, height=height, x_axis_type="datetime",
        y_axis_type="log" if is_log_grid(edges) else "linear",
        tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
        background_fill_color=BACKGROUND, border_fill_color="#ffffff", output_backend="canvas",
    )
    if title:
        kw["title"] = title
    if x_range is not None:
        kw["x_range"] = x_range
    else:
        step_ms = view.step_hours * 3_600_000.0
        kw["x_range"] = (float(view.times_ms[0]), float(view.times_ms[-1] + step_ms))
    kw["y_range"] = y_range if y_range is not None else (float(edges[0]), float(edges[-1]))
    fig = figure(**kw)
    fig.grid.grid_line_alpha = 0.12
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.xaxis.formatter = DatetimeTickFormatter(days="%b %d", hours="%b %d %H:%M", minutes="%H:%M", months="%b %Y",
                                                years="%Y")
    fig.xaxis.axis_label = time_label(view.times_ms)
    fig.yaxis.axis_label = "price (USD)"
    return fig


def colour_bars(fig, ticks: list[float], pal: dict, grid_src, heatmap_src, label: str = "USD") -> list:
    """Two horizontal colour bars (long blue, short red) below ``fig``, titled with what a cell measures.

    Parameters
    ----------
    fig : bokeh.plotting.figure
        The heatmap figure.
    ticks : list of float
        Tick positions in [0, 1]; the page labels them in USD from the ``grid`` source's ``tick_val``.
    pal : dict
        :func:`~liqlab.viz.colour.palettes`.
    grid_src, heatmap_src : ColumnDataSource
        The page's ``grid`` and ``heatmap`` sources.
    label : str
        The unit per cell (:func:`bin_label`, e.g. 'USD per 10 bp bin').

    Returns
    -------
    list of ColorBar
        ``colourbar_long``, ``colourbar_short``.
    """
    from bokeh.models import ColorBar, CustomJSTickFormatter, FixedTicker, LinearColorMapper

    bars = []
    for side in ("long", "short"):
        mapper = LinearColorMapper(palette=pal[f"{side}_hex"], low=0.0, high=1.0)
        cb = ColorBar(color_mapper=mapper, ticker=FixedTicker(ticks=list(ticks)), height=8, orientation="horizontal",
                      formatter=CustomJSTickFormatter(args=dict(heatmap=heatmap_src, grid=grid_src), code=_TICK_LABEL_JS),
                      title=f"{side} liquidations, {label}", name=f"colourbar_{side}", label_standoff=2,
                      major_label_text_font_size="9px", title_text_font_size="10px", padding=3)
        fig.add_layout(cb, "below")
        bars.append(cb)
    return bars


def price_glyphs(fig, line_src, bars_src=None) -> tuple[list, Any]:
    """Candles from ``bars_src`` (if any) and a close line from ``line_src`` (shown for zoomed-out views).

    Parameters
    ----------
    fig : bokeh.plotting.figure
        The heatmap figure.
    line_src : ColumnDataSource
        The ``price_line`` source (t: ms, close: USD).
    bars_src : ColumnDataSource, optional
        The ``price`` candles source.

    Returns
    -------
    candles : list
        The candle renderers (empty without ``bars_src``).
    line : GlyphRenderer
        The close line.
    """
    halo = fig.line("t", "close", source=line_src, color="#000000", line_width=4.0, alpha=1.0)   # dark outline:
    line = fig.line("t", "close", source=line_src, color="#ffffff", line_width=1.6, alpha=1.0,  # visible on bright
                    legend_label="price")                                                       # cells too
    line.js_link("visible", halo, "visible")
    candles: list = []
    if bars_src is not None:
        candles.append(fig.segment("t", "high", "t", "low", source=bars_src, color="#000000", line_width=3))
        candles.append(fig.segment("t", "high", "t", "low", source=bars_src, color="colour", line_width=1))
        candles.append(fig.vbar("t", "width", "open", "close", source=bars_src, fill_color="colour", line_color="#000000"))
        many = len(bars_src.data["t"]) > CANDLE_LIMIT
        for r in candles:
            r.visible = not many
        line.visible = halo.visible = many
    fig.legend.location = "bottom_left"
    fig.legend.background_fill_alpha = 0.3
    fig.legend.label_text_color = "#dddddd"
    fig.legend.label_text_font_size = "9px"
    return candles, line


def events_glyph(fig, src):
    """Realized-liquidation markers with their hover.

    Parameters
    ----------
    fig : bokeh.plotting.figure
        The heatmap figure.
    src : ColumnDataSource or None
        The ``liquidations`` source (:func:`~liqlab.viz.overlays.liquidation_events`); None draws nothing.

    Returns
    -------
    GlyphRenderer or None
    """
    from bokeh.models import HoverTool

    if src is None:
        return None
    r = fig.scatter("t", "price", source=src, size="size", marker="diamond", fill_color="colour", line_color="#000000",
                    line_width=1.2, fill_alpha=0.9, line_alpha=1.0, legend_label="realized liquidations")
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("realized", "@side liquidations (@count events)"),
                                                     ("value", "@value{$0,0}"), ("mean price", "@price{0,0.00}"),
                                                     ("step centre", "@t{%F %H:%M}")],
                            formatters={"@t": "datetime"}))
    return r


def heatmap_figure(hm, data=None, *, mapping: str = "log", layers: str = "blend", width: int = 900,
                   height: int = 520, vmax: float | None = None, max_cells: int = MAX_CELLS):
    """The static heatmap view (no controls).

    Parameters
    ----------
    hm : Heatmap
        The map, T × B (time × price), USD.
    data : Dataset, Collection or path, optional
        Adds candles and realized liquidations; over the cell cap, the map is rebuilt at a coarser step.
    mapping : {'log', 'linear', 'percentile'}
        Colour mapping.
    layers : {'blend', 'long', 'short'}
        Both sides or one.
    width, height : int
        Figure size (px).
    vmax : float, optional
        Top of the colour scale (USD); default :func:`~liqlab.viz.colour.default_scale`.
    max_cells : int
        Cap on shown snapshots × price bins.

    Returns
    -------
    bokeh.layouts.column
        Title, the time × price image (long blue below, short red above, fixed USD scale) with price,
        realized liquidations, colour bars in USD and a hover (time, price, long and short USD), and the
        cell-cap note when there is one.
    """
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, Div, HoverTool

    from liqlab.errors import ParameterError

    if mapping not in MAPPINGS:
        raise ParameterError(f"mapping: must be one of {list(MAPPINGS)}, got {mapping!r}")
    if layers not in ("blend", "long", "short"):
        raise ParameterError(f"layers: must be one of ['blend', 'long', 'short'], got {layers!r}")
    view = fit_view(hm, data, max_cells)
    hm = view.hm
    vmax = float(vmax) if vmax is not None else default_scale(view.long, view.short)
    images, tick_pos, tick_val = colouring(view.long, view.short, mapping, layers, vmax)
    src = ColumnDataSource({"image": images["image"], "long": [view.long], "short": [view.short],
                            **image_geometry(view, np.asarray(hm.edges, dtype=np.float64))}, name="heatmap")
    grid = ColumnDataSource({"tick_pos": [tick_pos], "tick_val": [tick_val]}, name="grid")
    fig = main_figure(view, width, height)
    r = fig.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=src)
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("time", "$x{%F %H:%M}"), ("price", "$y{0,0.00}"),
                                                     ("long", "@long{$0,0}"), ("short", "@short{$0,0}")],
                            formatters={"$x": "datetime"}))
    colour_bars(fig, [float(x) for x in tick_pos], palettes(), grid, src, bin_label(hm))
    line, bars = price_data(view, data, (active_venues(hm) or [None])[0])
    price_glyphs(fig, ColumnDataSource(line, name="price_line"),
                 ColumnDataSource(bars, name="price") if bars is not None else None)
    ev = liquidation_events(data, view.times_ms, view.step_hours, active_venues(hm))
    events_glyph(fig, ColumnDataSource(ev, name="liquidations") if ev is not None else None)
    parts = [Div(text=title_html(hm, view), name="title"), fig]
    if view.note:
        parts.append(Div(text=f"<i>{view.note}</i>", name="note"))
    return column(*parts)
