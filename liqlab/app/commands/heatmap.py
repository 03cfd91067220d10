"""liqlab heatmap DATA --out FILE: estimate the liquidation heatmap (.npz, or .html explorer)."""

from __future__ import annotations

import json

HELP = "estimate the liquidation heatmap of a dataset or collection; write .npz (or .html explorer)"

# CLI flag -> HeatmapParams field (values are parsed by HeatmapParams.replace, which names bad ones)
FLAGS = {
    "leverages": "leverages",
    "leverage_preset": "leverage_preset",
    "leverage_weights": "leverage_weights",
    "half_life": "half_life_hours",
    "half_life_exponent": "half_life_exponent",
    "max_age": "max_age_hours",
    "side_split": "side_split",
    "long_share": "long_share",
    "entry_price": "entry_price",
    "oi_decrease": "oi_decrease",
    "clearing": "clearing",
    "margin_model": "margin_model",
    "position_size": "position_size_usd",
    "position_size_sigma": "position_size_sigma",
    "bin_width": "bin_width",
    "bin_unit": "bin_unit",
    "price_range": "price_range",
    "time_step": "time_step",
    "start": "start",
    "end": "end",
    "venues": "venues",
}


def add_param_arguments(p) -> None:
    """Add the main engine parameters as flags (defaults come from HeatmapParams; shown in --help).

    One home for the engine flags: ``liqlab heatmap``, ``score``, ``validate``, ``fit`` and ``magnet``
    all call this, so every command can set every parameter.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser (the flags go into a "heatmap parameters" group; each lands in
        ``args.p_<field>``, None when not given).

    Returns
    -------
    None
    """
    from liqlab.engine.params import param_info

    info = param_info()
    g = p.add_argument_group("heatmap parameters (defaults: liqlab.engine.params.HeatmapParams)")
    for flag, name in FLAGS.items():
        i = info[name]
        extra = f" [{'|'.join(map(str, i['choices']))}]" if "choices" in i else ""
        unit = f" ({i['unit']})" if i.get("unit") else ""
        g.add_argument(f"--{flag.replace('_', '-')}", dest=f"p_{name}", default=None, metavar="X",
                       help=f"{i['description']}{unit}{extra}; default {i['default']!r}")
    g.add_argument("--funding-drift", dest="p_funding_drift", action="store_const", const=True, default=None,
                   help="shift stored levels by accumulated funding")
    g.add_argument("--no-funding-drift", dest="p_funding_drift", action="store_const", const=False,
                   help="do not shift levels by funding (overrides --params-file)")
    g.add_argument("--params-file", default=None, metavar="FILE",
                   help="params.json|yaml (HeatmapParams.to_dict format); flags override it")


def params_from_args(args):
    """HeatmapParams from ``--params-file`` then the flags given (flags override the file).

    Parameters
    ----------
    args : argparse.Namespace
        Options parsed with :func:`add_param_arguments`.

    Returns
    -------
    HeatmapParams
        Validated.

    Raises
    ------
    ParameterError
        A bad value or file, named.
    """
    from liqlab.engine.params import HeatmapParams

    p = HeatmapParams.from_file(args.params_file) if getattr(args, "params_file", None) else HeatmapParams()
    changes = {k[2:]: v for k, v in vars(args).items() if k.startswith("p_") and v is not None}
    return p.replace(**changes) if changes else p.validate()


def add_memory_argument(p) -> None:
    """Add ``--max-memory``: the byte budget of the build (refused up front when the estimate exceeds it).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.

    Returns
    -------
    None
    """
    from liqlab.engine.memory import DEFAULT_SHARE

    p.add_argument("--max-memory", default=None, metavar="SIZE",
                   help=f"memory budget, e.g. 4G or 512M: a build whose estimated size exceeds it is refused "
                        f"before it starts (default {DEFAULT_SHARE:.0%}% of the memory available)")


def add_arguments(p) -> None:
    """Add DATA, --out, the engine parameter flags and --max-memory to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab heatmap``; returns nothing.
    """
    p.add_argument("data", help="dataset directory or collection folder")
    p.add_argument("--out", required=True, help="output file: .npz (Heatmap.save) or .html (static explorer)")
    add_param_arguments(p)
    add_memory_argument(p)
    p.add_argument("--oi-proxy", choices=["volume"], default=None,
                   help="build from a synthetic open interest whose increments are a fixed share of each bar's "
                        "traded volume (liqlab.stats.nulls.volume_oi_proxy), for data without open interest; "
                        "replaces any observed open interest; the map's notes say 'proxy ... (not observed)'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``liqlab heatmap``: build the heatmap, write .npz or the .html explorer, print its summary (JSON).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; out: .npz or .html (checked before the build); the p_* fields are engine parameters;
        oi_proxy: None (observed open interest only) or ``'volume'`` (:func:`liqlab.stats.nulls.volume_oi_proxy`).

    Returns
    -------
    int
        Exit status 0, printing the heatmap summary (grid, steps, totals in USD) as JSON. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.io.atomic import check_file_target
    from liqlab.io.dataset import load_collection
    from liqlab.errors import ParameterError
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.memory import resolve_budget

    out = check_file_target(args.out, probe=True)
    suffix = out.suffix.lower()
    if suffix not in (".npz", ".html"):
        raise ParameterError(f"--out: {out}: need a .npz or .html file name")
    params = params_from_args(args)
    budget = resolve_budget(args.max_memory)
    coll = load_collection(args.data)
    if args.oi_proxy == "volume":
        from liqlab.stats.nulls import volume_oi_proxy

        coll = volume_oi_proxy(coll)
    hm = build_heatmap(coll, params, progress=False if args.no_progress else None, max_memory=budget)
    if suffix == ".npz":
        hm.save(out)
    else:
        try:
            from liqlab.viz.plot import save_explorer
        except ImportError as exc:
            raise ParameterError(f"--out {out}: the HTML explorer (liqlab.viz.plot.save_explorer) is not available ({exc})") from None
        save_explorer(hm, out, data=coll)
    s = hm.summary()
    s["out"] = str(out)
    print(json.dumps(s, default=str))
    return 0
