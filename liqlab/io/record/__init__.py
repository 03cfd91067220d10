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

Modules: :mod:`~liqlab.io.record.config` (options, layout, venue notes, the clock),
:mod:`~liqlab.io.record.events` (ccxt liquidation → rows), :mod:`~liqlab.io.record.parts` (the writer:
parts, compaction, the folder lock), :mod:`~liqlab.io.record.replay` (websocket playback of recorded
frames), :mod:`~liqlab.io.record.poll` (REST polls) and :mod:`~liqlab.io.record.recorder` (the session).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from liqlab._util import VENUES
from liqlab.io.record.config import VENUE_NOTES, RecordConfig, RecorderLocked
from liqlab.io.record.events import liquidation_rows
from liqlab.io.record.parts import compact, compact_all
from liqlab.io.record.recorder import Recorder
from liqlab.io.record.replay import ReplayConnection, ReplayFeed, attach_connection, load_replay, replay_exchange_factory

__all__ = [
    "RecordConfig",
    "record",
    "compact",
    "compact_all",
    "liquidation_rows",
    "load_replay",
    "replay_exchange_factory",
    "ReplayFeed",
    "ReplayConnection",
    "attach_connection",
    "Recorder",
    "RecorderLocked",
    "VENUES",
    "VENUE_NOTES",
]


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

    Parameters
    ----------
    config : RecordConfig
        Venues, symbol, output folder and timings (seconds).
    make_exchange : callable, optional
        ``make_exchange(name)`` builds the ccxt.pro exchange (tests and ``--replay`` pass one whose socket
        replays recorded frames); default a live exchange.
    sleep : callable, optional
        The reconnect backoff sleep (async; default ``asyncio.sleep``).
    status_stream : file-like, optional
        Where the status line goes (default stderr).
    rest : bool, optional
        Poll OHLCV, open interest and funding by REST (default ``config.rest``).
    install_signals : bool
        Stop cleanly on SIGINT/SIGTERM.

    Returns
    -------
    dict
        Per venue: ``{'events': int, 'reconnects': int, 'path': str}``.
    """
    from liqlab.io.record.parts import out_lock

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

    if make_exchange is None:  # importing ccxt.pro takes seconds on a cold start: not part of --duration
        import ccxt.pro  # noqa: F401
    with out_lock(config.out):
        return asyncio.run(main())
