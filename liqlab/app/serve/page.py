"""One browser session of the live map: the explorer, a status line and the alerts, refreshed on a timer.

The explorer is :func:`liqlab.viz.explorer.explorer`; a refresh shows the feed's new map with
:func:`liqlab.viz.explorer.update_explorer` and then puts back what the reader set (half-life, leverage
mix, venues, and the snapshot unless it was the latest), so every control keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_document"]

#: Model properties the reader sets and a refresh keeps (model name prefix → property).
_KEPT = (("half_life", "value"), ("leverage_preset", "value"), ("lev_", "value"), ("venue_", "active"))


def make_document(doc, feed) -> None:
    """Fill a Bokeh document with the live map of ``feed`` and schedule its refreshes.

    Parameters
    ----------
    doc : bokeh.document.Document
        The session's document.
    feed : LiveFeed
        The shared map (:class:`liqlab.app.serve.feed.LiveFeed`).

    Returns
    -------
    None
    """
    from bokeh.layouts import column
    from bokeh.models import Div

    status = Div(text=feed.status_html(), name="live_status", width=1200)
    alerts = Div(text=feed.alerts_html(), name="live_alerts", width=1200)
    root = column(status, alerts, name="liqlab_live")
    page: dict[str, Any] = {"generation": None, "layout": None, "models": None}
    doc.title = "liqlab live map"
    doc.add_root(root)

    def tick() -> None:
        try:
            feed.refresh_if_due()
            if feed.hm is not None and page["generation"] != feed.generation:
                _show(root, page, feed)
            status.text = feed.status_html()
            alerts.text = feed.alerts_html()
        finally:   # whatever one refresh raised, the page keeps refreshing (the feed shows its error)
            doc.add_timeout_callback(tick, int(feed.interval() * 1000))

    tick()


def _show(root, page: dict, feed) -> None:
    """Show the feed's map: build the explorer the first time, update it in place afterwards."""
    from liqlab.viz.explorer import explorer, update_explorer
    from liqlab.viz.state import explorer_state

    page["generation"] = feed.generation
    if page["layout"] is None:
        page["layout"] = explorer(feed.hm, feed.data)
        page["models"] = {m.name: m for m in page["layout"].references() if getattr(m, "name", None)}
        root.children.append(page["layout"])
        return
    models = page["models"]
    kept = {n: (prop, getattr(m, prop)) for n, m in models.items()
            for pre, prop in _KEPT if n.startswith(pre) and hasattr(m, prop)}
    t = models.get("time")
    at_end = t is None or t.value >= t.end
    state = explorer_state(feed.hm, feed.data, time_index=None if at_end else int(t.value))
    update_explorer(page["layout"], state, models=models)
    for n, (prop, value) in kept.items():
        if getattr(models[n], prop) != value:
            setattr(models[n], prop, value)
