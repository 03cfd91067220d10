"""Exchange fetcher (ccxt): the ONLY liqlab code that touches the network.

``fetch(exchanges, symbol, since=, until=, out=)`` fills ``out/<venue>/`` dataset directories (a
collection) with 1m OHLCV (+ taker-buy volume on Binance, + mark-price close), open-interest history at
the venue's finest period (5m), funding-rate history, leverage tiers and, where a public endpoint exists
(OKX, recent only), realized liquidations. Times are UTC; prices USD; amounts base units.

It is incremental: per table it fetches only the time the dataset lacks (before its first and after its
last stored row), and it writes pages in chunks through :func:`liqlab.io.importers.update_dataset`
(atomic), so an interrupted fetch keeps every finished chunk and resumes from there. Pages are walked
in the direction each venue anchors a short page at (Binance: the oldest rows of the window, forward;
Bybit and OKX: the newest, backward), and every chunk is stored with ``meta.notes.fetch_pending`` = the
ranges still to walk, so a walk interrupted inside a hole between stored rows resumes there. Network errors
and rate limits are retried with exponential backoff up to a bounded count (``sleep`` is injectable);
an exchange refusal (``ccxt.ExchangeError``) stops with a one-line :class:`FetchError`.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import FetchError, ParameterError

__all__ = ["VENUES", "TABLES", "FetchResult", "fetch", "make_exchange", "call_with_retry", "close_at",
           "open_interest_frame"]

VENUES = ("binanceusdm", "bybit", "okx")
TABLES = ("ohlcv", "open_interest", "funding", "leverage_tiers", "liquidations")
MINUTE_MS = 60_000
OI_PERIOD_MS = 5 * MINUTE_MS
BINANCE_OI_DAYS = 30

# rows per request (the venues' documented maxima for these endpoints)
PAGE_LIMIT: dict[str, dict[str, int]] = {
    "binanceusdm": {"ohlcv": 1500, "mark": 1500, "open_interest": 500, "funding": 1000},
    "bybit": {"ohlcv": 1000, "mark": 1000, "open_interest": 200, "funding": 200},
    "okx": {"ohlcv": 100, "mark": 100, "open_interest": 100, "funding": 100},
}
# ccxt options: load only the derivative markets liqlab can use, and no currencies (Binance's currency list
# is a signed spot-API request once keys are set, which a futures-only key may not be allowed to make)
MARKET_OPTIONS: dict[str, dict[str, Any]] = {
    "binanceusdm": {"fetchCurrencies": False},
    "bybit": {"fetchCurrencies": False, "fetchMarkets": {"types": ["linear", "inverse"]}},
    "okx": {"fetchCurrencies": False, "fetchMarkets": {"types": ["swap", "future"]}},
}
# Which end of the requested window a page holds when the window has more rows than the page (the venues'
# documented behaviour): Binance the oldest rows from startTime ('start'), Bybit v5 and OKX v5 the newest
# rows up to the end ('end'). The walk follows it (forward from the start, or backward from the end).
# OKX open interest goes through ccxt's windowed rubik request, which asks for the rows from `since`.
ANCHOR: dict[str, str] = {"binanceusdm": "start", "bybit": "end", "okx": "end"}
ANCHOR_OVERRIDE: dict[tuple[str, str], str] = {("okx", "open_interest"): "start"}
OKX_LIQUIDATION_LIMIT = 100
# environment variables read for API keys (only Binance's leverage brackets need them)
KEY_ENV = {"binanceusdm": ("BINANCE_API_KEY", "BINANCE_API_SECRET")}

VENUE_NOTES = {
    "binanceusdm": {
        "open_interest_limit": (
            "Binance serves open-interest history for the last 30 days only; for older open interest import "
            "data.binance.vision futures/um metrics files: liqlab import --format binance-vision"
        ),
        "liquidations": (
            "Binance has no public REST history of liquidations; its public stream (liqlab record) sends at most "
            "one liquidation per second per symbol, so realized liquidations from it are a lower bound"
        ),
    },
    "bybit": {
        "liquidations": "Bybit has no public REST history of liquidations (websocket only: liqlab record)",
        "open_interest_value": "Bybit gives no USD value: open_interest_value = open_interest x 1m close at that time",
    },
    "okx": {
        "liquidations": (
            "OKX public liquidation-orders serves recent fills only; sizes in contracts x contract size = base; "
            "price is the bankruptcy price"
        ),
        "leverage_tiers_units": "OKX tiers are in contracts: converted with contract size x last close (USD)",
    },
}


@dataclass(frozen=True)
class FetchResult:
    """Per venue: dataset path, rows per table after the fetch, rows added, notes (venue limits)."""

    path: Path
    venues: dict[str, Path]
    rows: dict[str, dict[str, int]]
    added: dict[str, dict[str, int]]
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- helpers


def _ms(x: Any) -> int:
    ts = pd.Timestamp(x)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value // 1_000_000)


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def make_exchange(exchange_id: str, *, session: Any = None, config: dict | None = None) -> Any:
    """A ccxt exchange with the rate limiter on; API keys from the environment when present.

    ``session``: a ``requests.Session`` to use as transport (tests mount a fake adapter on it).
    """
    import ccxt

    if exchange_id not in VENUES:
        raise ParameterError(f"--exchange: unknown exchange {exchange_id!r}; choose from {list(VENUES)}")
    cfg: dict[str, Any] = {"enableRateLimit": True, "timeout": 30_000, "options": dict(MARKET_OPTIONS[exchange_id])}
    key_env = KEY_ENV.get(exchange_id)
    if key_env and os.environ.get(key_env[0]) and os.environ.get(key_env[1]):
        cfg["apiKey"] = os.environ[key_env[0]]
        cfg["secret"] = os.environ[key_env[1]]
    extra = dict(config or {})
    cfg["options"].update(extra.pop("options", {}) or {})
    cfg.update(extra)
    ex = getattr(ccxt, exchange_id)(cfg)
    if session is not None:
        ex.session = session
    return ex


def call_with_retry(
    fn: Callable[..., Any],
    *args: Any,
    what: str,
    retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Call ``fn``; retry ``ccxt.NetworkError`` (incl. rate limits, 429, time-outs) with exponential
    backoff (``backoff * 2**attempt`` seconds), at most ``retries`` times; then raise FetchError.
    ``ccxt.ExchangeError`` (bad symbol, refused request, missing keys) raises FetchError at once.
    """
    import ccxt

    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except ccxt.NetworkError as exc:
            if attempt >= retries:
                raise FetchError(
                    f"{what}: {type(exc).__name__} after {retries + 1} attempts ({_first_line(exc)}); "
                    "data fetched so far is kept, run again to resume"
                ) from None
            sleep(backoff * (2**attempt))
        except ccxt.BadSymbol as exc:
            raise FetchError(f"{what}: unknown symbol ({_first_line(exc)})") from None
        except ccxt.ExchangeError as exc:
            raise FetchError(f"{what}: exchange refused the request: {type(exc).__name__} ({_first_line(exc)})") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()
    msg = s[0] if s else type(exc).__name__
    return msg[:300]


