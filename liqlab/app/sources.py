"""Where a notebook's dataset comes from: the simulated sample, a fresh fetch, or a bulk import.

Notebooks call :func:`acquire` with their ``source`` parameter (one of :data:`ORIGINS`), so a scheduled
papermill run can refresh a dataset from exchanges while the default stays offline.
"""

from __future__ import annotations

import os
from pathlib import Path

from liqlab._util import VENUES
from liqlab.errors import ParameterError

__all__ = ["ORIGINS", "acquire"]

ORIGINS: tuple[str, ...] = ("sample", "fetch", "import")
"""The data origins :func:`acquire` knows: the simulated sample, ``liqlab fetch``, ``liqlab import``."""


def _split(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return [str(v) for v in x]
    return [s.strip() for s in str(x).split(",") if s.strip()]


def acquire(
    source: str,
    dataset: str | os.PathLike,
    *,
    exchanges: str | list[str] = ",".join(VENUES),
    symbol: str | None = "BTC/USDT:USDT",
    since: str | None = None,
    until: str | None = None,
    import_format: str | None = None,
    import_files: str | list[str] = "",
    import_exchange: str = "binanceusdm",
    progress: bool = False,
    asset: str | None = None,
) -> Path:
    """Make sure ``dataset`` holds data from ``source`` and return its path.

    - ``sample``: the simulated market (SYNTHETIC); simulated (seed 0, 30 days, every venue of
      :data:`liqlab._util.VENUES`) if the folder is absent.
    - ``fetch``: incremental ``liqlab fetch`` of ``exchanges``/``symbol`` from ``since`` to ``until`` (network).
    - ``import``: ``liqlab import`` of ``import_files`` in ``import_format``.

    Parameters
    ----------
    source : str
        One of :data:`ORIGINS`.
    dataset : str or os.PathLike
        Dataset directory or collection folder to fill (created when absent).
    exchanges : str or list of str
        ccxt venue ids for ``fetch`` (comma-separated text or a list).
    symbol : str, optional
        ccxt unified symbol for ``fetch`` and ``import``.
    since, until : str, optional
        UTC start (required for ``fetch``) and exclusive end (default now) of the fetch.
    import_format : str, optional
        Bulk format for ``import`` (``binance-vision``, ``freqtrade``, ``coinglass-csv``, ``ccxt-tiers``).
    import_files : str or list of str
        Files for ``import`` (comma-separated text or a list).
    import_exchange : str
        Venue id the imported files belong to.
    progress : bool
        Show progress bars.
    asset : str, optional
        For ``sample``: the simulator's asset preset (``BTC``, ``ETH``; default BTC, the plain simulation).

    Returns
    -------
    pathlib.Path
        The dataset path (``dataset``).

    Raises
    ------
    ParameterError
        Unknown ``source``, or a parameter ``fetch``/``import`` needs is missing.
    """
    path = Path(dataset)
    if source == "sample":
        if not path.exists():
            from liqlab.sim.simulation import simulate

            kw = {"asset": asset} if asset is not None else {}
            simulate(days=30, seed=0, venues=VENUES, out=path, progress=progress, **kw)
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
    raise ParameterError(f"source: must be one of {ORIGINS}, got {source!r}")
