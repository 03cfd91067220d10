"""liqlab facts DATA [DATA ...]: stylized facts of open interest, datasets side by side."""

from __future__ import annotations

import math

HELP = "stylized facts of open interest (ΔOI/OI, lead/lag with returns, funding, liquidations), side by side"


def add_arguments(p) -> None:
    """Add DATA paths, --step list, --funding-hours and --json to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab facts``; returns nothing.
    """
    from liqlab.stats.facts import DEFAULT_FUNDING_HOURS, DEFAULT_STEPS

    p.add_argument("data", nargs="+", metavar="DATA", help="dataset directories or collection folders")
    p.add_argument("--step", default=",".join(DEFAULT_STEPS),
                   help=f"comma-separated steps: 'native' and/or durations like 5min, 1h (default {','.join(DEFAULT_STEPS)})")
    p.add_argument("--funding-hours", type=int, default=DEFAULT_FUNDING_HOURS, metavar="H",
                   help="payment interval (hours) assumed when funding is stored once per bar "
                        f"(default {DEFAULT_FUNDING_HOURS})")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the facts and their definitions (JSON)")


def _labels(paths: list[str]) -> list[str]:
    """The folder names, or the paths as given when two folders share a name."""
    from pathlib import Path

    names = [Path(p).resolve().name or p for p in paths]
    return names if len(set(names)) == len(names) else list(paths)


def _cell(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and v.is_integer() and abs(v) >= 1:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def format_table(table) -> str:
    """Plain text of a :func:`liqlab.stats.facts.facts_side_by_side` table (NaN shown as '-').

    Parameters
    ----------
    table : pandas.DataFrame
        Facts (rows indexed by (group, fact)) x datasets (columns).

    Returns
    -------
    str
        Aligned columns; the ``synthetic`` row reads ``SYNTHETIC`` or ``real``.
    """
    rows = [("", "", *map(str, table.columns))]
    last = None
    for (group, fact), values in table.iterrows():
        cells = [("SYNTHETIC" if v else "real") if fact == "synthetic" else _cell(v) for v in values]
        rows.append((group if group != last else "", "data" if fact == "synthetic" else fact, *cells))
        last = group
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def run(args) -> int:
    """Run ``liqlab facts``: print the stylized facts of the datasets side by side (and write them as JSON).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; data: dataset paths (labelled by folder name); step: 'native' and/or durations.

    Returns
    -------
    int
        Exit status 0 after the side-by-side table, the notes and the pointer to the definitions. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    import json
    from pathlib import Path

    from liqlab.io import atomic
    from liqlab.io.dataset import load
    from liqlab.errors import ParameterError
    from liqlab.stats.facts import DEFINITIONS, facts_side_by_side, stylized_facts

    if args.json is not None and Path(args.json).is_dir():
        raise ParameterError(f"--json: {args.json} is a directory; give a file name")
    steps = [s.strip() for s in args.step.split(",") if s.strip()]
    data = {label: load(p) for label, p in zip(_labels(args.data), args.data)}
    facts = stylized_facts(data, steps=steps, funding_hours=args.funding_hours)
    print(format_table(facts_side_by_side(facts)))
    noted = facts[facts["note"] != ""]
    for (label, note), rows in noted.groupby(["dataset", "note"], sort=False):
        print(f"note {label} ({', '.join(rows['step'])}): {note}")
    print("kurtosis is excess (Fisher: normal = 0); definitions: docs/FACTS.md")
    if args.json:
        atomic.write_json(args.json, {"definitions": DEFINITIONS,
                                      "facts": json.loads(facts.to_json(orient="records"))})
    return 0
