"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``LiqlabError`` as ``liqlab: error: <message>`` and exits 2, with no traceback.
"""

from __future__ import annotations


class LiqlabError(Exception):
    """Base class of errors caused by input (data, parameters, network), not by bugs."""

    exit_code = 2


class DataError(LiqlabError, ValueError):
    """A data file violates the dataset format. The message names file, row (timestamp) and problem."""


class ParameterError(LiqlabError, ValueError):
    """A parameter has an unknown name, a wrong type or a value out of range; the message names it."""


class FetchError(LiqlabError):
    """An exchange request failed for good (after retries) or the exchange refused it."""
