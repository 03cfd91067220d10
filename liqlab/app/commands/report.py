"""liqlab report: run a named set of notebooks with papermill into dated report folders + an index."""

from __future__ import annotations

HELP = "run notebooks with papermill into reports/<name>/<UTC stamp>/ and update latest + index.html"


def add_arguments(p):
    """Add the config or notebook flags, parameter overrides, folders, retention and refresh switches to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``liqlab report``; returns nothing.
    """
    from liqlab.app.report import DEFAULT_RETENTION

    p.add_argument("--config", help="reports YAML (e.g. examples/reports.yaml); paths in it are relative to it")
    p.add_argument("--name", action="append", help="report name: selects from --config (repeatable), or names a flags-only report")
    p.add_argument("--parameters", metavar="YAML", help="parameter overrides: name: value, or <notebook stem>: {name: value}")
    p.add_argument("--notebook", action="append", default=[], help="notebook to run (flags mode, repeatable)")
    p.add_argument("--dataset", action="append", default=[], help="dataset or collection folder (repeatable)")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                   help="one parameter for every notebook declaring it (value parsed as YAML)")
    p.add_argument("--reports-dir", help="where report folders go (default: from config, else ./reports)")
    p.add_argument("--retention", type=int, help=f"runs kept per report, oldest removed (default: from config, else {DEFAULT_RETENTION})")
    p.add_argument("--refresh", action="store_true", default=None, help="refresh the data with the incremental fetch first (default: as the config says)")
    p.add_argument("--no-refresh", dest="refresh", action="store_false", help="do not refresh, even if the config says so")
    p.add_argument("--require-fresh", action="store_true", default=None,
                   help="a failed refresh fails the run instead of running on cached data with a banner")
    p.add_argument("--alert-within-pct", type=float, default=None, metavar="X",
                   help="alert banner: clusters within X %% of the latest price (default: from config, else 2)")
    p.add_argument("--alert-min-usd", type=float, default=None, metavar="N",
                   help="alert banner: clusters of at least N USD (default: from config, else 1e7)")
    p.add_argument("--no-alerts", action="store_true", help="no alert banner")
    p.add_argument("--index-only", action="store_true", help="only rebuild index.html in the reports folder (--reports-dir, else the config's reports_dir, else ./reports)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _parse_params(items: list[str]) -> dict:
    import yaml

    from liqlab.errors import ParameterError

    out = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise ParameterError(f"--param {k.strip()}: value {v!r} is not valid YAML") from None
    return out


def run(args) -> int:
    """Run ``liqlab report``: run the selected reports (or rebuild the index) and print one line per report.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options; config or notebook/name/dataset flags; param: NAME=VALUE items parsed as YAML.

    Returns
    -------
    int
        Exit status 0 when every run succeeded, 1 when one failed; one line per report, its errors on stderr. Bad input raises :class:`~liqlab.errors.LiqlabError` (one line, exit 2).
    """
    from liqlab.app import report
    from liqlab.app.messages import print_message
    from liqlab.app.report.alerts import alert_text

    if args.index_only:
        for d in _index_dirs(args):
            print(report.write_index(d))
        return 0
    overrides = report.load_overrides(args.parameters) if args.parameters else {}
    overrides.update(_parse_params(args.param))
    configs = _configs(args)
    for c in configs:  # check everything before running anything
        report.check_parameters(c, overrides)
    worst = 0
    for c in configs:
        res = report.run_report(c, overrides=overrides, require_fresh=args.require_fresh,
                                progress=False if args.no_progress else None)
        line = f"report {c.name}: {res.status} -> {res.run_dir}"
        if res.record.get("banner"):
            line += f" ({res.record['banner']})"
        print(line)
        for d in res.record.get("data", []):
            if d.get("alerts"):
                print(f"  {d['label']}: {alert_text(d['alerts'])}")
        for err in res.record.get("errors", []):
            print_message("report", f"{c.name}: {err}")
        worst = max(worst, res.exit_code)
    return worst


def _index_dirs(args) -> list:
    """The reports folders whose index ``--index-only`` rebuilds: --reports-dir, else the config's, else ./reports."""
    from pathlib import Path

    from liqlab.app import report

    if args.reports_dir:
        return [Path(args.reports_dir)]
    if args.config:
        return list(dict.fromkeys(c.reports_dir for c in report.load_config(args.config, args.name)))
    return [Path("reports")]


def _configs(args) -> list:
    """The reports to run: from --config (selected by --name) or from the flags, with the flags' changes."""
    import dataclasses
    from pathlib import Path

    from liqlab.app import report
    from liqlab.errors import ParameterError

    if args.config:
        if args.notebook:
            raise ParameterError("--notebook: give notebooks in --config or with flags, not both")
        configs = report.load_config(args.config, args.name)
    else:
        if not args.notebook:
            raise ParameterError("--config or at least one --notebook is required")
        if not args.name or len(args.name) != 1:
            raise ParameterError("--name: exactly one report name is required with --notebook")
        configs = [report.flags_config(args.name[0], args.notebook, args.dataset,
                                       reports_dir=args.reports_dir or "reports",
                                       retention=args.retention or report.DEFAULT_RETENTION)]
    changes = {}
    if args.dataset and args.config:
        changes["datasets"] = tuple(Path(d) for d in args.dataset)
    if args.reports_dir:
        changes["reports_dir"] = Path(args.reports_dir)
    if args.retention is not None:
        if args.retention < 1:
            raise ParameterError(f"--retention: must be >= 1, got {args.retention}")
        changes["retention"] = args.retention
    configs = [report.with_options(c, **changes) for c in configs]
    configs = [_with_alerts(c, args) for c in configs]
    if args.refresh is False:
        configs = [dataclasses.replace(c, refresh=None) for c in configs]
    elif args.refresh is True:
        configs = [c if c.refresh is not None else report.with_options(c, refresh={}) for c in configs]
    return configs


def _with_alerts(config, args):
    """``config`` with the alert flags applied (--no-alerts, --alert-within-pct, --alert-min-usd)."""
    import dataclasses

    from liqlab.app.report.alerts import alert_settings

    if args.no_alerts:
        return dataclasses.replace(config, alerts=None)
    given = {k: v for k, v in (("within_pct", args.alert_within_pct), ("min_usd", args.alert_min_usd)) if v is not None}
    if not given:
        return config
    base = config.alerts if config.alerts is not None else {}
    return dataclasses.replace(config, alerts=alert_settings({**base, **given}, "flags", names={
        "within_pct": "--alert-within-pct", "min_usd": "--alert-min-usd"}))
