"""Plots: Bokeh figures and the interactive explorer; functions take results and return Bokeh models.

The heatmap explorer with its JavaScript twins of the engine's recursion and colour scale
(:mod:`~liqlab.viz.plot`, ``js/``), data, magnet and validation figures, and the ipywidgets controls that
rebuild a map with the Python engine in JupyterLab (:mod:`~liqlab.viz.widgets`). Nothing here calls
``show()``. It may import every layer below it; none of them imports it.
"""
