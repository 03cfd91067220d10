"""liqlab calibrate --runs N --json OUT: rejection rate under the null and power, on dask."""

from __future__ import annotations

HELP = "calibrate the magnet test on simulated markets (null rejection rate, power, timing) on dask"


def add_arguments(p):
    """Add runs, settings, model, world, dask scheduler or workers, checkpoint and magnet-test options to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab calibrate``; returns nothing.
    """
    p.add_argument("--runs", type=int, default=200, help="simulated markets per setting (default 200)")
    p.add_argument("--json", required=True, metavar="OUT", help="write the report (JSON) here")
    p.add_argument("--settings", default=None,
                   help="';'-separated settings: null, hunt=X, cascade=Y, drift=Z (random-walk model), "
                        "combined with ',' (default: null;hunt=0.1;hunt=0.2;hunt=0.4)")
    p.add_argument("--model", default="simulator", choices=("simulator", "random-walk"),
                   help="simulator (liqlab.sim.simulation + engine) or random-walk (fast check of the statistic)")
    p.add_argument("--days", type=float, default=30.0, help="days per simulated market (default 30)")
    p.add_argument("--venue", default="binanceusdm", help="simulated venue (default binanceusdm)")
    p.add_argument("--world", default="default",
                   help="simulated world (liqlab.sim.simulation.WORLDS: default = bursty open interest, homogeneous = "
                        "steady Poisson entries); simulator model only")
    p.add_argument("--seed", type=int, default=0, help="base seed; task seeds derive from (seed, setting, run)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS", help="existing dask scheduler (tcp://host:8786)")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: one per core; 0 = serial in this process)")
    p.add_argument("--checkpoint", default=None, metavar="DIR", help="checkpoint folder (resume an interrupted run)")
    p.add_argument("--horizon", type=float, default=None, help="first-passage horizon H in hours")
    p.add_argument("--time-step", default=None, help="heatmap output step for the simulated markets (default 1h)")
    p.add_argument("--bootstrap-reps", type=int, default=None, help="stationary-bootstrap replications per run")
    p.add_argument("--alpha", type=float, default=0.05, help="test size (default 0.05)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``liqlab calibrate``: calibrate the magnet test on simulated markets, write the JSON report, print a summary.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; settings as text ('null;hunt=0.1'); json is the report file, probed before any work.

    Returns
    -------
    int
        Exit status 0, with the report written and a plain-text summary (rates, power, seconds per stage) printed. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.io import atomic
    from liqlab.stats.calibrate import calibrate, parse_settings
    from liqlab.errors import ParameterError

    atomic.check_file_target(args.json, probe=True)
    if args.workers is not None and args.workers < 0:
        raise ParameterError(f"--workers: must be >= 0, got {args.workers}")
    settings = parse_settings(args.settings) if args.settings else None
    mp = {}
    if args.horizon is not None:
        mp["horizon_hours"] = args.horizon
    if args.bootstrap_reps is not None:
        mp["bootstrap_reps"] = args.bootstrap_reps
    hp = {"time_step": args.time_step} if args.time_step else None
    rep = calibrate(
        runs=args.runs, settings=settings, days=args.days, venue=args.venue, model=args.model, base_seed=args.seed,
        scheduler=args.scheduler, workers=args.workers, checkpoint=args.checkpoint,
        progress=False if args.no_progress else None, heatmap_params=hp, magnet_params=mp, alpha=args.alpha,
        world=args.world,
    )
    atomic.write_json(args.json, rep)
    print(format_report(rep))
    return 0


def format_report(rep: dict) -> str:
    """Plain-text summary of a calibration report.

    Parameters
    ----------
    rep : dict
        What :func:`liqlab.stats.calibrate.calibrate` returns.

    Returns
    -------
    str
        Lines: the setup (labelled synthetic), the null rejection rate with its 95 % CI, rejection rate
        and mean lift per setting, the smallest effect with 80 % power, seconds per stage.
    """
    lines = [f"calibration ({rep['model']}{', world ' + rep['world'] if rep.get('world') else ''}, synthetic): {rep['runs_per_setting']} runs x {len(rep['settings'])} settings, "
             f"{rep['days']:g} days, {rep['n_workers']} workers, {rep['wall_seconds']:.1f} s wall"
             + (f", {rep['resumed']} resumed from checkpoint" if rep.get("resumed") else "")]
    if "null_rejection_rate" in rep:
        rr, (lo, hi) = rep["null_rejection_rate"], rep["null_rejection_ci"]
        lines.append(f"null rejection rate at alpha={rep['alpha']}: "
                     + ("n/a (too few events per run)" if rr is None else f"{rr:.3f} (95% CI {lo:.3f}-{hi:.3f})"))
    for name, s in rep["settings"].items():
        rr = s["rejection_rate"]
        lines.append(f"  {name:<24} rejection {'n/a' if rr is None else f'{rr:.3f}'}  mean lift "
                     f"{s['mean_lift'] if s['mean_lift'] is None else round(s['mean_lift'], 4)}  "
                     f"decided events/run {s['mean_n_events']:.1f}"
                     + (f"\n    OI vs placebo: OI-specific race rejection {s['contrast_rejection_rate']:.3f} (CI "
                        f"{s['contrast_ci_low']:.3f}-{s['contrast_ci_high']:.3f}; excess and placebo maps on opposite "
                        f"sides {s['mean_excess_discordant_share'] or 0:.3f}, {s['mean_contrast_n'] or 0:.1f} races/run, "
                        f"mean lift {s['mean_contrast_lift'] or 0:.4f}); excess-map test {s['excess_rejection_rate']:.3f}; "
                        f"OI and placebo maps on opposite sides {s['mean_discordant_share'] or 0:.3f}, race "
                        f"{s['race_rejection_rate']:.3f} ({s['mean_race_n'] or 0:.1f} races/run); paired "
                        f"{s['paired_rejection_rate']:.3f}; mean placebo lift {s['mean_placebo_lift'] or 0:.4f}"
                        if "contrast_rejection_rate" in s else ""))
    lines.append(f"smallest effect with >= 80% power: {rep.get('smallest_effect_80_power')}")
    tot = rep["timing_total_seconds"]
    mean = rep["timing_mean_seconds_per_run"]
    lines.append("time per stage (total s / mean s per run): " + ", ".join(
        f"{k} {tot[k]:.1f}/{mean[k]:.3f}" for k in ("simulation", "heatmap", "test", "bootstrap")))
    return "\n".join(x for x in lines if x)
