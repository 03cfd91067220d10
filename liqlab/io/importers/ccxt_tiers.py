"""The ``ccxt-tiers`` format: ccxt ``fetch_leverage_tiers`` / ``fetch_market_leverage_tiers`` JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


from liqlab.errors import DataError
from liqlab.io.importers.read import _Parsed

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
