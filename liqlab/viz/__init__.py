"""Plots: Bokeh figures and the interactive explorer; functions take results and return Bokeh models.

The heatmap views, gathered in :mod:`~liqlab.viz.plot` (``liqlab.plot``): the USD colour scale
(:mod:`~liqlab.viz.colour`), the map fitted under the browser's cell cap (:mod:`~liqlab.viz.view`), the
engine's step inputs as page data (:mod:`~liqlab.viz.payload`), candles and realized liquidations
(:mod:`~liqlab.viz.overlays`), the figure (:mod:`~liqlab.viz.figure`), what the explorer shows
(:mod:`~liqlab.viz.state`), its models and callbacks (:mod:`~liqlab.viz.explorer`, with the JavaScript
twins of the engine's recursion and colour scale in ``js/``) and the HTML file (:mod:`~liqlab.viz.export`);
data, magnet and validation figures; the ipywidgets explorer that rebuilds a map with the Python engine
in JupyterLab (:mod:`~liqlab.viz.widgets`, its panel in :mod:`~liqlab.viz.controls`). Nothing here calls
``show()`` and nothing here computes what the engine or the statistics compute: coarsening a map and the
agreement rule are engine operations. It may import every layer below it; none of them imports it.
"""
