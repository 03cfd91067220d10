"""Websocket playback: recorded frames replayed through ccxt.pro's own receive loop (``liqlab record --replay``).

A replay script (:func:`load_replay`) holds per venue the markets and the websocket frames of a recording;
:class:`ReplayFeed` plays one venue's script to successive :class:`ReplayConnection` objects, which stand in
for aiohttp's websocket; :func:`replay_exchange_factory` builds ccxt.pro exchanges wired to them.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from liqlab.errors import DataError, ParameterError

#: REST tables a replay script may carry, and the ccxt method each answers.
REST_TABLES = {"ohlcv": "fetch_ohlcv", "open_interest": "fetch_open_interest_history",
               "funding": "fetch_funding_rate_history"}
#: Hours of a replay's REST rows before its clock starts (the first poll fetches them as history).
REPLAY_HISTORY_HOURS = 24.0

def load_replay(path: str | os.PathLike) -> dict[str, dict]:
    """Read a replay script (a JSON-lines file, or a folder of them) → venue -> {'markets', 'script'}.

    Lines: ``{"exchange": X, "markets": [unified market dicts]}`` (what load_markets would give),
    ``{"exchange": X, "frame": <message object or text>}`` (one websocket text frame),
    ``{"exchange": X, "disconnect": true}`` (the server drops the connection here),
    ``{"exchange": X, "pause": seconds}``. After its last line a venue's connection stays open, idle.
    REST answers the replay serves on a clock (:class:`ReplayClock`): ``{"exchange": X, "rest": "ohlcv" |
    "open_interest" | "funding", "rows": [...]}`` in ccxt's unified form (``[ms, open, high, low, close,
    volume]``; ``{"timestamp", "openInterestAmount", "openInterestValue"}``; ``{"timestamp",
    "fundingRate"}``), and ``{"exchange": X, "synthetic": true}`` when the recording is made up (the
    dataset written is then labelled synthetic). Files may be gzip-compressed (``.jsonl.gz``).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.jsonl`` file or a folder of them.

    Returns
    -------
    dict
        venue → ``{'markets': [dict], 'script': [(kind, value)]}``.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted([*path.glob("*.jsonl"), *path.glob("*.jsonl.gz")])
    elif path.is_file():
        files = [path]
    else:
        raise ParameterError(f"--replay: {path}: file not found")
    out: dict[str, dict] = {}
    for f in files:
        _read_replay_file(f, out)
    return out


def _read_replay_file(path: Path, out: dict[str, dict]) -> None:
    import gzip

    text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: line {i}: invalid JSON ({exc.msg})") from None
        if not isinstance(item, dict) or "exchange" not in item:
            raise DataError(f"{path}: line {i}: expected an object with 'exchange'")
        v = out.setdefault(item["exchange"], {"markets": [], "script": [], "rest": {}, "synthetic": False})
        if "rest" in item:
            if item["rest"] not in REST_TABLES or not isinstance(item.get("rows"), list):
                raise DataError(f"{path}: line {i}: 'rest' must be one of {list(REST_TABLES)} with a list of 'rows'")
            v["rest"].setdefault(item["rest"], []).extend(item["rows"])
        elif "synthetic" in item:
            v["synthetic"] = bool(item["synthetic"])
        elif "markets" in item:
            v["markets"].extend(item["markets"])
        elif "frame" in item:
            frame = item["frame"]
            v["script"].append(("frame", frame if isinstance(frame, str) else json.dumps(frame)))
        elif item.get("disconnect"):
            v["script"].append(("disconnect", None))
        elif "pause" in item:
            v["script"].append(("pause", float(item["pause"])))
        else:
            raise DataError(f"{path}: line {i}: expected one of markets, frame, disconnect, pause, rest, synthetic")


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
        """The next recorded frame as an aiohttp message (CLOSE at a scripted disconnect; idle after the script)."""
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
        """Keep what ccxt sends (subscriptions), for tests to read."""
        self.sent.append(data)

    async def ping(self, *a):
        """No-op (no keep-alive against a recording)."""
        return None

    async def pong(self, *a):
        """No-op (no keep-alive against a recording)."""
        return None

    async def close(self, *a, **k):
        """Mark the connection closed."""
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
        """The next scripted item ``(kind, value)``, or None when the script is done."""
        if self.pos >= len(self.script):
            return None
        item = self.script[self.pos]
        self.pos += 1
        return item

    def connect(self) -> ReplayConnection:
        """A new connection that continues the script where the last one stopped."""
        conn = ReplayConnection(self)
        self.connections.append(conn)
        return conn


def attach_connection(exchange, connect: Callable[[str], Any]) -> None:
    """Make every websocket client this exchange creates use ``connect(url)`` instead of aiohttp.

    Parameters
    ----------
    exchange : ccxt.pro.Exchange
    connect : callable
        ``connect(url)`` returns a connection object (e.g. :meth:`ReplayFeed.connect`).

    Returns
    -------
    None
    """
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


class ReplayClock:
    """The recording's time during a replay: ``start_ms`` (epoch ms, UTC) plus ``speed`` × the wall time since
    it was made."""

    def __init__(self, start_ms: int, speed: float):
        import time

        if not (speed > 0):
            raise ParameterError(f"--speed: must be > 0, got {speed!r}")
        self.start_ms, self.speed, self.t0 = int(start_ms), float(speed), time.monotonic()

    def now_ms(self) -> int:
        """Milliseconds since the epoch (UTC) on the replay's clock."""
        import time

        return self.start_ms + int((time.monotonic() - self.t0) * 1000.0 * self.speed)

    @classmethod
    def for_script(cls, script: dict[str, dict], speed: float) -> "ReplayClock | None":
        """A clock starting REPLAY_HISTORY_HOURS after the script's first REST row (None without REST rows)."""
        first = [_row_ms(rows[0]) for v in script.values() for rows in v.get("rest", {}).values() if rows]
        if not first:
            return None
        return cls(min(first) + int(REPLAY_HISTORY_HOURS * 3600_000), speed)


