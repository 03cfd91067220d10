"""liqlab validate DATA [--liquidations OTHER] --json OUT [params]: heatmap sweeps vs realized liquidations."""

from __future__ import annotations

# the engine parameter flags have one home, liqlab heatmap's module; validate, fit, magnet and score share them
from liqlab.app.commands.heatmap import add_param_arguments, params_from_args  # noqa: F401

HELP = "score the heatmap's swept notional against realized liquidations, next to baselines"


def add_arguments(p):
    """Add DATA, --liquidations, --json, the engine flags, the scoring window and bootstrap options to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab validate``; returns nothing.
    """
    p.add_argument("data", help="dataset directory or collection (prices, open interest; realized liquidations "
                                "unless --liquidations is given)")
    p.add_argument("--liquidations", default=None, metavar="OTHER",
                   help="dataset/collection whose liquidations table is the realized series (any time step)")
    p.add_argument("--json", required=True, metavar="OUT", help="write the report here (JSON)")
    add_param_arguments(p)
    p.add_argument("--score-start", default=None, metavar="TIME",
                   help="score steps from this time on (UTC); the map still uses all earlier history")
    p.add_argument("--score-end", default=None, metavar="TIME", help="score steps ending by this time (UTC)")
    p.add_argument("--no-side-splits", action="store_true", help="skip the side-split rules head to head")
    p.add_argument("--no-naive", action="store_true", help="skip the naive symmetric map baseline")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap replications for the CIs (default 500)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def run(args) -> int:
    """Run ``liqlab validate``: validate the heatmap against realized liquidations, write the JSON report, print the table.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; score_start/score_end: UTC times bounding the scored steps; n_boot >= 10.

    Returns
    -------
    int
        Exit status 0 after the metric table, the verdict and the report's path. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.errors import ParameterError
    from liqlab.stats.validate import N_BOOT, SIDE_SPLITS, validate

    n_boot = N_BOOT if args.n_boot is None else args.n_boot
    if n_boot < 10:
        raise ParameterError(f"--n-boot: need >= 10, got {n_boot}")
    from liqlab.io.atomic import check_file_target
    from liqlab.engine.params import utc_time

    check_file_target(args.json, probe=True)
    params = params_from_args(args)
    window = None
    if args.score_start or args.score_end:
        window = tuple(utc_time(v, flag) if v else None
                       for v, flag in ((args.score_start, "--score-start"), (args.score_end, "--score-end")))
    res = validate(args.data, args.liquidations, params, window=window,
                   side_splits=None if args.no_side_splits else SIDE_SPLITS, naive=not args.no_naive,
                   n_boot=n_boot, seed=args.seed)
    res.to_json(args.json)
    print(summary_text(res.report))
    print(f"report: {args.json}")
    return 0


def summary_text(report) -> str:
    """A short plain-text table of the metrics (one row per predictor) and the verdict.

    Parameters
    ----------
    report : dict
        A validation report (the ``report`` of what :func:`liqlab.stats.validate.validate` returns).

    Returns
    -------
    str
        A header (steps scored, time step; ``[synthetic data]`` when synthetic), one row per predictor
        with its metrics (``-`` where missing) and the verdict line.
    """
    from liqlab.stats.validate import metric_table

    t = metric_table(report)
    cols = ["predictor"] + [c for c in t.columns if c not in ("predictor", "group")]
    lines = [("[synthetic data] " if report.get("synthetic") else "")
             + f"{report['data']['n_steps_scored']} steps of {report['data']['time_step']}"]
    lines.append("  ".join(f"{c:>22}" if i == 0 else f"{c.replace('top_decile_capture', 'top10'):>14}"
                           for i, c in enumerate(cols)))
    for _, r in t.iterrows():
        cells = [f"{r['predictor']:>22}"] + [f"{r[c]:>14.3f}" if r[c] is not None and r[c] == r[c] else f"{'-':>14}"
                                              for c in cols[1:]]
        lines.append("  ".join(cells))
    lines.append(report.get("verdict", ""))
    return "\n".join(lines)
