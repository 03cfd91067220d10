"""Liquidation events as dataset rows: one ccxt liquidation structure -> rows in base units and USD."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from liqlab.io.record.config import LIQ_COLUMNS

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pandas as pd


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _side_from_order(order_side: Any) -> str | None:
    s = str(order_side or "").lower()
    return {"sell": "long", "buy": "short"}.get(s)


def liquidation_rows(venue: str, liq: dict, market: dict) -> list[dict]:
    """Rows (ts ms, side, price, amount base, value USD) from one ccxt liquidation structure.

    Uses the raw ``info`` for the fields ccxt drops (every OKX fill, sides per venue convention).

    Parameters
    ----------
    venue : str
        ccxt id of the venue (its side and price conventions differ).
    liq : dict
        One ccxt liquidation structure (with the raw message in ``info``).
    market : dict
        The ccxt market (``contractSize``, ``inverse``).

    Returns
    -------
    list of dict
        One per fill: ``ts`` (epoch ms, UTC), ``side`` (the liquidated position's, 'long'|'short'), ``price``
        (USD), ``amount`` (base units), ``value`` (USD). Fills without a time, side, size or positive price
        are left out.
    """
    info = liq.get("info") or {}
    cs = _f(market.get("contractSize")) or 1.0
    inverse = bool(market.get("inverse"))
    raw: list[tuple[Any, str | None, float | None, float | None]] = []  # (ts, side, price, contracts)
    if venue == "okx":
        details = info.get("details") or []
        for d in details:
            side = str(d.get("posSide") or "").lower()
            if side not in ("long", "short"):
                side = _side_from_order(d.get("side"))
            raw.append((d.get("ts"), side, _f(d.get("bkPx")), _f(d.get("sz"))))
        if not details:
            raw.append((liq.get("timestamp"), _side_from_order(liq.get("side")), _f(liq.get("price")), _f(liq.get("contracts"))))
    elif venue == "bybit":
        pos = str(info.get("S", info.get("side", ""))).lower()
        side = {"buy": "long", "sell": "short"}.get(pos)
        raw.append((liq.get("timestamp"), side, _f(liq.get("price")), _f(liq.get("contracts"))))
    else:  # binanceusdm: the liquidation ORDER's side
        qty = _f(info.get("z")) or _f(liq.get("contracts")) or _f(info.get("q"))
        price = _f(liq.get("price")) or _f(info.get("ap")) or _f(info.get("p"))
        raw.append((liq.get("timestamp"), _side_from_order(info.get("S", liq.get("side"))), price, qty))
    rows = []
    for ts, side, price, contracts in raw:
        t = _f(ts)
        if t is None or side is None or contracts is None or price is None or price <= 0 or contracts < 0:
            continue
        if inverse:
            value = contracts * cs
            amount = value / price
        else:
            amount = contracts * cs
            value = amount * price
        rows.append({"ts": int(t), "side": side, "price": price, "amount": amount, "value": value})
    return rows


def liq_frame(rows: list[dict]) -> "pd.DataFrame":
    """Event rows (:func:`liquidation_rows`) as a ``liquidations`` table sorted by ts.

    Parameters
    ----------
    rows : list of dict
        ts (epoch ms), side, price (USD), amount (base), value (USD).

    Returns
    -------
    pd.DataFrame
        n events × (ts UTC, side, price, amount, value).
    """
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(LIQ_COLUMNS))
    df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True).astype("datetime64[ns, UTC]")
    df["side"] = df["side"].astype(object)
    for c in ("price", "amount", "value"):
        df[c] = df[c].astype("float64")
    return df.sort_values("ts", kind="stable").reset_index(drop=True)

