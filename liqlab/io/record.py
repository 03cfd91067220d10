"""Record realized liquidations from ccxt.pro websockets into the dataset format.

Layout: ``<out>/<exchange>/`` is a dataset directory (a collection when several venues are recorded):
``meta.json``, ``ohlcv.parquet`` (1m bars polled by REST), ``open_interest.parquet`` (REST history at
the venue's finest period, 5m), ``funding.parquet``, ``liquidations.parquet`` (compacted) and
``liquidations/part-<seq>.parquet`` (events flushed every few seconds, each part written atomically).
``liqlab.io.dataset.load_dataset`` reads the compacted file plus the parts that are newer than it.

Events: ts (exchange timestamp, UTC), side (the LIQUIDATED POSITION's side, normalised per venue),
price (Binance average fill price, Bybit ``p``, OKX bankruptcy price), amount (base units = contracts ×
contract size), value (USD = amount × price). Every fill of an OKX multi-fill message is kept.

``meta.json`` → ``recording``: sessions (start/end of each recorder run), gaps (every interval without a
connection, incl. between sessions), event counts and the venue's limits (Binance sends at most one
liquidation per second per symbol: its counts are a lower bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liqlab.io import atomic
from liqlab.errors import DataError, FetchError, LiqlabError, ParameterError

__all__ = [
    "RecordConfig",
    "record",
    "compact",
    "liquidation_rows",
    "load_replay",
    "RecorderLocked",
    "VENUES",
]

VENUES = ("binanceusdm", "bybit", "okx")
PARTS_DIR = "liquidations"
PARTS_KEY = b"liqlab.parts_through"  # parquet schema metadata of liquidations.parquet: last part folded in
LOCK_FILE = ".record.lock"
LIQ_COLUMNS = ("ts", "side", "price", "amount", "value")

# What each venue's stream is and what its numbers mean (written into meta.json).
VENUE_NOTES: dict[str, dict[str, Any]] = {
    "binanceusdm": {
        "stream": "<symbol>@forceOrder",
        "lower_bound": True,
        "limit": "Binance pushes at most one liquidation order per second per symbol (the latest); counts and "
                 "values are a lower bound",
        "price": "average fill price (ap)",
        "side": "order side S: SELL = a long was liquidated",
    },
    "bybit": {
        "stream": "allLiquidation.<SYMBOL>",
        "lower_bound": False,
        "price": "p (liquidation order price)",
        "side": "S is the position's side: Buy = a long was liquidated",
    },
    "okx": {
        "stream": "liquidation-orders (instType SWAP), filtered to the symbol",
        "lower_bound": False,
        "price": "bankruptcy price (bkPx)",
        "side": "posSide, else side: sell = a long was liquidated; every fill in details is kept",
    },
}


class RecorderLocked(LiqlabError):
    """Another recorder writes into the same output folder."""

    exit_code = 3


@dataclass(frozen=True)
class RecordConfig:
    """What to record and how often to write (seconds). Defaults suit weeks of unattended running."""

    exchanges: tuple[str, ...]
    symbol: str
    out: Path
    flush_seconds: float = 5.0         # parts are written at most this often (a crash loses at most this)
    compact_seconds: float = 3600.0    # parts folded into liquidations.parquet this often (and on exit)
    status_seconds: float = 10.0       # status line on stderr
    rest: bool = True                  # poll OHLCV (1m), open interest (5m) and funding by REST
    ohlcv_seconds: float = 60.0
    open_interest_seconds: float = 300.0
    funding_seconds: float = 3600.0
    backfill_hours: float = 2.0        # REST history fetched at the first start
    backoff_initial: float = 1.0       # reconnect delay doubles from this ...
    backoff_max: float = 60.0          # ... up to this
    duration: float | None = None      # stop after this many seconds (None = until SIGINT/SIGTERM)

    def __post_init__(self):
        if not self.exchanges:
            raise ParameterError("--exchange: at least one exchange is required")
        bad = [e for e in self.exchanges if e not in VENUES]
        if bad:
            raise ParameterError(f"--exchange: unsupported {bad}; supported {list(VENUES)}")
        if len(set(self.exchanges)) != len(self.exchanges):
            raise ParameterError(f"--exchange: listed twice in {list(self.exchanges)}")
        if "/" not in self.symbol or ":" not in self.symbol:
            raise ParameterError(f"--symbol: expected a ccxt swap symbol like 'BTC/USDT:USDT', got {self.symbol!r}")
        for name in ("flush_seconds", "compact_seconds", "status_seconds", "ohlcv_seconds",
                     "open_interest_seconds", "funding_seconds", "backoff_max"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ParameterError(f"{name}: must be a number > 0, got {v!r}")
        if not (self.backoff_initial >= 0):
            raise ParameterError(f"backoff_initial: must be >= 0, got {self.backoff_initial!r}")


# ----------------------------------------------------------------------------- events → rows


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


def _liq_frame(rows: list[dict]):
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(LIQ_COLUMNS))
    df["ts"] = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True).astype("datetime64[ns, UTC]")
    df["side"] = df["side"].astype(object)
    for c in ("price", "amount", "value"):
        df[c] = df[c].astype("float64")
    return df.sort_values("ts", kind="stable").reset_index(drop=True)


def _empty(name: str):
    import pandas as pd

    from liqlab.io.dataset import TABLES

    cols = TABLES[name][0]
    data = {c: pd.Series([], dtype="float64") for c in cols}
    if "ts" in cols:
        data["ts"] = pd.Series([], dtype="datetime64[ns, UTC]")
    if "side" in cols:
        data["side"] = pd.Series([], dtype=object)
    return pd.DataFrame(data)[list(cols)]


# --------------------------------------------------------------------------------- parts on disk


def _part_names(vdir: Path) -> list[Path]:
    d = vdir / PARTS_DIR
    return sorted(d.glob("part-*.parquet")) if d.is_dir() else []


def _next_seq(vdir: Path) -> int:
    seqs = [0]
    for p in _part_names(vdir):
        try:
            seqs.append(int(p.stem.split("-")[1]))
        except (IndexError, ValueError):
            continue
    main = vdir / "liquidations.parquet"
    through = _parts_through(main)
    if through:
        with contextlib.suppress(IndexError, ValueError):
            seqs.append(int(Path(through).stem.split("-")[1]))
    return max(seqs) + 1


def _parts_through(main: Path) -> str:
    if not main.exists():
        return ""
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(main).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader
        return ""
    return md.get(PARTS_KEY, b"").decode()


def _write_part(vdir: Path, seq: int, rows: list[dict]) -> Path:
    from liqlab.io.dataset import validate_table

    path = vdir / PARTS_DIR / f"part-{seq:010d}.parquet"
    df = validate_table("liquidations", _liq_frame(rows), path)
    atomic.write_parquet(path, df)
    return path


def compact(vdir: str | os.PathLike) -> int:
    """Fold ``liquidations/part-*.parquet`` into ``liquidations.parquet`` (atomic), then delete the parts.

    The compacted file records the last part it holds, so a crash between the rename and the deletes
    never double counts. Returns the number of events in the compacted file.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liqlab.io.dataset import load_dataset, validate_table

    vdir = Path(vdir)
    parts = _part_names(vdir)
    main = vdir / "liquidations.parquet"
    through = _parts_through(main)
    if not parts:
        return 0 if not main.exists() else pq.read_metadata(main).num_rows
    ds = load_dataset(vdir) if (vdir / "meta.json").exists() else None
    if ds is not None and ds.liquidations is not None:
        df = ds.liquidations
    else:
        frames = [pq.read_table(p).to_pandas() for p in parts if p.name > through]
        df = pd.concat(frames, ignore_index=True) if frames else _empty("liquidations")
    df = validate_table("liquidations", df.sort_values("ts", kind="stable").reset_index(drop=True), main)
    last = parts[-1].name
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata({PARTS_KEY: last.encode()})
    with atomic.atomic_path(main, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    for p in parts:
        if p.name <= last:
            p.unlink(missing_ok=True)
    return len(df)


def compact_all(out: str | os.PathLike) -> dict[str, int]:
    """Compact every recorded venue folder under ``out`` (or ``out`` itself if it is one)."""
    out = Path(out)
    dirs = [out] if (out / "meta.json").exists() else sorted(p for p in out.iterdir() if (p / "meta.json").exists()) if out.is_dir() else []
    if not dirs:
        raise DataError(f"{out}: no recorded dataset (meta.json) found")
    with _out_lock(out):
        return {d.name: compact(d) for d in dirs}


@contextlib.contextmanager
def _out_lock(out: Path) -> Iterator[None]:
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecorderLocked(f"{out / LOCK_FILE}: another recorder is writing into {out}") from None
        yield
    finally:
        fh.close()


# ------------------------------------------------------------------------------------ replay


def load_replay(path: str | os.PathLike) -> dict[str, dict]:
    """Read a replay script (a JSON-lines file, or a folder of them) → venue -> {'markets', 'script'}.

    Lines: ``{"exchange": X, "markets": [unified market dicts]}`` (what load_markets would give),
    ``{"exchange": X, "frame": <message object or text>}`` (one websocket text frame),
    ``{"exchange": X, "disconnect": true}`` (the server drops the connection here),
    ``{"exchange": X, "pause": seconds}``. After its last line a venue's connection stays open, idle.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
    elif path.is_file():
        files = [path]
    else:
        raise ParameterError(f"--replay: {path}: file not found")
    out: dict[str, dict] = {}
    for f in files:
        _read_replay_file(f, out)
    return out


def _read_replay_file(path: Path, out: dict[str, dict]) -> None:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {i}: invalid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or "exchange" not in item:
            raise DataError(f"{path}: line {i}: expected an object with 'exchange'")
        v = out.setdefault(item["exchange"], {"markets": [], "script": []})
        if "markets" in item:
            v["markets"].extend(item["markets"])
        elif "frame" in item:
            frame = item["frame"]
            v["script"].append(("frame", frame if isinstance(frame, str) else json.dumps(frame)))
        elif item.get("disconnect"):
            v["script"].append(("disconnect", None))
        elif "pause" in item:
            v["script"].append(("pause", float(item["pause"])))
        else:
            raise DataError(f"{path}: line {i}: expected one of markets, frame, disconnect, pause")


class ReplayConnection:
    """Stands in for aiohttp's websocket: ``receive()`` yields recorded frames, a disconnect closes it.

    Everything above it (ccxt's receive loop, JSON decoding, handle_message, parsing) is ccxt's code.
    """

    def __init__(self, feed: "ReplayFeed"):
        self.feed = feed
        self.closed = False
        self._conn = None  # ccxt's Client.buffer looks here
        self.sent: list[str] = []

    async def receive(self):
        from aiohttp import WSMessage, WSMsgType

        while True:
            if self.closed:
                return WSMessage(WSMsgType.CLOSED, None, None)
            item = self.feed.next()
            if item is None:  # script done: stay connected and idle
                await self.feed.idle.wait()
                continue
            kind, value = item
            if kind == "pause":
                await asyncio.sleep(value)
            elif kind == "disconnect":
                self.closed = True
                return WSMessage(WSMsgType.CLOSE, 1006, "replay: server dropped the connection")
            else:
                self.feed.delivered += 1
                return WSMessage(WSMsgType.TEXT, value, None)

    async def send_str(self, data: str):
        self.sent.append(data)

    async def ping(self, *a):
        return None

    async def pong(self, *a):
        return None

    async def close(self, *a, **k):
        self.closed = True
        return True


class ReplayFeed:
    """One venue's replay script, shared by its successive connections."""

    def __init__(self, script: list):
        self.script = list(script)
        self.pos = 0
        self.delivered = 0
        self.connections: list[ReplayConnection] = []
        self.idle = asyncio.Event()

    def next(self):
        if self.pos >= len(self.script):
            return None
        item = self.script[self.pos]
        self.pos += 1
        return item

    def connect(self) -> ReplayConnection:
        conn = ReplayConnection(self)
        self.connections.append(conn)
        return conn


def attach_connection(exchange, connect: Callable[[str], Any]) -> None:
    """Make every websocket client this exchange creates use ``connect(url)`` instead of aiohttp."""
    original = exchange.client

    def client(url):
        fresh = url not in (exchange.clients or {})
        c = original(url)
        if fresh:
            async def create_connection(session, _url=url):
                return connect(_url)

            c.create_connection = create_connection
            c.keepAlive = 0  # no ping/pong watchdog against a recording
        return c

    exchange.client = client


# ------------------------------------------------------------------------------------ recorder


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(ms: float | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso_ms(s: str | None) -> int | None:
    if not s:
        return None
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


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
        self.make_exchange = make_exchange or _live_exchange
        self.sleep = sleep or asyncio.sleep
        self.status_stream = status_stream if status_stream is not None else sys.stderr
        self.rest = config.rest if rest is None else rest
        self.venues = {v: _Venue(v, config.out / v) for v in config.exchanges}
        self.stop = asyncio.Event()
        self.session_start_ms = _now_ms()
        self.errors: list[str] = []
        self.setup_error = ""  # the last market-loading failure (network down at start)

    # ------------------------------------------------------------------ setup and meta
    async def setup(self) -> None:
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
                        raise FetchError(f"{v.name}: cannot load markets for {self.config.symbol}: {_one_line(exc)}") from None
                    # the network is down at start: keep trying (a service must not give up; --duration
                    # and a signal still end it, see run)
                    self.setup_error = f"{v.name}: {_one_line(exc)}"
                    self.status_stream.write(f"record: {v.name}: {_one_line(exc)}; retrying\n")
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
            v.last_message_ms = _now_ms()
            return handle_message(client, message)

        ex.handle_message = on_message
        on_connected = ex.on_connected

        def connected(client, message=None):
            self._connected(v)
            return on_connected(client, message)

        ex.on_connected = connected

    def _open_meta(self, v: _Venue) -> None:
        from liqlab.io.dataset import make_meta

        v.vdir.mkdir(parents=True, exist_ok=True)
        m = v.market
        kind = "inverse" if m.get("inverse") else "linear"
        fresh = make_meta(v.name, self.config.symbol, source=f"liqlab record (ccxt.pro {VENUE_NOTES[v.name]['stream']})",
                          synthetic=False, kind=kind, contract_size=float(m.get("contractSize") or 1.0),
                          quote=m.get("quote") or None)
        meta_path = v.vdir / "meta.json"
        old = {}
        if meta_path.exists():
            try:
                old = json.loads(meta_path.read_text())
            except json.JSONDecodeError as exc:
                raise DataError(f"{meta_path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
            if old.get("symbol") != self.config.symbol or old.get("exchange") != v.name:
                raise DataError(f"{meta_path}: holds {old.get('exchange')} {old.get('symbol')}, not "
                                f"{v.name} {self.config.symbol}; record into another --out")
        meta = {**fresh, **{k: old[k] for k in ("created_at",) if k in old}}
        rec = dict(old.get("recording") or {})
        sessions = list(rec.get("sessions") or [])
        gaps = list(rec.get("gaps") or [])
        now = self.session_start_ms
        if sessions:  # the previous session ended (cleanly or not) at its last flush
            prev = sessions[-1]
            for g in gaps:
                if g.get("end") is None:
                    g["end"] = prev.get("end")
                    g["reason"] = (g.get("reason") or "") + "; recorder stopped during the gap"
            if prev.get("end"):
                gaps.append({"start": prev["end"], "end": _iso_ms(now), "reason": "recorder not running"})
        sessions.append({"start": _iso_ms(now), "end": _iso_ms(now), "clean": False, "events": 0})
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
        meta["notes"] = "recorded realized liquidations" + (" (lower bound: " + notes["limit"] + ")" if notes["lower_bound"] else "")
        v.meta = meta
        v.seq = _next_seq(v.vdir)
        for name in ("ohlcv", "open_interest", "funding"):
            if not (v.vdir / f"{name}.parquet").exists():
                atomic.write_parquet(v.vdir / f"{name}.parquet", _empty(name))
        # parts a crash left behind are folded in before new ones are written
        atomic.write_json(meta_path, meta)
        if _part_names(v.vdir):
            compact(v.vdir)

    def _write_meta(self, v: _Venue, *, clean: bool = False) -> None:
        rec = v.meta["recording"]
        s = rec["sessions"][-1]
        s["end"] = _iso_ms(_now_ms())
        s["events"] = v.events
        s["clean"] = clean
        rec["events"] = v.events_total
        gaps = rec["gaps"]
        if v.gap_start_ms is not None:
            open_gap = {"start": _iso_ms(v.gap_start_ms), "end": None, "reason": v.gap_reason}
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
            gaps.append({"start": _iso_ms(v.gap_start_ms), "end": _iso_ms(_now_ms()), "reason": v.gap_reason})
            v.gap_start_ms = None
            self._write_meta(v)

    def _disconnected(self, v: _Venue, reason: str) -> None:
        if v.gap_start_ms is None:
            v.gap_start_ms = _now_ms()
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
                self._disconnected(v, _one_line(exc))
                self._write_meta(v)
                delay = min(self.config.backoff_max, self.config.backoff_initial * (2 ** attempt))
                attempt += 1
                v.reconnects += 1
                await self.sleep(delay)

    async def flusher(self) -> None:
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
                _write_part(v.vdir, v.seq, rows)
                v.seq += 1
            if v.meta:
                self._write_meta(v, clean=clean)

    async def status(self) -> None:
        tty = hasattr(self.status_stream, "isatty") and self.status_stream.isatty()
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=self.config.status_seconds)
            line = self.status_line()
            self.status_stream.write(("\r" + line + "\x1b[K") if tty else (line + "\n"))
            self.status_stream.flush()

    def status_line(self) -> str:
        now = _now_ms()
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
                        await _poll_table(v, name, self.config)
                        due[name] = now + every[name]
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - REST trouble: retry sooner, say so
                        self.errors.append(f"{v.name} {name}: {_one_line(exc)}")
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


def _one_line(exc: BaseException) -> str:
    s = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {s}" if s else type(exc).__name__


async def _poll_table(v: _Venue, name: str, config: RecordConfig) -> None:
    """Fetch what is new of one table by REST and merge it into ``<venue>/<name>.parquet`` atomically.

    Pages are the venue's documented maxima (``liqlab.io.fetch.PAGE_LIMIT``) and units are converted by the
    fetcher's code: OHLCV volume in base units (ccxt's OKX candles are ``volCcy``), open interest in base
    units and USD (:func:`liqlab.io.fetch.open_interest_frame`). Where the venue gives no USD value (Bybit) it
    is base × the close of the stored 1m bar at that time, so such rows wait until their bar is stored.
    """
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from liqlab.io.dataset import merge_tables
    from liqlab.io.fetch import PAGE_LIMIT, close_at, open_interest_frame

    ex = v.exchange
    path = v.vdir / f"{name}.parquet"
    old = pq.read_table(path).to_pandas() if path.exists() else None
    now_ms = _now_ms()
    since = now_ms - int(config.backfill_hours * 3600_000)
    if old is not None and len(old):
        since = int(pd.Timestamp(old["ts"].iloc[-1]).value // 1_000_000) + 1
    sym = config.symbol
    limit = PAGE_LIMIT[v.name][name]

    def utc(ms: pd.Series) -> pd.Series:
        return pd.to_datetime(ms.astype("int64"), unit="ms", utc=True).astype("datetime64[ns, UTC]")

    if name == "ohlcv":
        bars = await ex.fetch_ohlcv(sym, "1m", since=since, limit=limit)
        bars = [b[:6] for b in bars if b[0] + 60_000 <= now_ms]  # closed bars only
        df = pd.DataFrame(bars, columns=["ts", "open", "high", "low", "close", "volume"])
        df["ts"] = utc(df["ts"])
    elif name == "open_interest":
        rows = await ex.fetch_open_interest_history(sym, "5m", since=since, limit=limit)
        rows = sorted((r for r in rows if r.get("timestamp") is not None), key=lambda r: r["timestamp"])
        ohlcv_path = v.vdir / "ohlcv.parquet"
        ohlcv = pq.read_table(ohlcv_path).to_pandas() if ohlcv_path.exists() else None
        cs = _f(v.market.get("contractSize")) or 1.0
        df, priced = open_interest_frame(v.name, rows, cs, lambda ts: close_at(ohlcv, ts))
        if priced:  # priced with the bar AT ts: later rows wait for their bar (never an older bar's close)
            last_bar = ohlcv["ts"].iloc[-1] if ohlcv is not None and len(ohlcv) else None
            df = df[df["ts"] <= last_bar] if last_bar is not None else df.iloc[:0]
        df = df[np.isfinite(df["open_interest"].to_numpy()) & np.isfinite(df["open_interest_value"].to_numpy())]
    else:
        rows = await ex.fetch_funding_rate_history(sym, since=since, limit=limit)
        df = pd.DataFrame([[r["timestamp"], r["fundingRate"]] for r in rows], columns=["ts", "funding_rate"])
        df["ts"] = utc(df["ts"])
    if df.empty:
        return
    df = df.drop_duplicates("ts", keep="last").sort_values("ts").reset_index(drop=True)
    merged = merge_tables(name, old, df, str(path))
    atomic.write_parquet(path, merged)


def _live_exchange(name: str):
    """A ccxt.pro exchange that loads only derivative markets and no currencies (as the fetcher)."""
    import ccxt.pro as ccxtpro

    from liqlab.io.fetch import MARKET_OPTIONS

    return getattr(ccxtpro, name)({"enableRateLimit": True, "newUpdates": True,
                                   "options": dict(MARKET_OPTIONS[name])})


def replay_exchange_factory(script: dict[str, dict]) -> Callable[[str], Any]:
    """Exchanges whose markets come from the replay script and whose sockets replay recorded frames."""
    import ccxt.pro as ccxtpro

    feeds: dict[str, ReplayFeed] = {}

    def make(name: str):
        if name not in script:
            raise ParameterError(f"--replay: the script has no frames for {name}; has {sorted(script)}")
        ex = getattr(ccxtpro, name)({"enableRateLimit": False, "newUpdates": True})
        markets = script[name]["markets"]
        if not markets:
            raise DataError(f"--replay: no markets line for {name}")
        ex.set_markets(markets)
        feed = feeds.setdefault(name, ReplayFeed(script[name]["script"]))
        attach_connection(ex, lambda url: feed.connect())
        ex.liqlab_replay_feed = feed
        return ex

    return make


def record(
    config: RecordConfig,
    *,
    make_exchange: Callable[[str], Any] | None = None,
    sleep: Callable[[float], Awaitable[Any]] | None = None,
    status_stream=None,
    rest: bool | None = None,
    install_signals: bool = True,
) -> dict:
    """Record until SIGINT/SIGTERM (or ``config.duration``), then flush, compact and close cleanly.

    ``make_exchange(name)`` builds the ccxt.pro exchange (tests and ``--replay`` pass one whose socket
    replays recorded frames); ``sleep`` is the backoff sleep. Returns per-venue counts.
    """
    async def main() -> dict:
        rec = Recorder(config, make_exchange=make_exchange, sleep=sleep, status_stream=status_stream, rest=rest)
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, rec.stop.set)
        try:
            return await rec.run()
        finally:
            if install_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(NotImplementedError, RuntimeError):
                        loop.remove_signal_handler(sig)

    with _out_lock(config.out):
        return asyncio.run(main())
