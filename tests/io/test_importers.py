"""liqlab.io.importers: bulk formats -> dataset; idempotent, merging, line-precise errors, atomic."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.io.dataset import load_dataset
from liqlab.errors import DataError
from liqlab.io.importers import import_files

SYM = "BTC/USDT:USDT"
MIN = 60_000
T0 = int(pd.Timestamp("2024-03-01", tz="UTC").value // 1_000_000)
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore")


def px(i: int) -> float:
    return round(60_000 + 50 * np.sin(i / 30) + i * 0.5, 1)


def kline_lines(start: int, n: int, mark: bool = False) -> list[str]:
    out = []
    for i in range(start, start + n):
        o, c = px(i), px(i + 1)
        if mark:
            o, c = o + 2, c + 2
        vol, taker = (0, 0) if mark else (10 + i % 7, 4 + i % 3)
        t = T0 + i * MIN
        out.append(f"{t},{o},{max(o, c) + 3},{min(o, c) - 3},{c},{vol},{t + MIN - 1},{vol * c},{i % 50},{taker},{taker * c},0")
    return out


def write(path: Path, lines: list[str], header: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(([header] if header else []) + lines) + "\n")
    return path


def zipped(path: Path, member: str, lines: list[str], header: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, "\n".join(([header] if header else []) + lines) + "\n")
    return path


def digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir()) if p.is_file()}


def bv(tmp: Path) -> list[Path]:
    """A small binance-vision tree: headered + headerless klines, mark klines, metrics, funding, liquidations."""
    d = tmp / "bv"
    k1 = write(d / "klines" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 60), KLINE_HEADER)
    k2 = zipped(d / "klines" / "BTCUSDT-1m-2024-03-02.zip", "BTCUSDT-1m-2024-03-02.csv", kline_lines(60, 60))  # old: no header
    m1 = write(d / "markPriceKlines" / "BTCUSDT" / "1m" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 120, mark=True), KLINE_HEADER)
    metrics = [f"{pd.Timestamp(T0 + i * 5 * MIN, unit='ms'):%Y-%m-%d %H:%M:%S},BTCUSDT,{80000 + i}.5,{(80000 + i + 0.5) * px(5 * i)},1,1.1,1,1.2"
               for i in range(24)]
    me = write(d / "BTCUSDT-metrics-2024-03-01.csv", metrics,
               "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
               "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio")
    fr = write(d / "BTCUSDT-fundingRate-2024-03.csv", [f"{T0 + i * 8 * 60 * MIN},8,0.000{i + 1}" for i in range(3)],
               "calc_time,funding_interval_hours,last_funding_rate")
    liq = write(d / "BTCUSDT-liquidationSnapshot-2024-03-01.csv",
                [f"{T0 + 5000},SELL,LIMIT,IOC,0.5,59000,59010.5,FILLED,0.5,0.5",
                 f"{T0 + 9000},BUY,LIMIT,IOC,0.2,61000,60990,FILLED,0.2,0.2"],
                "time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
                "last_fill_quantity,accumulated_fill_quantity")
    return [k1, k2, m1, me, fr, liq]


def test_binance_vision_all_kinds(tmp_path):
    out = tmp_path / "ds"
    res = import_files("binance-vision", bv(tmp_path), out, exchange="binanceusdm", symbol=SYM)
    ds = load_dataset(out)
    o = ds.ohlcv
    assert len(o) == 120 and res.rows["ohlcv"] == 120
    assert o["ts"].iloc[0] == pd.Timestamp(T0, unit="ms", tz="UTC")
    assert np.allclose(o["close"], [px(i + 1) for i in range(120)])
    assert np.allclose(o["mark_close"] - o["close"], 2.0)
    assert np.allclose(o["taker_buy_volume"], [4 + i % 3 for i in range(120)])
    assert len(ds.open_interest) == 24 and ds.open_interest["open_interest"].iloc[0] == 80000.5
    assert np.allclose(ds.funding["funding_rate"], [1e-4, 2e-4, 3e-4])
    liq = ds.liquidations
    assert list(liq["side"]) == ["long", "short"]  # a SELL liquidation order closes a long
    assert np.allclose(liq["value"], liq["amount"] * liq["price"])
    assert "lower bound" in ds.meta["notes"]["liquidations_source"]
    assert ds.meta["synthetic"] is False and ds.meta["source"] == "import:binance-vision"


def test_import_twice_changes_nothing_and_overlaps_merge(tmp_path):
    files = bv(tmp_path)
    out = tmp_path / "ds"
    import_files("binance-vision", files, out, exchange="binanceusdm", symbol=SYM)
    before = digest(out)
    again = import_files("binance-vision", files, out, exchange="binanceusdm", symbol=SYM)
    assert again.changed is False and digest(out) == before
    # a monthly file overlapping the daily ones (same values) plus 30 new bars and their mark candles
    monthly = write(tmp_path / "m" / "BTCUSDT-1m-2024-03.csv", kline_lines(30, 120), KLINE_HEADER)
    mark = write(tmp_path / "m" / "markPriceKlines" / "BTCUSDT-1m-2024-03.csv", kline_lines(100, 50, mark=True))
    res = import_files("binance-vision", [monthly, mark], out, exchange="binanceusdm", symbol=SYM)
    o = load_dataset(out).ohlcv
    assert len(o) == 150 and res.added["ohlcv"] == 30 and o["ts"].is_unique
    assert o["mark_close"].notna().all()


@pytest.mark.parametrize(
    "lines, header, line_no, what",
    [
        (kline_lines(0, 5), "open_time,open,high,low,close", 1, "bad header"),
        (kline_lines(0, 3) + ["1709251380000,60000.0,60010.0"] + kline_lines(4, 2), KLINE_HEADER, 5, "truncated row"),
        (kline_lines(0, 2) + [kline_lines(2, 1)[0].replace(f",{px(2)},", ",abc,", 1)] + kline_lines(3, 2), KLINE_HEADER, 4,
         "'open' is not numeric"),
        (kline_lines(0, 4) + [kline_lines(1, 1)[0].replace(f",{px(2)},", f",{px(2) + 7},")], KLINE_HEADER, 6,
         "duplicated timestamp with different"),
        (kline_lines(0, 3) + [kline_lines(3, 1)[0].split(",", 3)[0] + ",100,90,95,96,1,0,0,0,0,0,0"], None, 4,
         "high is below"),
    ],
    ids=["bad-header", "truncated", "non-numeric", "dup-ts-different", "inconsistent-ohlc"],
)
def test_malformed_file_names_file_and_line_and_leaves_dataset(tmp_path, lines, header, line_no, what):
    out = tmp_path / "ds"
    import_files("binance-vision", [write(tmp_path / "ok" / "BTCUSDT-1m-2024-02-01.csv", kline_lines(-2000, 10))],
                 out, exchange="binanceusdm", symbol=SYM)
    before = digest(out)
    bad = write(tmp_path / "bad" / "BTCUSDT-1m-2024-03-01.csv", lines, header)
    with pytest.raises(DataError) as exc:
        import_files("binance-vision", [bad], out, exchange="binanceusdm", symbol=SYM)
    msg = str(exc.value)
    assert f"{bad} line {line_no}" in msg and what in msg and "\n" not in msg
    assert digest(out) == before
    assert not [p for p in tmp_path.joinpath("ds").parent.iterdir() if p.name.startswith(".ds")]  # no staging left


def test_conflict_with_stored_rows_is_refused(tmp_path):
    out = tmp_path / "ds"
    import_files("binance-vision", [write(tmp_path / "a" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 10))], out,
                 exchange="binanceusdm", symbol=SYM)
    before = digest(out)
    changed = kline_lines(5, 1)[0].replace(f",{px(6)},", f",{px(6) + 1},")
    bad = write(tmp_path / "b" / "BTCUSDT-1m-2024-03-01.csv", [changed])
    with pytest.raises(DataError, match=r"line 1: ts 2024-03-01T00:05:00\+00:00: duplicated timestamp.*stored dataset"):
        import_files("binance-vision", [bad], out, exchange="binanceusdm", symbol=SYM)
    assert digest(out) == before


def test_mark_without_bars_is_refused(tmp_path):
    mark = write(tmp_path / "markPriceKlines" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 5, mark=True))
    with pytest.raises(DataError, match="has no OHLCV bar"):
        import_files("binance-vision", [mark], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)
    assert not (tmp_path / "ds").exists()


def test_freqtrade_feather_json_mark_funding(tmp_path):
    n = 50
    ts = pd.date_range("2025-01-01", periods=n, freq="5min", tz="UTC")
    close = np.array([px(i + 1) for i in range(n)])
    opn = np.array([px(i) for i in range(n)])
    df = pd.DataFrame({"date": ts, "open": opn, "high": np.maximum(opn, close) + 1, "low": np.minimum(opn, close) - 1,
                       "close": close, "volume": np.arange(n, dtype=float)})
    df.to_feather(tmp_path / "BTC_USDT_USDT-5m-futures.feather")
    mark = df.assign(close=df["close"] + 3)
    mark.to_feather(tmp_path / "BTC_USDT_USDT-5m-mark.feather")
    fund = df.iloc[::12].assign(open=1e-4, high=0.0, low=0.0, close=0.0, volume=0.0)
    (tmp_path / "BTC_USDT_USDT-8h-funding_rate.json").write_text(json.dumps(
        [[int(t.value // 10**6), o, h, l, c, v] for t, o, h, l, c, v in fund.itertuples(index=False)]))
    out = tmp_path / "ds"
    import_files("freqtrade", [tmp_path / "BTC_USDT_USDT-5m-futures.feather", tmp_path / "BTC_USDT_USDT-5m-mark.feather",
                               tmp_path / "BTC_USDT_USDT-8h-funding_rate.json"], out, exchange="bybit", symbol=SYM)
    ds = load_dataset(out)
    assert len(ds.ohlcv) == n and np.allclose(ds.ohlcv["mark_close"] - ds.ohlcv["close"], 3)
    assert len(ds.funding) == len(fund) and np.allclose(ds.funding["funding_rate"], 1e-4)
    assert len(ds.open_interest) == 0 and ds.meta["empty_tables"] == ["open_interest"]


def test_ohlcv_only_import_writes_empty_tables_that_load(tmp_path):
    out = tmp_path / "ds"
    import_files("binance-vision", [write(tmp_path / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 10))], out,
                 exchange="binanceusdm", symbol=SYM)
    ds = load_dataset(out)
    assert len(ds.open_interest) == 0 and list(ds.open_interest.columns) == ["ts", "open_interest", "open_interest_value"]
    assert str(ds.funding["ts"].dtype) == "datetime64[ns, UTC]"
    assert ds.meta["empty_tables"] == ["funding", "open_interest"]
    # adding the open interest later clears the note
    metrics = write(tmp_path / "BTCUSDT-metrics-2024-03-01.csv",
                    [f"2024-03-01 00:0{i * 5}:00,BTCUSDT,100,{100 * px(0)},1,1,1,1" for i in range(2)],
                    "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
                    "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio")
    import_files("binance-vision", [metrics], out, exchange="binanceusdm", symbol=SYM)
    assert load_dataset(out).meta["empty_tables"] == ["funding"]


def test_coinglass_csv_units(tmp_path):
    n = 24
    t = [T0 + i * 3_600_000 for i in range(n) if i != 7]  # an hourly hole
    rows = []
    for k, ti in enumerate(t):
        o, c = px(k), px(k + 1)
        rows.append(f"{ti},{pd.Timestamp(ti, unit='ms', tz='UTC'):%Y-%m-%dT%H:%M:%S.000Z},{o},{max(o, c) + 5},{min(o, c) - 5},{c},"
                    f"{1000 + k},{2000 + k},{3000 + 2 * k},0.01,0.01,0.01,0.01,{6e9 + k * 1e6},{6e9},{6e9},{6e9 + k * 1e6}")
    header = ("timestamp,datetime_utc,price_open,price_high,price_low,price_close,liquidation_long_usd,"
              "liquidation_short_usd,liquidation_total_usd,funding_open,funding_high,funding_low,funding_close,"
              "oi_open,oi_high,oi_low,oi_close")
    f = write(tmp_path / "cg.csv", rows, header)
    ds = load_dataset(import_files("coinglass-csv", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM).path)
    assert len(ds.ohlcv) == n - 1 and len(ds.open_interest) == n - 1
    assert np.allclose(ds.open_interest["open_interest"] * ds.ohlcv["close"], ds.open_interest["open_interest_value"])
    assert np.allclose(ds.funding["funding_rate"], 1e-4)  # 0.01 (%) -> 1e-4, auto-detected
    assert "percent" in ds.meta["notes"]["funding_source"] and "USD" in ds.meta["notes"]["open_interest_source"]
    liq = ds.liquidations
    assert len(liq) == 2 * (n - 1) and liq["price"].isna().all()
    assert np.isclose(liq.loc[liq["side"] == "long", "value"].sum(), sum(1000 + k for k in range(n - 1)))
    ds2 = load_dataset(import_files("coinglass-csv", [f], tmp_path / "ds2", exchange="binanceusdm", symbol=SYM,
                                    funding_unit="fraction").path)
    assert np.allclose(ds2.funding["funding_rate"], 0.01)


def test_ccxt_tiers_keep_binance_cum(tmp_path):
    tiers = {SYM: [
        {"tier": 1, "currency": "USDT", "minNotional": 0, "maxNotional": 50000, "maintenanceMarginRate": 0.004,
         "maxLeverage": 125, "info": {"bracket": "1", "notionalFloor": "0", "notionalCap": "50000", "maintMarginRatio": "0.004", "cum": "0.0"}},
        {"tier": 2, "currency": "USDT", "minNotional": 50000, "maxNotional": 600000, "maintenanceMarginRate": 0.005,
         "maxLeverage": 100, "info": {"bracket": "2", "notionalFloor": "50000", "notionalCap": "600000", "maintMarginRatio": "0.005", "cum": "50.0"}},
        {"tier": 3, "currency": "USDT", "minNotional": 600000, "maxNotional": 3000000, "maintenanceMarginRate": 0.0065,
         "maxLeverage": 75, "info": {"bracket": "3", "notionalFloor": "600000", "notionalCap": "3000000", "maintMarginRatio": "0.0065", "cum": "950.0"}},
    ]}
    f = tmp_path / "tiers.json"
    f.write_text(json.dumps(tiers))
    out = tmp_path / "ds"
    import_files("ccxt-tiers", [f], out, exchange="binanceusdm", symbol=SYM)
    lt = load_dataset(out).leverage_tiers
    assert list(lt["maintenance_amount"]) == [0.0, 50.0, 950.0]
    assert list(lt["max_leverage"]) == [125, 100, 75]
    before = digest(out)
    assert import_files("ccxt-tiers", [f], out, exchange="binanceusdm", symbol=SYM).changed is False
    assert digest(out) == before
    with pytest.raises(DataError, match="no tiers for symbol 'ETH/USDT:USDT'"):
        import_files("ccxt-tiers", [f], tmp_path / "e", exchange="binanceusdm", symbol="ETH/USDT:USDT")


def test_cli_import_errors_are_one_line(tmp_path, capsys):
    from liqlab.app.cli import main

    bad = write(tmp_path / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 2) + ["1709251320000,1,2"])
    rc = main(["import", "--format", "binance-vision", str(bad), "--out", str(tmp_path / "ds"),
               "--exchange", "binanceusdm", "--symbol", SYM, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "line 3" in err and "Traceback" not in err
    ok = write(tmp_path / "BTCUSDT-1m-2024-03-02.csv", kline_lines(0, 2))
    assert main(["import", "--format", "binance-vision", str(ok), "--out", str(tmp_path / "ds"),
                 "--exchange", "binanceusdm", "--symbol", SYM, "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["ohlcv"] == 2


# ------------------------------------------------------------------------------------ real data


def _format_of(p: Path) -> str:
    if p.suffix == ".feather":
        return "freqtrade"
    if p.suffix == ".csv":
        return "coinglass-csv"
    if p.suffix == ".json" and "leverage_tiers" in p.name:
        return "ccxt-tiers"
    raise AssertionError(f"no importer mapped for real data file {p.name}")


def _venue_of(p: Path) -> str:
    return "bybit" if p.name.startswith("bybit") else "okx" if p.name.startswith("okx") else "binanceusdm"


def _symbol_of(p: Path) -> str:
    return "ETH/USDT:USDT" if "_eth_" in p.name else "BTC/USDT:USDT"


@pytest.mark.real_data
def test_every_real_file_imports_and_loads_with_source_row_counts(real_data, tmp_path):
    files = sorted(p for p in real_data.iterdir() if p.is_file() and p.name != "README.md")
    assert files
    for i, f in enumerate(files):
        fmt = _format_of(f)
        out = tmp_path / f"ds{i}"
        import_files(fmt, [f], out, exchange=_venue_of(f), symbol=_symbol_of(f))
        ds = load_dataset(out)
        if fmt == "freqtrade":
            n = len(pd.read_feather(f))
            table = ds.funding if "funding" in f.name else ds.ohlcv
            assert len(table) == n, f.name
        elif fmt == "coinglass-csv":
            n = len(pd.read_csv(f))
            assert len(ds.ohlcv) == len(ds.open_interest) == len(ds.funding) == n, f.name
            assert ds.meta["notes"]["open_interest_source"].startswith("coinglass-csv oi_close is USD")
            assert np.all(np.abs(ds.funding["funding_rate"]) < 0.01), f.name  # units resolved to a fraction
        else:
            n = len(json.loads(f.read_text())[_symbol_of(f)])
            assert len(ds.leverage_tiers) == n, f.name
        assert ds.meta["synthetic"] is False


# ------------------------------------------------------------------ time units, ISO times, bar spacing

CG_HEADER = "timestamp,price_open,price_high,price_low,price_close,oi_close"


def cg_rows(n: int, step_ms: int = 3_600_000, start: int = 0, time=lambda ms: str(ms)) -> list[str]:
    """CoinGlass-like rows (OHLC + USD OI) with the time column rendered by ``time(epoch_ms)``."""
    out = []
    for k in range(start, start + n):
        o, c = px(k), px(k + 1)
        out.append(f"{time(T0 + k * step_ms)},{o},{max(o, c) + 5},{min(o, c) - 5},{c},{6e9 + k * 1e6}")
    return out


def tables(path: Path) -> dict[str, pd.DataFrame]:
    ds = load_dataset(path)
    return {k: v for k, v in ds.tables().items()}


@pytest.mark.parametrize("unit,factor", [("s", 1e-3), ("us", 1e3), ("ns", 1e6)])
def test_epoch_seconds_micro_nano_give_the_same_dates_as_milliseconds(tmp_path, unit, factor):
    def as_unit(ms: int) -> str:
        return str(int(round(ms * factor)))

    ref = import_files("coinglass-csv", [write(tmp_path / "ms.csv", cg_rows(48), CG_HEADER)], tmp_path / "ms",
                       exchange="binanceusdm", symbol=SYM).path
    got = import_files("coinglass-csv", [write(tmp_path / f"{unit}.csv", cg_rows(48, time=as_unit), CG_HEADER)],
                       tmp_path / unit, exchange="binanceusdm", symbol=SYM).path
    a, b = tables(ref), tables(got)
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert a["ohlcv"]["ts"].iloc[0] == pd.Timestamp("2024-03-01", tz="UTC")
    # binance-vision klines: a 2025 µs dump and the same rows in ms merge into one set of bars
    k_ms = write(tmp_path / "bv" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 30), KLINE_HEADER)
    us_lines = [",".join([str(int(f.split(",")[0]) * 1000)] + f.split(",")[1:]) for f in kline_lines(0, 30)]
    k_us = write(tmp_path / "bv2" / "BTCUSDT-1m-2024-03-01.csv", us_lines, KLINE_HEADER)
    out = tmp_path / "bv_ds"
    import_files("binance-vision", [k_ms], out, exchange="binanceusdm", symbol=SYM)
    before = digest(out)
    assert import_files("binance-vision", [k_us], out, exchange="binanceusdm", symbol=SYM).changed is False
    assert digest(out) == before


def test_seconds_read_as_milliseconds_can_no_longer_merge_into_1970(tmp_path):
    """The reported case: epoch-second klines imported into a 2025 dataset used to land in 1970-01-21."""
    out = tmp_path / "ds"
    import_files("binance-vision", [write(tmp_path / "a" / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 60), KLINE_HEADER)],
                 out, exchange="binanceusdm", symbol=SYM)
    sec = [",".join([str(int(f.split(",")[0]) // 1000)] + f.split(",")[1:]) for f in kline_lines(60, 60)]
    res = import_files("binance-vision", [write(tmp_path / "b" / "BTCUSDT-1m-2024-03-01.csv", sec, KLINE_HEADER)],
                       out, exchange="binanceusdm", symbol=SYM)
    ohlcv = load_dataset(out).ohlcv
    assert res.rows["ohlcv"] == 120 and ohlcv["ts"].min() == pd.Timestamp("2024-03-01", tz="UTC")
    assert ohlcv["ts"].max() == pd.Timestamp("2024-03-01 01:59", tz="UTC")


@pytest.mark.parametrize("lines,what", [
    (["1709251200", "1709251200000000"], "is in microseconds but line 2 is in seconds"),
    (["17092512", "17092513"], "is not an epoch time in s, ms, µs or ns between 2000 and 2100"),
], ids=["mixed-units", "no-unit"])
def test_epoch_numbers_that_fit_no_single_unit_are_refused(tmp_path, lines, what):
    rows = [f"{t},{px(k)},{px(k) + 9},{px(k) - 9},{px(k)},6e9" for k, t in enumerate(lines)]
    f = write(tmp_path / "cg.csv", rows, CG_HEADER)
    with pytest.raises(DataError, match=what) as exc:
        import_files("coinglass-csv", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)
    assert str(f) in str(exc.value) and not (tmp_path / "ds").exists()


def test_iso_times_with_offsets_give_the_same_dates_as_milliseconds(tmp_path):
    def iso_offset(ms: int) -> str:  # the same instant written in UTC+02:00, UTC-05:30 and Z, alternating
        t = pd.Timestamp(ms, unit="ms", tz="UTC")
        k = (ms // 3_600_000) % 3
        tz = ["+02:00", "-05:30", "UTC"][k]
        return t.tz_convert("Etc/GMT-2").isoformat() if k == 0 else (
            t.tz_convert("UTC") - pd.Timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M:%S") + tz if k == 1 else (
            t.strftime("%Y-%m-%d %H:%M:%SZ"))

    ref = import_files("coinglass-csv", [write(tmp_path / "ms.csv", cg_rows(48), CG_HEADER)], tmp_path / "ms",
                       exchange="binanceusdm", symbol=SYM).path
    iso = write(tmp_path / "iso.csv", cg_rows(48, time=iso_offset), CG_HEADER.replace("timestamp", "datetime_utc"))
    got = import_files("coinglass-csv", [iso], tmp_path / "iso", exchange="binanceusdm", symbol=SYM).path
    for name, df in tables(ref).items():
        pd.testing.assert_frame_equal(df, tables(got)[name])


@pytest.mark.parametrize("text", ["02/01/2026 00:00", "2026/01/02 00:00", "Jan 2 2026", "02.01.2026 00:00"])
def test_day_month_and_other_non_iso_dates_are_refused(tmp_path, text):
    rows = [f"{text},{px(0)},{px(0) + 9},{px(0) - 9},{px(0)},6e9"]
    f = write(tmp_path / "cg.csv", rows, CG_HEADER.replace("timestamp", "datetime_utc"))
    with pytest.raises(DataError, match="line 2: column 'datetime_utc'.*not an ISO 8601 time.*ambiguous"):
        import_files("coinglass-csv", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)


def test_timestamp_and_datetime_columns_that_disagree_are_refused(tmp_path):
    rows = cg_rows(5)
    both = [r.split(",", 1)[0] + "," + pd.Timestamp(int(r.split(",", 1)[0]), unit="ms", tz="UTC").isoformat() + ","
            + r.split(",", 1)[1] for r in rows]
    both[3] = both[3].replace("T03:00:00", "T04:00:00")
    f = write(tmp_path / "cg.csv", both, CG_HEADER.replace("timestamp", "timestamp,datetime_utc"))
    with pytest.raises(DataError, match="line 5: timestamp is 2024-03-01T03:00:00.*datetime_utc says"):
        import_files("coinglass-csv", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)


@pytest.mark.parametrize("rows,line,what", [
    # row 21 (line 22) is still 30m after row 20; the 5m rows start at line 23
    (cg_rows(20, step_ms=30 * MIN) + cg_rows(6, step_ms=5 * MIN, start=120), 23, "5m after the previous one, but most rows are 30m"),
    (cg_rows(20, step_ms=5 * MIN) + [r for i, r in enumerate(cg_rows(36, step_ms=5 * MIN, start=20)) if i % 6 == 5], 22,
     "rows from here are 30m apart, but most rows are 5m"),
    (cg_rows(10, step_ms=60), None, "bars 60ms apart is not a bar size"),
], ids=["30m-then-5m", "5m-then-30m", "60ms"])
def test_mixed_or_impossible_bar_spacing_is_refused(tmp_path, rows, line, what):
    f = write(tmp_path / "cg.csv", rows, CG_HEADER)
    with pytest.raises(DataError, match=what) as exc:
        import_files("coinglass-csv", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)
    if line is not None:
        assert f"{f} line {line}:" in str(exc.value)


def test_spacing_must_match_the_bar_size_in_the_file_name(tmp_path):
    five = [",".join([str(T0 + i * 5 * MIN)] + f.split(",")[1:]) for i, f in enumerate(kline_lines(0, 10))]
    ok = write(tmp_path / "BTCUSDT-5m-2024-03-01.csv", five, KLINE_HEADER)
    assert import_files("binance-vision", [ok], tmp_path / "ok", exchange="binanceusdm", symbol=SYM).rows["ohlcv"] == 10
    seconds_as_1m = [",".join([str(T0 + i * 1000)] + f.split(",")[1:]) for i, f in enumerate(kline_lines(0, 10))]
    bad = write(tmp_path / "x" / "BTCUSDT-1m-2024-03-01.csv", seconds_as_1m, KLINE_HEADER)
    with pytest.raises(DataError, match=r"line 3: bar 1s after the previous one, but its name says 1m apart"):
        import_files("binance-vision", [bad], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)


@pytest.mark.parametrize("content,what", [("", "empty file"), (KLINE_HEADER + "\n", r"only a header \(line 1\), no data rows")])
def test_empty_and_header_only_files_are_named(tmp_path, content, what):
    f = tmp_path / "BTCUSDT-1m-2024-03-01.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=what) as exc:
        import_files("binance-vision", [f], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)
    assert str(exc.value).startswith(str(f))
    cg = write(tmp_path / "cg.csv", [], CG_HEADER)
    with pytest.raises(DataError, match=f"{cg}: only a header"):
        import_files("coinglass-csv", [cg], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)


def test_header_only_liquidation_snapshot_is_a_day_without_forced_orders(tmp_path):
    liq = write(tmp_path / "BTCUSDT-liquidationSnapshot-2024-03-01.csv", [],
                "time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
                "last_fill_quantity,accumulated_fill_quantity")
    k = write(tmp_path / "BTCUSDT-1m-2024-03-01.csv", kline_lines(0, 5), KLINE_HEADER)
    res = import_files("binance-vision", [k, liq], tmp_path / "ds", exchange="binanceusdm", symbol=SYM)
    assert res.rows["ohlcv"] == 5 and res.added.get("liquidations", 0) == 0


# ------------------------------------------------------------------------- open-interest alignment


def oi_rows(n: int, instant: str, seed: int = 0) -> list[str]:
    """5m bars whose USD OI is base OI × the price at the bar's ``instant`` ('open' or 'close')."""
    rng = np.random.default_rng(seed)
    logp = np.log(60_000) + np.cumsum(rng.normal(0, 1e-3, n + 1))
    p = np.exp(logp)  # p[k] = price at the open of bar k, p[k+1] at its close
    base = 100_000 + np.cumsum(rng.normal(0, 5, n + 1))
    out = []
    for k in range(n):
        o, c = p[k], p[k + 1]
        at = k if instant == "open" else k + 1
        out.append(f"{T0 + k * 5 * MIN},{o:.4f},{max(o, c) * 1.0005:.4f},{min(o, c) * 0.9995:.4f},{c:.4f},"
                   f"{base[at] * p[at]:.4f}")
    return out, base, p


