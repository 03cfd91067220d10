"""Exchange fetcher (ccxt): the ONLY liqlab code that touches the network.

``fetch(exchanges, symbol, since=, until=, out=)`` fills ``out/<venue>/`` dataset directories (a
collection) with 1m OHLCV (+ taker-buy volume on Binance, + mark-price close), open-interest history at
the venue's finest period (5m), funding-rate history, leverage tiers and, where a public endpoint exists
(OKX, recent only), realized liquidations. Times are UTC; prices USD; amounts base units.

It is incremental: per table it fetches only the time the dataset lacks (before its first and after its
last stored row), and it writes pages in chunks through :func:`liqlab.io.importers.update_dataset`
(atomic), so an interrupted fetch keeps every finished chunk and resumes from there. Pages are walked
in the direction each venue anchors a short page at (Binance: the oldest rows of the window, forward;
Bybit and OKX: the newest, backward), and every chunk is stored with ``meta["fetch_pending"]`` = the
ranges still to walk, so a walk interrupted inside a hole between stored rows resumes there. Network errors
and rate limits are retried with exponential backoff up to a bounded count (``sleep`` is injectable);
an exchange refusal (``ccxt.ExchangeError``) stops with a one-line :class:`FetchError`.

Modules: :mod:`~liqlab.io.fetch.venues` (page sizes, options, notes per venue), :mod:`~liqlab.io.fetch.walk`
(retries, the ranges to fetch, the paged walk) and :mod:`~liqlab.io.fetch.tables` (one fetcher per table).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liqlab._util import VENUES
from liqlab.errors import FetchError, ParameterError
from liqlab.io.fetch.tables import (
    close_at,
    fetch_funding,
    fetch_liquidations,
    fetch_ohlcv,
    fetch_open_interest,
    fetch_tiers,
    open_interest_frame,
)
from liqlab.io.fetch.venues import KEY_ENV, MARKET_OPTIONS, MINUTE_MS, PAGE_LIMIT, VENUE_NOTES
from liqlab.io.fetch.walk import Ctx, call_with_retry, iso, stored_dataset, to_ms

__all__ = ["VENUES", "TABLES", "FetchResult", "fetch", "make_exchange", "call_with_retry", "close_at",
           "open_interest_frame", "PAGE_LIMIT", "MARKET_OPTIONS", "VENUE_NOTES"]

TABLES = ("ohlcv", "open_interest", "funding", "leverage_tiers", "liquidations")


@dataclass(frozen=True)
class FetchResult:
    """Per venue: dataset path, rows per table after the fetch, rows added, notes (venue limits)."""

    path: Path
    venues: dict[str, Path]
    rows: dict[str, dict[str, int]]
    added: dict[str, dict[str, int]]
    notes: dict[str, dict[str, Any]] = field(default_factory=dict)


def make_exchange(exchange_id: str, *, session: Any = None, config: dict | None = None) -> Any:
    """A ccxt exchange with the rate limiter on; API keys from the environment when present.

    Parameters
    ----------
    exchange_id : str
        One of :data:`VENUES`.
    session : requests.Session, optional
        Transport to use (tests mount a fake adapter on it).
    config : dict, optional
        Extra ccxt options (``options`` merged into the market options).

    Returns
    -------
    ccxt.Exchange
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
    """Fetch ``symbol`` from each exchange for [since, until) into ``out/<venue>/`` (a collection).

    Incremental and resumable (see the module docstring).

    Parameters
    ----------
    exchanges : str or sequence of str
        Venues (ccxt ids), a list or comma-separated text.
    symbol : str
        ccxt unified swap symbol, e.g. ``'BTC/USDT:USDT'``.
    since, until : time
        The range (UTC; naive = UTC); ``until`` defaults to now. Both rounded down to the minute.
    out : str or os.PathLike
        The collection folder.
    tables : iterable of str, optional
        Subset of :data:`TABLES` (default all).
    refresh_tiers : bool
        Fetch leverage tiers even when the dataset holds them.
    progress : bool, optional
        Progress bars (None = only on a terminal).
    retries, backoff, sleep
        Retry policy of network errors (see :func:`call_with_retry`).
    chunk_pages : int
        Pages per stored chunk.
    session : requests.Session, optional
        Transport for tests (fake adapter).
    exchange_config : dict, optional
        Extra ccxt options (e.g. ``{'enableRateLimit': False}`` against a fake).
    now : time, optional
        The clock, for Binance's 30-day open-interest window and for ccxt's own choices (e.g. OKX's recent
        vs history candles endpoint), which then run on ``now`` too.
    log : callable, optional
        Where a limit of the venue is told (default: stderr, ``liqlab fetch: ...``).

    Returns
    -------
    FetchResult
        Per venue: path, rows per table, rows added, notes.

    Raises
    ------
    FetchError, ParameterError
    """
    venues = _venue_list(exchanges)
    want = _checked_request(symbol, tables, retries, chunk_pages)
    now_ms, start, end = _time_range(since, until, now)
    log = log or (lambda msg: print(f"liqlab fetch: {msg}", file=sys.stderr))
    root = Path(out)
    result = FetchResult(path=root, venues={}, rows={}, added={}, notes={})
    for venue in venues:
        ex, market = _open_market(venue, symbol, session, exchange_config, now, now_ms, retries, backoff, sleep)
        path = root / venue
        ctx = Ctx(ex=ex, venue=venue, symbol=symbol, market=market, start=start, end=end, now=now_ms, path=path,
                  retries=retries, backoff=backoff, sleep=sleep, chunk_pages=chunk_pages, progress=progress, log=log)
        ds = _fetch_venue(ctx, want, refresh_tiers)
        result.venues[venue] = path
        result.rows[venue] = {k: len(v) for k, v in ds.tables().items()} if ds is not None else {}
        result.added[venue] = dict(ctx.added)
        result.notes[venue] = dict(ctx.notes)
    return result


