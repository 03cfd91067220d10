"""liqlab record: recorded websocket frames (tests/fixtures/ws, written per the exchanges' docs) go through
ccxt.pro's own receive loop, handle_message and parsing; only the socket is replaced. No network."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from liqlab import record as rec
from liqlab.dataset import load_collection, load_dataset
from liqlab.errors import DataError, ParameterError

REPO = Path(__file__).resolve().parents[1]
WS = REPO / "tests" / "fixtures" / "ws"
SYMBOL = "BTC/USDT:USDT"
VENUES = ("binanceusdm", "bybit", "okx")


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
    assert b["recording"]["lower_bound"] is True and "lower bound" in b["notes"]
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
    rec._write_part(vdir, 1, rows)
    assert len(load_dataset(vdir).liquidations) == len(before)
    # a newer part is read before compaction and kept by it
    rec._write_part(vdir, rec._next_seq(vdir), rows)
    assert len(load_dataset(vdir).liquidations) == len(before) + 1
    assert rec.compact(vdir) == len(before) + 1
    assert len(load_dataset(vdir).liquidations) == len(before) + 1
    assert not list((vdir / "liquidations").glob("part-*.parquet"))


def test_second_recorder_on_same_folder_is_refused(tmp_path):
    out = tmp_path / "live"
    with rec._out_lock(out):
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
