"""Small helpers shared by every layer: times, JSON, progress bars, one-line messages, the venue list.

One home for each: a module that needs one of these imports it from here and never keeps its own copy.
This module imports nothing from liqlab except :mod:`liqlab.errors`, so any layer may use it; pandas and
tqdm are imported inside the functions that need them (nothing happens at import).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "VENUES",
    "TRAIN_FRACTION",
    "canonical_venue",
    "to_ns",
    "utc",
    "jsonable",
    "one_line",
    "progress",
]

VENUES: tuple[str, ...] = ("binanceusdm", "bybit", "okx")
"""The venues liqlab simulates, fetches and records by default (ccxt ids of the USD-margined markets)."""

TRAIN_FRACTION: float = 0.6
"""Chronological split used wherever a choice is fitted on the first part of a sample and judged on the
rest (fit, the magnet grid, the validation R² gain): the first 60 % of the steps select, the last 40 %
test."""

_VENUE_ALIASES: dict[str, str] = {
    "binance": "binanceusdm",
    "binanceusdm": "binanceusdm",
    "binancecoinm": "binancecoinm",
    "bybit": "bybit",
    "okx": "okx",
    "okex": "okx",
}


def canonical_venue(venue: str) -> str | None:
    """The ccxt id of a venue name or alias ('binance' → 'binanceusdm', 'okex' → 'okx'); None when unknown."""
    return _VENUE_ALIASES.get(str(venue).strip().lower())


def to_ns(x: Any) -> np.ndarray:
    """Times → int64 nanoseconds since the epoch (UTC).

    Parameters
    ----------
    x : scalar or sequence
        A time or a sequence of times: ISO strings, datetimes, ``pd.Timestamp``, ``np.datetime64`` of any
        unit, a ``DatetimeIndex`` or a datetime Series. Naive times are UTC; aware ones are converted. An
        integer array is taken as nanoseconds already.

    Returns
    -------
    np.ndarray
        int64, shape (n,) (a scalar gives shape (1,)).
    """
    import pandas as pd

    if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
        return x.astype(np.int64)
    if isinstance(x, (str, _dt.date, pd.Timestamp, np.datetime64)) or np.ndim(x) == 0:
        x = [x]
    if isinstance(x, np.ndarray) and x.dtype.kind == "M":
        return x.astype("datetime64[ns]").astype(np.int64)
    idx = pd.DatetimeIndex(pd.to_datetime(x if hasattr(x, "dtype") else list(x), utc=True))
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


def utc(x: Any) -> "Any":
    """One time (ISO text, datetime, Timestamp, datetime64, epoch ns; naive = UTC) as a tz-aware UTC
    ``pd.Timestamp``. Raises ``ValueError`` for NaT or text that is not a time."""
    import pandas as pd

    ts = pd.Timestamp(x)
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"not a time: {x!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def jsonable(x: Any) -> Any:
    """``x`` as plain, strict JSON values (what ``json.dumps(..., allow_nan=False)`` accepts).

    Mappings become dicts with string keys; lists, tuples and arrays become lists; numpy scalars become
    Python numbers; NaN and ±inf become ``None`` (JSON has neither); times and dates become ISO 8601
    text; paths become text. Anything else is returned as is.
    """
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (_dt.date, _dt.datetime)):  # pd.Timestamp is a datetime
        return x.isoformat()
    if isinstance(x, np.datetime64):
        return str(x)
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    return x


def one_line(message: BaseException | str) -> str:
    """An error or message on one line (whitespace collapsed); an exception without text gives its type name."""
    text = " ".join(str(message).split())
    if not text and isinstance(message, BaseException):
        return type(message).__name__
    return text


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             enabled: bool | None = None, leave: bool = False):
    """A tqdm progress bar (``enabled``: True, False, or None = only where the output is a terminal).

    Use as an iterable wrapper (``for x in progress(xs, desc=...)``) or, with ``total``, as a counter
    (``with progress(total=n) as bar: bar.update()``).
    """
    from tqdm.auto import tqdm

    disable = None if enabled is None else not enabled  # tqdm: None = disable when not a TTY
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, leave=leave, mininterval=0.5)
