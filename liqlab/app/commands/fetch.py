"""liqlab fetch --exchange binanceusdm,bybit,okx --symbol BTC/USDT:USDT --since ... --out DIR."""

from __future__ import annotations

import json

HELP = "fetch OHLCV, mark, open interest, funding, tiers (and liquidations where public) from exchanges"


def add_arguments(p):
    """Add venues, symbol, UTC time range, output folder, tables, tier refresh, retries to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab fetch``; returns nothing.
    """
    from liqlab._util import VENUES
    from liqlab.io.fetch import TABLES

    p.add_argument("--exchange", required=True, help=f"comma-separated: {','.join(VENUES)} (several = collection)")
    p.add_argument("--symbol", required=True, help="ccxt unified symbol, e.g. BTC/USDT:USDT")
    p.add_argument("--since", required=True, help="start (UTC date/time, e.g. 2025-01-01)")
    p.add_argument("--until", default=None, help="end, exclusive (UTC); default now")
    p.add_argument("--out", default="data/cache", help="collection folder; each venue goes to OUT/<venue>/")
    p.add_argument("--tables", default=None, help=f"comma-separated subset of {','.join(TABLES)} (default all)")
    p.add_argument("--refresh-tiers", action="store_true", help="re-fetch leverage tiers even if stored")
    p.add_argument("--retries", type=int, default=5, help="retries per request on network errors/rate limits")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run ``liqlab fetch``: fetch the tables from the exchanges into the collection and print what was added (JSON).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; exchange: comma-separated ccxt ids; since/until: UTC times; out: the collection folder.

    Returns
    -------
    int
        Exit status 0, printing the path, rows, rows added and notes as JSON. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.io.atomic import check_dir_target
    from liqlab.io.fetch import fetch

    check_dir_target(args.out)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()] if args.tables else None
    res = fetch(args.exchange, args.symbol, since=args.since, until=args.until, out=args.out, tables=tables,
                refresh_tiers=args.refresh_tiers, retries=args.retries,
                progress=False if args.no_progress else None)
    print(json.dumps({"path": str(res.path), "rows": res.rows, "added": res.added, "notes": res.notes}, indent=2))
    return 0
