"""liqlab.fetch against a fake HTTP transport: ccxt's own parsing and error handling, no network."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.dataset import load_collection, load_dataset
from liqlab.errors import FetchError, ParameterError

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("fake_http", HERE / "fixtures" / "exchanges" / "fake_http.py")
fake_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_http)

SYM = "BTC/USDT:USDT"
MIN = 60_000


def ms(s: str) -> int:
    return int(pd.Timestamp(s, tz="UTC").value // 1_000_000)


def run_fetch(adapter, out, since="2025-01-01", until="2025-01-03", now="2025-01-10", **kw):
    from liqlab.fetch import fetch

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
    from liqlab.fetch import fetch

    with pytest.raises(FetchError, match="unknown symbol 'DOGE/USDT:USDT'"):
        fetch("binanceusdm", "DOGE/USDT:USDT", since="2025-01-01", until="2025-01-02", out=tmp_path / "c",
              session=fake_http.session_with(venue), exchange_config={"enableRateLimit": False}, progress=False)
    assert not (tmp_path / "c" / "binanceusdm").exists()


def test_exchange_error_stops_without_retry(venue):
    """The venue's 'Invalid symbol' (HTTP 400, code -1121) goes through ccxt's error table -> FetchError."""
    from liqlab.fetch import call_with_retry, make_exchange

    ex = make_exchange("binanceusdm", session=fake_http.session_with(venue), config={"enableRateLimit": False})
    sleeps: list[float] = []
    with pytest.raises(FetchError, match="Invalid symbol"):
        call_with_retry(ex.fapiPublicGetKlines, {"symbol": "NOPEUSDT", "interval": "1m"}, what="klines",
                        sleep=sleeps.append)
    assert sleeps == [] and len(calls(venue, "klines")) == 1


def test_binance_open_interest_window_is_told(venue, tmp_path):
    msgs: list[str] = []
    from liqlab.fetch import fetch

    fetch("binanceusdm", SYM, since="2025-01-01", until="2025-01-03", out=tmp_path / "c", now="2025-02-01T00:00",
          session=fake_http.session_with(venue), exchange_config={"enableRateLimit": False}, progress=False,
          log=msgs.append, tables=["ohlcv", "open_interest"])
    ds = load_dataset(tmp_path / "c" / "binanceusdm")
    assert "30 days" in ds.meta["notes"]["open_interest_limit"] and "binance-vision" in ds.meta["notes"]["open_interest_limit"]
    assert any("30 days" in m for m in msgs)
    assert ds.open_interest["ts"].min() >= pd.Timestamp("2025-01-02", tz="UTC")


def test_parameter_errors_before_any_request(tmp_path, capsys):
    from liqlab.cli import main

    assert main(["fetch", "--exchange", "kraken", "--symbol", SYM, "--since", "2025-01-01", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown exchange" in err and len(err.strip().splitlines()) == 1
    assert main(["fetch", "--exchange", "okx", "--symbol", SYM, "--since", "2025-02-01", "--until", "2025-01-01",
                 "--out", str(tmp_path)]) == 2
    assert "must be after" in capsys.readouterr().err
    from liqlab.fetch import fetch

    with pytest.raises(ParameterError, match="--tables"):
        fetch("okx", SYM, since="2025-01-01", until="2025-01-02", out=tmp_path, tables=["trades"])


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(0, 1000), length=st.integers(1, 1000),
    first=st.integers(0, 1200), n=st.integers(1, 300), step=st.sampled_from([1, 5]),
)
def test_gaps_cover_exactly_the_missing_time(start, length, first, n, step):
    from liqlab.fetch import _gaps

    end = start + length
    stored = pd.Series(pd.to_datetime([(first + i * step) * 1 for i in range(n)], unit="ms", utc=True))
    last = first + (n - 1) * step
    gaps = _gaps(stored, start, end, step)
    for t in range(start, end):
        inside = any(a <= t < b for a, b in gaps)
        assert inside == (t < first or t >= last + step)
    assert all(a < b for a, b in gaps)
