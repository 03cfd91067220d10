"""How the fetcher walks a venue's history: retried calls, the per-venue context, the ranges still to fetch,
and the page-by-page walk that stores every few pages.

A walk goes in the direction each venue anchors a short page at (Binance: the oldest rows of the window,
forward; Bybit and OKX: the newest, backward). Every chunk is stored together with ``meta["fetch_pending"]``
= the ranges still to walk, so a walk interrupted inside a hole between stored rows resumes there. Times are
epoch milliseconds (UTC).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from liqlab._util import one_line, progress, utc
from liqlab.errors import FetchError
from liqlab.io.fetch.venues import ANCHOR, ANCHOR_OVERRIDE, MINUTE_MS


def to_ms(x: Any) -> int:
    """One time (ISO text, datetime, Timestamp; naive = UTC) as epoch milliseconds (UTC).

    Parameters
    ----------
    x : str, datetime or pd.Timestamp

    Returns
    -------
    int
    """
    return int(utc(x).value // 1_000_000)


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 text (UTC, ``+00:00``).

    Parameters
    ----------
    ms : int

    Returns
    -------
    str
    """
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def call_with_retry(
    fn: Callable[..., Any],
    *args: Any,
    what: str,
    retries: int = 5,
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> Any:
    """Call ``fn``, retrying network trouble with exponential backoff.

    ``ccxt.NetworkError`` (incl. rate limits, 429, time-outs) is retried after ``backoff * 2**attempt``
    seconds, at most ``retries`` times, then raises FetchError. ``ccxt.ExchangeError`` (bad symbol, refused
    request, missing keys) raises FetchError at once.

    Parameters
    ----------
    fn : callable
        The request (a ccxt method).
    *args, **kwargs
        Passed to ``fn``.
    what : str
        What is being fetched, named in errors.
    retries : int
        Retries after the first attempt.
    backoff : float
        First wait (seconds).
    sleep : callable
        The wait (tests pass a no-op).

    Returns
    -------
    Any
        What ``fn`` returned.
    """
    import ccxt

    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except ccxt.NetworkError as exc:
            if attempt >= retries:
                raise FetchError(
                    f"{what}: {type(exc).__name__} after {retries + 1} attempts ({_brief(exc)}); "
                    "data fetched so far is kept, run again to resume"
                ) from None
            sleep(backoff * (2**attempt))
        except ccxt.BadSymbol as exc:
            raise FetchError(f"{what}: unknown symbol ({_brief(exc)})") from None
        except ccxt.ExchangeError as exc:
            raise FetchError(f"{what}: exchange refused the request: {type(exc).__name__} ({_brief(exc)})") from None
    raise AssertionError("unreachable")  # pragma: no cover


def _brief(exc: BaseException) -> str:
    """An exchange's error on one line, at most 300 characters (some venues answer with a whole page)."""
    return one_line(exc)[:300]


def stored_dataset(path: Path) -> Any:
    """The dataset at ``path`` (a :class:`~liqlab.io.dataset.Dataset`), or None when there is none yet.

    Parameters
    ----------
    path : Path
        A venue's dataset directory.

    Returns
    -------
    Dataset or None
    """
    from liqlab.io.dataset import is_dataset_dir, load_dataset

    return load_dataset(path) if is_dataset_dir(path) else None


@dataclass
class Ctx:
    """Everything one venue's fetch needs (exchange, market, range in epoch ms, retry policy, output)."""

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
    pending_ranges: dict[str, list[list[str]]] | None = None  # None until read from the stored meta

    def call(self, fn: Callable[..., Any], *args: Any, what: str, **kw: Any) -> Any:
        """:func:`call_with_retry` with this fetch's retry policy, naming the venue and symbol."""
        return call_with_retry(fn, *args, what=f"{self.venue} {self.symbol} {what}", retries=self.retries,
                               backoff=self.backoff, sleep=self.sleep, **kw)

    @property
    def contract_size(self) -> float:
        """Base units per contract (1 when the market does not say)."""
        cs = self.market.get("contractSize")
        return float(cs) if cs else 1.0

    def anchor(self, table: str) -> str:
        """Which end of a window a short page of ``table`` holds: 'start' or 'end'."""
        return ANCHOR_OVERRIDE.get((self.venue, table), ANCHOR[self.venue])

    def meta_defaults(self) -> dict[str, Any]:
        """meta.json keys a new dataset takes from the market (kind, contract size, quote)."""
        m = self.market
        return {
            "kind": "inverse" if m.get("inverse") else "linear",
            "contract_size": self.contract_size,
            "quote": m.get("settle") or m.get("quote") or "USDT",
        }

    def pending(self) -> dict[str, list[list[str]]]:
        """Ranges a previous fetch left unfinished, per table (``meta["fetch_pending"]``, ISO pairs)."""
        if self.pending_ranges is None:
            ds = stored_dataset(self.path)
            old = ds.meta.get("fetch_pending") if ds is not None else None
            self.pending_ranges = {k: [list(r) for r in v] for k, v in (old or {}).items() if v}
        return self.pending_ranges

    def set_pending(self, table: str, ranges: list[tuple[int, int]]) -> None:
        """Record what of ``table`` is still to walk ([a, b) in epoch ms; empty = done)."""
        pend = dict(self.pending())
        if ranges:
            pend[table] = [[iso(a), iso(b)] for a, b in ranges if a < b]
        else:
            pend.pop(table, None)
        self.pending_ranges = pend

    def store(self, tables: dict[str, list[pd.DataFrame]], notes: dict[str, Any] | None = None):
        """Merge ``tables`` into the venue's dataset (atomic) with this fetch's notes and pending ranges."""
        from liqlab.io.importers import update_dataset

        self.notes.update(notes or {})
        updates = {} if self.pending_ranges is None else {"fetch_pending": self.pending_ranges}
        res = update_dataset(self.path, tables, exchange=self.venue, symbol=self.symbol, source="fetch:ccxt",
                             notes=self.notes, meta_defaults=self.meta_defaults(), strict_mark=False,
                             meta_updates=updates)
        for k, v in res.added.items():
            self.added[k] = self.added.get(k, 0) + v
        return res


def gaps(stored_ts: pd.Series | None, start: int, end: int, step: int) -> list[tuple[int, int]]:
    """The parts of [start, end) not covered by the stored range (before its first, after its last row).

    Parameters
    ----------
    stored_ts : pd.Series or None
        The stored table's ``ts`` (UTC, sorted), or None.
    start, end : int
        The wanted range, epoch ms.
    step : int
        The table's period (ms): the row after the last stored one is due at ``last + step``.

    Returns
    -------
    list of (int, int)
        [a, b) ranges in epoch ms, oldest first.
    """
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


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted union of [a, b) ranges (touching ranges joined).

    Parameters
    ----------
    ranges : iterable of (int, int)

    Returns
    -------
    list of (int, int)
    """
    out: list[tuple[int, int]] = []
    for a, b in sorted(r for r in ranges if r[0] < r[1]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def todo(ctx: Ctx, table: str, stored_ts: pd.Series | None, start: int, step: int) -> list[tuple[int, int]]:
    """What to walk for ``table``: the gaps around the stored rows in [start, end) plus any range an
    interrupted fetch left unfinished (a hole between stored rows that the gaps alone would not show).

    Parameters
    ----------
    ctx : Ctx
    table : str
    stored_ts : pd.Series or None
        The stored table's ``ts`` (UTC).
    start : int
        First wanted time, epoch ms (``ctx.end`` ends the range).
    step : int
        The table's period, ms.

    Returns
    -------
    list of (int, int)
        [a, b) ranges in epoch ms.
    """
    left = [(to_ms(a), to_ms(b)) for a, b in ctx.pending().get(table, [])]
    return merge_ranges(gaps(stored_ts, start, ctx.end, step) + left)


def paginate(
    ctx: Ctx,
    table: str,
    page: Callable[[int, int], list[tuple[int, Any]]],
    start: int,
    end: int,
    step: int,
    flush: Callable[[list[Any], int, int, tuple[int, int] | None], None],
    anchor: str = "start",
) -> None:
    """Walk [start, end) page by page, flushing every ``ctx.chunk_pages`` pages.

    An empty page ends the walk: the venue has nothing more in what is left of the range.

    Parameters
    ----------
    ctx : Ctx
    table : str
        Named on the progress bar.
    page : callable
        ``page(lo, hi)`` returns [(ts_ms, row)] for rows in [lo, hi): the oldest ones when
        ``anchor='start'`` (the walk goes forward), the newest ones when ``anchor='end'`` (backward).
    start, end : int
        The range, epoch ms.
    step : int
        The table's period, ms.
    flush : callable
        ``flush(rows, a, b, remaining)`` stores the rows, which cover [a, b); ``remaining`` is the part of
        [start, end) still to walk (None on the last flush).
    anchor : {'start', 'end'}

    Returns
    -------
    None
    """
    forward = anchor == "start"
    bar = progress(total=max((end - start) // MINUTE_MS, 1), desc=f"{ctx.venue} {table}", unit="min",
                   enabled=ctx.progress)
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


def walk(
    ctx: Ctx,
    table: str,
    ranges: list[tuple[int, int]],
    page: Callable[[int, int], list[tuple[int, Any]]],
    step: int,
    write: Callable[[list[Any], int, int], None],
) -> None:
    """Walk every range of ``table`` in the venue's direction, storing chunks with ``write(rows, a, b)``.

    Each chunk is stored together with ``meta["fetch_pending"]`` = what is still to walk, so a fetch
    interrupted between chunks resumes exactly there, even inside a hole between stored rows.

    Parameters
    ----------
    ctx : Ctx
    table : str
    ranges : list of (int, int)
        [a, b) in epoch ms (:func:`todo`).
    page : callable
        See :func:`paginate`.
    step : int
        The table's period, ms.
    write : callable
        ``write(rows, a, b)`` converts and stores the rows of [a, b).

    Returns
    -------
    None
    """
    dirty = bool(ctx.pending().get(table))  # the stored meta may name unfinished ranges of this table
    for i, (a, b) in enumerate(ranges):
        later = ranges[i + 1:]

        def flush(rows: list[Any], ca: int, cb: int, remaining: tuple[int, int] | None, later=later) -> None:
            nonlocal dirty
            ctx.set_pending(table, ([remaining] if remaining else []) + list(later))
            dirty = dirty or bool(ctx.pending().get(table))
            if rows:
                write(rows, ca, cb)

        paginate(ctx, table, page, a, b, step, flush, ctx.anchor(table))
    ctx.set_pending(table, [])
    if dirty:  # the walk ended without a chunk that cleared the pending ranges: clear them now
        ctx.store({})
