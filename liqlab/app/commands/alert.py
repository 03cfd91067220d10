"""liqlab alert DATA --within-pct X --min-usd N: one JSON line per large cluster near the latest price."""

from __future__ import annotations

HELP = ("print one JSON line per cluster >= N USD within X %% of the latest price; exit 1 when there is any, "
        "0 when none (for cron)")


def add_arguments(p) -> None:
    """Add DATA, --within-pct, --min-usd, --json, --exec, --exec-timeout and the engine flags to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab alert``; returns nothing.
    """
    from liqlab.app.commands.levels import add_data_arguments

    add_data_arguments(p)
    p.add_argument("--within-pct", type=float, required=True, metavar="X",
                   help="largest distance from the latest price, %% (e.g. 2)")
    p.add_argument("--min-usd", type=float, required=True, metavar="N", help="smallest cluster, USD (e.g. 5e6)")
    p.add_argument("--json", default=None, metavar="OUT",
                   help="also write the JSON lines to this file (atomically; an empty file when none)")
    p.add_argument("--exec", default=None, metavar="CMD",
                   help="run CMD once per alert: the alert as one JSON line on stdin and as LIQLAB_ALERT_<FIELD> "
                        "environment variables (LIQLAB_ALERT_JSON: the whole line); no shell")
    p.add_argument("--exec-timeout", type=float, default=60.0, metavar="S", help="seconds each CMD run may take")


def run(args) -> int:
    """Run ``liqlab alert``: print the alerts of the latest snapshot, optionally write them and run CMD per alert.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    int
        1 when there is at least one alert, 0 when none. Bad input raises
        :class:`~liqlab.errors.LiqlabError` (one line, exit 2); a failed CMD run prints a warning line.
    """
    import json
    import math

    from liqlab.app.alerts import alert_records, exec_argv, run_exec
    from liqlab.app.commands.levels import heatmap_of
    from liqlab.app.messages import print_message
    from liqlab.errors import ParameterError
    from liqlab.io import atomic

    if not math.isfinite(args.within_pct) or args.within_pct <= 0:
        raise ParameterError(f"--within-pct: need a number > 0, got {args.within_pct:g}")
    if not math.isfinite(args.min_usd) or args.min_usd < 0:
        raise ParameterError(f"--min-usd: need a number >= 0, got {args.min_usd:g}")
    if not math.isfinite(args.exec_timeout) or args.exec_timeout <= 0:
        raise ParameterError(f"--exec-timeout: need a number of seconds > 0, got {args.exec_timeout:g}")
    argv = exec_argv(args.exec) if args.exec is not None else None
    if args.json is not None:
        atomic.check_file_target(args.json, probe=True)
    hm = heatmap_of(args)
    records = alert_records(hm, within_pct=args.within_pct, min_usd=args.min_usd)
    lines = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
    print(lines, end="", flush=True)
    if args.json is not None:
        atomic.write_text(args.json, lines)
    if argv is not None:
        for problem in run_exec(argv, records, timeout=args.exec_timeout):
            print_message("alert", problem, warning=True)
    return 1 if records else 0
