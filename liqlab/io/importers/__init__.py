"""Bulk importers: files researchers already have on disk -> a liqlab dataset directory.

Formats (``FORMATS``):

- ``binance-vision``: data.binance.vision futures CSV dumps (``klines``, ``markPriceKlines``, ``metrics``
  [open interest], ``fundingRate``, ``liquidationSnapshot``), daily or monthly, zipped or not, with or
  without a header row.
- ``freqtrade``: freqtrade feather / json OHLCV, ``mark`` and ``funding_rate`` files (rate in ``open``).
- ``coinglass-csv``: CSV exports with ``price_*`` OHLC, ``oi_*`` (USD), ``funding_*`` and optional
  ``liquidation_long_usd`` / ``liquidation_short_usd`` columns.
- ``ccxt-tiers``: ccxt ``fetch_leverage_tiers`` / ``fetch_market_leverage_tiers`` JSON.

One module per format (:mod:`~liqlab.io.importers.binance_vision`, :mod:`~liqlab.io.importers.freqtrade`,
:mod:`~liqlab.io.importers.coinglass`, :mod:`~liqlab.io.importers.ccxt_tiers`), the file and time reading
they share (:mod:`~liqlab.io.importers.read`) and the merge (:mod:`~liqlab.io.importers.merge`).

Every import goes through :func:`update_dataset`: new rows are merged with what the dataset already holds
(one row per timestamp; the same value twice is fine, two different values for one timestamp is a
``DataError`` naming file and line), and the directory is rewritten atomically or not at all.
Times are UTC; prices in quote currency (USD); amounts in base units.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from liqlab._util import progress as progress_bar
from liqlab.errors import ParameterError
from liqlab.io.importers.binance_vision import BINANCE_KINDS, _binance_kind, _read_binance_vision
from liqlab.io.importers.ccxt_tiers import _read_ccxt_tiers
from liqlab.io.importers.coinglass import FUNDING_UNITS, OI_ALIGNMENT_MIN_PAIRS, OIAlignment, _read_coinglass, oi_alignment
from liqlab.io.importers.freqtrade import FREQTRADE_KINDS, _freqtrade_kind, _read_freqtrade
from liqlab.io.importers.merge import ImportResult, _combine, _validate_tagged, update_dataset
from liqlab.io.importers.read import EPOCH_UNITS, _MARK, _SRC, _Parsed, _iter_members
from liqlab.io.schema import empty_table


__all__ = [
    "FORMATS",
    "BINANCE_KINDS",
    "FREQTRADE_KINDS",
    "FUNDING_UNITS",
    "EPOCH_UNITS",
    "ImportResult",
    "OIAlignment",
    "OI_ALIGNMENT_MIN_PAIRS",
    "import_files",
    "update_dataset",
    "empty_table",
    "oi_alignment",
]

FORMATS = ("binance-vision", "freqtrade", "coinglass-csv", "ccxt-tiers")


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

    Parameters
    ----------
    fmt : str
        One of :data:`FORMATS`.
    sources : sequence of path
        Files (zip archives are read member by member).
    out : str or os.PathLike
        The dataset directory.
    exchange, symbol : str
        ccxt venue id and unified symbol of the data.
    kind : str, optional
        Overrides the table a file is read as (binance-vision: klines|markPriceKlines|metrics|fundingRate|
        liquidationSnapshot; freqtrade: ohlcv|mark|funding).
    funding_unit : {'auto', 'fraction', 'percent'}
        coinglass-csv funding unit.
    contract_size : float, optional
        Base units per contract (default: the dataset's, else 1); with ``price`` (USD) it converts
        contract-sized tiers (OKX).
    price : float, optional
        USD price for contract-sized tiers (default: the dataset's last close).
    progress : bool, optional
        Progress bar over the files (None = only on a terminal).

    Returns
    -------
    ImportResult
        Rows per table after the import, rows added, files read, notes and warnings.

    Raises
    ------
    DataError
        Naming the file and line of the first bad row; ``out`` is then left untouched.
    ParameterError
        For an unknown format, exchange or symbol, or no files.
    """
    from liqlab.io.atomic import check_dir_target
    from liqlab.io.dataset import is_dataset_dir, load_dataset

    _check_request(fmt, exchange, symbol, sources)
    out = check_dir_target(out)
    stored_meta = load_dataset(out).meta if is_dataset_dir(out) else {}
    cs = float(contract_size if contract_size is not None else stored_meta.get("contract_size", 1.0))
    if fmt == "ccxt-tiers" and price is None and is_dataset_dir(out):
        ohlcv = load_dataset(out).ohlcv
        price = float(ohlcv["close"].iloc[-1]) if len(ohlcv) else None

    def read(label: str, raw: bytes, parsed: _Parsed) -> None:
        if fmt == "binance-vision":
            _read_binance_vision(label, raw, _binance_kind(label, kind), parsed)
        elif fmt == "freqtrade":
            _read_freqtrade(label, raw, _freqtrade_kind(label, kind), parsed)
        elif fmt == "coinglass-csv":
            _read_coinglass(label, raw, funding_unit, parsed)
        else:
            _read_ccxt_tiers(label, raw, symbol, exchange, cs, price, parsed)

    parsed, labels = _read_files([Path(s) for s in sources], read, progress)
    res = update_dataset(out, _checked_frames(parsed), exchange=exchange, symbol=symbol, source=f"import:{fmt}",
                         notes=parsed.notes, meta_defaults={"contract_size": cs})
    return ImportResult(path=res.path, rows=res.rows, added=res.added, changed=res.changed,
                        files=tuple(labels), notes=res.notes, warnings=tuple(parsed.warnings))


def _check_request(fmt: str, exchange: str, symbol: str, sources: Sequence[Any]) -> None:
    """ParameterError for an unknown format or exchange, a symbol that is not ccxt's, or no files."""
    from liqlab.io.schema import KNOWN_EXCHANGES

    if fmt not in FORMATS:
        raise ParameterError(f"--format: unknown format {fmt!r}; choose from {list(FORMATS)}")
    if exchange not in KNOWN_EXCHANGES:
        raise ParameterError(f"--exchange: unknown exchange {exchange!r}; choose from {list(KNOWN_EXCHANGES)}")
    if not isinstance(symbol, str) or "/" not in symbol:
        raise ParameterError(f"--symbol: must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}")
    if not sources:
        raise ParameterError("SRC: give at least one file to import")


def _read_files(files: list[Path], read: Any, progress: bool | None) -> tuple[_Parsed, list[str]]:
    """Every member of every file through ``read(label, raw, parsed)``, with a progress bar over the files."""
    parsed = _Parsed()
    labels: list[str] = []
    bar = progress_bar(total=len(files), desc="import", unit="file", enabled=progress)
    try:
        for f in files:
            for label, raw in _iter_members(f):
                labels.append(label)
                read(label, raw, parsed)
            bar.update(1)
    finally:
        bar.close()
    return parsed, labels


def _checked_frames(parsed: _Parsed) -> dict[str, list[pd.DataFrame]]:
    """Within each file: sort, merge exact duplicates, reject conflicting ones (with file and line)."""
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
    return checked