@pytest.mark.parametrize("instant", ["open", "close"])
def test_oi_instant_is_measured_and_converted_with_the_price_of_that_instant(tmp_path, instant):
    rows, base, p = oi_rows(400, instant)
    res = import_files("coinglass-csv", [write(tmp_path / "cg.csv", rows, CG_HEADER)], tmp_path / "ds",
                       exchange="binanceusdm", symbol=SYM)
    assert res.warnings == ()
    ds = load_dataset(res.path)
    oi = ds.open_interest
    k = np.arange(400)
    at = k if instant == "open" else k + 1
    assert np.allclose(oi["open_interest"], base[at], rtol=1e-9)  # exact base units back
    want_ts = pd.to_datetime(T0 + at * 5 * MIN, unit="ms", utc=True)
    assert (oi["ts"].to_numpy() == want_ts.to_numpy()).all()  # stored at the OI's own instant
    note = ds.meta["notes"]["open_interest_alignment"]
    assert note.startswith("measured at import") and f"at the bar's {instant.upper()}" in note


def test_oi_instant_that_cannot_be_told_is_assumed_with_a_warning(tmp_path, capsys):
    from liqlab.app.cli import main

    f = write(tmp_path / "cg.csv", cg_rows(12), CG_HEADER)
    rc = main(["import", "--format", "coinglass-csv", str(f), "--out", str(tmp_path / "ds"), "--exchange",
               "binanceusdm", "--symbol", SYM, "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 0 and err.startswith(f"liqlab import: warning: {f}: cannot tell whether oi_close")
    assert load_dataset(tmp_path / "ds").meta["notes"]["open_interest_alignment"].startswith("NOT measured")


@pytest.mark.real_data
def test_real_coinglass_oi_instants_are_measured(real_data, tmp_path):
    """The 5m export holds the OI at the bar's open, the 1h export at its close (docs/REAL_DATA.md)."""
    for name, instant in (("binance_btcusdt_perp_5m_oi_2026-06-08_2026-06-22.csv", "OPEN"),
                          ("coinglass_btc_1h_liquidations_oi_2025-12-04_2026-05-24.csv", "CLOSE")):
        res = import_files("coinglass-csv", [real_data / name], tmp_path / name, exchange="binanceusdm", symbol=SYM)
        assert f"at the bar's {instant}" in load_dataset(res.path).meta["notes"]["open_interest_alignment"]
