"""What the recorder records and where: its options, the output layout and each venue's stream notes.

Also the recorder's clock (:func:`now_ms`, replaced in tests) and the one-line reason written for a
dropped connection or a failed poll.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liqlab._util import VENUES, one_line
from liqlab.errors import LiqlabError, ParameterError

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


def now_ms() -> int:
    """The recorder's clock.

    Returns
    -------
    int
        Milliseconds since the epoch (UTC).
    """
    return int(time.time() * 1000)


def iso_ms(ms: float | None) -> str | None:
    """Epoch milliseconds as ISO 8601 UTC text with a ``Z`` (``None`` stays ``None``).

    Parameters
    ----------
    ms : float or None
        Milliseconds since the epoch (UTC).

    Returns
    -------
    str or None
        e.g. ``'2025-11-24T16:00:02.001Z'``.
    """
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reason(exc: BaseException) -> str:
    """Why a connection dropped or a poll failed, on one line: the exception's type and its message.

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    str
        ``'Type: message'`` (whitespace collapsed), or ``'Type'`` alone when the message is empty.
    """
    text = one_line(exc)
    name = type(exc).__name__
    return name if text == name else f"{name}: {text}"