def _venue_list(exchanges: str | Sequence[str]) -> list[str]:
    """The venues asked for (comma-separated text or a sequence); ParameterError for none or unknown ones."""
    venues = [e.strip() for e in (exchanges.split(",") if isinstance(exchanges, str) else exchanges) if e.strip()]
    if not venues:
        raise ParameterError(f"--exchange: give at least one of {', '.join(VENUES)}")
    bad = [v for v in venues if v not in VENUES]
    if bad:
        raise ParameterError(f"--exchange: unknown exchange(s) {bad}; choose from {list(VENUES)}")
    return venues


def _checked_request(symbol: str, tables: Iterable[str] | None, retries: int, chunk_pages: int) -> list[str]:
    """The tables to fetch, after checking the symbol, the table names and the retry settings."""
    if not isinstance(symbol, str) or "/" not in symbol:
        raise ParameterError(f"--symbol: must be a ccxt unified symbol like 'BTC/USDT:USDT', got {symbol!r}")
    want = list(TABLES if tables is None else tables)
    unknown = [t for t in want if t not in TABLES]
    if unknown:
        raise ParameterError(f"--tables: unknown table(s) {unknown}; choose from {list(TABLES)}")
    if retries < 0 or chunk_pages < 1:
        raise ParameterError("retries must be >= 0 and chunk_pages >= 1")
    return want


def _time_range(since: Any, until: Any, now: Any) -> tuple[int, int, int]:
    """(now, start, end) in epoch ms (UTC), start and end rounded down to the minute; end after start."""
    try:
        now_ms = to_ms(now) if now is not None else int(time.time() * 1000)
        start = to_ms(since)
        end = to_ms(until) if until is not None else now_ms
    except (ValueError, TypeError) as exc:
        raise ParameterError(f"--since/--until: not a date ({exc})") from None
    start -= start % MINUTE_MS
    end -= end % MINUTE_MS
    if end <= start:
        raise ParameterError(f"--until ({iso(end)}) must be after --since ({iso(start)})")
    return now_ms, start, end


def _open_market(venue: str, symbol: str, session: Any, exchange_config: dict | None, now: Any, now_ms: int,
                 retries: int, backoff: float, sleep: Callable[[float], None]) -> tuple[Any, dict]:
    """The venue's exchange (on the given clock) with its markets loaded, and the symbol's market."""
    ex = make_exchange(venue, session=session, config=exchange_config)
    if now is not None:  # one clock for liqlab and ccxt's own time-dependent choices
        ex.milliseconds = lambda: now_ms
    call_with_retry(ex.load_markets, what=f"{venue} markets", retries=retries, backoff=backoff, sleep=sleep)
    if symbol not in ex.markets:
        same = sorted(s for s in ex.markets if s.split("/")[0] == symbol.split("/")[0] and ":" in s)[:5]
        raise FetchError(f"{venue}: unknown symbol {symbol!r} (swaps with the same base: {same or 'none'})")
    return ex, ex.market(symbol)


def _fetch_venue(ctx: Ctx, want: list[str], refresh_tiers: bool) -> Any:
    """Fetch the wanted tables of one venue in order; returns the dataset as stored afterwards."""
    steps: dict[str, Callable[[], None]] = {
        "ohlcv": lambda: fetch_ohlcv(ctx),
        "open_interest": lambda: fetch_open_interest(ctx),
        "funding": lambda: fetch_funding(ctx),
        "leverage_tiers": lambda: fetch_tiers(ctx, refresh_tiers),
        "liquidations": lambda: fetch_liquidations(ctx),
    }
    for name, step in steps.items():
        if name in want:
            step()
    if stored_dataset(ctx.path) is None:  # nothing at all in range: still leave a valid (empty) dataset
        ctx.store({})
    return stored_dataset(ctx.path)
