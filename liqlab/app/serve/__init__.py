"""``liqlab serve``: the live map, a Bokeh server application on a dataset a recorder is writing.

:mod:`~liqlab.app.serve.feed` loads the dataset, builds the map once and appends to it
(``Heatmap.extend``), and says how old the data is, where the recording has gaps, which clusters are near
the price and when to look again; :mod:`~liqlab.app.serve.page` is one browser session's document (the
explorer of :mod:`liqlab.viz.explorer`, a status line, alerts); :mod:`~liqlab.app.serve.server` starts the
Bokeh server. See docs/LIVE.md.
"""
