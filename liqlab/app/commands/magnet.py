"""liqlab magnet DATA --json OUT: the mirror-level first-passage magnet test (docs/MAGNET.md)."""

from __future__ import annotations

HELP = "test whether liquidation clusters attract price (first-passage test, placebo, grid with SPA)"


def add_arguments(p):
    """Add the ``liqlab magnet`` flags.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The ``magnet`` subcommand's parser: test flags, the shared heatmap parameter flags
        (``--params-file``, ``--side-split``, ``--margin-model``, ...) and the run options.

    Returns
    -------
    None
    """
    from liqlab._util import TRAIN_FRACTION
    from liqlab.app.commands.validate import add_param_arguments
    from liqlab.stats.magnet import MagnetParams

    m = MagnetParams()
    p.add_argument("data", help="dataset directory or collection folder")
    p.add_argument("--json", required=True, metavar="OUT", help="write the result (JSON) here")
    p.add_argument("--horizon", type=float, default=None,
                   help=f"horizon H in hours: decision spacing and window (default {m.horizon_hours:g}h)")
    p.add_argument("--k-atr", type=float, default=None, help=f"clusters within k ATRs of the price (default {m.k_atr:g})")
    p.add_argument("--min-dominance", type=float, default=None,
                   help=f"keep events with dominance >= r (default {m.min_dominance:g})")
    p.add_argument("--venue", default=None, help="venue whose bars decide touches (default binanceusdm or first)")
    p.add_argument("--bootstrap-reps", type=int, default=None,
                   help=f"stationary-bootstrap replications (default {m.bootstrap_reps})")
    p.add_argument("--seed", type=int, default=None, help=f"bootstrap / random-level seed (default {m.seed})")
    add_param_arguments(p)
    p.add_argument("--heatmap-params", dest="params_file", default=None, metavar="FILE",
                   help="same as --params-file (heatmap parameters, .json/.yaml)")
    p.add_argument("--no-placebo", action="store_true", help="skip the placebo heatmap contrast")
    p.add_argument("--pipeline-reps", type=int, default=0,
                   help="pipeline null: rerun everything on this many bootstrapped price paths")
    p.add_argument("--grid", default=None,
                   help="grid, e.g. 'leverage_preset=balanced,retail-high;half_life_hours=24,168;k_atr=2,3;"
                        "horizon_hours=2,4' (SPA/StepM/BY; select on the first --split, test once on the rest; "
                        "default: no grid)")
    p.add_argument("--split", type=float, default=TRAIN_FRACTION, help="selection share of time for the grid")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run the magnet test on the command line's data and write its JSON; print a short summary.

    Parameters
    ----------
    args : argparse.Namespace

    Returns
    -------
    int
        0; bad input raises ``ParameterError``/``DataError`` (the CLI prints one line, exit 2).
    """
    from liqlab.app.commands.validate import params_from_args
    from liqlab.errors import ParameterError
    from liqlab.io.atomic import check_file_target
    from liqlab.stats.magnet import magnet_test, parse_grid

    check_file_target(args.json, probe=True)
    hp = params_from_args(args)
    mp = {k: v for k, v in {"horizon_hours": args.horizon, "k_atr": args.k_atr, "min_dominance": args.min_dominance,
                            "venue": args.venue, "bootstrap_reps": args.bootstrap_reps, "seed": args.seed}.items()
          if v is not None}
    if args.pipeline_reps < 0:
        raise ParameterError(f"--pipeline-reps: must be >= 0, got {args.pipeline_reps}")
    grid = parse_grid(args.grid) if args.grid else None
    res = magnet_test(args.data, hp, mp, placebo=not args.no_placebo, pipeline_reps=args.pipeline_reps, grid=grid,
                      split=args.split, progress=False if args.no_progress else None)
    res.write_json(args.json)
    print(format_summary(res.to_json_dict()))
    return 0


def format_summary(s: dict) -> str:
    """One short plain-text block: n, untouched share, p̂ with CI, lift, p-value, placebo, grid.

    Parameters
    ----------
    s : dict
        ``MagnetResult.to_json_dict()``.

    Returns
    -------
    str
    """

    def f(x, nd=3):
        return "n/a" if x is None else f"{x:.{nd}f}"

    tag = " [SYNTHETIC]" if s.get("synthetic") else ""
    lines = [
        f"magnet test{tag}: {s.get('symbol')} {s.get('venue')} {s.get('data_start')} .. {s.get('data_end')}",
        f"  events {s['n_events']} (untouched share {f(s['untouched_share'])}, same-bar double touches "
        f"{s['double_touches']})",
        f"  p_hat {f(s['p_hat'])} vs p0 {f(s['p0'], 2)}: lift {f(s['lift'])} "
        f"(95% CI of p_hat {f(s['ci_low'])}-{f(s['ci_high'])}), p-value {f(s['p_value'], 4)}",
    ]
    if "placebo" in s:
        pc = s["placebo_contrast"]
        lines.append(f"  placebo lift {f(s['placebo_lift'])}; OI-specific vs path-geometry side on {pc['n_events']} "
                     f"decided races ({pc['n_discordant']}/{pc['n_common']} times on opposite sides): p_hat "
                     f"{f(pc['p_hat'])} (CI {f(pc['ci_low'])}-{f(pc['ci_high'])}, p {f(pc['p_value'])})")
    if "pipeline_null" in s:
        pn = s["pipeline_null"]
        lines.append(f"  pipeline null ({pn['reps']} paths): mean lift {f(pn['mean_lift'])}, 95% band "
                     f"{f(pn['q025'])}..{f(pn['q975'])}, p-value {f(pn.get('p_value'))}")
    if "grid" in s:
        g = s["grid"]
        oos = g["out_of_sample"]
        lines.append(f"  grid of {g['n_configs']}: SPA p-value {f(g['spa_p_value'])}, StepM superior "
                     f"{len(g['stepm_superior'])}, min BY q {f(g['min_q_value_by'])}; chosen {g['chosen']}")
        lines.append(f"  out of sample (after {g['split_time']}): events {oos['n_events']}, p_hat {f(oos['p_hat'])} "
                     f"(CI {f(oos['ci_low'])}-{f(oos['ci_high'])}), p-value {f(oos['p_value'], 4)}")
    return "\n".join(lines)
