"""liqlab.io.fetch against a fake HTTP transport: ccxt's own parsing and error handling, no network."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.io.dataset import load_collection, load_dataset
from liqlab.errors import FetchError, ParameterError

HERE = Path(__file__).resolve().parents[1]  # tests/
_spec = importlib.util.spec_from_file_location("fake_http", HERE / "fixtures" / "exchanges" / "fake_http.py")
fake_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_http)

SYM = "BTC/USDT:USDT"
MIN = 60_000


def ms(s: str) -> int:
    return int(pd.Timestamp(s, tz="UTC").value // 1_000_000)


def run_fetch(adapter, out, since="2025-01-01", until="2025-01-03", now="2025-01-10", **kw):
    from liqlab.io.fetch import fetch

    sleeps: list[float] = []
    kw.setdefault("sleep", sleeps.append)
    res = fetch("binanceusdm", SYM, since=since, until=until, out=out, now=now,
                session=fake_http.session_with(adapter), exchange_config={"enableRateLimit": False},
                progress=False, log=lambda m: None, **kw)
    return res, sleeps


def digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


def calls(adapter, name):
    return [p for n, p in adapter.calls if n == name]


@pytest.fixture
def venue():
    return fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05"))


def test_full_fetch_builds_a_valid_dataset_with_paging(venue, tmp_path):
    res, sleeps = run_fetch(venue, tmp_path / "cache")
    ds = load_collection(tmp_path / "cache")["binanceusdm"]
    o = ds.ohlcv
    # 2 days of 1m bars, contiguous, over more than one page of klines
    assert len(o) == 2 * 1440 and len(calls(venue, "klines")) >= 2
    assert (np.diff(o["ts"].array.asi8) == MIN * 1_000_000).all()
    assert o["ts"].iloc[0] == pd.Timestamp("2025-01-01", tz="UTC")
    t = int(o["ts"].iloc[100].value // 1_000_000)
    assert o["close"].iloc[100] == pytest.approx(fake_http.price(t + MIN), abs=0.05)
    assert o["mark_close"].iloc[100] == pytest.approx(fake_http.price(t + MIN) + 1.0, abs=0.05)
    assert (o["taker_buy_volume"] <= o["volume"]).all() and o["taker_buy_volume"].gt(0).all()
    oi = ds.open_interest
    assert len(oi) == 2 * 288
    assert np.allclose(oi["open_interest_value"], oi["open_interest"] * [fake_http.price(int(x.value // 10**6)) for x in oi["ts"]], rtol=1e-9)
    assert len(ds.funding) == 6 and np.allclose(ds.funding["funding_rate"], 1e-4)
    # no API key: bundled tiers, dated in meta; liquidations told, not hidden
    assert len(ds.leverage_tiers) > 0
    notes = ds.meta["notes"]
    assert notes["leverage_tiers_as_of"] and "API key" in notes["leverage_tiers"]
    assert "lower bound" in notes["liquidations"]
    assert ds.meta["synthetic"] is False and ds.meta["source"] == "fetch:ccxt"
    assert res.rows["binanceusdm"]["ohlcv"] == len(o) and sleeps == []


def test_second_fetch_requests_only_what_is_missing(venue, tmp_path):
    run_fetch(venue, tmp_path / "c", until="2025-01-02")
    before = digest(tmp_path / "c" / "binanceusdm")
    venue.calls.clear()
    res, _ = run_fetch(venue, tmp_path / "c", until="2025-01-02")
    assert calls(venue, "klines") == [] and calls(venue, "openInterestHist") == []
    assert res.added["binanceusdm"]["ohlcv"] == 0
    assert digest(tmp_path / "c" / "binanceusdm") == before
    # extending the range asks only for the new part
    res, _ = run_fetch(venue, tmp_path / "c", until="2025-01-03")
    starts = [int(p["startTime"]) for p in calls(venue, "klines")]
    assert min(starts) == ms("2025-01-02")
    assert res.added["binanceusdm"]["ohlcv"] == 1440
    assert len(load_dataset(tmp_path / "c" / "binanceusdm").ohlcv) == 2880


def test_rate_limit_then_success_backs_off(tmp_path):
    venue = fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05"), faults={"klines": ["429", "429"]})
    _, sleeps = run_fetch(venue, tmp_path / "c", until="2025-01-01T12:00", backoff=0.5)
    assert sleeps == [0.5, 1.0]  # exponential, injected (no real sleeping)
    assert len(load_dataset(tmp_path / "c" / "binanceusdm").ohlcv) == 720


def test_network_error_past_budget_keeps_cache_and_resumes(tmp_path):
    out = tmp_path / "c"
    # first chunk (one page) succeeds, then the connection keeps failing
    venue = fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05"), faults={"klines": ["ok"] + ["conn"] * 10})
    with pytest.raises(FetchError, match=r"after 3 attempts.*resume"):
        run_fetch(venue, out, chunk_pages=1, retries=2)
    kept = load_dataset(out / "binanceusdm")
    assert len(kept.ohlcv) == 1500  # the finished chunk, whole and valid
    before = digest(out / "binanceusdm")
    # again failing at once: the cache is untouched
    venue2 = fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05"), faults={"klines": ["conn"] * 10})
    with pytest.raises(FetchError):
        run_fetch(venue2, out, chunk_pages=1, retries=1)
    assert digest(out / "binanceusdm") == before
    # resume: only the rest is requested, the result equals an uninterrupted fetch
    venue3 = fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05"))
    run_fetch(venue3, out)
    assert min(int(p["startTime"]) for p in calls(venue3, "klines")) == ms("2025-01-01") + 1500 * MIN
    ref = tmp_path / "ref"
    run_fetch(fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-05")), ref)
    a, b = load_dataset(out / "binanceusdm"), load_dataset(ref / "binanceusdm")
    for name in ("ohlcv", "open_interest", "funding", "leverage_tiers"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_empty_page_ends_the_walk(tmp_path):
    # the exchange has data only until Jan 2 06:00: the page after that is empty, the fetch ends cleanly
    venue = fake_http.FakeBinanceUSDM(ms("2025-01-01"), ms("2025-01-02T06:00"))
    run_fetch(venue, tmp_path / "c")
    o = load_dataset(tmp_path / "c" / "binanceusdm").ohlcv
    assert o["ts"].iloc[-1] == pd.Timestamp("2025-01-02T05:59", tz="UTC")
    assert len(o) == 30 * 60
    # a range with no data at all: a valid dataset with empty tables, no error
    venue = fake_http.FakeBinanceUSDM(ms("2025-02-01"), ms("2025-02-02"))
    run_fetch(venue, tmp_path / "e", tables=["ohlcv", "open_interest", "funding"])
    e = load_dataset(tmp_path / "e" / "binanceusdm")
    assert len(e.ohlcv) == 0 and len(e.open_interest) == 0 and len(e.funding) == 0


def test_unknown_symbol_is_a_clear_error(venue, tmp_path):
    from liqlab.io.fetch import fetch

    with pytest.raises(FetchError, match="unknown symbol 'DOGE/USDT:USDT'"):
        fetch("binanceusdm", "DOGE/USDT:USDT", since="2025-01-01", until="2025-01-02", out=tmp_path / "c",
              session=fake_http.session_with(venue), exchange_config={"enableRateLimit": False}, progress=False)
    assert not (tmp_path / "c" / "binanceusdm").exists()


def test_exchange_error_stops_without_retry(venue):
    """The venue's 'Invalid symbol' (HTTP 400, code -1121) goes through ccxt's error table -> FetchError."""
    from liqlab.io.fetch import call_with_retry, make_exchange

    ex = make_exchange("binanceusdm", session=fake_http.session_with(venue), config={"enableRateLimit": False})
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="Invalid symbol"):
        call_with_retry(ex.fapiPublicGetKlines, {"symbol": "NOPEUSDT", "interval": "1m"}, what="klines",
                        sleep=sleeps.append)
    assert sleeps == [] and len(calls(venue, "klines")) == 1


def test_binance_open_interest_window_is_told(venue, tmp_path):
    msgs: list[str] = []
    from liqlab.io.fetch import fetch

    fetch("binanceusdm", SYM, since="2025-01-01", until="2025-01-03", out=tmp_path / "c", now="2025-02-01T00:00",
          session=fake_http.session_with(venue), exchange_config={"enableRateLimit": False}, progress=False,
          log=msgs.append, tables=["ohlcv", "open_interest"])
    ds = load_dataset(tmp_path / "c" / "binanceusdm")
    assert "30 days" in ds.meta["notes"]["open_interest_limit"] and "binance-vision" in ds.meta["notes"]["open_interest_limit"]
    assert any("30 days" in m for m in msgs)
    assert ds.open_interest["ts"].min() >= pd.Timestamp("2025-01-02", tz="UTC")


def test_parameter_errors_before_any_request(tmp_path, capsys):
    from liqlab.app.cli import main

    assert main(["fetch", "--exchange", "kraken", "--symbol", SYM, "--since", "2025-01-01", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown exchange" in err and len(err.strip().splitlines()) == 1
    assert main(["fetch", "--exchange", "okx", "--symbol", SYM, "--since", "2025-02-01", "--until", "2025-01-01",
                 "--out", str(tmp_path)]) == 2
    assert "must be after" in capsys.readouterr().err
    from liqlab.io.fetch import fetch

    with pytest.raises(ParameterError, match="--tables"):
        fetch("okx", SYM, since="2025-01-01", until="2025-01-02", out=tmp_path, tables=["trades"])


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 1000), length=st.integers(1, 1000),
    first=st.integers(0, 1200), n=st.integers(1, 300), step=st.sampled_from([1, 5]),
)
def test_gaps_cover_exactly_the_missing_time(start, length, first, n, step):
    from liqlab.io.fetch.walk import gaps as _gaps

    end = start + length
    stored = pd.Series(pd.to_datetime([(first + i * step) * 1 for i in range(n)], unit="ms", utc=True))
    last = first + (n - 1) * step
    gaps = _gaps(stored, start, end, step)
    for t in range(start, end):
        inside = any(a <= t < b for a, b in gaps)
        assert inside == (t < first or t >= last + step)
    assert all(a < b for a, b in gaps)


# ============================================================================ Bybit, OKX, keys, CLI
# The fakes follow each venue's documented paging (fake_http.py): Bybit v5 and OKX v5 answer the NEWEST
# rows of a window, Binance the oldest. Page sizes are shrunk with PAGE_LIMIT to force several pages.

D0 = "2025-01-01"
FAKES = {"bybit": fake_http.FakeBybit, "okx": fake_http.FakeOKX}
CANDLES = {"bybit": "market/kline", "okx": "market/history-candles"}
MARKS = {"bybit": "market/mark-price-kline", "okx": "market/history-mark-price-candles"}
OI_EP = {"bybit": "market/open-interest", "okx": "rubik/stat/contracts/open-interest-history"}
FUNDING_EP = {"bybit": "market/funding/history", "okx": "public/funding-rate-history"}


@pytest.fixture(autouse=True)
def offline(no_network, monkeypatch):
    """No real socket (tests/conftest.py ``no_network``) and no Binance keys from the environment."""
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)


@pytest.fixture
def small_pages(monkeypatch):
    """Small page sizes so that a few hours of data span several pages on every venue."""
    from liqlab.io import fetch as f

    for venue, lim in {"binanceusdm": 100, "bybit": 100, "okx": 100}.items():
        monkeypatch.setitem(f.PAGE_LIMIT, venue, {"ohlcv": lim, "mark": lim, "open_interest": 20, "funding": 2})


def fetch_venue(adapter, out, since=D0, until="2025-01-01T06:00", now="2025-01-10", symbol=SYM, **kw):
    from liqlab.io.fetch import fetch

    sleeps: list[float] = []
    kw.setdefault("sleep", sleeps.append)
    res = fetch(adapter.venue, symbol, since=since, until=until, out=out, now=now,
                session=fake_http.session_with(adapter), exchange_config={"enableRateLimit": False},
                progress=False, log=lambda m: None, **kw)
    return res, sleeps


def fake(venue, start=D0, end="2025-01-05", **kw):
    return FAKES[venue](ms(start), ms(end), **kw)


def param_ts(venue: str, p: dict) -> tuple[int, int]:
    """The [lo, hi] window a candle request asked for, in ms."""
    if venue == "bybit":
        return int(p["start"]), int(p["end"])
    return int(p["before"]) + 1, int(p["after"])


def test_socket_guard_blocks_real_requests():
    """Without the fake transport ccxt would go to the network: the guard turns that into an error."""
    import ccxt

    from liqlab.io.fetch import make_exchange

    ex = make_exchange("okx", config={"enableRateLimit": False})
    with pytest.raises(ccxt.NetworkError):
        ex.load_markets()


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_bybit_okx_full_fetch_pages_and_converts(venue, tmp_path, small_pages):
    ad = fake(venue)
    res, sleeps = fetch_venue(ad, tmp_path / "c", until="2025-01-02")
    ds = load_collection(tmp_path / "c")[venue]
    o = ds.ohlcv
    # one day of 1m bars, contiguous, walked over many pages (the venue answers the newest rows first)
    assert len(o) == 1440 and len(calls(ad, CANDLES[venue])) >= 1440 // 100
    assert (np.diff(o["ts"].array.asi8) == MIN * 1_000_000).all()
    assert o["ts"].iloc[0] == pd.Timestamp(D0, tz="UTC") and o["ts"].iloc[-1] == pd.Timestamp("2025-01-01T23:59", tz="UTC")
    t = o["ts"].array.asi8 // 1_000_000
    assert np.allclose(o["close"], [fake_http.price(int(x) + MIN) for x in t], atol=0.05)
    assert np.allclose(o["mark_close"], o["close"] + 1.0, atol=0.11)
    # volume in base units: Bybit linear reports base coin; OKX vol is 1250 contracts x 0.01 BTC
    assert np.allclose(o["volume"], 12.5)
    assert "taker_buy_volume" not in o.columns
    oi = ds.open_interest
    ot = oi["ts"].array.asi8 // 1_000_000
    assert len(oi) == 288 and (np.diff(ot) == 5 * MIN).all()
    assert np.allclose(oi["open_interest"], [fake_http.oi_base(int(x)) for x in ot])
    if venue == "okx":  # USD straight from the venue (oiUsd)
        assert np.allclose(oi["open_interest_value"], [fake_http.oi_base(int(x)) * fake_http.price(int(x)) for x in ot])
    else:  # Bybit gives no USD value: base x the 1m close of that minute (noted)
        close = o.set_index(o["ts"].array.asi8 // 1_000_000)["close"]
        assert np.allclose(oi["open_interest_value"], oi["open_interest"].to_numpy() * close.loc[ot].to_numpy())
        assert "no USD value" in ds.meta["notes"]["open_interest_value"]
    f = ds.funding
    ft = f["ts"].array.asi8 // 1_000_000
    assert list(ft) == [ms(D0) + i * 8 * 3_600_000 for i in range(3)]
    scale = 0.5 if venue == "okx" else 1.0
    assert np.allclose(f["funding_rate"], [fake_http.bybit_funding_rate(int(x)) * scale for x in ft])
    assert len(calls(ad, FUNDING_EP[venue])) >= 2  # limit 2 per page: paged
    assert ds.meta["synthetic"] is False and ds.meta["source"] == "fetch:ccxt"
    assert ds.meta.get("fetch_pending") in (None, {})
    assert res.rows[venue]["ohlcv"] == 1440 and sleeps == []


def test_okx_recent_candles_endpoint_gives_the_same_bars(tmp_path, small_pages):
    """ccxt asks OKX's market/candles (the last 1,440 bars) instead of market/history-candles when the
    request starts within 1,439 bars of its clock, which ``now`` sets: the same range fetched "recently"
    and "long after" stores the same bars and marks."""
    kw = dict(since="2025-01-01T12:00", until="2025-01-02", tables=["ohlcv"])
    ad_hist = fake("okx")
    fetch_venue(ad_hist, tmp_path / "h", now="2025-01-10", **kw)
    ad = fake("okx")
    fetch_venue(ad, tmp_path / "r", now="2025-01-02T06:00", **kw)
    assert calls(ad, "market/candles") and calls(ad, "market/mark-price-candles")
    assert not calls(ad, CANDLES["okx"]) and not calls(ad, MARKS["okx"])
    assert not calls(ad_hist, "market/candles") and calls(ad_hist, CANDLES["okx"])
    a = load_collection(tmp_path / "h")["okx"].ohlcv
    b = load_collection(tmp_path / "r")["okx"].ohlcv
    assert len(b) == 720
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("hours", [1, 4])
def test_bybit_funding_at_a_shorter_interval_is_stored_at_its_own_times(hours, tmp_path, small_pages):
    """Bybit sets the funding interval per symbol (1h..8h); the fetcher keeps every rate at its own time."""
    ad = fake("bybit", funding_ms=hours * 3_600_000)
    fetch_venue(ad, tmp_path / "c", until="2025-01-02", tables=["funding"])
    f = load_collection(tmp_path / "c")["bybit"].funding
    ft = f["ts"].array.asi8 // 1_000_000
    assert list(ft) == [ms(D0) + i * hours * 3_600_000 for i in range(24 // hours)]
    assert np.allclose(f["funding_rate"], [fake_http.bybit_funding_rate(int(x)) for x in ft])
    assert len(calls(ad, FUNDING_EP["bybit"])) >= (24 // hours) // 2  # 2 rates a page: paged


def test_bybit_tiers_from_risk_limit(tmp_path):
    ad = fake("bybit")
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T01:00", tables=["ohlcv", "leverage_tiers"])
    lt = load_dataset(tmp_path / "c" / "bybit").leverage_tiers
    assert calls(ad, "market/risk-limit") == [{"category": "linear", "symbol": "BTCUSDT"}]
    assert list(lt["min_notional"]) == [0, 2_000_000, 2_600_000, 3_200_000]
    assert list(lt["max_notional"]) == [2_000_000, 2_600_000, 3_200_000, 3_800_000]
    assert list(lt["maintenance_margin_rate"]) == [0.005, 0.0056, 0.0063, 0.0071]
    assert list(lt["maintenance_amount"]) == pytest.approx([0, 1200, 3020, 5580])  # = mmDeduction
    assert list(lt["max_leverage"]) == [100, 90, 80, 70]


def test_okx_tiers_are_contracts_times_size_times_price(tmp_path):
    ad = fake("okx")
    res, _ = fetch_venue(ad, tmp_path / "c", until="2025-01-01T01:00", tables=["ohlcv", "leverage_tiers"])
    ds = load_dataset(tmp_path / "c" / "okx")
    last_close = float(ds.ohlcv["close"].iloc[-1])
    usd = 0.01 * last_close  # one BTC-USDT-SWAP contract is 0.01 BTC
    lt = ds.leverage_tiers
    assert list(lt["min_notional"]) == pytest.approx([0, 2001 * usd, 10001 * usd])
    assert list(lt["max_notional"]) == pytest.approx([2000 * usd, 10000 * usd, 20000 * usd])
    assert list(lt["maintenance_margin_rate"]) == [0.004, 0.005, 0.01]
    assert calls(ad, "public/position-tiers")[0]["instFamily"] == "BTC-USDT"
    assert f"{last_close:g}" in ds.meta["notes"]["leverage_tiers_units"]
    assert ds.meta["contract_size"] == 0.01 and ds.meta["kind"] == "linear"


def test_okx_liquidations_contracts_to_base_over_pages(tmp_path):
    ad = fake("okx")
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T18:00", tables=["ohlcv", "liquidations"])
    liq = load_dataset(tmp_path / "c" / "okx").liquidations
    want = fake_http.okx_liquidation_fills(ms(D0), ms("2025-01-01T18:00"))
    assert len(want) > 100 and len(liq) == len(want)  # more than one page (100 fills) of multi-fill details
    reqs = calls(ad, "public/liquidation-orders")
    assert len(reqs) >= 2 and all(r["instType"] == "SWAP" and r["instFamily"] == "BTC-USDT" for r in reqs)
    by_ts = {int(d["ts"]): d for d in want}
    lt = liq["ts"].array.asi8 // 1_000_000
    sz = np.array([float(by_ts[int(t)]["sz"]) for t in lt])
    px = np.array([float(by_ts[int(t)]["bkPx"]) for t in lt])
    assert np.allclose(liq["amount"], sz * 0.01)  # contracts x 0.01 BTC
    assert np.allclose(liq["price"], px) and np.allclose(liq["value"], sz * 0.01 * px)
    assert list(liq["side"]) == [by_ts[int(t)]["posSide"] for t in lt]


def test_okx_liquidations_only_recent_fills(tmp_path):
    """OKX keeps recent fills only: older parts of the range come back empty, told in meta."""
    ad = fake("okx", liquidations_since=ms("2025-01-01T12:00"))
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T18:00", tables=["liquidations"])
    ds = load_dataset(tmp_path / "c" / "okx")
    assert ds.liquidations["ts"].min() >= pd.Timestamp("2025-01-01T12:00", tz="UTC")
    assert "recent fills only" in ds.meta["notes"]["liquidations"]


def test_okx_funding_pages_forward_with_after(tmp_path):
    """ccxt maps `since` to OKX's `before` only; alone, OKX answers the NEWEST rates. The fetcher bounds the
    window with OKX's `after`, so an old range far from the venue's latest data is still covered."""
    ad = fake("okx", end="2025-06-01")  # ~450 funding rates after the range: more than a page
    fetch_venue(ad, tmp_path / "c", until="2025-01-11", tables=["funding"], now="2025-06-01")
    f = load_dataset(tmp_path / "c" / "okx").funding
    assert len(f) == 30 and f["ts"].iloc[0] == pd.Timestamp(D0, tz="UTC")
    reqs = calls(ad, "public/funding-rate-history")
    assert all("after" in p and "until" not in p for p in reqs)


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_second_fetch_bybit_okx_asks_only_for_new_time(venue, tmp_path, small_pages):
    ad = fake(venue)
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T03:00")
    before = digest(tmp_path / "c" / venue)
    ad.calls.clear()
    res, _ = fetch_venue(ad, tmp_path / "c", until="2025-01-01T03:00")
    assert calls(ad, CANDLES[venue]) == [] and calls(ad, OI_EP[venue]) == []
    assert res.added[venue]["ohlcv"] == 0 and digest(tmp_path / "c" / venue) == before
    res, _ = fetch_venue(ad, tmp_path / "c", until="2025-01-01T06:00")
    assert min(param_ts(venue, p)[0] for p in calls(ad, CANDLES[venue])) >= ms("2025-01-01T03:00")
    assert res.added[venue]["ohlcv"] == 180 and len(load_dataset(tmp_path / "c" / venue).ohlcv) == 360


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_rate_limit_then_success_bybit_okx(venue, tmp_path):
    """Bybit answers HTTP 200 with retCode 10006, OKX HTTP 429 with code 50011: both retried with backoff."""
    ad = fake(venue, faults={CANDLES[venue]: ["429", "429"]})
    _, sleeps = fetch_venue(ad, tmp_path / "c", until="2025-01-01T02:00", backoff=0.25, tables=["ohlcv"])
    assert sleeps == [0.25, 0.5]
    assert len(load_dataset(tmp_path / "c" / venue).ohlcv) == 120


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_rate_limit_answers_map_to_ccxt_rate_limit(venue):
    import ccxt

    from liqlab.io.fetch import make_exchange

    ad = fake(venue, faults={CANDLES[venue]: ["429"]})
    ex = make_exchange(venue, session=fake_http.session_with(ad), config={"enableRateLimit": False})
    ex.load_markets()
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.fetch_ohlcv(SYM, "1m", ms(D0), 10, {"until": ms("2025-01-01T01:00")})


@pytest.mark.parametrize("venue", ["bybit", "okx"])
@pytest.mark.parametrize("fault", ["conn", "timeout"])
def test_network_error_past_budget_bybit_okx(venue, fault, tmp_path):
    out = tmp_path / "c"
    fetch_venue(fake(venue), out, until="2025-01-01T02:00", tables=["ohlcv", "funding"])
    before = digest(out / venue)
    ad = fake(venue, faults={CANDLES[venue]: [fault] * 10})
    with pytest.raises(FetchError, match=r"after 3 attempts.*resume") as ei:
        fetch_venue(ad, out, until="2025-01-01T04:00", retries=2, tables=["ohlcv", "funding"])
    assert "\n" not in str(ei.value) and venue in str(ei.value)
    assert len(calls(ad, CANDLES[venue])) == 3
    assert digest(out / venue) == before  # cache intact


@pytest.mark.parametrize("venue,gap", [("bybit", "after"), ("okx", "after"), ("binanceusdm", "before")])
def test_interrupted_walk_resumes_inside_a_hole(venue, gap, tmp_path, small_pages):
    """A walk that fails between chunks while extending a stored range leaves a hole between stored rows.
    The unfinished part is recorded in meta (fetch_pending) and the next fetch fills exactly it."""
    cls = FAKES.get(venue, fake_http.FakeBinanceUSDM)
    ep = CANDLES.get(venue, "klines")
    out, ref = tmp_path / "c", tmp_path / "ref"
    stored = ("2025-01-01T00:00", "2025-01-01T03:00") if gap == "after" else ("2025-01-01T03:00", "2025-01-01T06:00")
    fetch_venue(cls(ms(D0), ms("2025-01-05")), out, since=stored[0], until=stored[1], tables=["ohlcv"])
    # extend to 00:00-06:00; one page (100 bars) is stored, then the connection keeps failing
    ad = cls(ms(D0), ms("2025-01-05"), faults={ep: ["ok"] + ["conn"] * 10})
    with pytest.raises(FetchError):
        fetch_venue(ad, out, since=D0, until="2025-01-01T06:00", tables=["ohlcv"], chunk_pages=1, retries=1)
    kept = load_dataset(out / venue)
    pend = kept.meta["fetch_pending"]["ohlcv"]
    assert len(pend) == 1 and len(kept.ohlcv) == 180 + 100
    hole = (ms(pend[0][0]), ms(pend[0][1]))
    ts = kept.ohlcv["ts"].array.asi8 // 1_000_000
    assert not ((ts >= hole[0]) & (ts < hole[1])).any()  # really a hole, with rows on both sides
    assert ts.min() < hole[0] and ts.max() >= hole[1]
    # resume: only the hole is asked for, and the result equals an uninterrupted fetch
    ad2 = cls(ms(D0), ms("2025-01-05"))
    fetch_venue(ad2, out, since=D0, until="2025-01-01T06:00", tables=["ohlcv"])
    if venue == "binanceusdm":
        asked = [(int(p["startTime"]), int(p["endTime"]) + 1) for p in calls(ad2, "klines")]
    else:
        asked = [param_ts(venue, p) for p in calls(ad2, ep)]
    assert all(hole[0] <= a and b <= hole[1] + MIN for a, b in asked)
    fetch_venue(cls(ms(D0), ms("2025-01-05")), ref, since=D0, until="2025-01-01T06:00", tables=["ohlcv"])
    a, b = load_dataset(out / venue), load_dataset(ref / venue)
    pd.testing.assert_frame_equal(a.ohlcv, b.ohlcv)
    assert a.meta["fetch_pending"] == {}


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_empty_page_ends_the_walk_bybit_okx(venue, tmp_path, small_pages):
    ad = fake(venue, end="2025-01-01T04:00")  # the venue holds nothing after 04:00
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T06:00", tables=["ohlcv", "open_interest"])
    ds = load_dataset(tmp_path / "c" / venue)
    assert ds.ohlcv["ts"].iloc[-1] == pd.Timestamp("2025-01-01T03:59", tz="UTC") and len(ds.ohlcv) == 240
    assert len(ds.open_interest) == 48
    ad = fake(venue, start="2025-02-01", end="2025-02-02")  # nothing at all in the range
    fetch_venue(ad, tmp_path / "e", tables=["ohlcv", "open_interest", "funding"])
    e = load_dataset(tmp_path / "e" / venue)
    assert len(e.ohlcv) == 0 and len(e.open_interest) == 0 and len(e.funding) == 0
    assert len(calls(ad, CANDLES[venue])) == 1  # one empty answer ends the walk


def test_unknown_symbol_bybit_is_clear(tmp_path):
    with pytest.raises(FetchError, match=r"bybit: unknown symbol 'DOGE/USDT:USDT'"):
        fetch_venue(fake("bybit"), tmp_path / "c", symbol="DOGE/USDT:USDT")
    assert not (tmp_path / "c" / "bybit").exists()


def test_okx_unknown_instrument_51001_is_clear(tmp_path):
    """Listed but not served (e.g. just delisted): OKX 51001 -> ccxt BadSymbol -> one-line FetchError."""
    import ccxt

    from liqlab.io.fetch import fetch, make_exchange

    ad = fake("okx", serving={"BTC-USDT-SWAP"})
    ex = make_exchange("okx", session=fake_http.session_with(ad), config={"enableRateLimit": False})
    ex.load_markets()
    with pytest.raises(ccxt.BadSymbol):
        ex.fetch_funding_rate_history("ETH/USDT:USDT", ms(D0), 10)
    with pytest.raises(FetchError, match=r"okx ETH/USDT:USDT ohlcv candles: unknown symbol .*Instrument ID does not exist"):
        fetch("okx", "ETH/USDT:USDT", since=D0, until="2025-01-01T01:00", out=tmp_path / "c", sleep=lambda s: None,
              session=fake_http.session_with(ad), exchange_config={"enableRateLimit": False}, progress=False)
    assert not (tmp_path / "c" / "okx").exists()


def test_market_loading_is_lean(tmp_path):
    """Only derivative markets are listed, and no currency list (a signed spot request once keys are set)."""
    from liqlab.io.fetch import make_exchange

    for venue, ep, n in (("bybit", "market/instruments-info", 4), ("okx", "public/instruments", 2)):
        ad = fake(venue)
        make_exchange(venue, session=fake_http.session_with(ad), config={"enableRateLimit": False}).load_markets()
        assert [c[0] for c in ad.calls] == [ep] * n


@pytest.mark.parametrize("oi_newest", [False, True])
def test_binance_open_interest_windows_work_for_either_anchoring(oi_newest, tmp_path):
    """Requests of at most `limit` periods: complete whichever end of a long window the venue answers."""
    ad = fake_http.FakeBinanceUSDM(ms(D0), ms("2025-01-05"), oi_newest=oi_newest)
    fetch_venue(ad, tmp_path / "c", until="2025-01-03", tables=["ohlcv", "open_interest"])
    oi = load_dataset(tmp_path / "c" / "binanceusdm").open_interest
    assert len(oi) == 576 and (np.diff(oi["ts"].array.asi8) == 5 * MIN * 1_000_000).all()
    reqs = calls(ad, "openInterestHist")
    assert len(reqs) == 2 and all(int(p["endTime"]) - int(p["startTime"]) < 500 * 5 * MIN for p in reqs)


def test_binance_api_key_fetches_signed_brackets_and_keeps_cum(monkeypatch, tmp_path):
    monkeypatch.setenv("BINANCE_API_KEY", "test-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "test-secret")
    ad = fake_http.FakeBinanceUSDM(ms(D0), ms("2025-01-05"))
    fetch_venue(ad, tmp_path / "c", until="2025-01-01T01:00", tables=["leverage_tiers"])
    ds = load_dataset(tmp_path / "c" / "binanceusdm")
    lt = ds.leverage_tiers
    assert list(lt["min_notional"]) == [0, 300_000, 800_000, 3_000_000]
    assert list(lt["maintenance_margin_rate"]) == [0.004, 0.005, 0.0065, 0.01]
    # the exchange's raw cum is stored, not the recursion (which would give 1500 and 12000 here)
    assert list(lt["maintenance_amount"]) == [0, 300, 1525, 12025]
    req = calls(ad, "leverageBracket")
    assert len(req) == 1 and "signature" in req[0] and "timestamp" in req[0]
    hdr = [h for n, h in ad.headers if n == "leverageBracket"][0]
    assert hdr["X-MBX-APIKEY"] == "test-key"
    assert [n for n, _ in ad.calls] == ["exchangeInfo", "leverageBracket"]  # no sapi currency list
    notes = ds.meta["notes"]
    assert notes["leverage_tiers_as_of"] == "2025-01-10" and "API key" not in notes.get("leverage_tiers", "")


def test_binance_bad_api_key_is_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BINANCE_API_KEY", "bad-key")
    monkeypatch.setenv("BINANCE_API_SECRET", "x")
    ad = fake_http.FakeBinanceUSDM(ms(D0), ms("2025-01-05"))
    with pytest.raises(FetchError, match=r"leverage brackets: exchange refused the request: AuthenticationError") as ei:
        fetch_venue(ad, tmp_path / "c", until="2025-01-01T01:00", tables=["leverage_tiers"])
    assert "\n" not in str(ei.value) and len(calls(ad, "leverageBracket")) == 1


# ------------------------------------------------------------------------------------ CLI end to end


@pytest.fixture
def cli_fakes(monkeypatch):
    """Route the CLI's exchanges to fakes: liqlab.io.fetch.make_exchange gets the fake session (no network)."""
    from liqlab.io import fetch as f

    real = f.make_exchange
    adapters: dict[str, fake_http.FakeExchange] = {}

    def make(venue, *, session=None, config=None):
        ad = adapters.setdefault(venue, FAKES.get(venue, fake_http.FakeBinanceUSDM)(ms(D0), ms("2025-01-05")))
        return real(venue, session=fake_http.session_with(ad), config={"enableRateLimit": False, **(config or {})})

    monkeypatch.setattr(f, "make_exchange", make)
    return adapters


