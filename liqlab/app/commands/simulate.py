"""liqlab simulate: write a simulated market (collection + truth/) with the agent-based simulator."""

from __future__ import annotations

import sys

HELP = "simulate a synthetic multi-venue market (datasets + ground truth in truth/)"

# flag -> SimulationConfig field; defaults live only in SimulationConfig
_FLAGS = {
    "world": (str, "preset of trader behaviour: default (bursty, realistic open interest) or homogeneous (steady Poisson)"),
    "days": (float, "simulated days"),
    "seed": (int, "random seed for price, venues and traders"),
    "venues": (str, "comma-separated subset of {venues}"),
    "start": (str, "first bar, UTC ISO time"),
    "base_price": (float, "index price at the start, USD"),
    "trader_seed": (int, "separate seed for the traders only (None: --seed)"),
    "long_share": (float, "probability that a new position is long"),
    "cascade_impact": (float, "forced orders move price: 1 = 1%% for $100M net forced flow, square-root (0 = null world)"),
    "hunt_intensity": (float, "drift toward the heavier nearby cluster, in units of the 1m sigma (0 = none)"),
}


def add_arguments(p):
    """Add one flag per SimulationConfig field plus --out, --reuse and --quiet to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab simulate``; returns nothing.
    """
    from liqlab._util import VENUES
    from liqlab.sim.simulation import SimulationConfig

    defaults = SimulationConfig.__dataclass_fields__
    for name, (typ, helptext) in _FLAGS.items():
        d = defaults[name].default
        shown = ",".join(d) if isinstance(d, tuple) else d
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=f"{helptext.replace('{venues}', ','.join(VENUES))} (default {shown})")
    p.add_argument("--symbols", default=None, metavar="LIST",
                   help="asset presets, comma-separated (BTC, ETH): price, volatility, open-interest and volume scale; "
                        "with several, one collection per asset in OUT/<ASSET>/ (default: BTC, in OUT)")
    p.add_argument("--out", required=True, help="collection folder to write (one dataset dir per venue + truth/)")
    p.add_argument("--reuse", action="store_true", help="do nothing if --out already holds this exact simulation")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no timings")


def run(args) -> int:
    """Run ``liqlab simulate``: simulate a market into the output folder.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; None-valued fields keep SimulationConfig's defaults; out is the collection folder.

    Returns
    -------
    int
        Exit status 0; with --quiet nothing printed, else timings (or the reuse note) on stderr. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.sim.simulation import simulate, simulate_assets

    from liqlab.io.atomic import check_dir_target

    check_dir_target(args.out)
    kw = {name: getattr(args, name) for name in _FLAGS if getattr(args, name) is not None}
    progress = None if not args.quiet else False
    if args.symbols is None:
        colls = {"": simulate(out=args.out, progress=progress, reuse=args.reuse, **kw)}
    else:
        colls = simulate_assets(args.symbols, args.out, progress=progress, reuse=args.reuse, **kw)
    for name, coll in colls.items():
        where = coll.path if coll.path is not None else args.out
        if args.quiet:
            continue
        if coll.meta.get("reused"):
            print(f"{where}: already holds this simulation (--reuse); nothing done", file=sys.stderr)
        else:
            t = coll.meta.get("timings", {})
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in t.items())
            print(f"simulated {name + ' ' if name else ''}{len(coll)} venue(s) -> {where} ({parts}; "
                  f"total {sum(t.values()):.2f}s)", file=sys.stderr)
    return 0
