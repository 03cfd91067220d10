"""The dataset format's rules: tables, columns, units and bounds, checked row by row; meta.json and its notes.

Tables (parquet, ``ts`` column tz-aware UTC, sorted and unique):

- ``ohlcv``: ts, open, high, low, close (price, USD), volume (base units)[, taker_buy_volume][, mark_close]
- ``open_interest``: ts, open_interest (base units), open_interest_value (USD)
- ``funding``: ts, funding_rate (per funding interval, fraction)
- ``liquidations`` (optional): ts, side ('long'|'short'), price (nullable), amount (base), value (USD)
- ``leverage_tiers`` (optional): tier, min_notional, max_notional, maintenance_margin_rate,
  maintenance_amount, max_leverage (USD notional)

:func:`validate_table` and :func:`validate_meta` raise :class:`~liqlab.errors.DataError` naming file, row and
problem. ``meta["notes"]`` is always a dict of topic → one line of text (:func:`notes_dict`, :func:`with_note`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError

__all__ = [
    "TABLES",
    "NUMERIC",
    "META_REQUIRED",
    "KNOWN_EXCHANGES",
    "MAX_PRICE",
    "MAX_BAR_RANGE",
    "validate_table",
    "validate_meta",
    "empty_table",
    "notes_dict",
    "with_note",
    "OPEN_INTEREST_NOTE",
    "OI_PROXY_NOTE",
]

TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {
    "ohlcv": (("ts", "open", "high", "low", "close", "volume"), ("taker_buy_volume", "mark_close"), True),
    "open_interest": (("ts", "open_interest", "open_interest_value"), (), True),
    "funding": (("ts", "funding_rate"), (), True),
    "liquidations": (("ts", "side", "price", "amount", "value"), ("venue",), False),
    "leverage_tiers": (
        ("tier", "min_notional", "max_notional", "maintenance_margin_rate", "maintenance_amount", "max_leverage"),
        (),
        False,
    ),
}
NUMERIC = {
    "open", "high", "low", "close", "volume", "taker_buy_volume", "mark_close", "open_interest",
    "open_interest_value", "funding_rate", "price", "amount", "value", "min_notional", "max_notional",
    "maintenance_margin_rate", "maintenance_amount", "max_leverage",
}
META_REQUIRED = ("exchange", "symbol", "kind", "contract_size", "quote", "source", "synthetic", "created_at")
KNOWN_EXCHANGES = ("binanceusdm", "binancecoinm", "bybit", "okx")
#: Prices (quote currency, USD) outside (0, MAX_PRICE] are refused: no listed contract trades near 1e9 USD,
#: so such a value is a unit or parsing error, not a market.
MAX_PRICE = 1e9
# the notes topic saying where a dataset's open interest came from when it was not observed (a proxy);
# the engine copies it into every map built from the dataset as ``'<venue>/open_interest'``
OPEN_INTEREST_NOTE = "open_interest"
#: the note of a dataset whose open interest is a proxy built from traded volume (never observed)
OI_PROXY_NOTE = "open interest: proxy from traded volume (not observed)"
#: A bar whose high is more than this multiple of its low is refused (a bad tick or a unit slip; the
#: worst real crash bars are a few times, not a hundred times, their low).
MAX_BAR_RANGE = 100.0


def _row_label(df: pd.DataFrame, i: int) -> str:
    if "ts" in df.columns:
        try:
            return f"row {i} (ts {pd.Timestamp(df['ts'].iloc[i]).isoformat()})"
        except Exception:  # noqa: BLE001 - label only
            pass
    if "tier" in df.columns:
        return f"row {i} (tier {df['tier'].iloc[i]})"
    return f"row {i}"


def validate_table(name: str, df: pd.DataFrame, source: str | os.PathLike = "<memory>") -> pd.DataFrame:
    """Check one table against the format and return it with canonical dtypes.

    Parameters
    ----------
    name : str
        Table name, a key of :data:`TABLES`.
    df : pd.DataFrame
        The table, rows × columns (prices USD, amounts base units, ``ts`` tz-aware UTC).
    source : str or os.PathLike
        Where the table came from, named in errors.

    Returns
    -------
    pd.DataFrame
        The columns in format order, numbers as float64, ``ts`` as ``datetime64[ns, UTC]``.

    Raises
    ------
    DataError
        Naming ``source``, the row (and its ts or tier) and the problem.
    """
    if name not in TABLES:
        raise DataError(f"{source}: unknown table {name!r}")
    df = _known_columns(name, df, source)
    _numeric_dtypes(df, source)
    if "ts" in df.columns:
        _check_times(name, df, source)
    _ROW_CHECKS[name](df, _first_bad(df, source))
    return df


def _known_columns(name: str, df: pd.DataFrame, source: Any) -> pd.DataFrame:
    """The required and optional columns of ``name`` in format order; DataError for missing or unknown ones."""
    required, optional, _ = TABLES[name]
    cols = list(df.columns)
    missing = [c for c in required if c not in cols]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; expected {list(required)}")
    unknown = [c for c in cols if c not in required and c not in optional]
    if unknown:
        raise DataError(f"{source}: unknown column(s) {unknown}; allowed {list(required + optional)}")
    return df.loc[:, [c for c in required + optional if c in cols]].reset_index(drop=True)


def _numeric_dtypes(df: pd.DataFrame, source: Any) -> None:
    """Numeric columns to float64 in place; text that is not a number is a DataError naming its row."""
    for c in df.columns:
        if c in NUMERIC:
            if not (pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])):
                conv = pd.to_numeric(df[c], errors="coerce")
                bad = conv.isna() & df[c].notna()
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(f"{source}: {_row_label(df, i)}: column {c!r} is not numeric ({df[c].iloc[i]!r})")
                df[c] = conv
            df[c] = df[c].astype("float64")


def _check_times(name: str, df: pd.DataFrame, source: Any) -> None:
    """``ts`` tz-aware UTC (made ``datetime64[ns, UTC]`` in place), present, sorted and (but for
    liquidation events) unique."""
    ts = df["ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataError(f"{source}: column 'ts' must be a timestamp, got dtype {ts.dtype}")
    if getattr(ts.dt, "tz", None) is None:
        raise DataError(f"{source}: column 'ts' has no time zone; timestamps must be UTC")
    if str(ts.dt.tz) != "UTC":
        raise DataError(f"{source}: column 'ts' is in time zone {ts.dt.tz}, must be UTC")
    df["ts"] = ts.astype("datetime64[ns, UTC]")
    if ts.isna().any():
        i = int(np.flatnonzero(ts.isna().to_numpy())[0])
        raise DataError(f"{source}: row {i}: missing timestamp")
    v = np.asarray(df["ts"].array.asi8)
    if len(v) > 1:
        d = np.diff(v)
        if (d < 0).any():
            i = int(np.flatnonzero(d < 0)[0]) + 1
            raise DataError(f"{source}: {_row_label(df, i)}: timestamps not sorted (earlier than the row before)")
        if name != "liquidations" and (d == 0).any():
            i = int(np.flatnonzero(d == 0)[0]) + 1
            raise DataError(f"{source}: {_row_label(df, i)}: duplicate timestamp")


_Fail = Callable[[np.ndarray, str], None]


def _first_bad(df: pd.DataFrame, source: Any) -> _Fail:
    """``fail(mask, problem)``: DataError naming the first row where ``mask`` holds, if any."""

    def fail(mask: np.ndarray, problem: str) -> None:
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            raise DataError(f"{source}: {_row_label(df, i)}: {problem}")

    return fail


def _check_ohlcv(df: pd.DataFrame, fail: _Fail) -> None:
    for c in ("open", "high", "low", "close") + (("mark_close",) if "mark_close" in df else ()):
        x = df[c].to_numpy()
        fail(~np.isfinite(x), f"{c} is not finite ({x[~np.isfinite(x)][0] if (~np.isfinite(x)).any() else ''})")
        fail(x <= 0, f"{c} must be > 0")
        bad = x > MAX_PRICE
        fail(bad, f"{c} {float(x[bad][0]) if bad.any() else 0:g} is beyond {MAX_PRICE:g} (wrong units or a bad value?)")
    o, h, l, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
    fail(h < np.maximum(o, c), "high is below max(open, close)")
    fail(l > np.minimum(o, c), "low is above min(open, close)")
    wide = h > MAX_BAR_RANGE * l
    if wide.any():
        fail(wide, f"high {float(h[wide][0]):.8g} is over {MAX_BAR_RANGE:g}x the low {float(l[wide][0]):.8g} "
                   f"in one bar (a bad tick?)")
    vol = df["volume"].to_numpy()
    fail(~np.isfinite(vol) | (vol < 0), "volume must be finite and >= 0")
    if "taker_buy_volume" in df:
        tb = df["taker_buy_volume"].to_numpy()
        fail(~np.isfinite(tb) | (tb < 0), "taker_buy_volume must be finite and >= 0")
        fail(tb > vol * (1 + 1e-9) + 1e-12, "taker_buy_volume exceeds volume")


def _check_open_interest(df: pd.DataFrame, fail: _Fail) -> None:
    for c in ("open_interest", "open_interest_value"):
        x = df[c].to_numpy()
        fail(~np.isfinite(x), f"{c} is not finite")
        fail(x < 0, f"{c} must be >= 0")


def _check_funding(df: pd.DataFrame, fail: _Fail) -> None:
    x = df["funding_rate"].to_numpy()
    fail(~np.isfinite(x), "funding_rate is not finite")
    fail(np.abs(x) > 0.05, "funding_rate beyond ±5% per interval (wrong units?)")


def _check_liquidations(df: pd.DataFrame, fail: _Fail) -> None:
    side = df["side"].astype("string")
    fail(~side.isin(["long", "short"]).to_numpy(dtype=bool, na_value=False), "side must be 'long' or 'short'")
    df["side"] = side.astype(object)
    p = df["price"].to_numpy()
    fail(np.isfinite(p) & (p <= 0), "price must be > 0 (or empty for per-bar sums)")
    fail(np.isinf(p), "price is not finite")
    fail(np.isfinite(p) & (p > MAX_PRICE), f"price is beyond {MAX_PRICE:g} (wrong units or a bad value?)")
    for c in ("amount", "value"):
        x = df[c].to_numpy()
        fail(~np.isfinite(x) | (x < 0), f"{c} must be finite and >= 0")
    if "venue" in df:
        df["venue"] = df["venue"].astype(object)


def _check_tiers(df: pd.DataFrame, fail: _Fail) -> None:
    lo, hi = df["min_notional"].to_numpy(), df["max_notional"].to_numpy()
    mmr, lev = df["maintenance_margin_rate"].to_numpy(), df["max_leverage"].to_numpy()
    fail(~np.isfinite(lo) | (lo < 0), "min_notional must be finite and >= 0")
    fail(~(hi > lo), "max_notional must exceed min_notional")
    fail(~((mmr > 0) & (mmr < 1)), "maintenance_margin_rate must be in (0, 1)")
    fail(~np.isfinite(df["maintenance_amount"].to_numpy()), "maintenance_amount is not finite")
    fail(~(lev >= 1), "max_leverage must be >= 1")
    if len(df) > 1:
        fail(np.r_[False, np.diff(lo) <= 0], "tiers must be sorted by min_notional")


_ROW_CHECKS: dict[str, Callable[[pd.DataFrame, _Fail], None]] = {
    "ohlcv": _check_ohlcv,
    "open_interest": _check_open_interest,
    "funding": _check_funding,
    "liquidations": _check_liquidations,
    "leverage_tiers": _check_tiers,
}


def empty_table(name: str) -> pd.DataFrame:
    """A table with the required columns of ``name`` and no rows (canonical dtypes).

    Parameters
    ----------
    name : str
        Table name, a key of :data:`TABLES`.

    Returns
    -------
    pd.DataFrame
        0 rows; ``ts`` ``datetime64[ns, UTC]``, ``side`` object, ``tier`` int64, the rest float64.
    """
    required = TABLES[name][0]
    cols: dict[str, Any] = {}
    for c in required:
        if c == "ts":
            cols[c] = pd.Series([], dtype="datetime64[ns, UTC]")
        elif c == "side":
            cols[c] = pd.Series([], dtype=object)
        elif c == "tier":
            cols[c] = pd.Series([], dtype="int64")
        else:
            cols[c] = pd.Series([], dtype="float64")
    return pd.DataFrame(cols)


def notes_dict(notes: Any) -> dict[str, str]:
    """Notes in their one shape: a dict of topic → one line of text.

    Parameters
    ----------
    notes : dict, str, list or None
        Notes as stored by any version of liqlab: a dict (kept, values made text), a string (older
        datasets: becomes ``{"note": text}``), a list of strings (older heatmaps: ``{"note_1": ..., ...}``)
        or None/empty (``{}``).

    Returns
    -------
    dict[str, str]
    """
    if notes is None or notes == "" or notes == []:
        return {}
    if isinstance(notes, Mapping):
        return {str(k): str(v) for k, v in notes.items()}
    if isinstance(notes, str):
        return {"note": notes}
    if isinstance(notes, (list, tuple)):
        return {f"note_{i}": str(v) for i, v in enumerate(notes, 1)}
    return {"note": str(notes)}


def with_note(meta: Mapping[str, Any], key: str, text: str) -> dict:
    """A copy of ``meta`` whose ``notes`` dict has ``notes[key] = text`` (older notes upgraded, see :func:`notes_dict`).

    Parameters
    ----------
    meta : Mapping
        A meta.json object.
    key : str
        The note's topic.
    text : str

    Returns
    -------
    dict
    """
    return {**meta, "notes": {**notes_dict(meta.get("notes")), str(key): str(text)}}


def validate_meta(meta: Mapping[str, Any], source: str | os.PathLike = "meta.json") -> dict:
    """Check a ``meta.json`` object and return it with its notes in their one shape.

    Parameters
    ----------
    meta : Mapping
        The parsed ``meta.json``: :data:`META_REQUIRED` keys and any others.
    source : str or os.PathLike
        Where it came from, named in errors.

    Returns
    -------
    dict
        A copy; ``notes`` (when present) a dict of topic → text (older strings and lists upgraded, see
        :func:`notes_dict`); a fetch's unfinished ranges, which older versions kept in
        ``notes["fetch_pending"]``, moved to ``meta["fetch_pending"]``.

    Raises
    ------
    DataError
        Naming ``source`` and the key at fault.
    """
    if not isinstance(meta, Mapping):
        raise DataError(f"{source}: must be a JSON object")
    missing = [k for k in META_REQUIRED if k not in meta]
    if missing:
        raise DataError(f"{source}: missing key(s) {missing}")
    if meta["exchange"] not in KNOWN_EXCHANGES:
        raise DataError(f"{source}: unknown exchange {meta['exchange']!r}; known: {', '.join(KNOWN_EXCHANGES)}")
    if meta["kind"] not in ("linear", "inverse"):
        raise DataError(f"{source}: kind must be 'linear' or 'inverse', got {meta['kind']!r}")
    if not isinstance(meta["synthetic"], bool):
        raise DataError(f"{source}: synthetic must be true or false, got {meta['synthetic']!r}")
    try:
        cs = float(meta["contract_size"])
    except (TypeError, ValueError):
        raise DataError(f"{source}: contract_size must be a number, got {meta['contract_size']!r}") from None
    if not (cs > 0 and np.isfinite(cs)):
        raise DataError(f"{source}: contract_size must be > 0, got {meta['contract_size']!r}")
    if not isinstance(meta["symbol"], str) or "/" not in meta["symbol"]:
        raise DataError(f"{source}: symbol must be a ccxt unified symbol like 'BTC/USDT:USDT', got {meta['symbol']!r}")
    out = dict(meta)
    if "notes" in out:
        notes = out["notes"]
        if isinstance(notes, Mapping) and isinstance(notes.get("fetch_pending"), Mapping):
            notes = {k: v for k, v in notes.items() if k != "fetch_pending"}  # state, not a note
            out.setdefault("fetch_pending", meta["notes"]["fetch_pending"])
        out["notes"] = notes_dict(notes)  # older datasets stored a string
    return out