def test_cli_fetch_end_to_end(cli_fakes, tmp_path, capsys):
    import json

    from liqlab.app.cli import main

    out = tmp_path / "cache"
    argv = ["fetch", "--exchange", "bybit,okx", "--symbol", SYM, "--since", D0, "--until", "2025-01-01T03:00",
            "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    report = json.loads(cap.out)
    assert report["rows"]["bybit"]["ohlcv"] == 180 and report["rows"]["okx"]["ohlcv"] == 180
    col = load_collection(out)
    assert set(col.venues) == {"bybit", "okx"} and not col.synthetic
    assert len(col["okx"].open_interest) == 36 and len(col["bybit"].leverage_tiers) == 4
    # again: nothing new to add
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["added"]["okx"]["ohlcv"] == 0


def test_cli_fetch_errors_are_one_line_exit_2(cli_fakes, tmp_path, capsys):
    from liqlab.app.cli import main

    out = tmp_path / "cache"
    cli_fakes["okx"] = fake("okx", faults={"market/history-candles": ["conn"] * 5})
    rc = main(["fetch", "--exchange", "okx", "--symbol", SYM, "--since", D0, "--until", "2025-01-01T01:00",
               "--out", str(out), "--retries", "0", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("liqlab fetch: error: okx BTC/USDT:USDT ohlcv candles: NetworkError")
    assert not (out / "okx").exists()
    rc = main(["fetch", "--exchange", "bybit", "--symbol", "NOPE/USDT:USDT", "--since", D0, "--until",
               "2025-01-01T01:00", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown symbol 'NOPE/USDT:USDT'" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------ paging properties


@settings(max_examples=80, deadline=None)
@given(
    data=st.lists(st.integers(0, 400), unique=True, max_size=120), limit=st.integers(1, 40),
    lo=st.integers(0, 200), length=st.integers(1, 300), anchor=st.sampled_from(["start", "end"]),
    chunk=st.integers(1, 4),
)
def test_paginate_returns_every_row_once_in_tiled_chunks(data, limit, lo, length, anchor, chunk):
    """Whatever end a venue anchors its pages at, the walk yields each row of [lo, hi) exactly once, and
    the chunks' covered ranges tile [lo, hi) in walk order."""
    from liqlab.io.fetch.walk import Ctx as _Ctx
    from liqlab.io.fetch.walk import paginate as _paginate

    hi = lo + length
    rows = sorted(data)

    def page(a, b):
        inside = [t for t in rows if a <= t < b]
        got = inside[:limit] if anchor == "start" else inside[-limit:]
        return [(t, t) for t in got][::-1]  # any order

    ctx = _Ctx(ex=None, venue="bybit", symbol=SYM, market={}, start=lo, end=hi, now=0, path=Path("."), retries=0,
               backoff=0, sleep=lambda s: None, chunk_pages=chunk, progress=False, log=lambda m: None)
    chunks: list[tuple[list[int], int, int, tuple | None]] = []
    _paginate(ctx, "t", page, lo, hi, 1, lambda r, a, b, rem: chunks.append((r, a, b, rem)), anchor)
    got = [t for c in chunks for t in c[0]]
    assert sorted(got) == [t for t in rows if lo <= t < hi] and len(set(got)) == len(got)
    spans = sorted((a, b) for _, a, b, _ in chunks)
    assert spans[0][0] == lo and spans[-1][1] == hi
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))
    for r, a, b, rem in chunks:
        assert all(a <= t < b for t in r)
        if rem is not None:  # what is left is exactly the complement of what was covered so far
            assert rem[0] < rem[1] and (rem[0] == b if anchor == "start" else rem[1] == a)
    assert chunks[-1][3] is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), max_size=8))
def test_merge_ranges_is_the_union(ranges):
    from liqlab.io.fetch.walk import merge_ranges as _merge_ranges

    merged = _merge_ranges(ranges)
    for t in range(0, 101):
        assert any(a <= t < b for a, b in merged) == any(a <= t < b for a, b in ranges)
    assert all(merged[i][1] < merged[i + 1][0] for i in range(len(merged) - 1))
