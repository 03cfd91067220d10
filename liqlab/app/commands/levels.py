"""liqlab levels DATA: the liquidation clusters of one snapshot as a CSV or JSON table."""

from __future__ import annotations

HELP = "write the liquidation clusters of one snapshot (price, side, USD, distance, age, venues, per leverage) as csv/json"

FORMATS: tuple[str, ...] = ("csv", "json")


def add_data_arguments(p) -> None:
    """Add DATA, the engine parameter flags and ``--no-progress``: what ``levels`` and ``alert`` read.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser; returns nothing.
    """
    from liqlab.app.commands.heatmap import add_param_arguments

    p.add_argument("data", help="a heatmap file (.npz from `liqlab heatmap`) or a dataset directory / collection "
                                "folder (the map is built with the parameter flags)")
    add_param_arguments(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def heatmap_of(args):
    """The heatmap ``args.data`` names: a saved ``.npz`` as it is, or a dataset built with the flags.

    Parameters
    ----------
    args : argparse.Namespace
        Options of :func:`add_data_arguments`.

    Returns
    -------
    Heatmap
        USD notional, time × price.

    Raises
    ------
    ParameterError
        Engine flags given together with a saved heatmap (its parameters are fixed), or a bad flag.
    DataError
        DATA is neither a heatmap file nor a dataset.
    """
    from pathlib import Path

    from liqlab.engine.heatmap import Heatmap, build_heatmap
    from liqlab.errors import DataError, ParameterError
    from liqlab.app.commands.heatmap import params_from_args
    from liqlab.io.dataset import load_collection

    path = Path(args.data)
    if path.suffix.lower() == ".npz" or path.is_file():
        given = [k[2:] for k, v in vars(args).items() if k.startswith("p_") and v is not None]
        if given or args.params_file:
            raise ParameterError(f"{given[0] if given else 'params_file'}: {path} is a saved heatmap; its parameters "
                                 "are fixed (pass the dataset to build with other parameters)")
        if not path.is_file():
            raise DataError(f"{path}: no such heatmap file")
        return Heatmap.load(path)
    params = params_from_args(args)
    return build_heatmap(load_collection(path), params, progress=False if args.no_progress else None)


def snapshot_of(hm, at: str | None):
    """The snapshot index ``--at`` names: the latest when None, else the one nearest a UTC time in the map.

    Parameters
    ----------
    hm : Heatmap
        The map.
    at : str or None
        A time (ISO text; naive = UTC).

    Returns
    -------
    int
        Index into ``hm.times``.

    Raises
    ------
    ParameterError
        ``--at`` is not a time, or lies outside the map's span (first step's start .. last snapshot).
    """
    import pandas as pd

    from liqlab._util import utc
    from liqlab.errors import ParameterError

    if at is None:
        return len(hm.times) - 1
    try:
        ts = utc(at)
    except (ValueError, TypeError):
        raise ParameterError(f"--at: not a time: {at!r} (use ISO UTC, e.g. 2025-01-31T12:00)") from None
    first = pd.Timestamp(hm.times[0], tz="UTC") - pd.Timedelta(hours=float(hm.replay.step_hours))
    last = pd.Timestamp(hm.times[-1], tz="UTC")
    if not first <= ts <= last:
        raise ParameterError(f"--at: {ts.isoformat()} is outside the map ({first.isoformat()} .. {last.isoformat()})")
    return int(hm.index_at(ts))


def write_rows(frame, fmt: str, out: str | None) -> None:
    """Write a table as CSV or JSON lines-of-records, to ``out`` atomically or to stdout.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows (times are written as ISO 8601 UTC, NaN as empty / null).
    fmt : {'csv', 'json'}
        CSV with a header, or a JSON array of objects (strict JSON).
    out : str or None
        Target file (written all or nothing), or None for stdout.
    """
    import json
    import sys

    from liqlab._util import jsonable
    from liqlab.io import atomic

    f = frame.copy()
    for c in f.columns:
        if str(f[c].dtype).startswith("datetime64"):
            f[c] = f[c].map(lambda x: x.isoformat())
    if fmt == "csv":
        text = f.to_csv(index=False)
    else:
        text = json.dumps(jsonable(f.to_dict(orient="records")), allow_nan=False, indent=1) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic.write_text(out, text)


def add_arguments(p) -> None:
    """Add DATA, --at, --format, --out, --pull-pct, --top, --min-usd and the engine flags to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab levels``; returns nothing.
    """
    add_data_arguments(p)
    p.add_argument("--at", default=None, metavar="TIME", help="snapshot time, UTC (default: the latest)")
    p.add_argument("--format", default="csv", metavar="FMT", help=f"output format [{'|'.join(FORMATS)}]")
    p.add_argument("--out", default=None, metavar="FILE", help="output file (default: stdout)")
    p.add_argument("--pull-pct", type=float, default=5.0, metavar="X",
                   help="band of the directional summary columns pull_above_usd / pull_below_usd, %% of price")
    p.add_argument("--top", type=int, default=None, metavar="N", help="most clusters, largest first (default: all)")
    p.add_argument("--min-usd", type=float, default=0.0, metavar="USD", help="smallest cluster kept, USD")


def run(args) -> int:
    """Run ``liqlab levels``: one row per cluster of the snapshot (:func:`liqlab.engine.levels.levels_table`).

    ``args`` holds the options of :func:`add_arguments`. Returns 0 after writing the table; bad input
    raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2), the target untouched.
    """
    from liqlab.engine.levels import levels_table
    from liqlab.errors import ParameterError
    from liqlab.io.atomic import check_file_target

    if args.format not in FORMATS:
        raise ParameterError(f"--format: must be one of {list(FORMATS)}, got {args.format!r}")
    if args.top is not None and args.top < 0:
        raise ParameterError(f"--top: need a whole number >= 0, got {args.top}")
    if args.out is not None:
        check_file_target(args.out, probe=True)
    hm = heatmap_of(args)
    j = snapshot_of(hm, args.at)
    table = levels_table(hm, j, pull_pct=args.pull_pct, n=args.top, min_usd=args.min_usd)
    write_rows(table, args.format, args.out)
    return 0
