"""Reading import files: archive members, CSV rows with their line numbers, times in any of the forms the
sources use (epoch s/ms/us/ns, ISO text), the bar spacing, and the provenance tags (file, line) every parsed
row carries until it is written. Times UTC.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError


# internal columns that carry provenance through a merge (file label, 1-based line) and are dropped on write
_SRC, _LINE = "_src", "_line"
# a row of these pseudo-tables is merged into ``ohlcv`` (mark_close only)
_MARK = "mark"


@dataclass
class _Parsed:
    """Tables parsed from one or more files (with _src/_line provenance) plus meta notes."""

    tables: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, name: str, df: pd.DataFrame) -> None:
        self.tables.setdefault(name, []).append(df)


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
