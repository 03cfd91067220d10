"""The ``liqlab`` command: one entry point, one subcommand per file in ``liqlab/app/commands``.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``, and calls a
library function that does the work (so everything the CLI does is available from Python).
Input errors (:class:`liqlab.errors.LiqlabError`) print one line and exit 2, never a traceback; so do
file-system errors (``OSError``) and running out of memory. A closed output pipe (``liqlab info | head``)
ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

# subcommand -> module in liqlab.app.commands (imported only when the parser is built)
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
    "levels": "levels",
    "alert": "alert",
}


class _HelpFormatter(argparse.HelpFormatter):
    """Appends "(default: X)" to an option's help unless the default is None/False or already stated."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if (d is None or d is False or d == [] or d is argparse.SUPPRESS or "default" in text.lower()
                or not action.option_strings or action.nargs == 0):  # flags: their help says what they do
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        # a value such as "-5,10" or "-1e3" is a (bad) value, not an option: the parameter check names it
        self._negative_number_matcher = re.compile(r"^-\.?\d[\d.,eE+-]*$")

    def error(self, message: str):  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``liqlab`` argument parser with one subparser per module in :data:`COMMANDS`.

    Returns
    -------
    argparse.ArgumentParser
        Its parse errors print one line and exit 2; each subparser's ``_run`` default is the
        subcommand's ``run(args)``.
    """
    from liqlab import __version__

    parser = _Parser(prog="liqlab", description="Liquidation heatmaps: data, estimation, explorer, magnet test.")
    parser.add_argument("--version", action="version", version=f"liqlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in COMMANDS.items():
        try:
            mod = importlib.import_module(f"liqlab.app.commands.{modname}")
        except ModuleNotFoundError as exc:
            if exc.name == f"liqlab.app.commands.{modname}":
                continue  # subcommand not built yet
            raise
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``liqlab`` subcommand.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``liqlab`` (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 done, 1 a report or demo with failed notebooks, 2 bad input (one stderr
        line ``liqlab COMMAND: error: MESSAGE``), 3 a report already running, 130 interrupted, 141 the
        output pipe closed.
    """
    from liqlab.errors import LiqlabError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except LiqlabError as exc:
        return _fail(args.command, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print(f"liqlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`liqlab info DATA | head`): stop quietly
        _silence_stdout()
        return 141  # what a shell reports for a process ended by SIGPIPE
    except MemoryError:
        return _fail(args.command, "out of memory; lower the work (e.g. a longer time_step, a wider bin_width, "
                                   "a shorter start..end)", 2)
    except OSError as exc:  # the file system refused (permissions, disk full, wrong kind of path)
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(args.command, f"{where}{exc.strerror or exc}", 2)


def _fail(command: str, message: str, code: int) -> int:
    """Print ``liqlab COMMAND: error: MESSAGE`` on one line to stderr (:mod:`liqlab.app.messages`); return ``code``."""
    from liqlab.app.messages import print_message

    print_message(command, message)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
