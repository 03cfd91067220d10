"""Merging imported rows into a dataset directory: union with what is stored, one row per timestamp, conflicts
named by file and line, the directory rewritten atomically or not at all (:func:`update_dataset`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.io.importers.read import _LINE, _MARK, _SRC, _tag
from liqlab.io.schema import TABLES, empty_table, notes_dict


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
    meta_updates: Mapping[str, Any] | None = None,
) -> ImportResult:
    """Merge new rows into the dataset at ``path`` (created if absent) and write it atomically.

    Rows already stored are kept; equal rows are merged; a conflicting value raises DataError and leaves
    ``path`` untouched. Tables the format requires but nobody supplied are written empty. Nothing is
    written when nothing changed.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory.
    new : mapping of str to sequence of pd.DataFrame
        Table name (or ``'mark'`` for mark_close rows) → frames, optionally tagged with ``_src``/``_line``
        for error messages. Times UTC, prices USD, amounts base units.
    exchange, symbol : str
        What the dataset must hold (a directory holding another venue or symbol is refused).
    source : str
        Added to ``meta["sources"]``.
    notes : mapping, optional
        Topic → text, merged into ``meta["notes"]`` (values stored as text).
    meta_defaults : mapping, optional
        meta.json keys for a new dataset (kept when the stored meta has them).
    strict_mark : bool
        Refuse mark candles without an OHLCV bar (else they are dropped).
    meta_updates : mapping, optional
        meta.json keys set as given (e.g. a fetch's ``fetch_pending``).

    Returns
    -------
    ImportResult
        Rows per table after the update, rows added, whether the directory changed.
    """
    from liqlab.io.atomic import check_dir_target
    from liqlab.io.dataset import Dataset, write_dataset

    path = check_dir_target(path)
    old = _stored_dataset(path, exchange, symbol)
    tables, added = _merged_tables(path, old, new, strict_mark)
    notes = dict(notes or {})
    meta = _updated_meta(old, exchange, symbol, source, notes, meta_defaults, meta_updates, tables)
    rows = {k: len(v) for k, v in tables.items()}
    if old is not None and old.meta == meta and all(_same(getattr(old, k), tables.get(k)) for k in TABLES):
        return ImportResult(path=path, rows=rows, added=added, changed=False, notes=notes)
    write_dataset(Dataset(meta=meta, path=path, **{k: tables.get(k) for k in TABLES}), path)  # type: ignore[arg-type]
    return ImportResult(path=path, rows=rows, added=added, changed=True, notes=notes)


def _stored_dataset(path: Path, exchange: str, symbol: str) -> Any:
    """The dataset at ``path`` (None when absent or an empty folder); ParameterError for a folder that is no
    dataset or holds another venue or symbol."""
    from liqlab.io.dataset import is_dataset_dir, load_dataset

    if not path.exists():
        return None
    if not is_dataset_dir(path):
        if any(path.iterdir()):
            raise ParameterError(f"--out {path}: exists and is not a dataset directory (no meta.json)")
        return None
    old = load_dataset(path)
    if old.venue != exchange or old.symbol != symbol:
        raise ParameterError(f"--out {path}: holds {old.venue} {old.symbol}, not {exchange} {symbol}; choose another --out")
    return old


def _merged_tables(path: Path, old: Any, new: Mapping[str, Sequence[pd.DataFrame]],
                   strict_mark: bool) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Every table after the merge (validated, tags stripped) and the rows each one gained."""
    tables: dict[str, pd.DataFrame] = {}
    added: dict[str, int] = {}
    for name in TABLES:
        stored = getattr(old, name) if old is not None else None
        frames = [f for f in new.get(name, ()) if f is not None and len(f)]
        frames = [f if _SRC in f else _tag(f, "<new>") for f in frames]
        if name == "leverage_tiers":  # a new table replaces the stored one
            tiers = _strip(frames[-1]).reset_index(drop=True) if frames else stored
            if tiers is not None:
                tables[name] = tiers
            continue
        merged = _merge_rows(name, stored, frames, new.get(_MARK), strict_mark)
        if merged is None or not len(merged):
            kept = stored if stored is not None else (empty_table(name) if TABLES[name][2] else None)
            if kept is not None:
                tables[name] = kept
            added[name] = 0
            continue
        if name == "ohlcv":
            _check_optional_coverage(name, merged, path)
        _validate_tagged(name, merged, str(path / f"{name}.parquet"))
        tables[name] = _strip(merged)
        added[name] = len(merged) - (len(stored) if stored is not None else 0)
    return tables, added


def _merge_rows(name: str, stored: pd.DataFrame | None, frames: list[pd.DataFrame],
                marks: Sequence[pd.DataFrame] | None, strict_mark: bool) -> pd.DataFrame | None:
    """Stored rows (tagged ``<stored>``) and new frames as one tagged table (None when there are neither);
    mark candles go onto the OHLCV bars."""
    stored_t = [_tag(stored, "<stored>")] if stored is not None and len(stored) else []
    if name == "ohlcv" and marks:
        base = _combine(name, stored_t + frames)
        merged, _ = _attach_mark(base if len(base) else _tag(empty_table("ohlcv"), "<new>"), list(marks), strict_mark)
        return merged
    if not stored_t and not frames:
        return None
    return _combine(name, stored_t + frames)


def _updated_meta(old: Any, exchange: str, symbol: str, source: str, notes: dict[str, Any],
                  meta_defaults: Mapping[str, Any] | None, meta_updates: Mapping[str, Any] | None,
                  tables: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """meta.json after the update: sources and notes merged into the stored meta (or a new meta), the
    ``meta_updates`` set, and the required tables no source has filled yet listed in ``empty_tables``."""
    from liqlab.io.dataset import make_meta

    if old is not None:
        meta = dict(old.meta)
        sources = list(meta.get("sources", [meta.get("source")]))
        if source not in sources:
            sources.append(source)
        meta["sources"] = sorted(s for s in sources if s)
        merged_notes = notes_dict({**notes_dict(meta.get("notes")), **notes})
        if merged_notes:
            meta["notes"] = merged_notes
        for k, v in (meta_defaults or {}).items():
            meta.setdefault(k, v)
    else:
        meta = make_meta(exchange, symbol, source=source, synthetic=False, **dict(meta_defaults or {}))
        meta["sources"] = [source]
        if notes:
            meta["notes"] = notes_dict(notes)
    meta.update(meta_updates or {})
    empty = sorted(k for k in ("ohlcv", "open_interest", "funding") if k in tables and not len(tables[k]))
    if empty:
        meta["empty_tables"] = empty  # required by the format, not in any source yet (written with 0 rows)
    else:
        meta.pop("empty_tables", None)
    return meta


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
