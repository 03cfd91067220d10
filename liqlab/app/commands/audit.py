"""liqlab audit DATA [DATA ...] --json OUT: the claims audit (docs/AUDIT.md)."""

from __future__ import annotations

from pathlib import Path

HELP = "audit what traders are told about liquidation heatmaps: eight claims, effects, power, verdicts"


def add_arguments(p) -> None:
    """Add DATA paths, --json, --markdown, --settings, --fast, --claims and --no-progress to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab audit``; returns nothing.
    """
    p.add_argument("data", nargs="+", metavar="DATA",
                   help="dataset directories or collection folders; a folder of raw real files (CSV with oi_close "
                        "columns, like the shared real data) is imported to a temporary folder first")
    p.add_argument("--json", required=True, metavar="OUT", help="write the audit (strict JSON) here")
    p.add_argument("--markdown", default=None, metavar="MD", help="also write the report (e.g. docs/AUDIT.md)")
    p.add_argument("--settings", default=None, metavar="FILE", help="audit settings (JSON/YAML; 'fast: true' for small worlds)")
    p.add_argument("--fast", action="store_true", help="small simulated worlds and few seeds (seconds; low power)")
    p.add_argument("--claims", default=None, help="comma-separated claim ids to run (default: all eight)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _symbol(path: Path) -> str:
    from liqlab.errors import DataError

    name = path.name.lower()
    found = [s for s in ("btc", "eth") if s in name]
    if len(found) != 1:
        raise DataError(f"{path}: cannot tell the asset from the file name (expected 'btc' or 'eth' in it)")
    return f"{found[0].upper()}/USDT:USDT"


def raw_real_files(folder: Path) -> list[Path]:
    """The CSV files of a raw folder that carry open interest (an ``oi_close`` column): what can be audited.

    Parameters
    ----------
    folder : Path
        A folder that is not a liqlab dataset (no meta.json / collection.json).

    Returns
    -------
    list of Path
        Sorted by name.
    """
    out = []
    for f in sorted(folder.glob("*.csv")):
        with open(f, encoding="utf-8", errors="replace") as fh:
            header = fh.readline()
        if "oi_close" in [c.strip() for c in header.split(",")]:
            out.append(f)
    return out


def resolve_inputs(paths: list[str], tmp: Path) -> tuple[list[Path], list[str], list[str]]:
    """Dataset folders to audit: liqlab datasets as given, raw real folders imported under ``tmp``.

    Parameters
    ----------
    paths : list of str
        The command line's DATA.
    tmp : Path
        Where imports go (deleted by the caller).

    Returns
    -------
    tuple
        (dataset paths, their labels, notes on files skipped).
    """
    from liqlab.errors import DataError
    from liqlab.io.importers import import_files

    out, labels, notes = [], [], []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: no such file or folder")
        if (p / "meta.json").exists() or (p / "collection.json").exists() or not p.is_dir():
            out.append(p)
            labels.append(p.resolve().name)
            continue
        files = raw_real_files(p)
        if not files:
            raise DataError(f"{p}: neither a liqlab dataset nor a folder of CSV files with open interest (oi_close)")
        others = sorted(f.name for f in p.iterdir() if f.is_file() and f not in files and f.suffix != ".md")
        if others:
            notes.append(f"{p.name}/: skipped (no open interest, so no heatmap): {', '.join(others)}")
        for f in files:
            dest = tmp / f.stem
            import_files("coinglass-csv", [f], dest, exchange="binanceusdm", symbol=_symbol(f), progress=False)
            out.append(dest)
            labels.append(f.stem)
    return out, labels, notes


def run(args) -> int:
    """Run the audit and write its JSON (and Markdown); print one line per claim.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        0; bad input raises ``ParameterError``/``DataError`` (the CLI prints one line, exit 2).
    """
    import dataclasses
    import tempfile

    from liqlab.errors import ParameterError
    from liqlab.io.atomic import check_file_target, write_text
    from liqlab.stats.audit import load_settings, run_audit
    from liqlab.stats.audit.markdown import audit_markdown

    check_file_target(args.json, probe=True)
    if args.markdown:
        check_file_target(args.markdown, probe=True)
    settings = load_settings(args.settings, **({"fast": True} if args.fast else {}))
    claims = None
    if args.claims:
        try:
            claims = sorted({int(x) for x in args.claims.split(",") if x.strip()})
        except ValueError:
            raise ParameterError(f"--claims: comma-separated integers 1-8, got {args.claims!r}") from None
        if not claims or any(c < 1 or c > 8 for c in claims):
            raise ParameterError(f"--claims: ids must be in 1-8, got {args.claims!r}")
    with tempfile.TemporaryDirectory(prefix="liqlab-audit-") as tmp:
        paths, labels, notes = resolve_inputs(args.data, Path(tmp))
        audit = run_audit(paths, settings, names=labels, claims=claims,
                          progress=False if args.no_progress else None)
    audit = dataclasses.replace(audit, meta={**audit.meta, "inputs": list(args.data), "skipped": notes})
    audit.write_json(args.json)
    if args.markdown:
        write_text(args.markdown, audit_markdown(audit.to_dict()))
    for c in audit.claims:
        eff = "-" if c.effect is None else f"{c.effect:+.3g}"
        print(f"claim {c.id}: {c.verdict} (effect {eff})")
    print(f"wrote {args.json}" + (f" and {args.markdown}" if args.markdown else "") + f" in {audit.seconds:.0f} s")
    return 0
