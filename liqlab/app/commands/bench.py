"""liqlab bench: time the heatmap engine on synthetic arrays; print one JSON line per case."""

from __future__ import annotations

import json
import sys

HELP = "benchmark the heatmap engine and the stylized facts (synthetic arrays): one JSON line per case with seconds"


def add_arguments(p) -> None:
    """Add the case selection, sizes (bars, bins, days) and the numba and progress switches to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab bench``; returns nothing.
    """
    from liqlab.app.bench import CASES, MIN_PER_YEAR

    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up (median reported)")
    p.add_argument("--bars", type=int, default=MIN_PER_YEAR, help="1m bars of the year case (default one year)")
    p.add_argument("--bins", type=int, default=1000, help="price bins of the year case")
    p.add_argument("--rebuild-days", type=float, default=30.0, help="days per venue of the rebuild case")
    p.add_argument("--no-numba", action="store_true", help="use the pure-numpy paths (fine pass, kernel, assembly)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``liqlab bench``: time the engine on synthetic arrays and print one JSON line per case.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; cases: comma-separated names; repeats, bars, bins and rebuild_days size them.

    Returns
    -------
    int
        Exit status 0; one JSON line per case on stdout, flushed as each finishes. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.app.bench import run_bench

    cases = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    for r in run_bench(cases, repeats=args.repeats, bars=args.bars, bins=args.bins, rebuild_days=args.rebuild_days,
                       use_numba=False if args.no_numba else None, progress=False if args.no_progress else None):
        print(json.dumps(r))
        sys.stdout.flush()
    return 0
