"""Bulk importers: files researchers already have on disk -> a liqlab dataset directory.

Formats (``FORMATS``):

- ``binance-vision``: data.binance.vision futures CSV dumps (``klines``, ``markPriceKlines``, ``metrics``
  [open interest], ``fundingRate``, ``liquidationSnapshot``), daily or monthly, zipped or not, with or
  without a header row.
- ``freqtrade``: freqtrade feather / json OHLCV, ``mark`` and ``funding_rate`` files (rate in ``open``).
- ``coinglass-csv``: CSV exports with ``price_*`` OHLC, ``oi_*`` (USD), ``funding_*`` and optional
  ``liquidation_long_usd`` / ``liquidation_short_usd`` columns.
- ``ccxt-tiers``: ccxt ``fetch_leverage_tiers`` / ``fetch_market_leverage_tiers`` JSON.

Every import goes through :func:`update_dataset`: new rows are merged with what the dataset already holds
(one row per timestamp; the same value twice is fine, two different values for one timestamp is a
``DataError`` naming file and line), and the directory is rewritten atomically or not at all.
Times are UTC; prices in quote currency (USD); amounts in base units.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError

__all__ = [
    "FORMATS",
    "BINANCE_KINDS",
    "ImportResult",
    "import_files",
    "update_dataset",
    "empty_table",
]

FORMATS = ("binance-vision", "freqtrade", "coinglass-csv", "ccxt-tiers")
BINANCE_KINDS = ("klines", "markPriceKlines", "metrics", "fundingRate", "liquidationSnapshot")
FREQTRADE_KINDS = ("ohlcv", "mark", "funding")
FUNDING_UNITS = ("auto", "fraction", "percent")

# internal columns that carry provenance through a merge (file label, 1-based line) and are dropped on write
_SRC, _LINE = "_src", "_line"
# a row of these pseudo-tables is merged into ``ohlcv`` (mark_close only)
_MARK = "mark"

_KLINE_COLS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)
_BV_COLUMNS: dict[str, tuple[str, ...]] = {
    "klines": _KLINE_COLS,
    "markPriceKlines": _KLINE_COLS,
    "metrics": (
        "create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
        "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio", "count_long_short_ratio",
        "sum_taker_long_short_vol_ratio",
    ),
    "fundingRate": ("calc_time", "funding_interval_hours", "last_funding_rate"),
    "liquidationSnapshot": (
        "time", "side", "order_type", "time_in_force", "original_quantity", "price", "average_price",
        "order_status", "last_fill_quantity", "accumulated_fill_quantity",
    ),
}
# columns the importer actually reads (a header may carry more or fewer of the others)
_BV_NEEDED: dict[str, tuple[str, ...]] = {
    "klines": ("open_time", "open", "high", "low", "close", "volume"),
    "markPriceKlines": ("open_time", "close"),
    "metrics": ("create_time", "sum_open_interest", "sum_open_interest_value"),
    "fundingRate": ("calc_time", "last_funding_rate"),
    "liquidationSnapshot": ("time", "side", "average_price", "accumulated_fill_quantity"),
}


@dataclass(frozen=True)
class ImportResult:
    """What an import (or a fetch chunk) did to a dataset directory."""

    path: Path
    rows: dict[str, int]          # rows per table after the update
    added: dict[str, int]         # rows per table that were not there before
    changed: bool                 # False when the directory was left byte-for-byte as it was
    files: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what the import could not tell (one line each; also in meta.json notes)


@dataclass
class _Parsed:
    """Tables parsed from one or more files (with _src/_line provenance) plus meta notes."""

    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, df: pd.DataFrame) -> None:
        self.tables.setdefault(name, []).append(df)


# ------------------------------------------------------------------------------------ empty tables


def empty_table(name: str) -> pd.DataFrame:
    """A table with the required columns of ``name`` and no rows (canonical dtypes)."""
    from liqlab.io.dataset import TABLES

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


# ------------------------------------------------------------------------------------ file reading


def _iter_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of every data file in ``path`` (a zip yields its members)."""
    import zipfile

    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; pass the files (e.g. {path}/*.zip)")
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if not names:
                    raise DataError(f"{path}: empty zip archive")
                for n in names:
                    yield f"{path}:{n}", zf.read(n)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{path}: not a readable zip archive ({exc})") from None
    elif path.name.lower().endswith(".gz"):
        import gzip

        try:
            yield str(path), gzip.decompress(path.read_bytes())
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    else:
        yield str(path), path.read_bytes()


def _csv_rows(label: str, raw: bytes) -> tuple[list[list[str]], list[int]]:
    """Non-empty CSV records and their 1-based line numbers in the source file."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text (byte {exc.start}); is this a CSV file?") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for rec in reader:
            if rec and any(f.strip() for f in rec):
                rows.append([f.strip() for f in rec])
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(f"{label} line {reader.line_num}: unreadable CSV ({exc})") from None
    return rows, lines


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def _table_from_rows(
    label: str, rows: list[list[str]], lines: list[int], expected: Sequence[str], needed: Sequence[str],
    allow_empty: bool = False,
) -> pd.DataFrame:
    """String DataFrame with named columns and ``_line``; header optional (positional when absent).

    A file without data rows (empty, or a header only) raises DataError naming it unless ``allow_empty``.
    """
    if not rows:
        if not allow_empty:
            raise DataError(f"{label}: empty file (no rows)")
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in needed} | {_LINE: pd.Series([], dtype="int64")})
    first = rows[0]
    if not _is_number(first[0]):  # a header row
        header = [h.strip().lower() for h in first]
        missing = [c for c in needed if c not in header]
        if missing:
            raise DataError(
                f"{label} line {lines[0]}: bad header {first}: missing column(s) {missing}; expected {list(expected)}"
            )
        names, body, body_lines = header, rows[1:], lines[1:]
        if not body and not allow_empty:
            raise DataError(f"{label}: only a header (line {lines[0]}), no data rows")
    else:
        names, body, body_lines = [c.lower() for c in expected], rows, lines
    n = len(names)
    for rec, ln in zip(body, body_lines):
        if len(rec) != n:
            what = "truncated row" if len(rec) < n else "too many fields"
            raise DataError(f"{label} line {ln}: {what}: expected {n} fields, got {len(rec)}")
    arr = np.array(body, dtype=object).reshape(len(body), n) if body else np.empty((0, n), dtype=object)
    idx = [names.index(c) for c in needed]
    df = pd.DataFrame({c: arr[:, i] for c, i in zip(needed, idx)})
    df[_LINE] = np.asarray(body_lines, dtype=np.int64)
    return df


def _numeric(df: pd.DataFrame, cols: Iterable[str], label: str) -> None:
    """Convert string columns to float64 in place; a non-numeric cell raises naming file and line."""
    for c in cols:
        s = df[c]
        conv = pd.to_numeric(s, errors="coerce")
        bad = conv.isna().to_numpy() & ~s.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{label} line {df[_LINE].iloc[i]}: column {c!r} is not numeric ({s.iloc[i]!r})")
        df[c] = conv.astype("float64")


#: Epoch units and their length in ns. The unit of a file's epoch numbers is told by magnitude: between
#: 2000 and 2100 an epoch time in s is ~1e9, in ms ~1e12, in µs ~1e15, in ns ~1e18 (ranges that never
#: overlap); Binance's dumps moved from ms to µs in 2025, other exports use s.
EPOCH_UNITS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_EPOCH_RANGE_S = (946_684_800, 4_102_444_800)  # 2000-01-01 .. 2100-01-01 UTC, in seconds
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
# ISO 8601 date, optional time (':' separated) and optional offset; a naive time is UTC
_ISO_RE = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?"


def _line(df: pd.DataFrame, i: int) -> int:
    return int(df[_LINE].iloc[i])


def _epoch_units(v: np.ndarray) -> np.ndarray:
    """The unit of each epoch number by magnitude ('' when none fits the years 2000-2100)."""
    out = np.full(v.shape, "", dtype=object)
    lo, hi = _EPOCH_RANGE_S
    for unit, ns in EPOCH_UNITS.items():
        f = 1_000_000_000 // ns
        out[(v >= lo * f) & (v < hi * f)] = unit
    return out


def _epoch(df: pd.DataFrame, col: str, label: str) -> pd.Series:
    """Epoch numbers (s, ms, µs or ns, told by magnitude; one unit per file) -> UTC timestamps.

    A number that is no epoch time between 2000 and 2100 in any unit, or a file mixing units, raises
    DataError naming the line.
    """
    raw = df[col]
    v = pd.to_numeric(raw, errors="coerce")
    bad = v.isna().to_numpy() | ~np.isfinite(v.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{label} line {_line(df, i)}: column {col!r} is not a timestamp ({raw.iloc[i]!r})")
    units = _epoch_units(v.to_numpy(dtype=np.float64))
    none = units == ""
    if none.any():
        i = int(np.flatnonzero(none)[0])
        raise DataError(f"{label} line {_line(df, i)}: column {col!r}: {raw.iloc[i]!r} is not an epoch time in "
                        f"s, ms, µs or ns between 2000 and 2100")
    unit = units[0] if len(units) else "ms"
    other = units != unit
    if other.any():
        i = int(np.flatnonzero(other)[0])
        raise DataError(f"{label} line {_line(df, i)}: column {col!r} is in {_UNIT_NAMES[units[i]]} but line "
                        f"{_line(df, 0)} is in {_UNIT_NAMES[unit]}; one time unit per file")
    if pd.api.types.is_integer_dtype(v):
        ns = v.to_numpy(dtype=np.int64) * EPOCH_UNITS[unit]
    else:
        ns = np.rint(v.to_numpy(dtype=np.float64) * EPOCH_UNITS[unit]).astype(np.int64)
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True), index=df.index).astype("datetime64[ns, UTC]")


def _iso_time(df: pd.DataFrame, col: str, label: str) -> pd.Series:
    """ISO 8601 text (naive = UTC; offsets converted to UTC) -> UTC timestamps. Other forms, such as the
    ambiguous day/month '02/01/2026', raise DataError naming the line."""
    s = df[col].astype(str).str.strip()
    ok = s.str.fullmatch(_ISO_RE).to_numpy(dtype=bool, na_value=False)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise DataError(f"{label} line {_line(df, i)}: column {col!r}: {df[col].iloc[i]!r} is not an ISO 8601 time "
                        f"(YYYY-MM-DD[ HH:MM[:SS]][Z|+HH:MM]); day/month forms like '02/01/2026' are ambiguous")
    ts = pd.to_datetime(s.str.replace(r"\s*UTC$", "Z", regex=True), utc=True, errors="coerce", format="ISO8601")
    bad = ts.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{label} line {_line(df, i)}: column {col!r} is not a valid time ({df[col].iloc[i]!r})")
    return ts.astype("datetime64[ns, UTC]")


def _text_time(df: pd.DataFrame, col: str, label: str) -> pd.Series:
    """Epoch numbers (see :func:`_epoch`) or ISO 8601 text -> UTC timestamps; a bad cell names its line."""
    s = df[col]
    if len(s) and _is_number(str(s.iloc[0])):
        return _epoch(df, col, label)
    return _iso_time(df, col, label)


def _fmt_span(ns: int) -> str:
    """A duration as a bar size: 300e9 -> '5m', 3600e9 -> '1h', 0.06e9 -> '60ms'."""
    for unit, size in (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("m", 60 * 10**9), ("s", 10**9), ("ms", 10**6)):
        if ns >= size and ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


#: bar size in a file name: BTCUSDT-1m-2024-03-01.csv, BTC_USDT_USDT-5m-futures.feather
_BAR_IN_NAME = re.compile(r"-(\d+)([smhdw])-")
_BAR_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3_600 * 10**9, "d": 86_400 * 10**9, "w": 7 * 86_400 * 10**9}
#: this many consecutive equal gaps of k bars (k > 1) are a coarser bar size, not missing bars
_COARSE_RUN = 3


def _bar_from_name(label: str) -> int | None:
    """The bar size (ns) a file name states, or None."""
    m = _BAR_IN_NAME.search(re.split(r"[/:]", label)[-1])
    return int(m.group(1)) * _BAR_UNIT_NS[m.group(2)] if m else None


def _bar_spacing(ts: pd.Series, df: pd.DataFrame, label: str) -> int | None:
    """Check that a file's bars are one bar size apart (gaps of whole bars allowed); return it in ns.

    The bar size is the one the file name states, else the most common spacing between distinct times
    (in time order; repeated times are left to the merge). Refused (DataError naming the line): a
    spacing under 1 s (a wrong time unit), a spacing that is not a whole number of bars, or a run of
    equal multi-bar gaps (a section at another bar size).
    """
    t = np.asarray(ts.array.asi8, dtype=np.int64)
    if len(t) < 2:
        return _bar_from_name(label)
    order = np.argsort(t, kind="stable")
    t = t[order]
    df = df.iloc[order]
    d = np.diff(t)
    pos = d[d > 0]
    if not len(pos):
        return _bar_from_name(label)
    named = _bar_from_name(label)
    vals, counts = np.unique(pos, return_counts=True)
    bar = named if named is not None else int(vals[counts.argmax()])
    source = "its name says" if named is not None else "most rows are"
    if bar < 10**9:
        raise DataError(f"{label}: bars {_fmt_span(bar)} apart is not a bar size (epoch times in a wrong unit?)")
    off = (d > 0) & (d % bar != 0)
    if off.any():
        i = int(np.flatnonzero(off)[0]) + 1
        raise DataError(f"{label} line {_line(df, i)}: bar {_fmt_span(int(d[i - 1]))} after the previous one, but "
                        f"{source} {_fmt_span(bar)} apart (mixed bar sizes or a wrong time unit); one bar size per file")
    k = d // bar
    run = 1
    for i in range(1, len(k)):
        run = run + 1 if k[i] > 1 and k[i] == k[i - 1] else 1
        if run >= _COARSE_RUN:
            j = i - _COARSE_RUN + 2  # first row of the run
            raise DataError(f"{label} line {_line(df, j)}: rows from here are {_fmt_span(int(d[i]))} apart, but "
                            f"{source} {_fmt_span(bar)} apart (mixed bar sizes); one bar size per file")
    return bar


def _tag(df: pd.DataFrame, label: str) -> pd.DataFrame:
    df = df.copy()
    df[_SRC] = label
    if _LINE not in df:
        df[_LINE] = np.arange(1, len(df) + 1, dtype=np.int64)
    return df


# ---------------------------------------------------------------------------------- binance-vision


def _binance_kind(label: str, kind: str | None) -> str:
    if kind:
        if kind not in BINANCE_KINDS:
            raise ParameterError(f"--kind: unknown binance-vision kind {kind!r}; choose from {list(BINANCE_KINDS)}")
        return kind
    low = label.lower()
    for k in ("liquidationsnapshot", "fundingrate", "metrics", "markpriceklines"):
        if k in low:
            return {"liquidationsnapshot": "liquidationSnapshot", "fundingrate": "fundingRate",
                    "metrics": "metrics", "markpriceklines": "markPriceKlines"}[k]
    if "indexpriceklines" in low or "premiumindexklines" in low:
        raise ParameterError(f"{label}: index/premium-index klines are not imported (only klines and markPriceKlines)")
    name = re.split(r"[/:]", label)[-1]
    if "mark" in name.lower():
        return "markPriceKlines"
    if re.match(r"^[A-Z0-9]+-\d+[smhdwM]-\d{4}-\d{2}(-\d{2})?\.csv$", name):
        return "klines"
    raise ParameterError(
        f"{label}: cannot tell which Binance dump this is from its name; pass --kind ({'|'.join(BINANCE_KINDS)})"
    )


def _read_binance_vision(label: str, raw: bytes, kind: str, parsed: _Parsed) -> int:
    rows, lines = _csv_rows(label, raw)
    needed = _BV_NEEDED[kind]
    # taker-buy volume when the file has it (headerless files always do: 12 positional columns)
    has_header = bool(rows) and not _is_number(rows[0][0])
    taker = kind == "klines" and (not has_header or "taker_buy_volume" in [h.lower() for h in rows[0]])
    if taker:
        needed = needed + ("taker_buy_volume",)
    # a day without forced orders is a header-only liquidationSnapshot file: nothing to import, not an error
    df = _table_from_rows(label, rows, lines, _BV_COLUMNS[kind], needed, allow_empty=kind == "liquidationSnapshot")
    if kind in ("klines", "markPriceKlines"):
        ts = _epoch(df, "open_time", label)
        _bar_spacing(ts, df, label)
        if kind == "markPriceKlines":
            _numeric(df, ["close"], label)
            out = pd.DataFrame({"ts": ts, "mark_close": df["close"], _LINE: df[_LINE]})
            parsed.add(_MARK, _tag(out, label))
        else:
            cols = ["open", "high", "low", "close", "volume"] + (["taker_buy_volume"] if taker else [])
            _numeric(df, cols, label)
            out = pd.DataFrame({"ts": ts, **{c: df[c] for c in cols}, _LINE: df[_LINE]})
            parsed.add("ohlcv", _tag(out, label))
    elif kind == "metrics":
        ts = _text_time(df, "create_time", label)
        _numeric(df, ["sum_open_interest", "sum_open_interest_value"], label)
        out = pd.DataFrame({"ts": ts, "open_interest": df["sum_open_interest"],
                            "open_interest_value": df["sum_open_interest_value"], _LINE: df[_LINE]})
        parsed.add("open_interest", _tag(out, label))
        parsed.notes["open_interest_source"] = "binance-vision metrics: sum_open_interest (base), sum_open_interest_value (USD), 5m"
    elif kind == "fundingRate":
        ts = _epoch(df, "calc_time", label)
        _numeric(df, ["last_funding_rate"], label)
        out = pd.DataFrame({"ts": ts, "funding_rate": df["last_funding_rate"], _LINE: df[_LINE]})
        parsed.add("funding", _tag(out, label))
    elif kind == "liquidationSnapshot":
        ts = _epoch(df, "time", label)
        _numeric(df, ["average_price", "accumulated_fill_quantity"], label)
        side = df["side"].str.upper()
        bad = ~side.isin(["BUY", "SELL"]).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{label} line {df[_LINE].iloc[i]}: column 'side' must be BUY or SELL ({df['side'].iloc[i]!r})")
        price = df["average_price"]
        amount = df["accumulated_fill_quantity"]
        out = pd.DataFrame({
            "ts": ts,
            # the liquidation order SELLs when a long is liquidated
            "side": np.where(side == "SELL", "long", "short").astype(object),
            "price": price, "amount": amount, "value": amount * price, _LINE: df[_LINE],
        })
        parsed.add("liquidations", _tag(out, label))
        parsed.notes["liquidations_source"] = (
            "binance-vision liquidationSnapshot: sampled forced orders (at most one per second per symbol), "
            "a lower bound of realized liquidations"
        )
    return len(df)


# ---------------------------------------------------------------------------------------- freqtrade


def _freqtrade_kind(label: str, kind: str | None) -> str:
    if kind:
        if kind not in FREQTRADE_KINDS:
            raise ParameterError(f"--kind: unknown freqtrade kind {kind!r}; choose from {list(FREQTRADE_KINDS)}")
        return kind
    name = Path(label).name.lower()
    if "funding" in name:
        return "funding"
    if "mark" in name:
        return "mark"
    return "ohlcv"


def _read_freqtrade(label: str, raw: bytes, kind: str, parsed: _Parsed) -> int:
    name = label.lower()
    if name.endswith(".feather"):
        try:
            df = pd.read_feather(io.BytesIO(raw))
        except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
            raise DataError(f"{label}: cannot read feather ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        missing = [c for c in ("date", "open", "high", "low", "close", "volume") if c not in df.columns]
        if missing:
            raise DataError(f"{label}: bad columns {list(df.columns)}: missing {missing} (freqtrade OHLCV feather)")
        ts = df["date"]
        if not pd.api.types.is_datetime64_any_dtype(ts):
            raise DataError(f"{label}: column 'date' is not a timestamp (dtype {ts.dtype})")
        ts = (ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")).astype("datetime64[ns, UTC]")
        if not len(df):
            raise DataError(f"{label}: no rows")
        body = df[["open", "high", "low", "close", "volume"]].copy()
        body[_LINE] = np.arange(1, len(df) + 1, dtype=np.int64)  # feather has rows, not lines
        for c in ("open", "high", "low", "close", "volume"):
            if not pd.api.types.is_numeric_dtype(body[c]):
                body[c] = body[c].astype(object)
                _numeric(body, [c], f"{label} (row)")
    else:  # json: [[ms, o, h, l, c, v], ...] (freqtrade's json / json.gz data format)
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
            raise DataError(f"{label}{where}: invalid JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(data, list):
            raise DataError(f"{label}: expected a JSON list of [timestamp_ms, open, high, low, close, volume]")
        if not data:
            raise DataError(f"{label}: empty list (no rows)")
        for i, rec in enumerate(data):
            if not isinstance(rec, list) or len(rec) != 6:
                raise DataError(f"{label} row {i + 1}: expected [timestamp_ms, open, high, low, close, volume], got {rec!r}"[:300])
        arr = np.array(data, dtype=object).reshape(len(data), 6)
        body = pd.DataFrame({c: arr[:, i + 1] for i, c in enumerate(("open", "high", "low", "close", "volume"))})
        body["t"] = arr[:, 0]
        body[_LINE] = np.arange(1, len(data) + 1, dtype=np.int64)
        _numeric(body, ["open", "high", "low", "close", "volume"], f"{label} (row)")
        ts = _epoch(body, "t", f"{label} (row)")
    if kind != "funding":
        _bar_spacing(ts.reset_index(drop=True), body.reset_index(drop=True), f"{label} (row)")
    if kind == "funding":
        out = pd.DataFrame({"ts": ts, "funding_rate": body["open"], _LINE: body[_LINE]})
        parsed.add("funding", _tag(out, label))
        parsed.notes["funding_source"] = "freqtrade funding_rate file: rate in column 'open'"
    elif kind == "mark":
        out = pd.DataFrame({"ts": ts, "mark_close": body["close"], _LINE: body[_LINE]})
        parsed.add(_MARK, _tag(out, label))
    else:
        out = pd.DataFrame({"ts": ts, **{c: body[c] for c in ("open", "high", "low", "close", "volume")}, _LINE: body[_LINE]})
        parsed.add("ohlcv", _tag(out, label))
    return len(body)


# ------------------------------------------------------------------------------------ coinglass-csv


def _funding_scale(values: np.ndarray, unit: str, label: str) -> tuple[float, str]:
    """Factor that turns the file's funding column into a fraction per interval, and the unit used."""
    if unit not in FUNDING_UNITS:
        raise ParameterError(f"--funding-unit: must be one of {list(FUNDING_UNITS)}, got {unit!r}")
    if unit == "fraction":
        return 1.0, "fraction"
    if unit == "percent":
        return 0.01, "percent"
    finite = np.abs(values[np.isfinite(values)])
    # typical funding is ~1e-4 as a fraction (0.01 as a percent); a median above 1e-3 means percent
    if finite.size and float(np.median(finite)) > 1e-3:
        return 0.01, "percent (auto: median |rate| > 0.001)"
    return 1.0, "fraction (auto: median |rate| <= 0.001)"


def _read_coinglass(label: str, raw: bytes, funding_unit: str, parsed: _Parsed) -> int:
    rows, lines = _csv_rows(label, raw)
    if not rows or _is_number(rows[0][0]):
        raise DataError(f"{label} line 1: a coinglass CSV needs a header row (timestamp, price_open, ..., oi_close, funding_close)")
    header = [h.lower() for h in rows[0]]
    tcol = "timestamp" if "timestamp" in header else ("datetime_utc" if "datetime_utc" in header else None)
    if tcol is None:
        raise DataError(f"{label} line {lines[0]}: bad header: no 'timestamp' or 'datetime_utc' column")
    needed = [tcol, "price_open", "price_high", "price_low", "price_close"]
    optional = [c for c in ("oi_close", "funding_close", "liquidation_long_usd", "liquidation_short_usd", "volume")
                if c in header]
    if tcol == "timestamp" and "datetime_utc" in header:
        optional.append("datetime_utc")
    df = _table_from_rows(label, rows, lines, header, needed + optional)
    ts = _epoch(df, tcol, label) if tcol == "timestamp" else _iso_time(df, tcol, label)
    if "datetime_utc" in optional:
        _same_times(ts, df, "datetime_utc", label)
        optional.remove("datetime_utc")
    bar = _bar_spacing(ts, df, label)
    price_cols = ["price_open", "price_high", "price_low", "price_close"]
    _numeric(df, price_cols + optional, label)
    volume = df["volume"] if "volume" in df else pd.Series(np.zeros(len(df)), index=df.index)
    ohlcv = pd.DataFrame({"ts": ts, "open": df["price_open"], "high": df["price_high"], "low": df["price_low"],
                          "close": df["price_close"], "volume": volume, _LINE: df[_LINE]})
    parsed.add("ohlcv", _tag(ohlcv, label))
    notes = parsed.notes
    notes["price_source"] = "coinglass-csv price_* columns (CoinGlass exports may carry spot prices, not the perpetual's)"
    if "volume" not in df:
        notes["volume"] = "not in source; stored as 0 (no taker or volume information)"
    if "oi_close" in df:
        oi_usd = df["oi_close"].to_numpy()
        al = oi_alignment(ts, df["price_open"].to_numpy(), df["price_close"].to_numpy(), oi_usd, bar)
        at_open = al.instant == "open"
        price = df["price_open" if at_open else "price_close"].to_numpy()
        oi_ts = ts if at_open or bar is None else ts + pd.Timedelta(int(bar), "ns")
        oi = pd.DataFrame({"ts": oi_ts, "open_interest": oi_usd / price, "open_interest_value": oi_usd,
                           _LINE: df[_LINE]})
        parsed.add("open_interest", _tag(oi, label))
        notes["open_interest_source"] = (
            f"coinglass-csv oi_close is USD: open_interest (base) = oi_close / the price at the OI's instant "
            f"(the bar's {'open: price_open, stored at the bar open time' if at_open else 'close: price_close, stored at the bar close time'})"
        )
        notes["open_interest_alignment"] = al.note
        if al.warning:
            parsed.warnings.append(f"{label}: {al.warning}")
    if "funding_close" in df:
        f = df["funding_close"].to_numpy()
        scale, used = _funding_scale(f, funding_unit, label)
        fund = pd.DataFrame({"ts": ts, "funding_rate": f * scale, _LINE: df[_LINE]})
        parsed.add("funding", _tag(fund, label))
        notes["funding_source"] = f"coinglass-csv funding_close, unit {used}"
        notes["funding_sampled"] = (
            "one row per bar: the rate in force (last published / predicted), not one row per funding payment"
        )
    if "liquidation_long_usd" in df and "liquidation_short_usd" in df:
        close = df["price_close"]
        parts = []
        for side, col in (("long", "liquidation_long_usd"), ("short", "liquidation_short_usd")):
            v = df[col]
            parts.append(pd.DataFrame({"ts": ts, "side": side, "price": np.nan, "amount": v / close,
                                       "value": v, _LINE: df[_LINE]}))
        liq = pd.concat(parts, ignore_index=True).sort_values(["ts", "side"], kind="stable").reset_index(drop=True)
        liq["side"] = liq["side"].astype(object)
        parsed.add("liquidations", _tag(liq, label))
        notes["liquidations_source"] = (
            "coinglass-csv per-bar sums (price empty; amount = USD / bar close); CoinGlass may sum several venues"
        )
    return len(df)


def _same_times(ts: pd.Series, df: pd.DataFrame, col: str, label: str) -> None:
    """When the text column ``col`` holds ISO times, they must equal ``ts`` (else DataError naming the
    line); a column in another form is ignored (the epoch column is the source)."""
    s = df[col].astype(str).str.strip()
    if not s.str.fullmatch(_ISO_RE).all():
        return
    other = _iso_time(df, col, label)
    diff = (other.to_numpy() != ts.to_numpy())
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        raise DataError(f"{label} line {_line(df, i)}: timestamp is {ts.iloc[i].isoformat()} but {col} says "
                        f"{df[col].iloc[i]!r} ({other.iloc[i].isoformat()}); which one is right?")


@dataclass(frozen=True)
class OIAlignment:
    """Which instant of a bar a per-bar open-interest value belongs to, as measured by :func:`oi_alignment`.

    ``instant``: 'open' or 'close' of the bar; ``corr_same``/``corr_previous``: correlation of the USD
    OI change between consecutive rows with the log return of the same bar / of the previous bar;
    ``pairs``: consecutive bar pairs used; ``measured``: False when the data could not tell (then
    'close', the column's name, is assumed and ``warning`` says so).
    """

    instant: str
    corr_same: float | None
    corr_previous: float | None
    pairs: int
    measured: bool
    note: str
    warning: str | None = None


#: fewest consecutive bar pairs for the lead/lag measurement
OI_ALIGNMENT_MIN_PAIRS = 30


def oi_alignment(ts: pd.Series, price_open: np.ndarray, price_close: np.ndarray, oi_usd: np.ndarray,
                 bar_ns: int | None) -> OIAlignment:
    """Measure whether per-bar USD open interest is the value at the bar's open or at its close.

    USD open interest moves with price (value = base amount × price), so its change from one row to the
    next follows the return of the bar it spans. If the value is at the close, row t − row t−1 spans
    bar t (same-bar return); at the open it spans bar t−1 (previous-bar return). The instant whose
    correlation is higher by more than 4/√n (n bar pairs) and above 4/√n wins; otherwise it cannot be
    told (fewer than OI_ALIGNMENT_MIN_PAIRS pairs, or no clear difference) and 'close' is assumed.
    """
    t = np.asarray(ts.array.asi8, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(np.asarray(price_close, float) / np.asarray(price_open, float))
    n = len(t)
    cs = cp = None
    pairs = 0
    if bar_ns is not None and n >= 3:
        step = np.diff(t) == bar_ns
        i = np.flatnonzero(step[1:] & step[:-1]) + 2  # rows i with i-1 and i-2 one bar before each other
        d = np.diff(np.asarray(oi_usd, float))[i - 1]
        same, prev = r[i], r[i - 1]
        ok = np.isfinite(d) & np.isfinite(same) & np.isfinite(prev)
        d, same, prev = d[ok], same[ok], prev[ok]
        pairs = int(d.size)
        if pairs >= 3 and np.std(d) > 0 and np.std(same) > 0 and np.std(prev) > 0:
            cs = float(np.corrcoef(d, same)[0, 1])
            cp = float(np.corrcoef(d, prev)[0, 1])
    what = (f"corr(change of oi_close in USD, log return of the same bar) = {cs:+.2f}, of the previous bar "
            f"= {cp:+.2f}, over {pairs} consecutive bar pairs" if cs is not None else
            f"{pairs} consecutive bar pairs with varying prices and OI")
    z = 4.0 / math.sqrt(max(pairs, 1))
    if cs is not None and pairs >= OI_ALIGNMENT_MIN_PAIRS:
        if cp - cs > z and cp > z:
            return OIAlignment("open", cs, cp, pairs, True,
                               f"measured at import: {what}: the value is the OI at the bar's OPEN; converted to "
                               f"base units with price_open and stored at the bar's open time")
        if cs - cp > z and cs > z:
            return OIAlignment("close", cs, cp, pairs, True,
                               f"measured at import: {what}: the value is the OI at the bar's CLOSE; converted to "
                               f"base units with price_close and stored at the bar's close time (open + one bar)")
    warning = (f"cannot tell whether oi_close is the OI at the bar's open or at its close ({what}; need >= "
               f"{OI_ALIGNMENT_MIN_PAIRS} pairs and a clear difference); assumed the close (price_close, stored at "
               f"the bar's close time)")
    return OIAlignment("close", cs, cp, pairs, False, "NOT measured: " + warning, warning)


# --------------------------------------------------------------------------------------- ccxt-tiers


def _read_ccxt_tiers(label: str, raw: bytes, symbol: str, exchange: str, contract_size: float,
                     price: float | None, parsed: _Parsed) -> int:
    from liqlab.io.tiers import normalize_ccxt_tiers

    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise DataError(f"{label}{where}: invalid JSON ({getattr(exc, 'msg', exc)})") from None
    if isinstance(data, Mapping):
        if symbol not in data:
            near = [k for k in data if k.split("/")[0] == symbol.split("/")[0]][:5]
            raise DataError(f"{label}: no tiers for symbol {symbol!r} ({len(data)} symbols; same base: {near})")
        tiers = data[symbol]
    elif isinstance(data, list):
        tiers = data
    else:
        raise DataError(f"{label}: expected ccxt leverage tiers ({{symbol: [tier, ...]}} or [tier, ...])")
    if not isinstance(tiers, list) or not tiers:
        raise DataError(f"{label}: empty tier list for {symbol}")
    try:
        table = normalize_ccxt_tiers(tiers, venue=exchange, contract_size=contract_size, price=price)
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None
    parsed.add("leverage_tiers", table.to_frame())
    parsed.notes["leverage_tiers_source"] = f"ccxt-tiers file {Path(label.split(':')[0]).name}"
    return len(tiers)


# ------------------------------------------------------------------------------------------ merging


def _strip(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in (_SRC, _LINE) if c in df.columns])


def _where(row: pd.Series) -> str:
    src = row.get(_SRC, "?")
    line = row.get(_LINE, None)
    if src == "<stored>":
        return "the stored dataset"
    return f"{src} line {int(line)}" if line is not None and not pd.isna(line) else str(src)


def _combine(name: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Union of tagged frames, one row per ts; a missing cell is filled from another row of the same ts.

    Two different values for the same timestamp and column raise DataError naming both places.
    """
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame()
    both = pd.concat(frames, ignore_index=True, sort=False)
    both = both.sort_values("ts", kind="stable").reset_index(drop=True)
    if name == "liquidations":
        keys = [c for c in both.columns if c not in (_SRC, _LINE)]
        return both.drop_duplicates(subset=keys).reset_index(drop=True)
    values = [c for c in both.columns if c not in ("ts", _SRC, _LINE)]
    dup = both["ts"].duplicated(keep=False).to_numpy()
    if not dup.any():
        return both
    grp = both.loc[dup]
    nun = grp.groupby("ts", sort=False)[values].nunique(dropna=True)
    conflict = nun.gt(1)
    if conflict.to_numpy().any():
        ts_bad = conflict.any(axis=1)
        first_ts = ts_bad[ts_bad].index[0]
        col = conflict.loc[first_ts][conflict.loc[first_ts]].index[0]
        rows = grp.loc[grp["ts"] == first_ts]
        rows = rows.loc[rows[col].notna()]
        first, other = rows.iloc[0], rows.loc[rows[col] != rows[col].iloc[0]].iloc[0]
        raise DataError(
            f"{_where(other)}: ts {pd.Timestamp(first_ts).isoformat()}: duplicated timestamp with different "
            f"{col} ({_show(other[col])} here, {_show(first[col])} in {_where(first)})"
        )
    single = both.loc[~dup]
    merged = grp.groupby("ts", sort=False, as_index=False).first()  # first non-missing value per column
    out = pd.concat([single, merged], ignore_index=True, sort=False)
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def _show(v: Any) -> str:
    return repr(v.item() if hasattr(v, "item") else v)


_ROW_RE = re.compile(r"^(?P<src>.*?): row (?P<row>\d+)(?P<rest>.*)$", re.S)


def _validate_tagged(name: str, df: pd.DataFrame, label: str) -> pd.DataFrame:
    """validate_table on a tagged frame; a 'row i' in the error becomes the source file and line."""
    from liqlab.io.dataset import validate_table

    plain = _strip(df)
    try:
        validate_table(name, plain, label)
    except DataError as exc:
        m = _ROW_RE.match(str(exc))
        if m and _LINE in df:
            i = int(m.group("row"))
            if 0 <= i < len(df):
                raise DataError(f"{_where(df.iloc[i])}{m.group('rest')}") from None
        raise
    return df


def _attach_mark(ohlcv: pd.DataFrame, marks: list[pd.DataFrame], strict: bool) -> tuple[pd.DataFrame, int]:
    """Put mark_close on the OHLCV bars with the same ts; returns (ohlcv, mark rows without a bar)."""
    mark = _combine("ohlcv", marks)  # de-duplicate / conflicts among mark files
    have = pd.Index(ohlcv["ts"]) if len(ohlcv) else pd.Index([])
    orphan = ~mark["ts"].isin(have).to_numpy()
    if orphan.any() and strict:
        r = mark.loc[orphan].iloc[0]
        raise DataError(
            f"{_where(r)}: mark candle at {pd.Timestamp(r['ts']).isoformat()} has no OHLCV bar; import the OHLCV "
            f"(klines) for the same range first or in the same call ({int(orphan.sum())} such rows)"
        )
    mark = mark.loc[~orphan, ["ts", "mark_close", _SRC, _LINE]]
    return _combine("ohlcv", [ohlcv, mark]), int(orphan.sum())


def _check_optional_coverage(name: str, df: pd.DataFrame, where: Path) -> None:
    from liqlab.io.dataset import TABLES

    for c in TABLES[name][1]:
        if c in df and c != "venue":
            miss = df[c].isna().to_numpy()
            if miss.any() and not miss.all():
                i = int(np.flatnonzero(miss)[0])
                raise DataError(
                    f"{where}: column {c!r} would cover only {int((~miss).sum())} of {len(df)} rows of {name} "
                    f"(first gap at {pd.Timestamp(df['ts'].iloc[i]).isoformat()}, from {_where(df.iloc[i])}); "
                    f"import/fetch {c} for the same range as the rest of the table"
                )
            if miss.all():
                df.drop(columns=[c], inplace=True)


def update_dataset(
    path: str | os.PathLike,
    new: Mapping[str, Sequence[pd.DataFrame]],
    *,
    exchange: str,
    symbol: str,
    source: str,
    notes: Mapping[str, Any] | None = None,
    meta_defaults: Mapping[str, Any] | None = None,
    strict_mark: bool = True,
) -> ImportResult:
    """Merge new rows into the dataset at ``path`` (created if absent) and write it atomically.

    ``new`` maps a table name (or ``'mark'`` for mark_close rows) to frames, optionally tagged with
    ``_src``/``_line`` for error messages. Rows already stored are kept; equal rows are merged; a
    conflicting value raises DataError and leaves ``path`` untouched. Tables the format requires but
    nobody supplied are written empty. Nothing is written when nothing changed.
    """

    from liqlab.io.dataset import TABLES, Dataset, is_dataset_dir, load_dataset, make_meta, write_dataset

    from liqlab.io.atomic import check_dir_target

    path = check_dir_target(path)
    old = None
    if path.exists():
        if not is_dataset_dir(path):
            if any(path.iterdir()):
                raise ParameterError(f"--out {path}: exists and is not a dataset directory (no meta.json)")
        else:
            old = load_dataset(path)
            if old.venue != exchange or old.symbol != symbol:
                raise ParameterError(
                    f"--out {path}: holds {old.venue} {old.symbol}, not {exchange} {symbol}; choose another --out"
                )
    tables: dict[str, pd.DataFrame] = {}
    added: dict[str, int] = {}
    for name in TABLES:
        stored = getattr(old, name) if old is not None else None
        stored_t = _tag(stored, "<stored>") if stored is not None and len(stored) else None
        frames = [f for f in new.get(name, ()) if f is not None and len(f)]
        frames = [f if _SRC in f else _tag(f, "<new>") for f in frames]
        if name == "leverage_tiers":
            if frames:
                tables[name] = _strip(frames[-1]).reset_index(drop=True)
            elif stored is not None:
                tables[name] = stored
            continue
        if name == "ohlcv" and new.get(_MARK):
            base = _combine(name, ([stored_t] if stored_t is not None else []) + frames)
            merged, orphans = _attach_mark(base if len(base) else _tag(empty_table("ohlcv"), "<new>"),
                                           list(new[_MARK]), strict_mark)
        elif stored_t is None and not frames:
            merged = None
        else:
            merged = _combine(name, ([stored_t] if stored_t is not None else []) + frames)
        if merged is None or not len(merged):
            tables[name] = stored if stored is not None else (empty_table(name) if TABLES[name][2] else None)
            added[name] = 0
            continue
        if name == "ohlcv":
            _check_optional_coverage(name, merged, path)
        _validate_tagged(name, merged, str(path / f"{name}.parquet"))
        tables[name] = _strip(merged)
        added[name] = len(merged) - (len(stored) if stored is not None else 0)
    tables = {k: v for k, v in tables.items() if v is not None}

    notes = dict(notes or {})
    if old is not None:
        meta = dict(old.meta)
        sources = list(meta.get("sources", [meta.get("source")]))
        if source not in sources:
            sources.append(source)
        meta["sources"] = sorted(s for s in sources if s)
        merged_notes = dict(meta.get("notes", {}))
        merged_notes.update(notes)
        if merged_notes:
            meta["notes"] = merged_notes
        for k, v in (meta_defaults or {}).items():
            meta.setdefault(k, v)
    else:
        md = dict(meta_defaults or {})
        meta = make_meta(exchange, symbol, source=source, synthetic=False, **md)
        meta["sources"] = [source]
        if notes:
            meta["notes"] = notes
    empty = sorted(k for k in ("ohlcv", "open_interest", "funding") if k in tables and not len(tables[k]))
    if empty:
        meta["empty_tables"] = empty  # required by the format, not in any source yet (written with 0 rows)
    else:
        meta.pop("empty_tables", None)
    ds = Dataset(meta=meta, path=path, **{k: tables.get(k) for k in TABLES})  # type: ignore[arg-type]

    if old is not None and old.meta == meta and all(
        _same(getattr(old, k), tables.get(k)) for k in TABLES
    ):
        return ImportResult(path=path, rows={k: len(v) for k, v in tables.items()}, added=added, changed=False,
                            notes=notes)
    write_dataset(ds, path)
    return ImportResult(path=path, rows={k: len(v) for k, v in tables.items()}, added=added, changed=True,
                        notes=notes)


def _same(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    try:
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
    except AssertionError:
        return False
    return True


# --------------------------------------------------------------------------------------- entry point


def import_files(
    fmt: str,
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    exchange: str,
    symbol: str,
    kind: str | None = None,
    funding_unit: str = "auto",
    contract_size: float | None = None,
    price: float | None = None,
    progress: bool | None = None,
) -> ImportResult:
    """Import bulk files of format ``fmt`` into the dataset directory ``out`` (created or extended).

    ``kind`` overrides the table a file is read as (binance-vision: klines|markPriceKlines|metrics|
    fundingRate|liquidationSnapshot; freqtrade: ohlcv|mark|funding). ``funding_unit`` (coinglass-csv):
    auto|fraction|percent. ``contract_size`` and ``price`` (USD) convert contract-sized tiers (OKX).
    Raises DataError naming the file and line of the first bad row; ``out`` is then left untouched.
    """
    from liqlab.io.dataset import KNOWN_EXCHANGES, is_dataset_dir, load_dataset

    if fmt not in FORMATS:
        raise ParameterError(f"--format: unknown format {fmt!r}; choose from {list(FORMATS)}")
    if exchange not in KNOWN_EXCHANGES:
        raise ParameterError(f"--exchange: unknown exchange {exchange!r}; choose from {list(KNOWN_EXCHANGES)}")
    if not isinstance(symbol, str) or "/" not in symbol:
        raise ParameterError(f"--symbol: must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}")
    if not sources:
        raise ParameterError("SRC: give at least one file to import")
    from liqlab.io.atomic import check_dir_target

    out = check_dir_target(out)
    stored_meta = load_dataset(out).meta if is_dataset_dir(out) else {}
    cs = float(contract_size if contract_size is not None else stored_meta.get("contract_size", 1.0))
    if fmt == "ccxt-tiers" and price is None and is_dataset_dir(out):
        ohlcv = load_dataset(out).ohlcv
        price = float(ohlcv["close"].iloc[-1]) if len(ohlcv) else None

    parsed = _Parsed()
    labels: list[str] = []
    files = [Path(s) for s in sources]
    bar = _bar(len(files), "import", progress)
    try:
        for f in files:
            for label, raw in _iter_members(f):
                labels.append(label)
                if fmt == "binance-vision":
                    _read_binance_vision(label, raw, _binance_kind(label, kind), parsed)
                elif fmt == "freqtrade":
                    _read_freqtrade(label, raw, _freqtrade_kind(label, kind), parsed)
                elif fmt == "coinglass-csv":
                    _read_coinglass(label, raw, funding_unit, parsed)
                else:
                    _read_ccxt_tiers(label, raw, symbol, exchange, cs, price, parsed)
            bar.update(1)
    finally:
        bar.close()
    # within each file: sort, merge exact duplicates, reject conflicting ones (with file and line)
    checked: dict[str, list[pd.DataFrame]] = {}
    for name, frames in parsed.tables.items():
        for df in frames:
            if not len(df):  # a header-only file (a day without forced orders): nothing to merge
                continue
            if name in (_MARK, "leverage_tiers"):
                checked.setdefault(name, []).append(df)
                continue
            one = _combine(name, [df])
            _validate_tagged(name, one, str(df[_SRC].iloc[0]) if len(df) else name)
            checked.setdefault(name, []).append(one)
    meta_defaults: dict[str, Any] = {"contract_size": cs}
    res = update_dataset(out, checked, exchange=exchange, symbol=symbol, source=f"import:{fmt}",
                         notes=parsed.notes, meta_defaults=meta_defaults)
    return ImportResult(path=res.path, rows=res.rows, added=res.added, changed=res.changed,
                        files=tuple(labels), notes=res.notes, warnings=tuple(parsed.warnings))


def _bar(total: int, desc: str, progress: bool | None):
    """A tqdm bar (off when not a TTY unless forced with progress=True)."""
    import sys

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    return tqdm(total=total, desc=desc, unit="file", disable=disable, leave=False)
