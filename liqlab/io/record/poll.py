"""REST polling beside the websocket: 1m OHLCV, 5m open interest and funding merged into the venue's tables.

Pages and units come from the fetcher's code (:mod:`liqlab.io.fetch`), so a recorded table means what a
fetched one means. Times are UTC, prices USD, amounts base units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liqlab.io import atomic
from liqlab.io.record import config as record_config
from liqlab.io.record.config import RecordConfig
from liqlab.io.record.events import _f

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import pandas as pd

    from liqlab.io.record.recorder import _Venue


async def poll_table(v: "_Venue", name: str, config: RecordConfig) -> None:
    """Fetch what is new of one table by REST and merge it into ``<venue>/<name>.parquet`` atomically.

    Pages are the venue's documented maxima (``liqlab.io.fetch.PAGE_LIMIT``) and units are converted by the
    fetcher's code: OHLCV volume in base units (ccxt's OKX candles are ``volCcy``), open interest in base
    units and USD (:func:`liqlab.io.fetch.open_interest_frame`). Where the venue gives no USD value (Bybit) it
    is base × the close of the stored 1m bar at that time, so such rows wait until their bar is stored.

    Parameters
    ----------
    v : _Venue
        The venue's recording state (its exchange, market and folder).
    name : {'ohlcv', 'open_interest', 'funding'}
        The table to poll.
    config : RecordConfig
        Symbol and ``backfill_hours`` (history fetched when the table is empty).

    Returns
    -------
    None
        The table file is rewritten (atomically) when the poll brought new rows.
    """
    import pandas as pd
    import pyarrow.parquet as pq

    from liqlab.io.dataset import merge_tables
    from liqlab.io.fetch import PAGE_LIMIT

    path = v.vdir / f"{name}.parquet"
    old = pq.read_table(path).to_pandas() if path.exists() else None
    now_ms = record_config.now_ms()
    since = now_ms - int(config.backfill_hours * 3600_000)
    if old is not None and len(old):
        since = int(pd.Timestamp(old["ts"].iloc[-1]).value // 1_000_000) + 1
    limit = PAGE_LIMIT[v.name][name]
    poll = {"ohlcv": _new_ohlcv, "open_interest": _new_open_interest, "funding": _new_funding}[name]
    df = await poll(v, config.symbol, since, limit, now_ms)
    if df.empty:
        return
    df = df.drop_duplicates("ts", keep="last").sort_values("ts").reset_index(drop=True)
    merged = merge_tables(name, old, df, str(path))
    atomic.write_parquet(path, merged)


def _utc(ms: "pd.Series") -> "pd.Series":
    """Epoch milliseconds → tz-aware UTC timestamps (ns)."""
    import pandas as pd

    return pd.to_datetime(ms.astype("int64"), unit="ms", utc=True).astype("datetime64[ns, UTC]")


async def _new_ohlcv(v: "_Venue", sym: str, since: int, limit: int, now_ms: int) -> "pd.DataFrame":
    """Closed 1m bars from ``since`` (ms): ts, open, high, low, close (USD), volume (base)."""
    import pandas as pd

    bars = await v.exchange.fetch_ohlcv(sym, "1m", since=since, limit=limit)
    bars = [b[:6] for b in bars if b[0] + 60_000 <= now_ms]  # closed bars only
    df = pd.DataFrame(bars, columns=["ts", "open", "high", "low", "close", "volume"])
    df["ts"] = _utc(df["ts"])
    return df


async def _new_open_interest(v: "_Venue", sym: str, since: int, limit: int, now_ms: int) -> "pd.DataFrame":
    """5m open interest from ``since`` (ms): ts, open_interest (base), open_interest_value (USD); rows the
    venue gives no USD value for are priced with the stored 1m bar AT ts and wait for it."""
    import numpy as np
    import pyarrow.parquet as pq

    from liqlab.io.fetch import close_at, open_interest_frame

    rows = await v.exchange.fetch_open_interest_history(sym, "5m", since=since, limit=limit)
    rows = sorted((r for r in rows if r.get("timestamp") is not None), key=lambda r: r["timestamp"])
    ohlcv_path = v.vdir / "ohlcv.parquet"
    ohlcv = pq.read_table(ohlcv_path).to_pandas() if ohlcv_path.exists() else None
    cs = _f(v.market.get("contractSize")) or 1.0
    df, priced = open_interest_frame(v.name, rows, cs, lambda ts: close_at(ohlcv, ts))
    if priced:  # priced with the bar AT ts: later rows wait for their bar (never an older bar's close)
        last_bar = ohlcv["ts"].iloc[-1] if ohlcv is not None and len(ohlcv) else None
        df = df[df["ts"] <= last_bar] if last_bar is not None else df.iloc[:0]
    return df[np.isfinite(df["open_interest"].to_numpy()) & np.isfinite(df["open_interest_value"].to_numpy())]


async def _new_funding(v: "_Venue", sym: str, since: int, limit: int, now_ms: int) -> "pd.DataFrame":
    """Funding rates from ``since`` (ms): ts, funding_rate (fraction per interval)."""
    import pandas as pd

    rows = await v.exchange.fetch_funding_rate_history(sym, since=since, limit=limit)
    df = pd.DataFrame([[r["timestamp"], r["fundingRate"]] for r in rows], columns=["ts", "funding_rate"])
    df["ts"] = _utc(df["ts"])
    return df


def live_exchange(name: str) -> Any:
    """A ccxt.pro exchange that loads only derivative markets and no currencies (as the fetcher).

    Parameters
    ----------
    name : str
        ccxt id of the venue (one of :data:`liqlab._util.VENUES`).

    Returns
    -------
    ccxt.pro.Exchange
        Rate-limited, ``newUpdates`` on; nothing is requested until it is used.
    """
    import ccxt.pro as ccxtpro

    from liqlab.io.fetch import MARKET_OPTIONS

    return getattr(ccxtpro, name)({"enableRateLimit": True, "newUpdates": True,
                                   "options": dict(MARKET_OPTIONS[name])})
