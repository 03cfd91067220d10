"""The interactive explorer page: Bokeh models built from an :class:`~liqlab.viz.state.ExplorerState`, wired
to the JavaScript library in ``js/`` (no kernel: every control is CustomJS).

The page re-runs the engine's step recursion (``js/recursion.js``) when the ``half_life`` / ``lev_<L>``
sliders or a venue toggle move and recolours (``js/colour.js``) when the colour controls move, giving the
numbers of ``Heatmap.with_params``; ``js/explorer.js`` holds the page logic (docs/EXPLORER.md names the
models). :func:`update_explorer` shows a new state in a live page (the JupyterLab explorer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from liqlab.viz.colour import LAYERS, MAPPINGS, colouring, palettes
from liqlab.viz.figure import CANDLE_LIMIT, bin_label, colour_bars, events_glyph, main_figure, price_glyphs
from liqlab.viz.state import BOKEH_SOURCES, PULL_CAVEAT, ExplorerState, explorer_state, lev_name, page_colours
from liqlab.viz.view import MAX_CELLS, is_log_grid

__all__ = ["explorer", "update_explorer", "js_source", "add_warm_up", "RANGES"]

#: The range buttons: label → span (hours; None = everything).
RANGES: dict[str, float | None] = {"24h": 24.0, "1w": 168.0, "1m": 720.0, "3m": 2160.0, "1y": 8760.0, "all": None}

# The one CustomJS every control shares: which event moved, then the library's handler.
_MAIN_JS = """
let ev = "params";
if (typeof cb_data !== "undefined" && cb_data && cb_data.event_name === "document_ready") ev = "warm";
else if (cb_obj === time) ev = "time";
else if (cb_obj === mapping || cb_obj === scale || cb_obj === low_cut || cb_obj === layers) ev = "colour";
else if (cb_obj === replay || cb_obj === grid) ev = "external";
else if (cb_obj === preset) ev = "preset";
liqlab_explorer.handle(ctx, ev);
"""
# A tap on the map picks the profile's snapshot.
_TAP_JS = """
const t = grid.data.times[0], n = t.length, step = n > 1 ? t[1] - t[0] : 1;
let i = Math.floor((cb_obj.x - t[0]) / step);
time.value = Math.max(0, Math.min(n - 1, i));
"""
# A range button: show the last `span` ms of the map (everything when span is 0 or longer than the map).
_RANGE_JS = """
const start = span > 0 ? Math.max(x0, x1 - span) : x0;
xr.setv({start: start, end: x1});
"""
# Candles when few snapshots are visible, the close line otherwise.
_CANDLES_JS = """
const t = grid.data.times[0], step = t.length > 1 ? t[1] - t[0] : 1;
const n = (cb_obj.end - cb_obj.start) / step, few = n <= limit;
for (const r of candles) if (r.visible !== few) r.visible = few;
if (line.visible === few) line.visible = !few;
"""


def js_source(*names: str) -> str:
    """The page's JavaScript library.

    Parameters
    ----------
    *names : str
        Files of ``liqlab/viz/js`` without '.js'; default all four: recursion, colour, liqmap, explorer.

    Returns
    -------
    str
        Their text, concatenated in that order.
    """
    from importlib.resources import files

    names = names or ("recursion", "colour", "liqmap", "explorer")
    return "\n".join(files("liqlab").joinpath("viz", "js", f"{n}.js").read_text(encoding="utf-8") for n in names)


def _ctx_code(args: dict, body: str) -> str:
    keys = ", ".join(f"{k}: {k}" for k in args)
    return js_source() + f"\nvar ctx = {{{keys}}};\n" + body


def _size(width: int | None, **fixed) -> dict[str, Any]:
    """Sizing keywords: a fixed ``width`` (px), or None to stretch with the page."""
    return dict(width=width, **fixed) if width else dict(sizing_mode="stretch_width", **fixed)


def _panels(st: ExplorerState, src: dict, width: int | None, height: int) -> dict[str, Any]:
    """The main figure (blend or long) and the side-by-side short panel, with colour bars, price and events."""
    from bokeh.models import Span

    view = st.view
    fig = main_figure(view, width or 800, height)
    fig.name = "main"
    rimg = fig.image_rgba("image", x="x", y="y", dw="dw", dh="dh", source=src["heatmap"])
    rimg.name = "heatmap_image"
    fig2 = main_figure(view, width or 800, height, title="short liquidations (side by side)",
                       x_range=fig.x_range, y_range=fig.y_range)
    fig2.name = "main_short"
    rimg2 = fig2.image_rgba("image2", x="x", y="y", dw="dw", dh="dh", source=src["heatmap"])
    rimg2.name = "heatmap_image_short"
    fig2.visible = st.layers == "side by side"
    if not width:
        fig.sizing_mode = fig2.sizing_mode = "stretch_width"
    cbars = colour_bars(fig, [float(x) for x in st.sources["grid"]["tick_pos"][0]], palettes(), src["grid"],
                        src["heatmap"], bin_label(view.hm))
    candles, line = price_glyphs(fig, src["price_line"], src.get("price"))
    price_glyphs(fig2, src["price_line"], src.get("price"))   # the same sources: one update serves both panels
    events_glyph(fig, src.get("liquidations"))
    # on the overlay layer: a snapshot move repaints the marker, not the map under it
    tspan = Span(dimension="height", line_color="#ffd54f", line_dash="dashed", line_width=1, name="time_marker",
                 level="overlay",
                 **st.controls["time_marker"])
    fig.add_layout(tspan)
    return dict(fig=fig, fig2=fig2, rimg=rimg, rimg2=rimg2, cbars=cbars, candles=candles, line=line, tspan=tspan)


def _control_models(st: ExplorerState) -> dict[str, Any]:
    """The page's controls (named models) with the state's values, the title and the range buttons."""
    from bokeh.models import Button, Div, RadioButtonGroup, Select, Slider, Toggle

    from liqlab.engine.params import LEVERAGE_PRESETS

    c = st.controls
    lg, lc = math.log10(st.vmax), math.log10(st.vmin)
    return dict(
        half_life=Slider(name="half_life", title="half-life, hours (0 = no decay)", step=1.0, width=220, **c["half_life"]),
        levs=[Slider(name=lev_name(lv), title=f"weight {lv:g}x", step=0.01, width=220, format="0.00",
                     **c[lev_name(lv)]) for lv in st.sources["grid"]["leverages"][0]],
        toggles=[Toggle(name=f"venue_{v}", label=v, button_type="primary", width=220, **c[f"venue_{v}"])
                 for v in st.sources["replay"]["venue"]],
        preset=Select(name="leverage_preset", title="leverage preset (sets the weights)",
                      options=[*LEVERAGE_PRESETS, "custom"], width=220, **c["leverage_preset"]),
        mapping=Select(name="colour_mapping", title="colour mapping (fixed USD scale)", value=st.mapping,
                       options=list(MAPPINGS), width=220),
        layers=RadioButtonGroup(name="layers", labels=list(LAYERS), active=LAYERS.index(st.layers), width=220,
                                orientation="vertical"),
        scale=Slider(name="colour_max", title="colour scale max, log10 USD", start=round(lg - 3, 2),
                     end=round(lg + 2, 2), step=0.05, value=lg, width=220),
        low_cut=Slider(name="colour_min", title="low cut, log10 USD", start=round(lc - 4, 2),
                       end=round(lg, 2), step=0.05, value=lc, width=220),
        time=Slider(name="time", title="profile snapshot (index, latest = right)", step=1, width=220, **c["time"]),
        title=Div(text=st.texts["title"], name="title", sizing_mode="stretch_width"),
        ranges=[Button(label=k, name=f"range_{k}", width=46, height=26) for k in RANGES],
    )


def _side_panel(st: ExplorerState, src: dict, fig, width: int | None, height: int) -> dict[str, Any]:
    """The profile of the shown snapshot (right of the map) with the pull, and the clusters table."""
    from bokeh.models import DataTable, Div, Label, NumberFormatter, NumeralTickFormatter, Span, TableColumn
    from bokeh.plotting import figure

    edges = np.asarray(st.view.hm.edges, dtype=np.float64)
    prof = figure(width=230, height=height, y_range=fig.y_range, y_axis_type="log" if is_log_grid(edges) else "linear",
                  title=st.texts["profile_title"], tools="pan,wheel_zoom,reset", x_axis_label="USD",
                  name="profile_figure")
    prof.title.name = "profile_title"
    for side, colour in (("long", "#2f8cf0"), ("short", "#f0452f")):
        prof.hbar(y="price", height="height", right=side, left=0, source=src["profile"], color=colour, legend_label=side)
    prof.xaxis.formatter = NumeralTickFormatter(format="$0a")
    prof.xaxis.ticker.desired_num_ticks = 3
    prof.yaxis.visible = False
    prof.legend.location = "top_right"
    prof.legend.label_text_font_size = "9px"
    pspan = Span(dimension="width", line_color="#333333", line_dash="dotted", name="close_marker",
                 **st.controls["close_marker"])
    prof.add_layout(pspan)
    table = DataTable(source=src["clusters"], name="clusters_table", index_position=None, **_size(width, height=260),
                      columns=[
        TableColumn(field="price", title="price", formatter=NumberFormatter(format="0,0.00"), width=90),
        TableColumn(field="side", title="side", width=50),
        TableColumn(field="notional", title="notional (USD)", formatter=NumberFormatter(format="$0,0"), width=120),
        TableColumn(field="distance_pct", title="distance %", formatter=NumberFormatter(format="+0.00"), width=70),
        TableColumn(field="age_hours", title="age (h)", formatter=NumberFormatter(format="0.0"), width=60),
        TableColumn(field="venues", title="venues with their own cluster here", width=260),
    ])
    pull = Label(x=4, y=4, x_units="screen", y_units="screen", text=st.texts["pull"], name="pull", text_font_size="10px",
                 background_fill_color="#ffffff", background_fill_alpha=0.85)
    prof.add_layout(pull)
    caveat = Div(text=PULL_CAVEAT, width=230)
    return dict(prof=prof, pspan=pspan, table=table, pull=pull, caveat=caveat)


def _liqmap_panel(st: ExplorerState, src: dict, width: int | None) -> dict[str, Any]:
    """The liquidation map of the shown snapshot: USD per price bin stacked by leverage, the cumulative
    long (from price down) and short (from price up) curves on the right axis, and the band totals."""
    from bokeh.models import DataRange1d, Label, LinearAxis, NumeralTickFormatter, Range1d, Span
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    lev = [float(x) for x in st.sources["grid"]["leverages"][0]]
    fig = figure(height=260, title="liquidation map at the profile's snapshot (bars by leverage; lines: cumulative)",
                 x_range=Range1d(name="liqmap_range", **st.controls["liqmap_range"]),
                 tools="xpan,xwheel_zoom,reset", name="liqmap_figure", x_axis_label="price (USD)",
                 **_size(width))
    stack = [f"k{k}" for k in range(len(lev))]
    colours = [Category10_10[k % 10] for k in range(len(lev))]
    bars = fig.vbar_stack(stack, x="price", width="width", source=src["liqmap"], color=colours,
                          legend_label=[f"{x:g}x" for x in lev])
    fig.y_range = DataRange1d(renderers=bars, start=0.0)
    fig.extra_y_ranges = {"cum": DataRange1d(only_visible=True)}
    cl = fig.line("price", "cum_long", source=src["liqmap"], y_range_name="cum", color="#1450b4", line_width=2)
    cs = fig.line("price", "cum_short", source=src["liqmap"], y_range_name="cum", color="#b4141e", line_width=2)
    fig.extra_y_ranges["cum"].renderers = [cl, cs]
    fig.add_layout(LinearAxis(y_range_name="cum", axis_label="cumulative USD",
                              formatter=NumeralTickFormatter(format="$0.0a")), "right")
    fig.yaxis[0].formatter = NumeralTickFormatter(format="$0a")
    fig.yaxis[0].axis_label = "USD per bin"
    span = Span(dimension="height", line_color="#333333", line_dash="dashed", name="liqmap_price",
                **st.controls["liqmap_price"])
    fig.add_layout(span)
    fig.legend.location = "top_left"
    fig.legend.orientation = "horizontal"
    fig.legend.label_text_font_size = "9px"
    fig.legend.background_fill_alpha = 0.6
    text = Label(x=60, y=8, x_units="screen", y_units="screen", text=st.texts["liqmap_text"], name="liqmap_text",
                 text_font_size="10px", background_fill_color="#ffffff", background_fill_alpha=0.85)
    fig.add_layout(text)
    return dict(fig=fig, span=span, text=text)


def _wire(src: dict, panels: dict, ctl: dict, side: dict, lm: dict) -> None:
    """Connect every control to the one shared CustomJS (the library is in the page once), the tap, the
    range buttons, the candle/line switch and the custom hovers."""
    from bokeh.models import CustomJS, CustomJSHover, HoverTool

    args = dict(heatmap=src["heatmap"], replay=src["replay"], grid=src["grid"], profile=src["profile"],
                clusters=src["clusters"], half_life=ctl["half_life"], levs=ctl["levs"], preset=ctl["preset"],
                venue_toggles=ctl["toggles"], mapping=ctl["mapping"], layers=ctl["layers"],
                scale=ctl["scale"], low_cut=ctl["low_cut"], time=ctl["time"], title=ctl["title"],
                cbars=panels["cbars"], fig2=panels["fig2"], tspan=panels["tspan"], pspan=side["pspan"],
                ptitle=side["prof"].title, table=side["table"], liqmap=src["liqmap"],
                liqmap_bands=src["liqmap_bands"], liqmap_text=lm["text"], pull=side["pull"],
                liqmap_range=lm["fig"].x_range, liqmap_span=lm["span"])
    main_cb = CustomJS(args=args, code=_ctx_code(args, _MAIN_JS), name="explorer_callback")
    for model, attr in ((ctl["half_life"], "value"), *((s, "value") for s in ctl["levs"]),
                        *((t, "active") for t in ctl["toggles"]), (ctl["mapping"], "value"), (ctl["preset"], "value"),
                        (ctl["layers"], "active"), (ctl["scale"], "value"), (ctl["low_cut"], "value"),
                        (ctl["time"], "value"), (src["replay"], "data")):
        model.js_on_change(attr, main_cb)
    fig = panels["fig"]
    fig.js_on_event("tap", CustomJS(args=dict(time=ctl["time"], grid=src["grid"]), code=_TAP_JS))
    x0, x1 = float(fig.x_range.start), float(fig.x_range.end)
    for b, hours in zip(ctl["ranges"], RANGES.values()):
        b.js_on_click(CustomJS(args=dict(xr=fig.x_range, x0=x0, x1=x1, span=(hours or 0.0) * 3_600_000.0),
                               code=_RANGE_JS))
    if panels["candles"]:
        fig.x_range.js_on_change("end", CustomJS(args=dict(candles=panels["candles"], line=panels["line"],
                                                           grid=src["grid"], limit=CANDLE_LIMIT), code=_CANDLES_JS))
    hover_args = dict(args)
    fmt = {k: CustomJSHover(args=hover_args, name=f"hover_{k}",
                            code=_ctx_code(hover_args, f"return liqlab_explorer.hover(ctx, '{k}', special_vars);"))
           for k in ("time", "price", "age", "venues")}
    # Bokeh allows one formatter per field: one per-image scalar column per custom hover row.
    tooltips = [("time", "@h_time{custom}"), ("price", "@h_price{custom}"), ("long", "@long{$0,0}"),
                ("short", "@short{$0,0}"), ("age (notional-weighted)", "@h_age{custom}"),
                ("venues with their own cluster", "@h_venues{custom}")]
    for f, r in ((fig, panels["rimg"]), (panels["fig2"], panels["rimg2"])):
        f.add_tools(HoverTool(renderers=[r], tooltips=tooltips, formatters={f"@h_{k}": h for k, h in fmt.items()}))


def explorer(hm, data=None, *, mapping: str = MAPPINGS[0], layers: str = LAYERS[0], width: int | None = None,
             height: int = 520, vmax: float | None = None, max_cells: int = MAX_CELLS, time_index: int | None = None,
             note: str = "", vmin: float | None = None):
    """The interactive explorer (works without a kernel: all controls are CustomJS).

    Named models: sliders ``half_life`` (hours, 0 = no decay) and ``lev_<L>`` (raw weights, normalised
    to sum 1), toggles ``venue_<name>``, select ``colour_mapping``, radio ``layers``, sliders
    ``colour_max`` and ``colour_min`` (top of the scale and low cut, log10 USD), slider ``time``
    (snapshot index), buttons ``range_<24h|1w|1m|3m|1y|all>``; sources ``heatmap`` (image, image2,
    long, short: (price bin × snapshot) float32 USD), ``replay``, ``grid``, ``profile``, ``clusters``,
    ``liqmap`` and ``liqmap_bands`` (the liquidation map of the shown snapshot), ``price`` (candles),
    ``liquidations``. Everything that follows the heatmap comes from
    :func:`~liqlab.viz.state.explorer_state`.

    Parameters
    ----------
    hm : Heatmap
        A USD heatmap, T × B (time × price).
    data : Dataset, Collection or path, optional
        Adds candles and realized liquidations and lets the cell cap rebuild at a coarser time step.
    mapping, layers, vmax, vmin, max_cells, time_index, note
        As :func:`~liqlab.viz.state.explorer_state` (colour mapping, what the image shows, top of the
        colour scale and low cut in USD, cell cap, shown snapshot, extra note).
    width : int, optional
        Width of the main figure (px); default None: the map, table and liquidation map stretch to the
        page between the controls and the profile.
    height : int
        Height of the main figure (px).

    Returns
    -------
    bokeh.layouts.column
        The page layout, named ``liqlab_explorer``.
    """
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource, Div

    st = explorer_state(hm, data, mapping=mapping, layers=layers, vmax=vmax, max_cells=max_cells,
                        time_index=time_index, note=note, vmin=vmin)
    src = {nm: ColumnDataSource(d, name=nm) for nm, d in st.sources.items()}
    panels = _panels(st, src, width, height)
    ctl = _control_models(st)
    side = _side_panel(st, src, panels["fig"], width, height)
    lm = _liqmap_panel(st, src, width)
    _wire(src, panels, ctl, side, lm)
    controls = column(
        Div(text="<b>controls</b> (recomputed in the browser)"), ctl["half_life"], ctl["preset"], *ctl["levs"],
        Div(text="<b>venues</b>"), *ctl["toggles"], ctl["mapping"], ctl["layers"], ctl["scale"], ctl["low_cut"],
        ctl["time"], width=240,
    )
    ranges = row(Div(text="range", width=40), *ctl["ranges"])
    centre = column(ranges, panels["fig"], panels["fig2"], side["table"], lm["fig"], **_size(width))
    body = row(controls, centre, column(side["prof"], side["caveat"], width=240), **_size(width and width + 500))
    note_div = Div(text=st.texts["note"], name="note", sizing_mode="stretch_width")
    return column(ctl["title"], body, note_div, name="liqlab_explorer", **_size(width and width + 500))


def add_warm_up(doc) -> None:
    """Build the explorer's browser state once the page has rendered (DocumentReady), so the first
    control move costs what later ones do; the page then sets ``window.__liqlab_warm``.

    Parameters
    ----------
    doc : bokeh.document.Document
        A document holding an :func:`explorer` layout (no-op without one).
    """
    cb = next((m for root in doc.roots for m in root.references() if getattr(m, "name", None) == "explorer_callback"),
              None)
    if cb is not None:
        doc.js_on_event("document_ready", cb)


def update_explorer(layout, state: ExplorerState, *, models: Mapping[str, Any] | None = None) -> None:
    """Show ``state`` in an explorer built by :func:`explorer`, in place (e.g. from ipywidgets through jupyter_bokeh).

    ``state`` is the :func:`~liqlab.viz.state.explorer_state` of a new heatmap of the same leverage set and
    venues (the grid and time range may change). Build it off the document's thread (e.g. in a worker):
    only the copying happens here. The page keeps its colour choices (mapping, layers, USD scale): a state
    made with other choices is recoloured with them, so the page then shows what
    ``explorer(hm, data, mapping=, layers=, vmax=)`` with the page's choices would. Sources are replaced
    first, ``replay`` last (its change makes the page drop its JS state), then the controls (half-life,
    time, preset, venues, leverage weights, the time and close markers), then the texts (title, note,
    profile title).

    Parameters
    ----------
    layout : bokeh.layouts.column
        The page.
    state : ExplorerState
        What to show.
    models : mapping of str to Bokeh model, optional
        The layout's named models (name → model) if the caller keeps them; default: one walk of ``layout``.

    Raises
    ------
    ParameterError
        The state's leverage set differs from the page's sliders.
    """
    from liqlab.errors import ParameterError

    # one walk of the model graph (select_one walks all of it on every call)
    olds = models if models is not None else {m.name: m for m in layout.references() if getattr(m, "name", None)}
    want = [float(x) for x in np.asarray(state.sources["grid"]["leverages"][0], dtype=np.float64)]
    have = [float(x) for x in np.asarray(olds["grid"].data["leverages"][0], dtype=np.float64)]
    if want != have:  # the lev_<L> sliders are wired to the layers in this order
        raise ParameterError(f"leverages: the explorer has sliders for {have}, the new heatmap needs {want}; "
                             "build a new explorer for a new leverage set")
    sources = state.sources
    page = page_colours(olds)
    if page != state.colours:  # the page's colour choices (fixed USD scale) applied to the new map
        hd = sources["heatmap"]
        images, pos, val = colouring(hd["long"][0], hd["short"][0], **page)
        sources = {**sources, "heatmap": {**hd, **images},
                   "grid": {**sources["grid"], "tick_pos": [pos], "tick_val": [val]}}
    for nm in BOKEH_SOURCES:
        old, new = olds.get(nm), sources.get(nm)
        if old is not None and new is not None:
            old.data = dict(new)
    ticks = [float(x) for x in sources["grid"]["tick_pos"][0]]
    for side in ("long", "short"):
        cb = olds.get(f"colourbar_{side}")
        if cb is not None:
            cb.ticker.ticks = ticks
    for nm, props in state.controls.items():
        old = olds.get(nm)
        if old is not None:
            old.update(**props)
    for nm, text in state.texts.items():
        old = olds.get(nm)
        if old is not None:
            old.text = text
