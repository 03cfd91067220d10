"""The one-line messages the ``liqlab`` command prints on stderr: one format, one home.

An error is ``liqlab COMMAND: error: MESSAGE`` and a warning ``liqlab COMMAND: warning: MESSAGE``, each on
one line (whitespace collapsed by :func:`liqlab._util.one_line`). The command line's error handler
(:mod:`liqlab.app.cli`), the subcommands and the scheduled report all print through these helpers, so
a script or a cron log can grep one pattern. :func:`exception_summary` is the text a run record keeps
for an unexpected exception (its type and first line).
"""

from __future__ import annotations

import sys
from typing import TextIO

from liqlab._util import one_line

__all__ = ["error_line", "warning_line", "print_message", "exception_summary"]


def error_line(command: str, message: BaseException | str) -> str:
    """The error line of a subcommand.

    Parameters
    ----------
    command : str
        The subcommand's name as typed (``info``, ``report``, ...).
    message : BaseException or str
        What went wrong; an exception's text is used (its type name when it has none).

    Returns
    -------
    str
        ``liqlab COMMAND: error: MESSAGE`` on one line, without a newline.
    """
    return f"liqlab {command}: error: {one_line(message)}"


def warning_line(command: str, message: BaseException | str) -> str:
    """The warning line of a subcommand: ``liqlab COMMAND: warning: MESSAGE`` on one line.

    Parameters
    ----------
    command : str
        The subcommand's name.
    message : BaseException or str
        The warning.

    Returns
    -------
    str
        One line, without a newline.
    """
    return f"liqlab {command}: warning: {one_line(message)}"


def print_message(command: str, message: BaseException | str, *, warning: bool = False,
                  stream: TextIO | None = None) -> None:
    """Print :func:`error_line` (or, with ``warning``, :func:`warning_line`); a closed stream is ignored.

    Parameters
    ----------
    command : str
        The subcommand's name.
    message : BaseException or str
        What went wrong, or the warning.
    warning : bool
        Print a warning line instead of an error line.
    stream : text stream, optional
        Where to print (default ``sys.stderr`` at call time).
    """
    line = (warning_line if warning else error_line)(command, message)
    try:
        print(line, file=stream if stream is not None else sys.stderr)
    except BrokenPipeError:  # the reader went away: nothing left to tell
        pass


def exception_summary(exc: BaseException) -> str:
    """An unexpected exception as a run record keeps it: ``Type: first line of its text``.

    Parameters
    ----------
    exc : BaseException
        The exception.

    Returns
    -------
    str
        Its type name, then the first line of its text (whitespace collapsed); the type name alone when
        it has no text.
    """
    lines = str(exc).strip().splitlines()
    first = one_line(lines[0]) if lines else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
