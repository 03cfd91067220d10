"""A report's data: how old each dataset is, and the incremental refresh before a run.

Data age is the hours between the run start and the last OHLCV bar of the dataset (UTC). A refresh that
fails does not stop the run: the notebooks run on the cached data under a stale-data banner, unless the
report requires fresh data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liqlab._util import one_line
from liqlab.app.report.config import ReportConfig
from liqlab.app.report.folders import iso
from liqlab.errors import DataError, ParameterError

__all__ = ["RefreshFn", "data_status", "default_refresh", "refresh_all"]

RefreshFn = Callable[[Path, dict], Any]
"""A refresh: ``fn(dataset path, options)``; any exception means the refresh failed."""


def _dataset_dirs(path: Path) -> list[Path]:
    if (path / "meta.json").exists():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_dir() and (p / "meta.json").exists())
    return []


def _read_meta(d: Path) -> dict:
    try:
        return json.loads((d / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{d / 'meta.json'}: unreadable ({exc})") from None


def _last_bar(f: Path) -> datetime | None:
    """The last ``ts`` of an ohlcv.parquet (aware UTC), None when it holds no bars."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        col = pq.read_table(f, columns=["ts"]).column("ts")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{f}: cannot read parquet ({str(exc).splitlines()[0]})") from None
    if not len(col):
        return None
    t = pc.max(col).as_py()
    if t is None:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def data_status(path: Path, now: datetime) -> dict:
    """Last OHLCV bar, age, synthetic flag and venues of a dataset or collection.

    Parameters
    ----------
    path : pathlib.Path
        Dataset directory or collection folder.
    now : datetime.datetime
        The reference time (aware, UTC).

    Returns
    -------
    dict
        ``path``, ``label`` (folder name), ``venues``, ``synthetic``, ``data_end`` (ISO UTC or None) and
        ``age_hours`` (hours from the last bar to ``now``, 2 decimals, or None).

    Raises
    ------
    DataError
        Not a dataset or collection, or an unreadable meta.json / ohlcv.parquet.
    """
    dirs = _dataset_dirs(path)
    if not dirs:
        raise DataError(f"{path}: not a dataset or collection directory (no meta.json)")
    last = None
    synthetic = False
    venues = []
    for d in dirs:
        meta = _read_meta(d)
        synthetic = synthetic or bool(meta.get("synthetic", False))
        venues.append(str(meta.get("exchange", d.name)))
        f = d / "ohlcv.parquet"
        t = _last_bar(f) if f.exists() else None
        if t is not None:
            last = t if last is None or t > last else last
    age = None if last is None else round((now - last).total_seconds() / 3600.0, 2)
    return {
        "path": str(path),
        "label": path.name,
        "venues": venues,
        "synthetic": synthetic,
        "data_end": None if last is None else iso(last),
        "age_hours": age,
    }


def _first_bar(dirs: list[Path], path: Path) -> datetime:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    starts = []
    for d in dirs:
        f = d / "ohlcv.parquet"
        if f.exists():
            t = pc.min(pq.read_table(f, columns=["ts"]).column("ts")).as_py()
            if t is not None:
                starts.append(t)
    if not starts:
        raise ParameterError(f"{path}: refresh needs 'since' (the dataset holds no bars yet)")
    return min(starts)


def default_refresh(path: Path, options: dict) -> Any:
    """Incremental fetch (network) of a collection written by ``liqlab fetch`` or of one venue folder in it.

    Parameters
    ----------
    path : pathlib.Path
        Collection folder (``<path>/<venue>/``) or one venue's dataset directory.
    options : dict
        ``exchanges``, ``symbol`` and ``since`` (each defaults to what the data already holds: its
        venues, its symbol, its first bar, UTC) and any other :func:`liqlab.io.fetch.fetch` option.

    Returns
    -------
    Any
        What :func:`liqlab.io.fetch.fetch` returns.

    Raises
    ------
    DataError
        No dataset directories under ``path``.
    ParameterError
        No ``since`` and no bars to start from.
    """
    from liqlab.io import fetch

    path = Path(path)
    dirs = _dataset_dirs(path)
    if not dirs:
        raise DataError(f"{path}: nothing to refresh (no dataset directories)")
    metas = [json.loads((d / "meta.json").read_text()) for d in dirs]
    opts = dict(options)
    exchanges = opts.pop("exchanges", None) or [str(m.get("exchange")) for m in metas]
    symbol = opts.pop("symbol", None) or str(metas[0].get("symbol"))
    since = opts.pop("since", None)
    if since is None:
        since = _first_bar(dirs, path)
    out = path.parent if (path / "meta.json").exists() else path
    opts.setdefault("progress", False)
    return fetch.fetch(exchanges, symbol, since=since, out=out, **opts)


def refresh_all(config: ReportConfig, refresh_fn: RefreshFn | None) -> dict[str, dict]:
    """Refresh each dataset of a report, containing failures.

    Parameters
    ----------
    config : ReportConfig
        The report (``refresh`` None = no refresh).
    refresh_fn : RefreshFn, optional
        The refresh (default :func:`default_refresh`).

    Returns
    -------
    dict
        Dataset path -> ``{'ok': True}`` or ``{'ok': False, 'error': one line}``; empty when refresh is off.
    """
    if config.refresh is None:
        return {}
    fn = refresh_fn or default_refresh
    out = {}
    for ds in config.datasets:
        try:
            fn(ds, dict(config.refresh))
            out[str(ds)] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any refresh failure: run on cached data, say so
            out[str(ds)] = {"ok": False, "error": one_line(exc)}
    return out
