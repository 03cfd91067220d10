"""liqlab record: record realized liquidations from ccxt.pro websockets into the dataset format."""

from __future__ import annotations

import sys

HELP = "record liquidation events from exchange websockets (plus OI/OHLCV/funding by REST) into a dataset"


def add_arguments(p):
    """Add venues, symbol, output folder, flush/compact/status periods, REST switch, backoff, duration to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab record``; returns nothing.
    """
    from liqlab._util import VENUES

    p.add_argument("--exchange", default=",".join(VENUES), help=f"comma-separated: {','.join(VENUES)}")
    p.add_argument("--symbol", default="BTC/USDT:USDT", help="ccxt unified swap symbol")
    p.add_argument("--out", required=True, help="output folder: <out>/<exchange>/ dataset directories")
    p.add_argument("--flush", type=float, default=5.0, metavar="SECONDS", help="write buffered events this often (default 5)")
    p.add_argument("--compact-every", type=float, default=3600.0, metavar="SECONDS",
                   help="fold parts into liquidations.parquet this often (default 3600; also on exit)")
    p.add_argument("--status-every", type=float, default=10.0, metavar="SECONDS", help="status line period on stderr")
    p.add_argument("--no-rest", action="store_true", help="do not poll OHLCV / open interest / funding by REST")
    p.add_argument("--backoff", type=float, default=1.0, metavar="SECONDS", help="first reconnect delay (doubles, max 60)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS", help="stop after this long; bounds every phase, market loading included (default: run until SIGINT/SIGTERM)")
    p.add_argument("--compact", action="store_true", help="only compact recorded parts under --out, then exit")
    p.add_argument("--replay", metavar="FRAMES",
                   help="play recorded websocket frames (and REST rows, if the script has them) instead of "
                        "connecting: a .jsonl(.gz) script or a folder of them (see docs/LIVE.md)")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="with --replay: replay seconds per wall-clock second (default 1)")


def run(args) -> int:
    """Run ``liqlab record``: record liquidations until the duration ends or a signal arrives (or only compact the parts).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; exchange: comma-separated ccxt ids; duration in seconds (None: until SIGINT/SIGTERM).

    Returns
    -------
    int
        Exit status 0 once recording stopped (events and reconnects per venue on stderr), or after --compact. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.errors import ParameterError
    from liqlab.io import record as rec
    from liqlab.io.atomic import check_dir_target
    from liqlab.io.record import config as record_config

    if args.speed != 1.0 and not args.replay:
        raise ParameterError("--speed: only with --replay FRAMES (a live recording runs at the exchange's pace)")
    out = check_dir_target(args.out)
    if args.compact:
        counts = rec.compact_all(out)
        for name, n in counts.items():
            print(f"{name}: {n} events in liquidations.parquet")
        return 0
    exchanges = tuple(e.strip() for e in args.exchange.split(",") if e.strip())
    config = rec.RecordConfig(
        exchanges=exchanges, symbol=args.symbol, out=out, flush_seconds=args.flush,
        compact_seconds=args.compact_every, status_seconds=args.status_every, rest=not args.no_rest,
        backoff_initial=args.backoff, duration=args.duration,
    )
    make = None
    clock = record_config.now_ms
    try:
        if args.replay:
            from liqlab.io.record.replay import replay_config

            make, config = replay_config(args.replay, args.speed, config)   # may set the replay clock
        result = rec.record(config, make_exchange=make)
    finally:
        record_config.now_ms = clock
    for name, r in result.items():
        print(f"{name}: {r['events']} events, {r['reconnects']} reconnects -> {r['path']}", file=sys.stderr)
    return 0
