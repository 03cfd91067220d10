"""liqlab import --format FMT SRC... --out DIR --exchange ID --symbol SYM: bulk files -> dataset."""

from __future__ import annotations

import json

HELP = "import bulk files (binance-vision, freqtrade, coinglass-csv, ccxt-tiers) into a dataset directory"


def add_arguments(p):
    """Add source files, format, dataset folder, venue, symbol and the per-format unit options to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab import``; returns nothing.
    """
    from liqlab.io.importers import FORMATS, FUNDING_UNITS

    p.add_argument("sources", nargs="+", metavar="SRC", help="files to import (.csv, .zip, .feather, .json[.gz])")
    p.add_argument("--format", required=True, choices=FORMATS, help="file format")
    p.add_argument("--out", required=True, help="dataset directory (created, or extended in place)")
    p.add_argument("--exchange", required=True, help="venue id: binanceusdm, bybit, okx")
    p.add_argument("--symbol", required=True, help="ccxt unified symbol, e.g. BTC/USDT:USDT")
    p.add_argument("--kind", default=None,
                   help="read every file as this table (binance-vision: klines|markPriceKlines|metrics|fundingRate|"
                        "liquidationSnapshot; freqtrade: ohlcv|mark|funding); default: from the file name")
    p.add_argument("--funding-unit", default="auto", choices=FUNDING_UNITS,
                   help="coinglass-csv funding column unit (auto: percent if median |rate| > 0.001)")
    p.add_argument("--contract-size", type=float, default=None,
                   help="base units per contract (tiers in contracts, e.g. OKX); default from the dataset or 1")
    p.add_argument("--price", type=float, default=None,
                   help="USD price to convert contract tiers to notional; default the dataset's last close")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``liqlab import``: import bulk files into a dataset, print what changed (JSON) and warnings on stderr.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; sources: bulk files; format: one of liqlab.io.importers.FORMATS.

    Returns
    -------
    int
        Exit status 0; the import summary as JSON on stdout, warnings on stderr. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.app.messages import print_message
    from liqlab.io.importers import import_files

    res = import_files(
        args.format, args.sources, args.out, exchange=args.exchange, symbol=args.symbol, kind=args.kind,
        funding_unit=args.funding_unit, contract_size=args.contract_size, price=args.price,
        progress=False if args.no_progress else None,
    )
    for w in res.warnings:
        print_message("import", w, warning=True)
    print(json.dumps({"path": str(res.path), "changed": res.changed, "rows": res.rows, "added": res.added,
                      "files": len(res.files)}, indent=2))
    return 0
