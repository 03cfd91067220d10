"""liqlab record: recorded websocket frames (tests/fixtures/ws, written per the exchanges' docs) go through
ccxt.pro's own receive loop, handle_message and parsing; only the socket is replaced. No network."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.io import record as rec
from liqlab.io.record import config as rec_config
from liqlab.io.record import parts as rec_parts
from liqlab.io.record import poll as rec_poll
from liqlab.io.record import recorder as rec_recorder
from liqlab.io.dataset import load_collection, load_dataset
from liqlab.errors import DataError, FetchError, ParameterError

REPO = Path(__file__).resolve().parents[2]
WS = REPO / "tests" / "fixtures" / "ws"
SYMBOL = "BTC/USDT:USDT"
VENUES = ("binanceusdm", "bybit", "okx")
_spec = importlib.util.spec_from_file_location("fake_http", REPO / "tests" / "fixtures" / "exchanges" / "fake_http.py")
fake_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_http)


@pytest.fixture(autouse=True)
def offline(no_network):
    """No real socket in-process (tests/conftest.py ``no_network``); replayed sockets and fake REST open none."""


def _frames(venue: str) -> list[dict]:
    out = []
    for line in (WS / f"{venue}.jsonl").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            item = json.loads(line)
            if "frame" in item:
                out.append(item["frame"])
    return out


def expected(venue: str) -> pd.DataFrame:
    """Events as the exchanges document them, computed straight from the fixture frames."""
    rows = []
    for f in _frames(venue):
        if venue == "binanceusdm" and f.get("e") == "forceOrder":
            o = f["o"]  # S is the liquidation ORDER's side
            rows.append((o["T"], {"SELL": "long", "BUY": "short"}[o["S"]], float(o["ap"]), float(o["z"])))
        elif venue == "bybit" and str(f.get("topic", "")).startswith("allLiquidation."):
            for d in f["data"]:  # S is the POSITION's side
                rows.append((d["T"], {"Buy": "long", "Sell": "short"}[d["S"]], float(d["p"]), float(d["v"])))
        elif venue == "okx" and "data" in f:
            for item in f["data"]:
                if item["instId"] != "BTC-USDT-SWAP":
                    continue
                for d in item["details"]:  # every fill; sz in contracts of 0.01 BTC
                    side = d["posSide"] if d["posSide"] in ("long", "short") else {"sell": "long", "buy": "short"}[d["side"]]
                    rows.append((int(d["ts"]), side, float(d["bkPx"]), float(d["sz"]) * 0.01))
    df = pd.DataFrame(rows, columns=["ms", "side", "price", "amount"])
    df["ts"] = pd.to_datetime(df["ms"], unit="ms", utc=True)
    df["value"] = df["amount"] * df["price"]
    return df.sort_values("ts", kind="stable").reset_index(drop=True)[["ts", "side", "price", "amount", "value"]]


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.reset_index(drop=True)
    assert list(got["side"]) == list(want["side"])
    assert list(got["ts"]) == list(want["ts"])
    for c in ("price", "amount", "value"):
        assert got[c].to_numpy() == pytest.approx(want[c].to_numpy(), rel=1e-12)


def _run_inprocess(tmp_path, script=None, duration=1.2, **kw):
    sleeps = []

    async def fake_sleep(delay):
        sleeps.append(delay)
        await asyncio.sleep(0.01)

    made = {}
    factory = rec.replay_exchange_factory(script or rec.load_replay(WS))

    def make(name):
        made[name] = factory(name)
        return made[name]

    cfg = rec.RecordConfig(exchanges=kw.pop("exchanges", VENUES), symbol=SYMBOL, out=tmp_path / "live",
                           flush_seconds=0.2, status_seconds=0.3, duration=duration, backoff_initial=0.5, rest=False, **kw)
    status = io.StringIO()
    result = rec.record(cfg, make_exchange=make, sleep=fake_sleep, status_stream=status, install_signals=False)
    return result, sleeps, made, status.getvalue()


def test_recorded_frames_through_ccxt_parsing(tmp_path):
    result, sleeps, made, status = _run_inprocess(tmp_path)
    coll = load_collection(tmp_path / "live")
    assert coll.venues == VENUES
    for d in coll:
        _same(d.liquidations, expected(d.venue))
        assert result[d.venue]["events"] == len(expected(d.venue))
        assert d.meta["synthetic"] is False and d.meta["recording"]["sessions"][-1]["clean"] is True
        assert not list((d.path / "liquidations").glob("part-*.parquet"))  # compacted on the clean stop
    # OKX: ccxt's unified structure keeps one fill per message; every fill is recorded (and ETH is dropped)
    okx_cache = [x for x in made["okx"].liquidations if x["symbol"] == SYMBOL]
    assert len(okx_cache) < len(coll["okx"].liquidations) == 5
    assert coll["okx"].meta["contract_size"] == 0.01
    # what each socket was asked for went out through ccxt's own subscribe path
    sent = " ".join(s for c in made["bybit"].liqlab_replay_feed.connections for s in c.sent)
    assert "allLiquidation.BTCUSDT" in sent
    assert "btcusdt@forceOrder" in " ".join(made["binanceusdm"].liqlab_replay_feed.connections[0].sent)
    # Binance's one-per-second limit is told in meta.json
    b = coll["binanceusdm"].meta
    assert b["recording"]["lower_bound"] is True and "lower bound" in b["notes"]["liquidations"]
    assert coll["bybit"].meta["recording"]["lower_bound"] is False
    assert "binanceusdm 3 ev" in status and "last message" in status and "stopped" in status


def test_disconnect_records_a_gap_and_reconnects_with_backoff(tmp_path):
    script = rec.load_replay(WS)
    lines = script["bybit"]["script"]
    first_data = next(i for i, (k, v) in enumerate(lines) if k == "frame" and "allLiquidation" in v)
    # two drops in a row before any data: the delay doubles; data resets it before the fixture's own drop
    script["bybit"]["script"] = lines[:first_data] + [("disconnect", None)] * 2 + lines[first_data:]
    result, sleeps, made, _ = _run_inprocess(tmp_path, script=script, exchanges=("bybit",))
    assert sleeps == [0.5, 1.0, 0.5]
    assert result["bybit"]["reconnects"] == 3
    feed = made["bybit"].liqlab_replay_feed
    assert len(feed.connections) == 4 and feed.pos == len(feed.script)
    ds = load_dataset(tmp_path / "live" / "bybit")
    _same(ds.liquidations, expected("bybit"))  # nothing lost around the drops
    gaps = ds.meta["recording"]["gaps"]
    assert len(gaps) == 3 and all(g["end"] is not None and g["start"] <= g["end"] for g in gaps)
    assert all("closed" in g["reason"] for g in gaps)


def _spawn(out: Path, replay: Path, *extra: str) -> tuple[subprocess.Popen, list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "liqlab", "record", "--out", str(out), "--replay", str(replay),
         "--status-every", "0.1", "--backoff", "0.05", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    return proc, lines


def _wait_for(cond, timeout=30.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_sigterm_flushes_everything(tmp_path):
    totals = {v: len(expected(v)) for v in VENUES}
    want = " | ".join(f"{v} {n} ev" for v, n in totals.items())
    # the flush interval is far longer than the run: only the SIGTERM handler can write the events
    proc, lines = _spawn(tmp_path / "live", WS, "--flush", "600")
    try:
        assert _wait_for(lambda: any(all(f"{v} {n} ev" in ln for v, n in totals.items()) for ln in lines)), lines
        assert not list((tmp_path / "live").glob("*/liquidations/part-*.parquet"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert "Traceback" not in "".join(lines)
    coll = load_collection(tmp_path / "live")
    for d in coll:
        _same(d.liquidations, expected(d.venue))
        assert d.meta["recording"]["sessions"][-1]["clean"] is True
    assert want.split(" | ")[0] in "".join(lines)


def test_sigkill_leaves_data_that_loads(tmp_path):
    # a slow stream: frames 0.15 s apart, so the kill lands in the middle
    paced = tmp_path / "paced.jsonl"
    out_lines = []
    for v in VENUES:
        for line in (WS / f"{v}.jsonl").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                out_lines.append(line)
                if '"frame"' in line:
                    out_lines.append(json.dumps({"exchange": v, "pause": 0.15}))
    paced.write_text("\n".join(out_lines) + "\n")
    out = tmp_path / "live"
    proc, lines = _spawn(out, paced, "--flush", "0.1")
    try:
        assert _wait_for(lambda: len(list(out.glob("*/liquidations/part-*.parquet"))) >= 2), lines
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    coll = load_collection(out)  # loads: every part on disk is whole
    n = 0
    for d in coll:
        want = expected(d.venue)
        got = d.liquidations if d.liquidations is not None else want.iloc[:0]
        assert len(got) <= len(want)
        merged = got.merge(want, how="left", indicator=True)
        assert (merged["_merge"] == "both").all()  # only true events, none invented or mangled
        n += len(got)
        assert d.meta["recording"]["sessions"][-1]["clean"] is False
    assert n > 0
    # a restart folds the leftover parts in and records the downtime as a gap
    res = subprocess.run([sys.executable, "-m", "liqlab", "record", "--out", str(out), "--replay", str(WS),
                          "--duration", "0.5", "--backoff", "0.05", "--status-every", "5"],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr
    for d in load_collection(out):
        assert any(g["reason"] == "recorder not running" for g in d.meta["recording"]["gaps"])
        assert len(d.meta["recording"]["sessions"]) == 2
        assert not list((d.path / "liquidations").glob("part-*.parquet"))


def test_compaction_never_double_counts(tmp_path):
    _run_inprocess(tmp_path, exchanges=("okx",), duration=0.6)
    vdir = tmp_path / "live" / "okx"
    before = load_dataset(vdir).liquidations
    # a crash between writing liquidations.parquet and deleting the parts leaves parts it already holds
    rows = [{"ts": 1764000002001, "side": "long", "price": 97701.3, "amount": 0.12, "value": 11724.156}]
    rec_parts.write_part(vdir, 1, rows)
    assert len(load_dataset(vdir).liquidations) == len(before)
    # a newer part is read before compaction and kept by it
    rec_parts.write_part(vdir, rec_parts.next_seq(vdir), rows)
    assert len(load_dataset(vdir).liquidations) == len(before) + 1
    assert rec.compact(vdir) == len(before) + 1
    assert len(load_dataset(vdir).liquidations) == len(before) + 1
    assert not list((vdir / "liquidations").glob("part-*.parquet"))


def test_second_recorder_on_same_folder_is_refused(tmp_path):
    out = tmp_path / "live"
    with rec_parts.out_lock(out):
        res = subprocess.run([sys.executable, "-m", "liqlab", "record", "--out", str(out), "--replay", str(WS),
                              "--duration", "0.2"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 3 and "another recorder" in res.stderr and "Traceback" not in res.stderr


def test_bad_options_are_parameter_errors(tmp_path):
    with pytest.raises(ParameterError, match="exchange"):
        rec.RecordConfig(exchanges=("kraken",), symbol=SYMBOL, out=tmp_path)
    with pytest.raises(ParameterError, match="symbol"):
        rec.RecordConfig(exchanges=("okx",), symbol="BTCUSDT", out=tmp_path)
    with pytest.raises(ParameterError, match="flush_seconds"):
        rec.RecordConfig(exchanges=("okx",), symbol=SYMBOL, out=tmp_path, flush_seconds=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"exchange": "okx", "frame": {}}\nnot json\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2"):
        rec.load_replay(bad)


def test_liquidation_rows_sides_and_contract_sizes():
    okx = {"contractSize": 0.01, "linear": True}
    liq = {"info": {"details": [{"posSide": "net", "side": "buy", "bkPx": "100", "sz": "10", "ts": "5"},
                                {"posSide": "long", "side": "sell", "bkPx": "90", "sz": "1", "ts": "6"}]}}
    rows = rec.liquidation_rows("okx", liq, okx)
    assert [(r["side"], r["amount"], r["value"]) for r in rows] == [("short", 0.1, 10.0), ("long", 0.01, 0.9)]
    inverse = {"contractSize": 100.0, "inverse": True}
    (r,) = rec.liquidation_rows("bybit", {"timestamp": 1, "price": 50000.0, "contracts": 3.0, "info": {"S": "Sell"}}, inverse)
    assert r["side"] == "short" and r["value"] == 300.0 and r["amount"] == pytest.approx(300.0 / 50000.0)
    assert rec.liquidation_rows("binanceusdm", {"timestamp": None, "info": {"S": "SELL"}}, {}) == []


def test_rest_polling_fills_ohlcv_open_interest_and_funding(tmp_path):
    """The REST side (ccxt's own request building and parsing; only the transport is faked) makes the
    recording a complete dataset: closed 1m bars, 5m open interest (base units and USD), funding."""
    now_ms = int(time.time() * 1000)
    minute = now_ms - now_ms % 60_000
    requests = []

    async def fake_fetch(url, method="GET", headers=None, body=None):
        requests.append(url)
        if "/fapi/v1/klines" in url:
            bars = []
            for i in range(30, -1, -1):  # the last one is still open and must be dropped
                t = minute - i * 60_000
                c = 97000.0 + i
                bars.append([t, str(c - 5), str(c + 10), str(c - 10), str(c), "12.5", t + 59_999, "0", 100, "6.0", "0", "0"])
            return bars
        if "openInterestHist" in url:
            return [{"symbol": "BTCUSDT", "sumOpenInterest": str(80000.0 + k), "sumOpenInterestValue": str((80000.0 + k) * 97000.0),
                     "timestamp": minute - 300_000 * (5 - k) - minute % 300_000} for k in range(5)]
        if "fundingRate" in url:
            return [{"symbol": "BTCUSDT", "fundingRate": "0.00010000", "fundingTime": minute - 3600_000, "markPrice": "97000"}]
        raise AssertionError(f"unexpected request {url}")

    factory = rec.replay_exchange_factory(rec.load_replay(WS / "binanceusdm.jsonl"))

    def make(name):
        ex = factory(name)
        ex.fetch = fake_fetch
        return ex

    cfg = rec.RecordConfig(exchanges=("binanceusdm",), symbol=SYMBOL, out=tmp_path / "live", flush_seconds=0.2,
                           status_seconds=5, duration=0.8, rest=True)
    rec.record(cfg, make_exchange=make, status_stream=io.StringIO(), install_signals=False)
    ds = load_dataset(tmp_path / "live" / "binanceusdm")
    assert len(ds.ohlcv) == 30 and ds.ohlcv["ts"].iloc[-1] == pd.Timestamp(minute - 60_000, unit="ms", tz="UTC")
    assert ds.ohlcv["close"].iloc[-1] == 97001.0
    assert len(ds.open_interest) == 5 and ds.open_interest["open_interest"].iloc[0] == 80000.0
    assert ds.open_interest["open_interest_value"].iloc[0] == pytest.approx(80000.0 * 97000.0)
    assert list(ds.funding["funding_rate"]) == [0.0001]
    _same(ds.liquidations, expected("binanceusdm"))
    assert any("interval=1m" in u for u in requests) and any("period=5m" in u for u in requests)


# ------------------------------------------------------------------------ REST polling on Bybit and OKX
# The fake venues of the fetcher's tests (fake_http.py: documented paging, payloads in contracts where the
# venue counts contracts) answer ccxt's own requests. The recorder's clock is frozen per session, so every
# expected row is known exactly.

MIN = 60_000
REST_FAKES = {"bybit": fake_http.FakeBybit, "okx": fake_http.FakeOKX}
T_FIRST = int(pd.Timestamp("2025-01-01T11:30:30", tz="UTC").value // 1_000_000)  # clock of session 1
T_SECOND = T_FIRST + 30 * MIN                                                      # clock of session 2
BACKFILL_H = 4.0  # 240 bars: three OKX pages of 100; one funding time (08:00) inside


def _ms_index(df: pd.DataFrame) -> list[int]:
    return list(df["ts"].array.asi8 // 1_000_000)


def _rest_exchanges(venue: str, adapter, clock_ms: int, monkeypatch, frames: bool = True):
    """``make_exchange`` for ``venue`` at the frozen time ``clock_ms`` (the recorder's clock and ccxt's):
    liquidations replayed from the websocket fixture (``frames=False``: an idle socket), REST answered by
    ``adapter``. ccxt.pro sends REST through aiohttp; here ccxt's own synchronous ``fetch`` (requests) runs
    on the adapter instead, so URL building, JSON decoding and ``handle_errors`` are still ccxt's."""
    import ccxt

    monkeypatch.setattr(rec_config, "now_ms", lambda: clock_ms)
    script = rec.load_replay(WS / f"{venue}.jsonl")
    if not frames:
        script[venue]["script"] = []
    factory = rec.replay_exchange_factory(script)
    session = fake_http.session_with(adapter)

    def make(name):
        ex = factory(name)
        ex.milliseconds = lambda: clock_ms  # ccxt's own time-dependent choices (OKX recent/history candles)

        async def fetch(url, method="GET", headers=None, body=None):
            aio, ex.session = ex.session, session
            try:
                return ccxt.Exchange.fetch(ex, url, method, headers, body)
            finally:
                ex.session = aio

        ex.fetch = fetch
        return ex

    return make


def _record_rest(venue: str, adapter, out: Path, clock_ms: int, monkeypatch, frames: bool = True) -> None:
    """One recorder session (1.5 s of wall time) at the frozen time ``clock_ms``; see _rest_exchanges."""
    make = _rest_exchanges(venue, adapter, clock_ms, monkeypatch, frames)

    async def no_sleep(delay):
        await asyncio.sleep(0.01)

    # polls every 0.2 s: a backfill longer than one page (OKX: 100 bars) catches up within the session
    cfg = rec.RecordConfig(exchanges=(venue,), symbol=SYMBOL, out=out, flush_seconds=0.2, status_seconds=5,
                           duration=1.5, rest=True, backfill_hours=BACKFILL_H, ohlcv_seconds=0.2,
                           open_interest_seconds=0.2, funding_seconds=0.2)
    rec.record(cfg, make_exchange=make, sleep=no_sleep, status_stream=io.StringIO(), install_signals=False)


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_rest_polling_bybit_okx_units_and_resume(venue, tmp_path, monkeypatch):
    """Two sessions 30 min apart: the first backfills, the second polls only what is new (its first
    candle request fails, so open interest is polled before the bars it is priced with). Every table is
    exact, contiguous and without duplicates, in base units / USD, and meta.json tells the downtime."""
    out = tmp_path / "live"
    start = T_FIRST - int(BACKFILL_H * 3_600_000)
    first = REST_FAKES[venue](start - 3_600_000, T_FIRST)  # the venue's data ends at the clock (open bar too)
    _record_rest(venue, first, out, T_FIRST, monkeypatch)
    candles = "market/kline" if venue == "bybit" else "market/candles"
    second = REST_FAKES[venue](start - 3_600_000, T_SECOND, faults={candles: ["500"]})
    _record_rest(venue, second, out, T_SECOND, monkeypatch, frames=False)

    ds = load_dataset(out / venue)
    bars = list(range(start - start % MIN + MIN, T_SECOND - T_SECOND % MIN, MIN))  # closed bars only
    o = ds.ohlcv
    assert _ms_index(o) == bars
    assert np.allclose(o["close"], [fake_http.price(t + MIN) for t in bars], atol=0.05)
    # base units: Bybit linear volume is BTC; OKX's candle is 1250 contracts x 0.01 BTC
    assert np.allclose(o["volume"], 12.5)
    oi = ds.open_interest
    ot = _ms_index(oi)
    assert ot == list(range(start - start % (5 * MIN) + 5 * MIN, ot[-1] + 1, 5 * MIN))
    assert np.allclose(oi["open_interest"], [fake_http.oi_base(t) for t in ot])  # OKX: contracts x 0.01
    if venue == "okx":  # USD from the venue (oiUsd)
        assert ot[-1] == T_SECOND - T_SECOND % (5 * MIN)
        assert np.allclose(oi["open_interest_value"], [fake_http.oi_base(t) * fake_http.price(t) for t in ot])
    else:  # no USD value from Bybit: base x the close of the 1m bar at that time (as liqlab fetch does);
        # the newest row waits until its bar has closed, and no row is priced with an older bar
        assert ot[-1] == T_SECOND - T_SECOND % (5 * MIN) - 5 * MIN
        close = dict(zip(_ms_index(o), o["close"]))
        assert np.allclose(oi["open_interest_value"], [fake_http.oi_base(t) * close[t] for t in ot], rtol=1e-12)
        assert "no USD value" in ds.meta["recording"]["venue_notes"]["open_interest_value"]
    f = ds.funding
    assert _ms_index(f) == [int(pd.Timestamp("2025-01-01T08:00", tz="UTC").value // 1_000_000)]
    scale = 0.5 if venue == "okx" else 1.0
    assert f["funding_rate"].iloc[0] == pytest.approx(fake_http.bybit_funding_rate(_ms_index(f)[0]) * scale)
    _same(ds.liquidations, expected(venue))  # the websocket side is untouched by the polling
    # the second session asked only for time after the last bar the first one stored (11:29)
    first_asked = {"bybit": lambda p: int(p["start"]), "okx": lambda p: int(p["before"]) + 1}[venue]
    assert min(first_asked(p) for n, p in second.calls if n == candles) > T_FIRST - T_FIRST % MIN - MIN
    assert len([n for n, _ in second.calls if n == candles]) >= 2  # the failed request was retried
    rc = ds.meta["recording"]
    assert [s["clean"] for s in rc["sessions"]] == [True, True]
    down = [g for g in rc["gaps"] if g["reason"] == "recorder not running"]
    assert [(g["start"], g["end"]) for g in down] == [("2025-01-01T11:30:30.000Z", "2025-01-01T12:00:30.000Z")]
    assert all(g["end"] is not None and g["start"] <= g["end"] for g in rc["gaps"])


def test_okx_candle_polls_after_a_long_downtime_leave_no_hole(tmp_path, monkeypatch):
    """More than 1,440 bars behind its clock, ccxt asks OKX's history-candles, which serves 100 bars a page
    (the newest of the window). The recorder asks for the venue's page size, so its polls walk forward bar
    by bar (asking for 1,000 got a 300-bar window answered with its newest 100: a 200-minute hole a poll)."""
    since = T_SECOND - 30 * 3_600_000
    ad = fake_http.FakeOKX(since - 3_600_000, T_SECOND)
    ex = _rest_exchanges("okx", ad, T_SECOND, monkeypatch, frames=False)("okx")
    v = rec_recorder._Venue("okx", tmp_path / "okx", exchange=ex, market=ex.market(SYMBOL))
    v.vdir.mkdir()
    cfg = rec.RecordConfig(exchanges=("okx",), symbol=SYMBOL, out=tmp_path, backfill_hours=30)

    async def polls(n):
        for _ in range(n):
            await rec_poll.poll_table(v, "ohlcv", cfg)

    asyncio.run(polls(3))
    o = pd.read_parquet(v.vdir / "ohlcv.parquet")
    first = since - since % MIN + MIN
    assert _ms_index(o) == list(range(first, first + 300 * MIN, MIN))
    assert {n for n, _ in ad.calls} == {"market/history-candles"}
    assert np.allclose(o["volume"], 12.5)  # 1250 contracts x 0.01 BTC (ccxt's volCcy; not scaled again)


@pytest.mark.parametrize("name", ["binanceusdm", "bybit", "okx"])
def test_live_exchange_loads_only_derivative_markets_like_the_fetcher(name):
    from liqlab.io.fetch import MARKET_OPTIONS
    from liqlab.io.record.poll import live_exchange

    ex = live_exchange(name)  # construction only: no request is made
    want = MARKET_OPTIONS[name]
    assert ex.options["fetchCurrencies"] is False
    if "fetchMarkets" in want:
        assert ex.options["fetchMarkets"]["types"] == want["fetchMarkets"]["types"]


class _Offline:
    """An exchange whose market loading always fails as with the network down (ccxt.NetworkError)."""

    markets = None
    closed = False

    async def load_markets(self):
        import ccxt

        raise ccxt.NetworkError("binanceusdm GET https://fapi.binance.com/fapi/v1/exchangeInfo")

    async def close(self):
        self.closed = True


def test_duration_bounds_market_loading_and_every_exchange_is_closed(tmp_path):
    made = []

    def make(name):
        made.append(_Offline())
        return made[-1]

    cfg = rec.RecordConfig(exchanges=("binanceusdm", "okx"), symbol=SYMBOL, out=tmp_path / "live", duration=0.5,
                           backoff_initial=0.05, rest=False)
    t0 = time.monotonic()
    with pytest.raises(FetchError, match=r"^binanceusdm, okx: markets for BTC/USDT:USDT not loaded within "
                                              r"--duration 0\.5 s \(last error: binanceusdm: NetworkError"):
        rec.record(cfg, make_exchange=make, status_stream=io.StringIO(), install_signals=False)
    assert time.monotonic() - t0 < 3.0
    assert len(made) == 1 and made[0].closed  # the venue tried is closed; the next was never made
    assert not (tmp_path / "live" / "binanceusdm" / "meta.json").exists()


def test_replay_with_rest_rows_writes_the_dataset_a_live_recording_writes(tmp_path, monkeypatch):
    """``--replay`` with REST rows at a chosen speed: bars, OI and funding arrive on the replay clock."""
    from liqlab.io.dataset import Collection, Dataset, make_meta
    from liqlab.io.record.replay import REPLAY_HISTORY_HOURS, load_replay, replay_config, write_script

    n = int(REPLAY_HISTORY_HOURS * 60) + 240
    ts = pd.date_range("2025-03-01", periods=n, freq="1min", tz="UTC")
    c = 100.0 + np.arange(n) * 0.01
    ohlcv = pd.DataFrame({"ts": ts, "open": c, "high": c + 0.5, "low": c - 0.5, "close": c, "volume": 1.0})
    oi = pd.DataFrame({"ts": ts[::5], "open_interest": 1000.0 + np.arange(len(ts[::5])),
                       "open_interest_value": 1e5})
    fu = pd.DataFrame({"ts": ts[::480], "funding_rate": 1e-4})
    coll = Collection(datasets=(Dataset(meta=make_meta("binanceusdm", SYMBOL, source="test", synthetic=True),
                                        ohlcv=ohlcv, open_interest=oi, funding=fu),))
    script = write_script(coll, load_replay(WS), tmp_path / "s.jsonl.gz")
    monkeypatch.setattr(rec_config, "now_ms", rec_config.now_ms)       # replay_config swaps the clock
    cfg = rec.RecordConfig(exchanges=("binanceusdm",), symbol=SYMBOL, out=tmp_path / "live", flush_seconds=0.2,
                           status_seconds=0.3, duration=4.0)
    make, cfg = replay_config(script, 3600.0, cfg)                     # one replay hour per second
    assert cfg.rest and cfg.ohlcv_seconds < 0.1
    rec.record(cfg, make_exchange=make, status_stream=io.StringIO(), install_signals=False)
    ds = load_dataset(tmp_path / "live" / "binanceusdm")
    assert ds.synthetic
    first_live = ts[0] + pd.Timedelta(hours=REPLAY_HISTORY_HOURS)
    assert ds.ohlcv["ts"].iloc[-1] > first_live                        # the clock ran past the history
    got = ds.ohlcv.set_index("ts")["close"]
    assert np.array_equal(got.to_numpy(), ohlcv.set_index("ts").loc[got.index, "close"].to_numpy())
    assert len(ds.open_interest) > 0 and len(ds.funding) > 0
    with pytest.raises(ParameterError, match="--speed"):
        replay_config(script, 0.0, cfg)
