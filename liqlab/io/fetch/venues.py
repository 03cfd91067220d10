"""What the fetcher knows about each venue: page sizes, market options, page anchors, API-key variables and
the notes it writes into a dataset (what the venue's numbers mean and where they stop).

Times are epoch milliseconds (UTC).
"""

from __future__ import annotations

from typing import Any

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

