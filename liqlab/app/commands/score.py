"""liqlab score DATA: compare the estimated heatmap with a simulation's truth; print JSON (and a table)."""

from __future__ import annotations

import json

HELP = "score the heatmap engine against a simulated collection's truth/ (Spearman, top-decile share)"


def add_arguments(p) -> None:
    """Add DATA, scoring band, burn-in, presets and table switches, and the engine parameter flags to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab score``; returns nothing.
    """
    from liqlab.stats.score import DEFAULT_BAND, DEFAULT_BURN_IN_HOURS
    from liqlab.app.commands.heatmap import add_param_arguments

    p.add_argument("data", help="simulated collection folder (with truth/)")
    p.add_argument("--band", type=float, default=DEFAULT_BAND,
                   help=f"fraction of the close on each side whose bins are scored (default {DEFAULT_BAND})")
    p.add_argument("--burn-in", type=float, default=DEFAULT_BURN_IN_HOURS, metavar="HOURS",
                   help=f"skip the first HOURS of snapshots (default {DEFAULT_BURN_IN_HOURS:g})")
    p.add_argument("--no-presets", action="store_true", help="do not score every leverage preset")
    p.add_argument("--table", action="store_true", help="also print a plain-text table after the JSON")
    add_param_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``liqlab score``: score the heatmap against the simulation's truth and print the JSON (and a table).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; data: a simulated collection with truth/; band: fraction of the close each side.

    Returns
    -------
    int
        Exit status 0 after the scores as JSON (and the table with --table). Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.stats.score import format_table, score
    from liqlab.app.commands.heatmap import params_from_args

    result = score(args.data, params_from_args(args), presets=not args.no_presets, band=args.band,
                   burn_in_hours=args.burn_in, progress=False if args.no_progress else None)
    print(json.dumps(result, default=str))
    if args.table:
        print(format_table(result))
    return 0
