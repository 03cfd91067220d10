"""The recorder: websocket watchers, REST pollers, the flusher and the status line of every venue.

:class:`Recorder` keeps each venue's state (:class:`_Venue`), writes ``meta.json`` → ``recording``
(sessions, gaps, counts, the venue's limits) and the event parts (:mod:`liqlab.io.record.parts`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liqlab.errors import DataError, FetchError, LiqlabError
from liqlab.io import atomic
from liqlab.io.record import config as record_config
from liqlab.io.record.config import VENUE_NOTES, RecordConfig, iso_ms, reason
from liqlab.io.record.events import liquidation_rows
from liqlab.io.record.parts import compact, next_seq, part_names, write_part
from liqlab.io.record.poll import live_exchange, poll_table

@dataclass
class _Venue:
    """Mutable state of one venue during a recording session."""

    name: str
    vdir: Path
    exchange: Any = None
    market: dict = field(default_factory=dict)
    buffer: list = field(default_factory=list)
    seq: int = 1
    events: int = 0           # this session
    events_total: int = 0     # all sessions (from meta)
    last_message_ms: int | None = None
    connected: bool = False
    gap_start_ms: int | None = None
    gap_reason: str = ""
    reconnects: int = 0
    meta: dict = field(default_factory=dict)


class Recorder:
    """Runs the websocket watchers, REST pollers, flusher and status line for every venue."""

    def __init__(self, config: RecordConfig, *, make_exchange: Callable[[str], Any] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] | None = None, status_stream=None,
                 rest: bool | None = None):
        self.config = config
        self.make_exchange = make_exchange or live_exchange
        self.sleep = sleep or asyncio.sleep
        self.status_stream = status_stream if status_stream is not None else sys.stderr
        self.rest = config.rest if rest is None else rest
        self.venues = {v: _Venue(v, config.out / v) for v in config.exchanges}
        self.stop = asyncio.Event()
        self.session_start_ms = record_config.now_ms()
        self.errors: list[str] = []
        self.setup_error = ""  # the last market-loading failure (network down at start)

    # ------------------------------------------------------------------ setup and meta
    async def setup(self) -> None:
        """Make each venue's exchange, load its markets (retrying while the network is down), tap its parser and open its meta."""
        for v in self.venues.values():
            ex = self.make_exchange(v.name)
            v.exchange = ex
            attempt = 0
            while True:
                try:
                    if not ex.markets:
                        await ex.load_markets()
                    v.market = ex.market(self.config.symbol)
                    break
                except LiqlabError:
                    raise
                except Exception as exc:  # noqa: BLE001 - ccxt errors become one line
                    import ccxt

                    if not isinstance(exc, ccxt.NetworkError) or self.stop.is_set():
                        raise FetchError(f"{v.name}: cannot load markets for {self.config.symbol}: {reason(exc)}") from None
                    # the network is down at start: keep trying (a service must not give up; --duration
                    # and a signal still end it, see run)
                    self.setup_error = f"{v.name}: {reason(exc)}"
                    self.status_stream.write(f"record: {v.name}: {reason(exc)}; retrying\n")
                    await self.sleep(min(self.config.backoff_max, self.config.backoff_initial * (2 ** attempt)))
                    attempt += 1
            self._tap(v)
            self._open_meta(v)

    def _tap(self, v: _Venue) -> None:
        """Capture every liquidation ccxt parses (its own handle_message → parse_ws_liquidation path),
        including messages that arrive while no watch call is pending."""
        ex = v.exchange
        original = ex.parse_ws_liquidation
        symbol = self.config.symbol

        def parse_ws_liquidation(liquidation, market=None):
            liq = original(liquidation, market)
            if liq.get("symbol") == symbol:
                rows = liquidation_rows(v.name, liq, v.market)
                v.buffer.extend(rows)
                v.events += len(rows)
                v.events_total += len(rows)
            return liq

        ex.parse_ws_liquidation = parse_ws_liquidation
        handle_message = ex.handle_message

        def on_message(client, message):
            v.last_message_ms = record_config.now_ms()
            return handle_message(client, message)

        ex.handle_message = on_message
        on_connected = ex.on_connected

        def connected(client, message=None):
            self._connected(v)
            return on_connected(client, message)

        ex.on_connected = connected

    def _open_meta(self, v: _Venue) -> None:
        """Start the venue's session in ``meta.json`` (history of earlier sessions kept, a gap for the time
        the recorder was not running), create the empty REST tables and fold in parts a crash left behind."""
        from liqlab.io.dataset import make_meta, with_note
        from liqlab.io.schema import empty_table

        v.vdir.mkdir(parents=True, exist_ok=True)
        m = v.market
        kind = "inverse" if m.get("inverse") else "linear"
        fresh = make_meta(v.name, self.config.symbol, source=f"liqlab record (ccxt.pro {VENUE_NOTES[v.name]['stream']})",
                          synthetic=bool(getattr(v.exchange, "liqlab_synthetic", False)), kind=kind, contract_size=float(m.get("contractSize") or 1.0),
                          quote=m.get("quote") or None)
        meta_path = v.vdir / "meta.json"
        old = self._stored_meta(v, meta_path)
        meta = {**fresh, **{k: old[k] for k in ("created_at",) if k in old}}
        rec = dict(old.get("recording") or {})
        sessions, gaps = _session_history(rec, self.session_start_ms)
        v.events_total = int(rec.get("events", 0))
        notes = VENUE_NOTES[v.name]
        rec.update(
            sessions=sessions,
            gaps=gaps,
            events=v.events_total,
            lower_bound=bool(notes["lower_bound"]),
            venue_notes={k: val for k, val in notes.items() if k != "lower_bound"},
            stream=notes["stream"],
            coverage_note="liquidations are complete only inside sessions and outside gaps",
        )
        if self.rest:  # how a polled number is derived where the venue does not give it (the fetcher's words)
            from liqlab.io.fetch import VENUE_NOTES as FETCH_NOTES

            oi_value = FETCH_NOTES.get(v.name, {}).get("open_interest_value")
            if oi_value:
                rec["venue_notes"]["open_interest_value"] = oi_value
        meta["recording"] = rec
        limit = f" (lower bound: {notes['limit']})" if notes["lower_bound"] else ""
        v.meta = with_note(meta, "liquidations", "recorded realized liquidations" + limit)
        v.seq = next_seq(v.vdir)
        for name in ("ohlcv", "open_interest", "funding"):
            if not (v.vdir / f"{name}.parquet").exists():
                atomic.write_parquet(v.vdir / f"{name}.parquet", empty_table(name))
        # parts a crash left behind are folded in before new ones are written
        atomic.write_json(meta_path, v.meta)
        if part_names(v.vdir):
            compact(v.vdir)

    def _stored_meta(self, v: _Venue, meta_path: Path) -> dict:
        """The venue folder's meta.json as it is ({} when absent); DataError when it is not JSON or holds
        another venue or symbol."""
        if not meta_path.exists():
            return {}
        try:
            old = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{meta_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
        if old.get("symbol") != self.config.symbol or old.get("exchange") != v.name:
            raise DataError(f"{meta_path}: holds {old.get('exchange')} {old.get('symbol')}, not "
                            f"{v.name} {self.config.symbol}; record into another --out")
        return old

    def _write_meta(self, v: _Venue, *, clean: bool = False) -> None:
        rec = v.meta["recording"]
        s = rec["sessions"][-1]
        s["end"] = iso_ms(record_config.now_ms())
        s["events"] = v.events
        s["clean"] = clean
        rec["events"] = v.events_total
        gaps = rec["gaps"]
        if v.gap_start_ms is not None:
            open_gap = {"start": iso_ms(v.gap_start_ms), "end": None, "reason": v.gap_reason}
            if gaps and gaps[-1].get("end") is None:
                gaps[-1] = open_gap
            else:
                gaps.append(open_gap)
        atomic.write_json(v.vdir / "meta.json", v.meta)

    # ------------------------------------------------------------------ connection state
    def _connected(self, v: _Venue) -> None:
        v.connected = True
        if v.gap_start_ms is not None:
            gaps = v.meta["recording"]["gaps"]
            if gaps and gaps[-1].get("end") is None:
                gaps.pop()
            gaps.append({"start": iso_ms(v.gap_start_ms), "end": iso_ms(record_config.now_ms()), "reason": v.gap_reason})
            v.gap_start_ms = None
            self._write_meta(v)

    def _disconnected(self, v: _Venue, reason: str) -> None:
        if v.gap_start_ms is None:
            v.gap_start_ms = record_config.now_ms()
            v.gap_reason = reason
        v.connected = False

    # ------------------------------------------------------------------ tasks
    async def watch(self, v: _Venue) -> None:
        """Keep the venue's liquidation subscription alive; reconnect with exponential backoff."""
        ex = v.exchange
        symbol = self.config.symbol
        attempt = 0
        while not self.stop.is_set():
            try:
                if v.name == "okx":
                    await ex.watch_liquidations_for_symbols([symbol])
                else:
                    await ex.watch_liquidations(symbol)
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any socket failure: record a gap, back off
                if self.stop.is_set():
                    break
                self._disconnected(v, reason(exc))
                self._write_meta(v)
                delay = min(self.config.backoff_max, self.config.backoff_initial * (2 ** attempt))
                attempt += 1
                v.reconnects += 1
                await self.sleep(delay)

    async def flusher(self) -> None:
        """Flush every ``flush_seconds`` and compact every ``compact_seconds`` until stopped."""
        last_compact = time.monotonic()
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.config.flush_seconds)
            self.flush()
            if time.monotonic() - last_compact >= self.config.compact_seconds:
                for v in self.venues.values():
                    compact(v.vdir)
                last_compact = time.monotonic()

    def flush(self, *, clean: bool = False) -> None:
        """Write each venue's buffered events as one atomic part and refresh meta.json."""
        for v in self.venues.values():
            if v.buffer:
                rows, v.buffer = v.buffer, []
                write_part(v.vdir, v.seq, rows)
                v.seq += 1
            if v.meta:
                self._write_meta(v, clean=clean)

    async def status(self) -> None:
        """Write the status line every ``status_seconds`` until stopped (in place on a terminal)."""
        tty = hasattr(self.status_stream, "isatty") and self.status_stream.isatty()
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.config.status_seconds)
            line = self.status_line()
            self.status_stream.write(("\r" + line + "\x1b[K") if tty else (line + "\n"))
            self.status_stream.flush()

    def status_line(self) -> str:
        """Per venue: events this session and the connection state (seconds since the last message or since the drop)."""
        now = record_config.now_ms()
        parts = []
        for v in self.venues.values():
            if v.gap_start_ms is not None:
                state = f"DISCONNECTED {(now - v.gap_start_ms) / 1000:.0f}s"
            else:
                ago = "no message yet" if v.last_message_ms is None else f"last message {(now - v.last_message_ms) / 1000:.0f}s ago"
                state = ago
            parts.append(f"{v.name} {v.events} ev ({state})")
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%SZ")
        return f"record {stamp} | " + " | ".join(parts)

    async def rest_poll(self, v: _Venue) -> None:
        """Poll 1m OHLCV, 5m open-interest history and funding by REST into the venue's tables."""
        due = {"ohlcv": 0.0, "open_interest": 0.0, "funding": 0.0}
        every = {"ohlcv": self.config.ohlcv_seconds, "open_interest": self.config.open_interest_seconds,
                 "funding": self.config.funding_seconds}
        while not self.stop.is_set():
            now = time.monotonic()
            for name in due:
                if now >= due[name]:
                    try:
                        await poll_table(v, name, self.config)
                        due[name] = now + every[name]
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - REST trouble: retry sooner, say so
                        self.errors.append(f"{v.name} {name}: {reason(exc)}")
                        due[name] = now + min(every[name], 30.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=min(every.values()) / 4)

    async def run(self) -> dict:
        """Set up, record until stopped or ``duration`` is over, then flush, compact and close.

        ``duration`` bounds everything, market loading included: if the markets cannot be loaded in
        time (network down) the run ends with FetchError. Every exchange made is closed (its HTTP
        session too), whatever happened.
        """
        deadline = None if self.config.duration is None else time.monotonic() + self.config.duration
        tasks: list[asyncio.Task] = []
        ready = False
        try:
            ready = await self._setup_until(deadline)
            if not ready:
                return self._result()
            tasks = [asyncio.create_task(self.watch(v)) for v in self.venues.values()]
            tasks.append(asyncio.create_task(self.flusher()))
            tasks.append(asyncio.create_task(self.status()))
            if self.rest:
                tasks += [asyncio.create_task(self.rest_poll(v)) for v in self.venues.values()]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=_remaining(deadline))
        finally:
            self.stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            opened = [v for v in self.venues.values() if v.meta]  # set up (all of them when ready)
            for v in opened:
                if v.gap_start_ms is not None:  # close an open gap at the stop
                    self._connected(v)
            self.flush(clean=True)
            for v in opened:
                compact(v.vdir)
            await self._close_exchanges()
            if ready and self.status_stream is not None:
                self.status_stream.write(self.status_line() + " | stopped\n")
                self.status_stream.flush()
        return self._result()

    async def _setup_until(self, deadline: float | None) -> bool:
        """Run :meth:`setup` until it finishes (True), a stop signal arrives (False) or the deadline
        passes (FetchError naming the venue and the last error)."""
        setup = asyncio.ensure_future(self.setup())
        stopped = asyncio.ensure_future(self.stop.wait())
        try:
            done, _ = await asyncio.wait({setup, stopped}, timeout=_remaining(deadline),
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not setup.done():
                setup.cancel()
            await asyncio.gather(setup, stopped, return_exceptions=True)
        if setup in done and not setup.cancelled():
            setup.result()  # raises what setup raised (FetchError, ParameterError)
            return True
        if self.stop.is_set():
            return False
        waiting = [v.name for v in self.venues.values() if not v.market]
        raise FetchError(f"{', '.join(waiting)}: markets for {self.config.symbol} not loaded within --duration "
                         f"{self.config.duration:g} s" + (f" (last error: {self.setup_error})" if self.setup_error else ""))

    async def _close_exchanges(self, timeout: float = 5.0) -> None:
        """Close every exchange made (ccxt.pro: websockets and the aiohttp session), each within ``timeout`` s."""
        for v in self.venues.values():
            if v.exchange is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(v.exchange.close(), timeout=timeout)

    def _result(self) -> dict:
        return {v.name: {"events": v.events, "reconnects": v.reconnects, "path": str(v.vdir)} for v in self.venues.values()}


def _remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (time.monotonic), at least 0; None = no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _session_history(rec: dict, now: int) -> tuple[list[dict], list[dict]]:
    """Sessions and gaps of a stored ``recording`` plus the session starting at ``now`` (epoch ms, UTC).

    The previous session ended (cleanly or not) at its last flush: a gap still open then is closed there,
    and the time until ``now`` is a gap "recorder not running".
    """
    sessions = list(rec.get("sessions") or [])
    gaps = list(rec.get("gaps") or [])
    if sessions:
        prev = sessions[-1]
        for g in gaps:
            if g.get("end") is None:
                g["end"] = prev.get("end")
                g["reason"] = (g.get("reason") or "") + "; recorder stopped during the gap"
        if prev.get("end"):
            gaps.append({"start": prev["end"], "end": iso_ms(now), "reason": "recorder not running"})
    sessions.append({"start": iso_ms(now), "end": iso_ms(now), "clean": False, "events": 0})
    return sessions, gaps
