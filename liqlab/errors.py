"""Exceptions that carry a one-line, user-facing message, and the one reader of text input files.

The CLI prints ``LiqlabError`` as ``liqlab: error: <message>`` and exits 2, with no traceback.
"""

from __future__ import annotations

import os
from pathlib import Path


class LiqlabError(Exception):
    """Base class of errors caused by input (data, parameters, network), not by bugs."""

    exit_code = 2


class DataError(LiqlabError, ValueError):
    """A data file violates the dataset format. The message names file, row (timestamp) and problem."""


class ParameterError(LiqlabError, ValueError):
    """A parameter has an unknown name, a wrong type or a value out of range; the message names it."""


class FetchError(LiqlabError):
    """An exchange request failed for good (after retries) or the exchange refused it."""


class OutputError(LiqlabError):
    """An output file or folder cannot be written (read-only, wrong kind, disk full); the message names it."""


def read_text(path: str | os.PathLike, what: str, error: type[LiqlabError] = ParameterError) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or non-UTF-8 file raises ``error`` naming
    ``what`` (e.g. "params file", "--config") and the file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise error(f"{what} {p}: cannot read ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{what} {p} line {line}: not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r})") from None