def _row_ms(row) -> int:
    return int(row[0] if isinstance(row, list) else row["timestamp"])


def _serve_rest(ex, rest: dict[str, list], clock: ReplayClock) -> None:
    """Answer the exchange's REST history calls from the script: rows from ``since`` up to the clock's now."""
    for table, method in REST_TABLES.items():
        rows = sorted(rest.get(table, []), key=_row_ms)
        times = [_row_ms(r) for r in rows]

        async def fetch(symbol, *args, since=None, limit=None, _rows=rows, _times=times, **kw):
            import bisect

            a = bisect.bisect_left(_times, since or 0)
            b = bisect.bisect_right(_times, clock.now_ms())
            return _rows[a:min(b, a + (limit or len(_rows)))]

        setattr(ex, method, fetch)


def replay_exchange_factory(script: dict[str, dict], clock: ReplayClock | None = None) -> Callable[[str], Any]:
    """Exchanges whose markets come from the replay script and whose sockets replay recorded frames.

    Parameters
    ----------
    script : dict
        What :func:`load_replay` returns.
    clock : ReplayClock, optional
        Serves the script's REST rows up to the clock's time (None: no REST answers).

    Returns
    -------
    callable
        ``make(name)`` → a ccxt.pro exchange; one :class:`ReplayFeed` per venue, shared by its connections.
    """
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
        ex.liqlab_synthetic = bool(script[name].get("synthetic"))
        if clock is not None:
            _serve_rest(ex, script[name].get("rest", {}), clock)
        return ex

    return make



def replay_config(path: str | os.PathLike, speed: float, config):
    """What ``liqlab record --replay PATH --speed X`` records with: the exchanges and the timings.

    Websocket frames play as recorded; REST rows (when the script has them) are served on a
    :class:`ReplayClock` that runs ``speed`` times faster than the wall clock, starting
    REPLAY_HISTORY_HOURS after the first row, and the recorder's clock (``config.now_ms``) becomes that
    clock, so the dataset written is the one a live recording of those hours writes.

    Parameters
    ----------
    path : str or os.PathLike
        A replay script (see :func:`load_replay`).
    speed : float
        Replay seconds per wall-clock second (> 0).
    config : RecordConfig
        The command's configuration.

    Returns
    -------
    make : callable
        ``make(name)`` → an exchange (see :func:`replay_exchange_factory`).
    config : RecordConfig
        REST polling on only with REST rows; poll periods divided by ``speed``.
    """
    import dataclasses

    from liqlab.io.record import config as record_config

    script = load_replay(path)
    clock = ReplayClock.for_script(script, speed)
    if clock is None:
        if not (speed > 0):
            raise ParameterError(f"--speed: must be > 0, got {speed!r}")
        return replay_exchange_factory(script), dataclasses.replace(config, rest=False)
    record_config.now_ms = clock.now_ms
    fast = {n: max(getattr(config, n) / speed, 0.05) for n in ("ohlcv_seconds", "open_interest_seconds",
                                                              "funding_seconds")}
    return replay_exchange_factory(script, clock), dataclasses.replace(
        config, rest=True, backfill_hours=REPLAY_HISTORY_HOURS, **fast)


def write_script(coll, markets: dict[str, dict], path: str | os.PathLike) -> Path:
    """Write a replay script of REST rows from a collection's OHLCV, open interest and funding (gzip JSON lines).

    Parameters
    ----------
    coll : Collection
        The rows to serve (one dataset per venue); a synthetic collection gives a script marked synthetic.
    markets : dict
        venue → ``{'markets': [unified market dicts]}`` (e.g. :func:`load_replay` of a recording).
    path : str or os.PathLike
        The ``.jsonl.gz`` file written (atomically).

    Returns
    -------
    pathlib.Path
    """
    import gzip

    from liqlab._util import to_ns
    from liqlab.io import atomic

    lines = []
    for ds in coll:
        ms = lambda s: (to_ns(s) // 1_000_000).tolist()  # noqa: E731
        o = ds.ohlcv
        bars = [[t, *r] for t, r in zip(ms(o["ts"]), o[["open", "high", "low", "close", "volume"]].to_numpy().tolist())]
        oi = [{"timestamp": t, "openInterestAmount": a, "openInterestValue": b} for t, a, b in zip(
            ms(ds.open_interest["ts"]), ds.open_interest["open_interest"].tolist(),
            ds.open_interest["open_interest_value"].tolist())]
        fu = [{"timestamp": t, "fundingRate": r} for t, r in zip(ms(ds.funding["ts"]), ds.funding["funding_rate"].tolist())]
        lines += [{"exchange": ds.venue, "markets": markets[ds.venue]["markets"]},
                  {"exchange": ds.venue, "synthetic": bool(ds.synthetic)},
                  {"exchange": ds.venue, "rest": "ohlcv", "rows": bars},
                  {"exchange": ds.venue, "rest": "open_interest", "rows": oi},
                  {"exchange": ds.venue, "rest": "funding", "rows": fu}]
    data = gzip.compress(("\n".join(json.dumps(x) for x in lines) + "\n").encode(), mtime=0)
    path = Path(path)
    atomic.write_bytes(path, data)
    return path
