"""liqlab fit DATA [--liquidations OTHER] --out PARAMS: fit leverage mix, half-life, OI rule to realized liquidations."""

from __future__ import annotations

from liqlab._util import TRAIN_FRACTION

HELP = "fit leverage mix, half-life and OI-decrease rule to realized liquidations (train, then test later)"


def _floats(text: str, option: str = "--half-lives") -> list[float]:
    from liqlab.errors import ParameterError

    out = []
    for x in text.split(","):
        x = x.strip().lower()
        try:
            out.append(float("inf") if x in ("inf", "none") else float(x))
        except ValueError:
            raise ParameterError(f"{option}: not a number: {x!r}") from None
    return out


def add_arguments(p):
    """Add DATA, --liquidations, --out, --json, the engine flags, the search grid and --max-memory to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab fit``; returns nothing.
    """
    from liqlab.app.commands.heatmap import add_memory_argument
    from liqlab.app.commands.validate import add_param_arguments

    p.add_argument("data", help="dataset directory or collection")
    p.add_argument("--liquidations", default=None, metavar="OTHER",
                   help="dataset/collection whose liquidations table is the realized series")
    p.add_argument("--out", required=True, metavar="PARAMS",
                   help="write the fitted heatmap parameters here (.yaml/.yml or .json; for --params-file)")
    p.add_argument("--json", default=None, metavar="REPORT", help="write the fit report (JSON)")
    add_param_arguments(p)
    p.add_argument("--train-fraction", type=float, default=None, help=f"first fraction of steps used to fit ({TRAIN_FRACTION})")
    p.add_argument("--burn-in", type=float, default=None, metavar="HOURS",
                   help="leave the training steps within HOURS of the data start out of the fit "
                        "(default 72, at most a quarter of the training window)")
    p.add_argument("--half-lives", default=None, help="half-life grid in hours, comma separated (inf = no decay)")
    p.add_argument("--oi-rules", default=None, help="OI-decrease rules to try, comma separated")
    p.add_argument("--half-life-exponents", default=None,
                   help="leverage exponents γ of the half-life to try, comma separated (0,1)")
    p.add_argument("--truth", default="auto", help="simulator truth folder (default: truth/ next to DATA if any)")
    p.add_argument("--n-boot", type=int, default=None, help="bootstrap replications in the test report (500)")
    add_memory_argument(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fit_options(args) -> dict:
    """The fit's search options given on the command line (absent ones keep the fit's defaults)."""
    kw = {}
    if args.train_fraction is not None:
        kw["train_fraction"] = args.train_fraction
    if args.burn_in is not None:
        kw["burn_in_hours"] = args.burn_in
    if args.half_lives:
        kw["half_lives"] = _floats(args.half_lives)
    if args.oi_rules:
        kw["oi_rules"] = [s.strip() for s in args.oi_rules.split(",") if s.strip()]
    if args.half_life_exponents:
        kw["half_life_exponents"] = _floats(args.half_life_exponents, "--half-life-exponents")
    if args.n_boot is not None:
        kw["n_boot"] = args.n_boot
    return kw


def run(args) -> int:
    """Run ``liqlab fit``: fit the heatmap parameters to realized liquidations, write them, print the fit and the test window.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; half_lives, oi_rules, half_life_exponents: comma-separated grids; truth: a folder, 'auto' or 'none'.

    Returns
    -------
    int
        Exit status 0 after the fitted parameters, the train/test objective, the choice and the test window. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.io import atomic
    from liqlab.stats.fit import fit
    from liqlab.engine.memory import resolve_budget
    from liqlab.app.commands.validate import params_from_args, summary_text

    for target in (args.out, args.json):
        if target:
            atomic.check_file_target(target, probe=True)
    kw = _fit_options(args)
    truth = None if args.truth in ("none", "") else args.truth
    res = fit(args.data, args.liquidations, params_from_args(args), truth=truth,
              progress=False if args.no_progress else None, max_memory=resolve_budget(args.max_memory), **kw)
    res.save_params(args.out)
    if args.json:
        atomic.write_json(args.json, res.to_dict())
    _print_choice(res)
    if res.truth:
        _print_truth(res.truth)
    print("test window:")
    print(summary_text(res.test_report))
    print(f"params: {args.out}" + (f"; report: {args.json}" if args.json else ""))
    return 0


def _print_choice(res) -> None:
    """The fitted parameters, the objective on train and test, why this choice, and the runner-up."""
    p = res.params
    print(f"fitted: oi_decrease={p.oi_decrease} half_life_hours={p.half_life_hours} "
          f"half_life_exponent={p.half_life_exponent:g} "
          f"weights={dict(zip([f'{x:g}x' for x in p.leverages], [round(float(w), 3) for w in p.weights()]))}")
    print(f"objective (mean Spearman): train {res.objective_train:.3f}; test {res.objective_test:.3f} "
          f"(start params {res.objective_test_start:.3f}); train {res.train[0]} .. {res.train[1]} "
          f"(first {res.burn_in_hours:g} h left out)")
    sel = res.selection
    if sel["chosen"] != sel["best"]:
        b = sel["best"]
        print(f"chosen by the {sel['reason']}: the best on train was oi_decrease={b['oi_decrease']} "
              f"half_life_hours={b['half_life_hours']} half_life_exponent={b['half_life_exponent']:g} "
              f"({b['objective']:.4f}; gap {b['objective'] - sel['chosen']['objective']:.4f} <= SE "
              f"{sel['chosen']['se_of_gap_to_best']:.4f})")
    ru = res.landscape().get("runner_up")
    if ru:
        print(f"runner-up: oi_decrease={ru['oi_decrease']} half_life_hours={ru['half_life_hours']} "
              f"half_life_exponent={ru['half_life_exponent']:g}, "
              f"{res.landscape()['train_gap_to_runner_up']:.4f} behind on train")


def _print_truth(t: dict) -> None:
    """How far the fitted leverage mix is from the simulator's true one (synthetic data only)."""
    line = (f"true leverage mix [synthetic]: total variation {t['total_variation']:.3f} over all leverages "
            f"(mean ln-leverage diff {t['mean_log_leverage_diff']:+.3f})")
    if "identifiable" in t:
        i = t["identifiable"]
        line += (f"; {i['total_variation']:.3f} over the leverages whose levels were crossed "
                 f"({', '.join(f'{x:g}x' for x in i['leverages'])})")
        if "swept_mass" in i:
            line += (f"; their weight mass implied by the regression {i['swept_mass']['fitted']:.3f} "
                     f"(true {i['swept_mass']['true']:.3f})")
    print(line)
    if "objective_train_true_mix" in t:
        print(f"objective at the true mix (same rule and half-life): train {t['objective_train_true_mix']:.4f}, "
              f"test {t['objective_test_true_mix']:.4f}")
