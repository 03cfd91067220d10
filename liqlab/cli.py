"""The ``liqlab`` command: one entry point, one subcommand per file in ``liqlab/commands``.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, and calls a
library function that does the work (so everything the CLI does is available from Python).
Input errors (:class:`liqlab.errors.LiqlabError`) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module in liqlab.commands (imported only when the parser is built)
COMMANDS: dict[str, str] = {
    "info": "info",
    "simulate": "simulate",
    "demo": "demo",
    "fetch": "fetch",
    "import": "import_",
    "heatmap": "heatmap",
    "score": "score",
    "bench": "bench",
    "magnet": "magnet",
    "calibrate": "calibrate",
    "validate": "validate",
    "fit": "fit",
    "report": "report",
    "record": "record",
    "facts": "facts",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="liqlab", description="Liquidation heatmaps: data, estimation, explorer, magnet test.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(f"liqlab.commands.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name == f"liqlab.commands.{modname}":
                continue  # subcommand not built yet
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import LiqlabError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except LiqlabError as exc:
        msg = " ".join(str(exc).split())  # one line
        print(f"liqlab {args.command}: error: {msg}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"liqlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