def _bar(total: int, desc: str, progress: bool | None):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    return tqdm(total=total, desc=desc, unit="min", disable=disable, leave=False, mininterval=0.5)


@dataclass
class _Ctx:
    """Everything one venue's fetch needs (exchange, market, range, retry policy, output)."""

    ex: Any
    venue: str
    symbol: str
    market: dict
    start: int
    end: int
    now: int
    path: Path
    retries: int
    backoff: float
    sleep: Callable[[float], None]
    chunk_pages: int
    progress: bool | None
    log: Callable[[str], None]
    notes: dict[str, Any] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)

    def call(self, fn: Callable[..., Any], *args: Any, what: str, **kw: Any) -> Any:
        return call_with_retry(fn, *args, what=f"{self.venue} {self.symbol} {what}", retries=self.retries,
                               backoff=self.backoff, sleep=self.sleep, **kw)

    @property
    def contract_size(self) -> float:
        cs = self.market.get("contractSize")
        return float(cs) if cs else 1.0

    def anchor(self, table: str) -> str:
        return ANCHOR_OVERRIDE.get((self.venue, table), ANCHOR[self.venue])

    def meta_defaults(self) -> dict[str, Any]:
        m = self.market
        return {
            "kind": "inverse" if m.get("inverse") else "linear",
            "contract_size": self.contract_size,
            "quote": m.get("settle") or m.get("quote") or "USDT",
        }

    def pending(self) -> dict[str, list[list[str]]]:
        """Ranges a previous fetch left unfinished, per table (``meta.notes.fetch_pending``)."""
        if "fetch_pending" not in self.notes:
            stored = _stored(self.path)
            old = (stored.meta.get("notes") or {}).get("fetch_pending") if stored is not None else None
            self.notes["fetch_pending"] = {k: [list(r) for r in v] for k, v in (old or {}).items() if v}
        return self.notes["fetch_pending"]

    def set_pending(self, table: str, ranges: list[tuple[int, int]]) -> None:
        pend = dict(self.pending())
        if ranges:
            pend[table] = [[_iso(a), _iso(b)] for a, b in ranges if a < b]
        else:
            pend.pop(table, None)
        self.notes["fetch_pending"] = pend

    def store(self, tables: dict[str, list[pd.DataFrame]], notes: dict[str, Any] | None = None):
        from liqlab.io.importers import update_dataset

        self.notes.update(notes or {})
        res = update_dataset(self.path, tables, exchange=self.venue, symbol=self.symbol, source="fetch:ccxt",
                             notes=self.notes, meta_defaults=self.meta_defaults(), strict_mark=False)
        for k, v in res.added.items():
            self.added[k] = self.added.get(k, 0) + v
        return res


