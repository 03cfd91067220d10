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

def load_replay(path: str | os.PathLike) -> dict[str, dict]:
    """Read a replay script (a JSON-lines file, or a folder of them) → venue -> {'markets', 'script'}.

    Lines: ``{"exchange": X, "markets": [unified market dicts]}`` (what load_markets would give),
    ``{"exchange": X, "frame": <message object or text>}`` (one websocket text frame),
    ``{"exchange": X, "disconnect": true}`` (the server drops the connection here),
    ``{"exchange": X, "pause": seconds}``. After its last line a venue's connection stays open, idle.

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


def replay_exchange_factory(script: dict[str, dict]) -> Callable[[str], Any]:
    """Exchanges whose markets come from the replay script and whose sockets replay recorded frames.

    Parameters
    ----------
    script : dict
        What :func:`load_replay` returns.

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
        return ex

    return make

