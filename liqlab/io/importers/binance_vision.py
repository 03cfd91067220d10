"""The ``binance-vision`` format: data.binance.vision futures CSV dumps (``klines``, ``markPriceKlines``,
``metrics`` [open interest], ``fundingRate``, ``liquidationSnapshot``), daily or monthly, zipped or not, with
or without a header row."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.io.importers.read import _LINE, _MARK, _Parsed, _bar_spacing, _csv_rows, _epoch, _is_number, _numeric, _table_from_rows, _tag, _text_time

BINANCE_KINDS = ("klines", "markPriceKlines", "metrics", "fundingRate", "liquidationSnapshot")

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