def _stored(path: Path):
    from liqlab.io.dataset import is_dataset_dir, load_dataset

    return load_dataset(path) if is_dataset_dir(path) else None


def _gaps(stored_ts: pd.Series | None, start: int, end: int, step: int) -> list[tuple[int, int]]:
    """The parts of [start, end) not covered by the stored range (before its first, after its last row)."""
    if stored_ts is None or len(stored_ts) == 0:
        return [(start, end)] if start < end else []
    first = int(stored_ts.iloc[0].value // 1_000_000)
    last = int(stored_ts.iloc[-1].value // 1_000_000)
    out = []
    if start < first:
        out.append((start, min(first, end)))
    if last + step < end:
        out.append((max(start, last + step), end))
    return [(a, b) for a, b in out if a < b]


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of [a, b) ranges (touching ranges joined)."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _todo(ctx: _Ctx, table: str, stored_ts: pd.Series | None, start: int, step: int) -> list[tuple[int, int]]:
    """What to walk for ``table``: the gaps around the stored rows in [start, end) plus any range an
    interrupted fetch left unfinished (a hole between stored rows that the gaps alone would not show)."""
    left = [(_ms(a), _ms(b)) for a, b in ctx.pending().get(table, [])]
    return _merge_ranges(_gaps(stored_ts, start, ctx.end, step) + left)


def _paginate(
    ctx: _Ctx,
    table: str,
    page: Callable[[int, int], list[tuple[int, Any]]],
    start: int,
    end: int,
    step: int,
    flush: Callable[[list[Any], int, int, tuple[int, int] | None], None],
    anchor: str = "start",
) -> None:
    """Walk [start, end) page by page. ``page(lo, hi)`` returns [(ts_ms, row)] for rows in [lo, hi): the
    oldest ones when ``anchor='start'`` (the walk goes forward), the newest ones when ``anchor='end'``
    (the walk goes backward). Every ``chunk_pages`` pages ``flush(rows, a, b, remaining)`` stores the
    rows, which cover [a, b); ``remaining`` is the part of [start, end) still to walk (None on the last
    flush). An empty page ends the walk: the venue has nothing more in what is left of the range."""
    forward = anchor == "start"
    bar = _bar(max((end - start) // MINUTE_MS, 1), f"{ctx.venue} {table}", ctx.progress)
    lo, hi = start, end
    buf: list[tuple[int, Any]] = []
    pages = 0
    edge = lo if forward else hi  # where the rows not yet flushed begin (forward) / end (backward)
    try:
        while lo < hi:
            rows = [(t, r) for t, r in page(lo, hi) if lo <= t < hi]
            if not rows:
                break
            rows.sort(key=lambda x: x[0])
            buf.extend(rows)
            before = hi - lo
            if forward:
                lo = max(lo, rows[-1][0] + step)
            else:
                hi = min(hi, rows[0][0])
            bar.update(max((before - (hi - lo)) // MINUTE_MS, 0))
            if hi - lo >= before:  # no progress: stop rather than loop
                break
            pages += 1
            if pages % ctx.chunk_pages == 0 and lo < hi:
                buf.sort(key=lambda x: x[0])
                flush([r for _, r in buf], *((edge, lo) if forward else (hi, edge)), (lo, hi))
                buf, edge = [], (lo if forward else hi)
        buf.sort(key=lambda x: x[0])
        flush([r for _, r in buf], *((edge, end) if forward else (start, edge)), None)
    finally:
        bar.close()


def _walk(
    ctx: _Ctx,
    table: str,
    ranges: list[tuple[int, int]],
    page: Callable[[int, int], list[tuple[int, Any]]],
    step: int,
    write: Callable[[list[Any], int, int], None],
) -> None:
    """Walk every range of ``table`` in the venue's direction, storing chunks with ``write(rows, a, b)``.
    Each chunk is stored together with ``meta.notes.fetch_pending`` = what is still to walk, so a fetch
    interrupted between chunks resumes exactly there, even inside a hole between stored rows."""
    dirty = bool(ctx.pending().get(table))  # the stored meta may name unfinished ranges of this table
    for i, (a, b) in enumerate(ranges):
        later = ranges[i + 1:]

        def flush(rows: list[Any], ca: int, cb: int, remaining: tuple[int, int] | None, later=later) -> None:
            nonlocal dirty
            ctx.set_pending(table, ([remaining] if remaining else []) + list(later))
            dirty = dirty or bool(ctx.pending().get(table))
            if rows:
                write(rows, ca, cb)

        _paginate(ctx, table, page, a, b, step, flush, ctx.anchor(table))
    ctx.set_pending(table, [])
    if dirty:  # the walk ended without a chunk that cleared the note: clear it now
        ctx.store({})


# ------------------------------------------------------------------------------------------ tables


def _ohlcv_page(ctx: _Ctx, mark: bool) -> Callable[[int, int], list[tuple[int, Any]]]:
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


def _fetch_ohlcv(ctx: _Ctx) -> None:
    stored = _stored(ctx.path)
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
            _paginate(ctx, "mark", _ohlcv_page(ctx, True), a, b, MINUTE_MS,
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

    ranges = _todo(ctx, "ohlcv", st["ts"] if st is not None else None, ctx.start, MINUTE_MS)
    _walk(ctx, "ohlcv", ranges, _ohlcv_page(ctx, False), MINUTE_MS, write)


def close_at(ohlcv: pd.DataFrame | None, ts: pd.Series) -> np.ndarray:
    """Close (USD) of the 1m bar nearest to each timestamp, from an OHLCV table sorted by ts; NaN for
    every timestamp when the table is empty. ``ts`` must be sorted; shape (len(ts),)."""
    if ohlcv is None or not len(ohlcv):
        return np.full(len(ts), np.nan)
    px = ohlcv[["ts", "close"]]
    left = pd.DataFrame({"ts": ts.to_numpy()}).astype({"ts": "datetime64[ns, UTC]"})
    return pd.merge_asof(left, px, on="ts", direction="nearest")["close"].to_numpy()


def _price_at(ctx: _Ctx, ts: pd.Series) -> np.ndarray:
    """1m close nearest to each timestamp (USD), from the stored OHLCV; NaN when there is none."""
    stored = _stored(ctx.path)
    return close_at(stored.ohlcv if stored is not None else None, ts)


def open_interest_frame(
    venue: str, rows: Sequence[dict], contract_size: float, price_at: Callable[[pd.Series], np.ndarray]
) -> tuple[pd.DataFrame, bool]:
    """ccxt open-interest structures (sorted by timestamp) → (frame, priced).

    Frame columns: ts (UTC), open_interest (base units), open_interest_value (USD); NaN where the venue
    gave no number. OKX's ``openInterestAmount`` is contracts: its ``baseVolume`` (base) is used, else
    contracts × ``contract_size``. A missing USD value (Bybit linear) is base × ``price_at(ts)`` (the 1m
    close, see :func:`close_at`); ``priced`` says whether that was needed (``price_at`` is called only then).
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


def _fetch_open_interest(ctx: _Ctx) -> None:
    start = ctx.start
    if ctx.venue == "binanceusdm":
        floor = ctx.now - BINANCE_OI_DAYS * 86_400_000 + OI_PERIOD_MS
        if start < floor:
            ctx.notes["open_interest_limit"] = VENUE_NOTES["binanceusdm"]["open_interest_limit"]
            ctx.log(f"{ctx.venue}: open interest before {_iso(floor)} is not served by the API (last 30 days "
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

    stored = _stored(ctx.path)
    st = stored.open_interest["ts"] if stored is not None else None
    _walk(ctx, "open_interest", _todo(ctx, "open_interest", st, start, OI_PERIOD_MS), page, OI_PERIOD_MS, write)


def _f(x: Any) -> float:
    try:
        return float(x) if x is not None else np.nan
    except (TypeError, ValueError):
        return np.nan


def _fetch_funding(ctx: _Ctx) -> None:
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

    stored = _stored(ctx.path)
    st = stored.funding["ts"] if stored is not None else None
    _walk(ctx, "funding", _todo(ctx, "funding", st, ctx.start, 1), page, 1, write)


def _fetch_tiers(ctx: _Ctx, refresh: bool) -> None:
    from liqlab.io.tiers import default_tiers, normalize_ccxt_tiers

    stored = _stored(ctx.path)
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


def _fetch_liquidations(ctx: _Ctx) -> None:
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

    stored = _stored(ctx.path)
    st = stored.liquidations["ts"] if stored is not None and stored.liquidations is not None else None
    _walk(ctx, "liquidations", _todo(ctx, "liquidations", st, ctx.start, 1), page, 1, write)
    ctx.store({})


# ------------------------------------------------------------------------------------- entry point


def fetch(
    exchanges: str | Sequence[str],
    symbol: str,
    *,
    since: Any,
    until: Any = None,
    out: str | os.PathLike = "data/cache",
    tables: Iterable[str] | None = None,
    refresh_tiers: bool = False,
    progress: bool | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    chunk_pages: int = 10,
    session: Any = None,
    exchange_config: dict | None = None,
    now: Any = None,
    log: Callable[[str], None] | None = None,
) -> FetchResult:
    """Fetch ``symbol`` from each exchange for [since, until) (UTC; until default now) into
    ``out/<venue>/`` (a collection). Incremental and resumable; see the module docstring.

    ``tables``: subset of TABLES (default all). ``session``: transport for tests (fake adapter);
    ``exchange_config``: extra ccxt options (e.g. ``{'enableRateLimit': False}`` against a fake).
    ``now``: the clock, for Binance's 30-day open-interest window and for ccxt itself (OKX serves the
    last 1,440 candles from ``market/candles`` and older ones from ``market/history-candles``; ccxt picks by
    its clock, which is set to ``now`` when given). Raises FetchError / ParameterError.
    """
    venues = [e.strip() for e in (exchanges.split(",") if isinstance(exchanges, str) else exchanges) if e.strip()]
    if not venues:
        raise ParameterError("--exchange: give at least one of binanceusdm, bybit, okx")
    bad = [v for v in venues if v not in VENUES]
    if bad:
        raise ParameterError(f"--exchange: unknown exchange(s) {bad}; choose from {list(VENUES)}")
    if not isinstance(symbol, str) or "/" not in symbol:
        raise ParameterError(f"--symbol: must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}")
    want = list(TABLES if tables is None else tables)
    unknown = [t for t in want if t not in TABLES]
    if unknown:
        raise ParameterError(f"--tables: unknown table(s) {unknown}; choose from {list(TABLES)}")
    if retries < 0 or chunk_pages < 1:
        raise ParameterError("retries must be >= 0 and chunk_pages >= 1")
    try:
        now_ms = _ms(now) if now is not None else int(time.time() * 1000)
        start = _ms(since)
        end = _ms(until) if until is not None else now_ms
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"--since/--until: not a date ({exc})") from None
    start -= start % MINUTE_MS
    end -= end % MINUTE_MS
    if end <= start:
        raise ParameterError(f"--until ({_iso(end)}) must be after --since ({_iso(start)})")
    log = log or (lambda msg: print(f"liqlab fetch: {msg}", file=sys.stderr))
    root = Path(out)
    paths: dict[str, Path] = {}
    rows: dict[str, dict[str, int]] = {}
    added: dict[str, dict[str, int]] = {}
    notes: dict[str, dict[str, Any]] = {}
    for venue in venues:
        ex = make_exchange(venue, session=session, config=exchange_config)
        if now is not None:  # one clock for liqlab and ccxt's own time-dependent choices
            ex.milliseconds = lambda: now_ms
        call_with_retry(ex.load_markets, what=f"{venue} markets", retries=retries, backoff=backoff, sleep=sleep)
        if symbol not in ex.markets:
            same = sorted(s for s in ex.markets if s.split("/")[0] == symbol.split("/")[0] and ":" in s)[:5]
            raise FetchError(f"{venue}: unknown symbol {symbol!r} (swaps with the same base: {same or 'none'})")
        market = ex.market(symbol)
        path = root / venue
        ctx = _Ctx(ex=ex, venue=venue, symbol=symbol, market=market, start=start, end=end, now=now_ms, path=path,
                   retries=retries, backoff=backoff, sleep=sleep, chunk_pages=chunk_pages, progress=progress, log=log)
        steps: list[tuple[str, Callable[[], None]]] = [
            ("ohlcv", lambda: _fetch_ohlcv(ctx)),
            ("open_interest", lambda: _fetch_open_interest(ctx)),
            ("funding", lambda: _fetch_funding(ctx)),
            ("leverage_tiers", lambda: _fetch_tiers(ctx, refresh_tiers)),
            ("liquidations", lambda: _fetch_liquidations(ctx)),
        ]
        for name, step in steps:
            if name in want:
                step()
        if _stored(path) is None:  # nothing at all in range: still leave a valid (empty) dataset
            ctx.store({})
        ds = _stored(path)
        paths[venue] = path
        rows[venue] = {k: len(v) for k, v in ds.tables().items()} if ds is not None else {}
        added[venue] = dict(ctx.added)
        notes[venue] = dict(ctx.notes)
    return FetchResult(path=root, venues=paths, rows=rows, added=added, notes=notes)
