"""Where a notebook's dataset comes from: the simulated sample, a fresh fetch, or a bulk import.

Notebooks call :func:`prepare` with their ``source`` parameter, so a scheduled papermill run can refresh
a dataset from exchanges while the default stays offline.
"""

from __future__ import annotations

import os
from pathlib import Path

from liqlab.errors import ParameterError

SOURCES = ("sample", "fetch", "import")


def _split(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [str(v) for v in x]
    return [s.strip() for s in str(x).split(",") if s.strip()]


def prepare(
    source: str,
    dataset: str | os.PathLike,
    *,
    exchanges: str | list[str] = "binanceusdm,bybit,okx",
    symbol: str | None = "BTC/USDT:USDT",
    since: str | None = None,
    until: str | None = None,
    import_format: str | None = None,
    import_files: str | list[str] = "",
    import_exchange: str = "binanceusdm",
    progress: bool = False,
) -> Path:
    """Make sure ``dataset`` holds data from ``source`` and return its path.

    - ``sample``: the simulated market; simulated (seed 0, 30 days, 3 venues) if the folder is absent.
    - ``fetch``: incremental ``liqlab fetch`` of ``exchanges``/``symbol`` from ``since`` to ``until``.
    - ``import``: ``liqlab import`` of ``import_files`` in ``import_format``.
    """
    path = Path(dataset)
    if source == "sample":
        if not path.exists():
            from liqlab.sim.simulation import simulate

            simulate(days=30, seed=0, venues=("binanceusdm", "bybit", "okx"), out=path, progress=progress)
        return path
    if source == "fetch":
        if not since:
            raise ParameterError("fetch_since: required when source='fetch' (e.g. '2025-01-01')")
        from liqlab.io.fetch import fetch

        fetch(_split(exchanges), symbol, since=since, until=until, out=path, progress=progress)
        return path
    if source == "import":
        files = _split(import_files)
        if not import_format or not files:
            raise ParameterError("import_format and import_files: both required when source='import'")
        from liqlab.io.importers import import_files as run_import

        run_import(import_format, files, out=path, exchange=import_exchange, symbol=symbol)
        return path
    raise ParameterError(f"source: must be one of {SOURCES}, got {source!r}")
