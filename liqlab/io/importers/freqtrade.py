"""The ``freqtrade`` format: freqtrade feather / json OHLCV, ``mark`` and ``funding_rate`` files (rate in
``open``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.io.importers.read import _LINE, _MARK, _Parsed, _bar_spacing, _epoch, _numeric, _tag

FREQTRADE_KINDS = ("ohlcv", "mark", "funding")


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
