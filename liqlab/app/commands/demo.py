"""liqlab demo: the main offline job (sample market → every notebook → reports/)."""

from __future__ import annotations

import sys

HELP = "run every notebook offline on a dataset (default: the simulated sample) into reports/"


def add_arguments(p):
    """Add --dataset, --reports and --notebooks folders to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab demo``; returns nothing.
    """
    p.add_argument("--dataset", action="append", default=None,
                   help="dataset or collection (default data/sample); repeat for several assets: the first feeds "
                        "the single-asset notebooks, all of them the cross-asset notebook")
    p.add_argument("--reports", default="reports", help="output folder (default reports/)")
    p.add_argument("--notebooks", default=None, help="notebook folder (default: the project's notebooks/)")


def run(args) -> int:
    """Run ``liqlab demo``: run every notebook on a dataset into the reports folder and list the outcomes.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; dataset (checked first), reports folder and notebook folder.

    Returns
    -------
    int
        Exit status 0 when every notebook ran, 1 when one failed; a line per notebook with its seconds and outputs. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from pathlib import Path

    from liqlab.io.dataset import load_collection
    from liqlab.app.runner import run_demo

    datasets = args.dataset or ["data/sample"]
    for d in datasets:
        load_collection(d)  # fail early, one line, if a dataset is bad
    runs = run_demo(datasets, args.reports, args.notebooks, progress=sys.stderr.isatty())
    failed = [r for r in runs if not r.ok]
    for r in runs:
        status = "ok  " if r.ok else "FAIL"
        print(f"{status} {r.notebook:<24} {r.seconds:6.1f} s  {r.ipynb}" + (f"  {r.html}" if r.html else ""))
        if r.error:
            print(f"     {r.error}")
    print(f"reports written to {Path(args.reports).resolve()}")
    return 1 if failed else 0
