"""liqlab.viz.overlays: candles and realized liquidations per shown step."""

from __future__ import annotations

from liqlab.viz.overlays import price_bars
from liqlab.viz.view import times_ms as to_ms


def test_price_bars_aggregate_steps(small):
    hm, data = small
    times_ms = to_ms(hm.times)
    bars = price_bars(data, times_ms, hm.params.step_hours, "bybit")
    o = data["bybit"].ohlcv
    ts = to_ms(o["ts"])
    j = len(bars["t"]) // 2
    end = bars["t"][j] + hm.params.step_hours * 1.8e6
    sel = (ts >= end - hm.params.step_hours * 3.6e6) & (ts < end)
    assert bars["high"][j] == o["high"].to_numpy()[sel].max() and bars["low"][j] == o["low"].to_numpy()[sel].min()
    assert bars["open"][j] == o["open"].to_numpy()[sel][0] and bars["close"][j] == o["close"].to_numpy()[sel][-1]
