"""liqlab serve DATA: the live map of a dataset a recorder is writing (a Bokeh server on loopback)."""

from __future__ import annotations

HELP = "serve the live map of a dataset that `liqlab record` is writing (Bokeh server, loopback by default)"


def add_arguments(p) -> None:
    """Add DATA, --host, --port, refresh, volatility and alert options and --params-file to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab serve``; returns nothing.
    """
    p.add_argument("data", help="dataset or collection folder (e.g. the --out of liqlab record)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5006, help="TCP port (default 5006)")
    p.add_argument("--interval", type=float, default=60.0, metavar="S", help="seconds between refreshes (default 60)")
    p.add_argument("--fast-interval", type=float, default=15.0, metavar="S",
                   help="seconds between refreshes while volatility is high (default 15)")
    p.add_argument("--vol-threshold", type=float, default=1.0, metavar="F",
                   help="annualised realized volatility of the last 15 one-minute returns above which the fast "
                        "interval applies (fraction, default 1.0 = 100%%/yr)")
    p.add_argument("--alert-pct", type=float, default=2.0, metavar="X", help="alerts: clusters within X %% of price")
    p.add_argument("--alert-usd", type=float, default=0.0, metavar="N", help="alerts: smallest cluster, USD")
    p.add_argument("--params-file", default=None, help="engine parameters (YAML/JSON, as for liqlab heatmap)")
    p.add_argument("--show", action="store_true", help="open the page in a browser")


def run(args) -> int:
    """Run ``liqlab serve`` until SIGINT/SIGTERM.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    int
        0 after the server stopped; bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from pathlib import Path

    import math

    from liqlab.app.serve.feed import FeedOptions
    from liqlab.app.serve.server import serve
    from liqlab.engine.params import HeatmapParams
    from liqlab.errors import ParameterError

    if not Path(args.data).is_dir():
        raise ParameterError(f"DATA: {args.data}: not a folder")
    for name in ("interval", "fast_interval", "alert_pct"):
        if not getattr(args, name) > 0:
            raise ParameterError(f"--{name.replace('_', '-')}: must be > 0, got {getattr(args, name)}")
    if not args.alert_usd >= 0:
        raise ParameterError(f"--alert-usd: must be >= 0, got {args.alert_usd}")
    if not math.isfinite(args.vol_threshold) or args.vol_threshold < 0:
        raise ParameterError(f"--vol-threshold: must be a finite number >= 0, got {args.vol_threshold}")
    if not 0 < args.port < 65536:
        raise ParameterError(f"--port: must be in 1..65535, got {args.port}")
    params = HeatmapParams.from_file(args.params_file) if args.params_file else HeatmapParams()
    opts = FeedOptions(interval=args.interval, fast_interval=args.fast_interval, vol_threshold=args.vol_threshold,
                       alert_pct=args.alert_pct, alert_usd=args.alert_usd, params=params)
    serve(args.data, opts, host=args.host, port=args.port, show=args.show)
    return 0
