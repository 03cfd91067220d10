"""Bokeh views of a heatmap: the static figure and the interactive explorer (CustomJS, no kernel).

This module is the public face of the heatmap views (``liqlab.plot``); the work is done in:

- :mod:`liqlab.viz.colour`: the fixed USD colour scale (linear, log, percentile) and palettes;
- :mod:`liqlab.viz.view`: fitting a map under the browser's cell cap (the engine coarsens the time step);
- :mod:`liqlab.viz.payload`: the engine's step inputs as the page's ``replay`` source;
- :mod:`liqlab.viz.overlays`: price candles and realized liquidations per shown step;
- :mod:`liqlab.viz.figure`: the figure pieces and the static :func:`heatmap_figure`;
- :mod:`liqlab.viz.state`: what the explorer shows, computed once (:func:`explorer_state`);
- :mod:`liqlab.viz.explorer`: the explorer's models and callbacks, :func:`update_explorer`;
- :mod:`liqlab.viz.export`: the explorer as one self-contained HTML file.

Functions build and return Bokeh models; they never call ``show()``. Long liquidations (below price)
are blue, short liquidations (above price) red, on one fixed USD colour scale. The explorer carries the
engine's step inputs into the page, and ``liqlab/viz/js/*.js`` re-runs the step recursion in the browser
when the ``half_life`` / ``lev_<L>`` sliders or a venue toggle move, giving the same numbers as
``Heatmap.with_params`` (docs/EXPLORER.md gives the contract and the named models). Arrays sent to the
browser are (price bin × snapshot) float32, at most ``MAX_CELLS`` cells.
"""

from __future__ import annotations

from liqlab.viz.colour import (
    LAYERS, LOG_RANGE, MAPPINGS, N_COLOURS, colour_levels, default_scale, palettes, quantile_thresholds, rgba_image, usd,
)
from liqlab.viz.explorer import explorer, js_source, update_explorer
from liqlab.viz.export import explorer_html, save_explorer
from liqlab.viz.figure import heatmap_figure
from liqlab.viz.overlays import liquidation_events, price_bars
from liqlab.viz.state import BOKEH_SOURCES, ExplorerState, explorer_state, page_colours
from liqlab.viz.view import MAX_CELLS, View, fit_view

__all__ = [
    "MAX_CELLS",
    "N_COLOURS",
    "LOG_RANGE",
    "MAPPINGS",
    "LAYERS",
    "heatmap_figure",
    "explorer",
    "explorer_state",
    "ExplorerState",
    "page_colours",
    "BOKEH_SOURCES",
    "save_explorer",
    "explorer_html",
    "update_explorer",
    "colour_levels",
    "quantile_thresholds",
    "rgba_image",
    "default_scale",
    "palettes",
    "usd",
    "js_source",
    "View",
    "fit_view",
    "price_bars",
    "liquidation_events",
]
