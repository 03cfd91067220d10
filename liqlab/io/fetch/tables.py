"""One fetcher per table: the venue's endpoint, its page, and the conversion to the dataset's columns.

OHLCV 1m (+ taker-buy volume on Binance, + mark-price close), open interest at 5m (base units and USD),
funding rates, leverage tiers (USD notional) and, where a public endpoint exists (OKX, recent only), realized
liquidations. Times UTC, prices USD, amounts base units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liqlab.io.fetch.venues import (
    BINANCE_OI_DAYS,
    KEY_ENV,
    MINUTE_MS,
    OI_PERIOD_MS,
    OKX_LIQUIDATION_LIMIT,
    PAGE_LIMIT,
    VENUE_NOTES,
)
from liqlab.io.fetch.walk import Ctx, iso, paginate, stored_dataset, todo, walk


def _ohlcv_page(ctx: Ctx, mark: bool) -> Callable[[int, int], list[tuple[int, Any]]]:
    ex, m = ctx.ex, ctx.market
    kind = "mark" if mark else "ohlcv"
    limit = PAGE_LIMIT[ctx.venue][kind]

    def page(lo: int, hi: int):
        if ctx.venue == "binanceusdm" and not mark:
            # raw klines keep taker-buy volume (ccxt's unified OHLCV drops it)
            req = {"symbol": m["id"], "interval": "1m", "startTime": lo, "endTime": hi - 1, "limit": limit}
            raw = ctx.call(ex.fapiPublicGetKlines, req, what="klines")
            return [(int(r[0]), (int(r[0]), *map(float, r[1:6]), float(r[9]))) for r in raw]
        fn = ex.fetch_mark_ohlcv if mark else ex.fetch_ohlcv
        rows = ctx.call(fn, ctx.symbol, "1m", lo, limit, {"until": hi - 1}, what=f"{kind} candles")
        return [(int(r[0]), tuple(r)) for r in rows]

    return page


def fetch_ohlcv(ctx: Ctx) -> None:
    """Fetch 1m OHLCV (USD, base volume; Binance: + taker-buy volume) with the mark-price close per bar.


    Parameters
    ----------
    ctx : Ctx
        The venue's fetch: its OHLCV rows go chunk by chunk into ``ctx.path`` (atomic), with ``ctx.notes``
        and ``ctx.added`` updated.
    """
    stored = stored_dataset(ctx.path)
    st = stored.ohlcv if stored is not None else None
    with_mark = st is None or len(st) == 0 or "mark_close" in st.columns
    if not with_mark:
        ctx.notes["mark_close"] = "not fetched: the stored OHLCV has no mark_close (imported without mark candles)"
    taker = ctx.venue == "binanceusdm"
    cols = ["ts", "open", "high", "low", "close", "volume"] + (["taker_buy_volume"] if taker else [])

    def write(buf: list[Any], a: int, b: int) -> None:
        df = pd.DataFrame([r[: len(cols)] for r in buf], columns=cols)
        df["ts"] = pd.to_datetime(df["ts"], unit="ms", utc=True).astype("datetime64[ns, UTC]")
        df = df.drop_duplicates("ts", keep="last")
        tables: dict[str, list[pd.DataFrame]] = {"ohlcv": [df]}
        if with_mark:
            marks: list[Any] = []
            paginate(ctx, "mark", _ohlcv_page(ctx, True), a, b, MINUTE_MS,
                      lambda bb, *_: marks.extend(bb), ctx.anchor("ohlcv"))
            mk = pd.DataFrame({"ts": [r[0] for r in marks], "mark_close": [float(r[4]) for r in marks]})
            mk["ts"] = pd.to_datetime(mk["ts"], unit="ms", utc=True).astype("datetime64[ns, UTC]")
            mk = mk.drop_duplicates("ts", keep="last")
            joined = df[["ts"]].merge(mk, on="ts", how="left")
            missing = int(joined["mark_close"].isna().sum())
            if missing:
                # the venue had no mark candle for these bars: use the bar's close, and count it
                fill = df.set_index("ts")["close"]
                joined["mark_close"] = joined["mark_close"].fillna(joined["ts"].map(fill))
                prev = int(ctx.notes.get("mark_close_filled_from_close", 0))
                ctx.notes["mark_close_filled_from_close"] = prev + missing
            df["mark_close"] = joined["mark_close"].to_numpy()
        ctx.store(tables)

    ranges = todo(ctx, "ohlcv", st["ts"] if st is not None else None, ctx.start, MINUTE_MS)
    walk(ctx, "ohlcv", ranges, _ohlcv_page(ctx, False), MINUTE_MS, write)


def close_at(ohlcv: pd.DataFrame | None, ts: pd.Series) -> np.ndarray:
    """Close (USD) of the 1m bar nearest to each timestamp.

    Parameters
    ----------
    ohlcv : pd.DataFrame or None
        An OHLCV table sorted by ts.
    ts : pd.Series
        Sorted UTC timestamps.

    Returns
    -------
    np.ndarray
        float64, shape (len(ts),); NaN for every timestamp when the table is empty.
    """
    if ohlcv is None or not len(ohlcv):
        return np.full(len(ts), np.nan)
    px = ohlcv[["ts", "close"]]
    left = pd.DataFrame({"ts": ts.to_numpy()}).astype({"ts": "datetime64[ns, UTC]"})
    return pd.merge_asof(left, px, on="ts", direction="nearest")["close"].to_numpy()


def _price_at(ctx: Ctx, ts: pd.Series) -> np.ndarray:
    """1m close nearest to each timestamp (USD), from the stored OHLCV; NaN when there is none."""
    stored = stored_dataset(ctx.path)
    return close_at(stored.ohlcv if stored is not None else None, ts)


def open_interest_frame(
    venue: str, rows: Sequence[dict], contract_size: float, price_at: Callable[[pd.Series], np.ndarray]
) -> tuple[pd.DataFrame, bool]:
    """ccxt open-interest structures (sorted by timestamp) → (frame, priced).

    Frame columns: ts (UTC), open_interest (base units), open_interest_value (USD); NaN where the venue
    gave no number. OKX's ``openInterestAmount`` is contracts: its ``baseVolume`` (base) is used, else
    contracts × ``contract_size``. A missing USD value (Bybit linear) is base × ``price_at(ts)`` (the 1m
    close, see :func:`close_at`); ``priced`` says whether that was needed (``price_at`` is called only then).

    Parameters
    ----------
    venue : str
        ccxt id of the venue.
    rows : sequence of dict
        ccxt open-interest structures, sorted by ``timestamp`` (epoch ms).
    contract_size : float
        Base units per contract.
    price_at : callable
        ``price_at(ts) -> np.ndarray`` of USD prices, shape (len(ts),).

    Returns
    -------
    (pd.DataFrame, bool)
        The frame, n rows × (ts, open_interest, open_interest_value), and ``priced``.
    """
    ts = pd.Series(pd.to_datetime([r["timestamp"] for r in rows], unit="ms", utc=True)).astype("datetime64[ns, UTC]")
    amount = np.array([_f(r.get("openInterestAmount")) for r in rows], dtype="float64")
    value = np.array([_f(r.get("openInterestValue")) for r in rows], dtype="float64")
    if venue == "okx":  # openInterestAmount is contracts; baseVolume is the base amount
        base = np.array([_f(r.get("baseVolume")) for r in rows], dtype="float64")
        amount = np.where(np.isfinite(base), base, amount * contract_size)
    priced = bool(np.isnan(value).any())
    if priced:
        value = np.where(np.isfinite(value), value, amount * price_at(ts))
    return pd.DataFrame({"ts": ts, "open_interest": amount, "open_interest_value": value}), priced


def fetch_open_interest(ctx: Ctx) -> None:
    """Fetch open-interest history at 5m (base units and USD; Binance: the last 30 days only).


    Parameters
    ----------
    ctx : Ctx
        The venue's fetch: its open-interest rows go chunk by chunk into ``ctx.path`` (atomic), with ``ctx.notes``
        and ``ctx.added`` updated.
    """
    start = ctx.start
    if ctx.venue == "binanceusdm":
        floor = ctx.now - BINANCE_OI_DAYS * 86_400_000 + OI_PERIOD_MS
        if start < floor:
            ctx.notes["open_interest_limit"] = VENUE_NOTES["binanceusdm"]["open_interest_limit"]
            ctx.log(f"{ctx.venue}: open interest before {iso(floor)} is not served by the API (last 30 days "
                    "only); import data.binance.vision metrics files for older history")
            start = max(start, floor - floor % OI_PERIOD_MS + OI_PERIOD_MS)
    limit = PAGE_LIMIT[ctx.venue]["open_interest"]

    def page(lo: int, hi: int):
        # Binance's documentation does not say which end of a long window /futures/data/openInterestHist
        # answers: ask for windows of at most `limit` periods, so the answer is the whole window either way
        while lo < hi:
            top = min(hi, lo + limit * OI_PERIOD_MS) if ctx.venue == "binanceusdm" else hi
            rows = ctx.call(ctx.ex.fetch_open_interest_history, ctx.symbol, "5m", lo, limit, {"until": top - 1},
                            what="open interest history")
            got = [(int(r["timestamp"]), r) for r in rows if r.get("timestamp") is not None]
            if got or top >= hi:
                return got
            lo = top  # an empty window inside the range: look further
        return []

    def write(buf: list[dict], a: int, b: int) -> None:
        df, priced = open_interest_frame(ctx.venue, buf, ctx.contract_size, lambda ts: _price_at(ctx, ts))
        if priced and ctx.venue == "bybit":
            ctx.notes["open_interest_value"] = VENUE_NOTES["bybit"]["open_interest_value"]
        keep = np.isfinite(df["open_interest"].to_numpy()) & np.isfinite(df["open_interest_value"].to_numpy())
        if not keep.all():
            ctx.notes["open_interest_dropped"] = int(ctx.notes.get("open_interest_dropped", 0)) + int((~keep).sum())
        ctx.store({"open_interest": [df.loc[keep].drop_duplicates("ts", keep="last")]})

    stored = stored_dataset(ctx.path)
    st = stored.open_interest["ts"] if stored is not None else None
    walk(ctx, "open_interest", todo(ctx, "open_interest", st, start, OI_PERIOD_MS), page, OI_PERIOD_MS, write)


def _f(x: Any) -> float:
    try:
        return float(x) if x is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def fetch_funding(ctx: Ctx) -> None:
    """Fetch funding-rate history (fraction per funding interval).


    Parameters
    ----------
    ctx : Ctx
        The venue's fetch: its funding rows go chunk by chunk into ``ctx.path`` (atomic), with ``ctx.notes``
        and ``ctx.added`` updated.
    """
    limit = PAGE_LIMIT[ctx.venue]["funding"]

    def page(lo: int, hi: int):
        # OKX: ccxt maps `since` to `before` only and passes `until` through unused, and OKX then answers the
        # NEWEST rates; its own `after` (rates earlier than) bounds the window at the top
        end = {"after": hi} if ctx.venue == "okx" else {"until": hi - 1}
        rows = ctx.call(ctx.ex.fetch_funding_rate_history, ctx.symbol, lo, limit, end, what="funding rate history")
        return [(int(r["timestamp"]), r) for r in rows if r.get("timestamp") is not None]

    def write(buf: list[dict], a: int, b: int) -> None:
        df = pd.DataFrame({
            "ts": pd.to_datetime([r["timestamp"] for r in buf], unit="ms", utc=True),
            "funding_rate": [_f(r.get("fundingRate")) for r in buf],
        })
        df["ts"] = df["ts"].astype("datetime64[ns, UTC]")
        ctx.store({"funding": [df.drop_duplicates("ts", keep="last")]})

    stored = stored_dataset(ctx.path)
    st = stored.funding["ts"] if stored is not None else None
    walk(ctx, "funding", todo(ctx, "funding", st, ctx.start, 1), page, 1, write)


def fetch_tiers(ctx: Ctx, refresh: bool) -> None:
    """Fetch the venue's leverage tiers (USD notional), unless stored and not ``refresh``.

    Binance without an API key gets the bundled table; OKX tiers in contracts are converted with the
    contract size and the last stored close.

    Parameters
    ----------
    ctx : Ctx
        The venue's fetch.
    refresh : bool
        Fetch even when the dataset already holds tiers.

    Returns
    -------
    None
    """
    from liqlab.io.tiers import default_tiers, normalize_ccxt_tiers

    stored = stored_dataset(ctx.path)
    if stored is not None and stored.leverage_tiers is not None and len(stored.leverage_tiers) and not refresh:
        return
    today = pd.Timestamp(ctx.now, unit="ms", tz="UTC").strftime("%Y-%m-%d")
    if ctx.venue == "binanceusdm" and not ctx.ex.apiKey:
        table = default_tiers("binanceusdm", ctx.symbol)
        ctx.notes["leverage_tiers"] = (
            f"bundled table as of {table.as_of} ({table.source}): Binance's leverage brackets need an API key "
            f"(set {KEY_ENV['binanceusdm'][0]} and {KEY_ENV['binanceusdm'][1]} to fetch the current ones)"
        )
        ctx.notes["leverage_tiers_as_of"] = table.as_of
        ctx.store({"leverage_tiers": [table.to_frame()]})
        return
    if ctx.venue == "binanceusdm":
        raw = ctx.call(ctx.ex.fetch_leverage_tiers, [ctx.symbol], what="leverage brackets")
        tiers = raw.get(ctx.symbol) or []
    else:
        tiers = ctx.call(ctx.ex.fetch_market_leverage_tiers, ctx.symbol, what="leverage tiers")
    if not tiers:
        ctx.notes["leverage_tiers"] = "the exchange returned no tiers"
        return
    price = None
    if ctx.venue == "okx":
        px = _price_at(ctx, pd.Series([pd.Timestamp(ctx.end - MINUTE_MS, unit="ms", tz="UTC")]))
        price = float(px[0]) if np.isfinite(px[0]) else None
        if price is None:
            ctx.notes["leverage_tiers"] = "OKX tiers are in contracts and no price was stored to convert them"
            return
        ctx.notes["leverage_tiers_units"] = (
            f"OKX tiers in contracts x contract size {ctx.contract_size:g} x price {price:g} USD (last close)"
        )
    table = normalize_ccxt_tiers(tiers, venue=ctx.venue, contract_size=ctx.contract_size, price=price,
                                 symbol=ctx.symbol, as_of=today)
    ctx.notes["leverage_tiers_as_of"] = today
    ctx.store({"leverage_tiers": [table.to_frame()]})


def fetch_liquidations(ctx: Ctx) -> None:
    """Fetch realized liquidations where a public history exists (OKX, recent fills); elsewhere note why not.


    Parameters
    ----------
    ctx : Ctx
        The venue's fetch: its liquidation rows go chunk by chunk into ``ctx.path`` (atomic), with ``ctx.notes``
        and ``ctx.added`` updated.
    """
    ctx.notes["liquidations"] = VENUE_NOTES[ctx.venue]["liquidations"]
    if ctx.venue != "okx":
        ctx.store({})
        return
    m = ctx.market
    family = (m.get("info") or {}).get("instFamily") or f"{m['base']}-{m['quote']}"

    def page(lo: int, hi: int):
        # newest fills strictly between `before` and `after`, newest first, `limit` per page
        req = {"instType": "SWAP", "instFamily": family, "state": "filled", "before": lo - 1, "after": hi,
               "limit": OKX_LIQUIDATION_LIMIT}
        resp = ctx.call(ctx.ex.request, "public/liquidation-orders", ["public"], "GET", req,
                        what="liquidation orders")
        rows = []
        for item in (resp or {}).get("data", []) or []:
            if item.get("instId") not in (None, "", m["id"]):
                continue  # another instrument of the family (e.g. a dated future)
            for d in item.get("details", []) or []:  # one item holds many fills
                rows.append((int(d["ts"]), d))
        return rows

    def write(buf: list[dict], a: int, b: int) -> None:
        rows = []
        for d in buf:
            amount = _f(d.get("sz")) * ctx.contract_size  # contracts -> base
            price = _f(d.get("bkPx"))
            pos = (d.get("posSide") or "").lower()
            side = pos if pos in ("long", "short") else ("long" if (d.get("side") or "").lower() == "sell" else "short")
            rows.append((int(d["ts"]), side, price, amount, amount * price))
        df = pd.DataFrame(rows, columns=["ts", "side", "price", "amount", "value"])
        df["ts"] = pd.to_datetime(df["ts"], unit="ms", utc=True).astype("datetime64[ns, UTC]")
        df["side"] = df["side"].astype(object)
        df = df.sort_values("ts", kind="stable").reset_index(drop=True)
        ctx.store({"liquidations": [df]})

    stored = stored_dataset(ctx.path)
    st = stored.liquidations["ts"] if stored is not None and stored.liquidations is not None else None
    walk(ctx, "liquidations", todo(ctx, "liquidations", st, ctx.start, 1), page, 1, write)
    ctx.store({})
