"""liqlab info DATA: validate a dataset or collection and print its coverage as JSON."""

from __future__ import annotations

import json

HELP = "validate a dataset or collection and print row counts and coverage"


def add_arguments(p):
    p.add_argument("data", help="dataset directory or collection folder")


def run(args) -> int:
    from liqlab.io.dataset import load_collection

    coll = load_collection(args.data)
    print(json.dumps([d.summary() for d in coll], indent=2))
    return 0
