"""Start the live map's Bokeh server (``bokeh.server.server.Server``, one process, loopback by default)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["serve"]


def serve(path: str | Path, options, *, host: str = "127.0.0.1", port: int = 5006, show: bool = False) -> None:
    """Serve the live map of the dataset at ``path`` until interrupted.

    Parameters
    ----------
    path : str or pathlib.Path
        A dataset or collection folder (e.g. what ``liqlab record --out`` writes).
    options : FeedOptions
        Refresh intervals, volatility threshold, alerts, engine parameters.
    host : str
        Address to listen on (default loopback only).
    port : int
        TCP port.
    show : bool
        Open the page in a browser.

    Returns
    -------
    None
        Returns when the server's loop stops (SIGINT/SIGTERM).
    """
    import signal

    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    from liqlab.app.serve.feed import LiveFeed
    from liqlab.app.serve.page import make_document

    feed = LiveFeed(path, options)
    feed.refresh()
    app = Application(FunctionHandler(lambda doc: make_document(doc, feed)))
    origins = [f"{h}:{port}" for h in {host, "localhost", "127.0.0.1"}]
    server = Server({"/": app}, address=host, port=port, allow_websocket_origin=origins, num_procs=1)
    server.start()
    loop = server.io_loop
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: loop.add_callback_from_signal(loop.stop))
    print(f"liqlab serve: http://{host}:{port}/ (data {path}; Ctrl-C stops)", flush=True)
    if show:
        server.io_loop.add_callback(server.show, "/")
    loop.start()
    server.stop()
