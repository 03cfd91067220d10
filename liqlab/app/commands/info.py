"""liqlab info DATA: validate a dataset or collection and print its coverage as JSON."""

from __future__ import annotations

import json

HELP = "validate a dataset or collection and print row counts and coverage"


def add_arguments(p):
    """Add the DATA argument to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab info``; returns nothing.
    """
    p.add_argument("data", help="dataset directory or collection folder")


def run(args) -> int:
    """Run ``liqlab info``: validate a dataset or collection and print its coverage (JSON).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; data: a dataset directory or a collection folder.

    Returns
    -------
    int
        Exit status 0 after printing each dataset's summary (rows, first and last time, UTC) as JSON. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.io.dataset import load_collection

    coll = load_collection(args.data)
    print(json.dumps([d.summary() for d in coll], indent=2))
    return 0
