"""The liqlab dataset: one directory per venue and symbol (parquet tables + ``meta.json``); a collection is a
folder of them.

:class:`Dataset` and :class:`Collection` hold the tables in memory; :func:`load` reads a directory,
:func:`write_dataset` writes one atomically (all files or none), :func:`merge_tables` unions two versions of
a table. The tables, their columns and units, and the checks are the format's rules in
:mod:`liqlab.io.schema` (re-exported here). See data/README.md. Violations raise :class:`DataError` naming
file, row and problem.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import utc
from liqlab.errors import DataError, ParameterError, read_text
from liqlab.io import atomic
from liqlab.io.schema import (
    KNOWN_EXCHANGES,
    TABLES,
    empty_table,
    notes_dict,
    validate_meta,
    validate_table,
    with_note,
)

__all__ = [
    "Dataset",
    "Collection",
    "TABLES",
    "load_dataset",
    "load_collection",
    "load",
    "write_dataset",
    "validate_table",
    "validate_meta",
    "merge_tables",
    "make_meta",
    "read_json",
    "as_collection",
    "notes_dict",
    "with_note",
    "empty_table",
    "is_dataset_dir",
]

# name -> (required columns, optional columns, whether the table itself is required)


def make_meta(
    exchange: str,
    symbol: str,
    *,
    source: str,
    synthetic: bool,
    kind: str = "linear",
    contract_size: float = 1.0,
    quote: str | None = None,
    created_at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build a ``meta.json`` dictionary with the required keys (and any extra keys).

    Parameters
    ----------
    exchange, symbol : str
        ccxt venue id and unified symbol.
    source : str
        Where the data came from (e.g. ``'fetch:ccxt'``, ``'simulation'``).
    synthetic : bool
        True for simulated data (labelled as such everywhere).
    kind : {'linear', 'inverse'}
    contract_size : float
        Base units per contract.
    quote : str, optional
        Quote currency (default: from the symbol, else USDT).
    created_at : str, optional
        ISO time (default: now, UTC).
    **extra
        Further keys (e.g. ``notes``, a dict of topic → text).

    Returns
    -------
    dict
    """
    if quote is None:
        quote = symbol.split("/")[1].split(":")[0] if "/" in symbol else "USDT"
    meta = {
        "exchange": exchange,
        "symbol": symbol,
        "kind": kind,
        "contract_size": float(contract_size),
        "quote": quote,
        "source": source,
        "synthetic": bool(synthetic),
        "created_at": created_at or datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    meta.update(extra)
    return meta


@dataclass(frozen=True)
class Dataset:
    """One venue and symbol: tables as pandas DataFrames with a ``ts`` column (UTC)."""

    meta: dict
    ohlcv: pd.DataFrame
    open_interest: pd.DataFrame
    funding: pd.DataFrame
    liquidations: pd.DataFrame | None = None
    leverage_tiers: pd.DataFrame | None = None
    path: Path | None = None

    @property
    def venue(self) -> str:
        """ccxt id of the venue (``meta['exchange']``)."""
        return str(self.meta["exchange"])

    @property
    def symbol(self) -> str:
        """ccxt unified symbol, e.g. 'BTC/USDT:USDT'."""
        return str(self.meta["symbol"])

    @property
    def synthetic(self) -> bool:
        """True for simulated data."""
        return bool(self.meta.get("synthetic", False))

    @property
    def name(self) -> str:
        """'<venue> <symbol>'."""
        return f"{self.venue} {self.symbol}"

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that are present, by name."""
        out = {name: getattr(self, name) for name in TABLES}
        return {k: v for k, v in out.items() if v is not None}

    def between(self, start=None, end=None) -> "Dataset":
        """Rows with start <= ts < end in every time-indexed table (tiers kept whole).

        Parameters
        ----------
        start, end : time, optional
            UTC (naive = UTC); None or '' leaves that side open.

        Returns
        -------
        Dataset
        """
        start = _time_or_none(start)
        end = _time_or_none(end)

        def cut(df):
            if df is None or "ts" not in df.columns:
                return df
            mask = np.ones(len(df), dtype=bool)
            if start is not None:
                mask &= (df["ts"] >= start).to_numpy()
            if end is not None:
                mask &= (df["ts"] < end).to_numpy()
            return df.loc[mask].reset_index(drop=True)

        return dataclasses.replace(
            self,
            ohlcv=cut(self.ohlcv),
            open_interest=cut(self.open_interest),
            funding=cut(self.funding),
            liquidations=cut(self.liquidations),
        )

    @property
    def start(self) -> pd.Timestamp | None:
        """First OHLCV bar time (UTC), None when empty."""
        return self.ohlcv["ts"].iloc[0] if len(self.ohlcv) else None

    @property
    def end(self) -> pd.Timestamp | None:
        """Last OHLCV bar time (UTC), None when empty."""
        return self.ohlcv["ts"].iloc[-1] if len(self.ohlcv) else None

    def summary(self) -> dict[str, Any]:
        """Row counts and time coverage per table (for notebooks and `liqlab info`)."""
        out: dict[str, Any] = {"venue": self.venue, "symbol": self.symbol, "synthetic": self.synthetic}
        for name, df in self.tables().items():
            item: dict[str, Any] = {"rows": int(len(df))}
            if "ts" in df.columns and len(df):
                item["start"] = df["ts"].iloc[0].isoformat()
                item["end"] = df["ts"].iloc[-1].isoformat()
            out[name] = item
        return out


@dataclass(frozen=True)
class Collection:
    """Several venues of one asset (a folder of dataset directories)."""

    datasets: tuple[Dataset, ...]
    path: Path | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.datasets:
            raise DataError(f"{self.path or 'collection'}: no datasets in collection")

    @property
    def venues(self) -> tuple[str, ...]:
        """The venues, in collection order."""
        return tuple(d.venue for d in self.datasets)

    @property
    def symbol(self) -> str:
        """The symbol of the first venue."""
        return self.datasets[0].symbol

    @property
    def synthetic(self) -> bool:
        """True when any venue is simulated."""
        return any(d.synthetic for d in self.datasets)

    def __iter__(self):
        return iter(self.datasets)

    def __len__(self) -> int:
        return len(self.datasets)

    def __getitem__(self, venue: str) -> Dataset:
        for d in self.datasets:
            if d.venue == venue:
                return d
        raise KeyError(venue)

    def select(self, venues: Iterable[str] | None) -> "Collection":
        """The named venues, in the given order (None: all); DataError for a venue the collection lacks.

        Parameters
        ----------
        venues : iterable of str or None

        Returns
        -------
        Collection
        """
        if venues is None:
            return self
        venues = list(venues)
        unknown = [v for v in venues if v not in self.venues]
        if unknown:
            raise DataError(f"{self.path or 'collection'}: unknown venue(s) {unknown}; have {list(self.venues)}")
        return dataclasses.replace(self, datasets=tuple(self[v] for v in venues))

    def between(self, start=None, end=None) -> "Collection":
        """Every dataset cut to start <= ts < end (see :meth:`Dataset.between`).

        Parameters
        ----------
        start, end : time, optional

        Returns
        -------
        Collection
        """
        return dataclasses.replace(self, datasets=tuple(d.between(start, end) for d in self.datasets))


# --------------------------------------------------------------------------------------------- load


def _time_or_none(x: Any) -> pd.Timestamp | None:
    """A bound of :meth:`Dataset.between`: None or empty text = open; otherwise a UTC Timestamp."""
    if x is None or (isinstance(x, str) and not x):
        return None
    return utc(x)


def _read_table(path: Path, name: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        df = pq.read_table(path).to_pandas()
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot read parquet ({msg})") from None
    return validate_table(name, df, path)


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; invalid JSON raises DataError naming the file and line.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Any
    """
    path = Path(path)
    text = read_text(path, "JSON file", DataError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None


def load_dataset(path: str | os.PathLike, *, start=None, end=None) -> Dataset:
    """Load and validate one dataset directory (with the recorder's uncompacted parts).

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory (``meta.json`` + tables).
    start, end : time, optional
        Keep rows with start <= ts < end (UTC; naive = UTC).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Naming file, row and problem.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a dataset directory")
    meta_path = path / "meta.json"
    if not meta_path.exists():
        raise DataError(f"{meta_path}: missing (a dataset directory needs meta.json)")
    meta = validate_meta(read_json(meta_path), meta_path)
    tables: dict[str, pd.DataFrame | None] = {}
    for name, (_, _, required) in TABLES.items():
        f = path / f"{name}.parquet"
        if f.exists():
            tables[name] = _read_table(f, name)
        elif required:
            raise DataError(f"{f}: missing (required table)")
        else:
            tables[name] = None
    tables["liquidations"] = _with_recorded_parts(path, tables["liquidations"])
    ds = Dataset(meta=meta, path=path, **tables)  # type: ignore[arg-type]
    if start is not None or end is not None:
        ds = ds.between(start, end)
    return ds


def _with_recorded_parts(path: Path, liq: pd.DataFrame | None) -> pd.DataFrame | None:
    """Append the recorder's uncompacted ``liquidations/part-*.parquet`` (see liqlab.io.record) that are newer
    than the last part folded into liquidations.parquet (its schema metadata ``liqlab.parts_through``)."""
    parts_dir = path / "liquidations"
    if not parts_dir.is_dir():
        return liq
    import pyarrow.parquet as pq

    main = path / "liquidations.parquet"
    through = ""
    if main.exists():
        through = ((pq.read_schema(main).metadata or {}).get(b"liqlab.parts_through", b"")).decode()
    frames = [_read_table(p, "liquidations") for p in sorted(parts_dir.glob("part-*.parquet")) if p.name > through]
    if not frames:
        return liq
    both = pd.concat(([liq] if liq is not None and len(liq) else []) + frames, ignore_index=True)
    return validate_table("liquidations", both.sort_values("ts", kind="stable").reset_index(drop=True), parts_dir)


def is_dataset_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a dataset directory (holds ``meta.json``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool
    """
    return (Path(path) / "meta.json").exists()


def load_collection(path: str | os.PathLike, *, venues: Iterable[str] | None = None, start=None, end=None) -> Collection:
    """Load a folder of dataset directories (several venues of one asset); a dataset directory gives a one-venue
    collection.

    Parameters
    ----------
    path : str or os.PathLike
    venues : iterable of str, optional
        Keep these venues (in this order).
    start, end : time, optional
        Keep rows with start <= ts < end (UTC).

    Returns
    -------
    Collection

    Raises
    ------
    DataError
        For a folder without datasets, a venue folder that lost its meta.json, or several assets.
    """
    path = Path(path)
    if is_dataset_dir(path):
        coll = Collection(datasets=(load_dataset(path),), path=path)
    else:
        if not path.is_dir():
            raise DataError(f"{path}: not a dataset or collection directory")
        dirs = sorted(p for p in path.iterdir() if p.is_dir() and is_dataset_dir(p))
        orphans = sorted(p for p in path.iterdir() if p.is_dir() and not is_dataset_dir(p) and _looks_like_venue(p))
        if orphans:
            why = ("holds dataset tables" if _holds_tables(orphans[0]) else "is named like a venue")
            raise DataError(f"{orphans[0] / 'meta.json'}: missing (the folder {why} but has no meta.json; "
                            f"restore it or move the folder out of {path})")
        if not dirs:
            raise DataError(f"{path}: no dataset directories (with meta.json) inside")
        coll = Collection(datasets=tuple(load_dataset(d) for d in dirs), path=path)
        meta_file = path / "collection.json"
        if meta_file.exists():
            coll = dataclasses.replace(coll, meta=read_json(meta_file))
    symbols = {d.symbol.split("/")[0] for d in coll}
    if len(symbols) > 1:
        raise DataError(f"{path}: a collection holds one asset, found {sorted(symbols)}")
    coll = coll.select(venues)
    if start is not None or end is not None:
        coll = coll.between(start, end)
    return coll


def _holds_tables(path: Path) -> bool:
    return any((path / f"{name}.parquet").exists() for name in TABLES)


def _looks_like_venue(path: Path) -> bool:
    """A folder named like a venue or holding a dataset table (a venue folder that lost its meta.json)."""
    return path.name in KNOWN_EXCHANGES or _holds_tables(path)


def load(path: str | os.PathLike, **kw) -> Dataset | Collection:
    """A dataset directory gives a Dataset, a folder of them a Collection.

    Parameters
    ----------
    path : str or os.PathLike
    **kw
        ``start``, ``end`` and (collections) ``venues``, as in :func:`load_collection`.

    Returns
    -------
    Dataset or Collection
    """
    path = Path(path)
    if is_dataset_dir(path):
        kw.pop("venues", None)
        return load_dataset(path, **kw)
    return load_collection(path, **kw)


# -------------------------------------------------------------------------------------------- write


def as_collection(data: Any) -> Collection:
    """A :class:`Collection` from a Dataset, a Collection or a path (dataset directory or collection folder).

    Parameters
    ----------
    data : Dataset, Collection, str or os.PathLike

    Returns
    -------
    Collection
        ``data`` itself when it is one; a one-venue collection around a Dataset; the loaded path.
    """
    if isinstance(data, (str, os.PathLike)):
        data = load(data)
    if isinstance(data, Dataset):
        return Collection(datasets=(data,), path=data.path)
    if isinstance(data, Collection):
        return data
    raise ParameterError(f"data: need a Dataset, Collection or path, got {type(data).__name__}")


def merge_tables(name: str, old: pd.DataFrame | None, new: pd.DataFrame, source: str = "<merge>") -> pd.DataFrame:
    """Union of two versions of a table, one row per timestamp; conflicting values raise DataError.

    Liquidation events (which may share a timestamp) are de-duplicated on all columns; a new tier table
    replaces the old one.

    Parameters
    ----------
    name : str
        Table name.
    old : pd.DataFrame or None
    new : pd.DataFrame
    source : str
        Named in errors.

    Returns
    -------
    pd.DataFrame
        Validated, sorted by ts.
    """
    new = validate_table(name, new, source)
    if old is None or len(old) == 0:
        return new
    old = validate_table(name, old, source)
    if name == "leverage_tiers":
        return new
    both = pd.concat([old, new], ignore_index=True)
    if name == "liquidations":
        keys = [c for c in both.columns]
        both = both.drop_duplicates(subset=keys).sort_values("ts", kind="stable").reset_index(drop=True)
        return validate_table(name, both, source)
    dup = both.duplicated(subset=["ts"], keep=False)
    if dup.any():
        grp = both.loc[dup]
        distinct = grp.drop_duplicates()
        if distinct["ts"].duplicated().any():
            ts = distinct.loc[distinct["ts"].duplicated(), "ts"].iloc[0]
            a = distinct.loc[distinct["ts"] == ts].iloc[0]
            b = distinct.loc[distinct["ts"] == ts].iloc[1]
            cols = [c for c in both.columns if c != "ts" and not (pd.isna(a[c]) and pd.isna(b[c])) and a[c] != b[c]]
            raise DataError(f"{source}: ts {pd.Timestamp(ts).isoformat()}: duplicated timestamp with different values in {cols}")
    both = both.drop_duplicates(subset=["ts"], keep="last").sort_values("ts", kind="stable").reset_index(drop=True)
    return validate_table(name, both, source)


def write_dataset(ds: Dataset, path: str | os.PathLike) -> Path:
    """Validate every table and write the dataset directory atomically (all files or none).

    Files in the directory that are not the dataset's (e.g. a ``truth/`` folder) are kept across the swap.

    Parameters
    ----------
    ds : Dataset
    path : str or os.PathLike

    Returns
    -------
    Path
    """
    path = Path(path)
    meta = validate_meta(ds.meta, path / "meta.json")
    checked = {name: validate_table(name, df, path / f"{name}.parquet") for name, df in ds.tables().items()}
    for name, (_, _, required) in TABLES.items():
        if required and name not in checked:
            raise DataError(f"{path / (name + '.parquet')}: required table missing")
    extra_files: list[Path] = []
    if path.exists():
        # keep anything that is not ours (e.g. a truth/ folder, notes) across the swap
        ours = {"meta.json"} | {f"{n}.parquet" for n in TABLES}
        if ds.liquidations is not None:
            ours.add("liquidations")  # recorder parts (liqlab.io.record): already in the table written here
        extra_files = [p for p in path.iterdir() if p.name not in ours and not p.name.startswith(".")]
    with atomic.atomic_dir(path) as stage:
        for name, df in checked.items():
            atomic.write_parquet(stage / f"{name}.parquet", df)
        atomic.write_json(stage / "meta.json", meta)
        for p in extra_files:
            _copy_into(p, stage)
    return path


def _copy_into(src: Path, stage: Path) -> None:
    import shutil

    dst = stage / src.name
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
