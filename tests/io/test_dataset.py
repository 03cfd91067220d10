"""The dataset format: every validation rule has a malformed-file test checking message and no write."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqlab.io import atomic
from liqlab.io.dataset import (
    Collection,
    Dataset,
    load,
    load_collection,
    load_dataset,
    make_meta,
    merge_tables,
    validate_table,
    write_dataset,
)
from liqlab.errors import DataError


def make_dataset(n: int = 10, exchange: str = "binanceusdm") -> Dataset:
    ts = pd.date_range("2025-01-01", periods=n, freq="1min", tz="UTC")
    close = 100 + np.arange(n, dtype=float)
    ohlcv = pd.DataFrame(
        {"ts": ts, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close, "volume": 10.0,
         "taker_buy_volume": 4.0}
    )
    oi = pd.DataFrame({"ts": ts, "open_interest": 1000.0 + np.arange(n), "open_interest_value": (1000.0 + np.arange(n)) * close})
    funding = pd.DataFrame({"ts": ts[:1], "funding_rate": [0.0001]})
    meta = make_meta(exchange, "BTC/USDT:USDT", source="test", synthetic=True, created_at="2025-01-01T00:00:00+00:00")
    return Dataset(meta=meta, ohlcv=ohlcv, open_interest=oi, funding=funding)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liqlab", *args], capture_output=True, text=True)


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_roundtrip(tmp_path):
    ds = make_dataset()
    write_dataset(ds, tmp_path / "d")
    back = load_dataset(tmp_path / "d")
    pd.testing.assert_frame_equal(back.ohlcv, validate_table("ohlcv", ds.ohlcv))
    assert str(back.ohlcv["ts"].dtype) == "datetime64[ns, UTC]"
    assert back.meta == ds.meta
    assert back.venue == "binanceusdm" and back.synthetic
    assert isinstance(load(tmp_path / "d"), Dataset)


def test_collection(tmp_path):
    for ex in ("binanceusdm", "bybit"):
        write_dataset(make_dataset(exchange=ex), tmp_path / "c" / ex)
    coll = load_collection(tmp_path / "c")
    assert isinstance(coll, Collection) and coll.venues == ("binanceusdm", "bybit")
    assert load_collection(tmp_path / "c", venues=["bybit"]).venues == ("bybit",)
    with pytest.raises(DataError, match="unknown venue"):
        load_collection(tmp_path / "c", venues=["okx"])
    sliced = coll.between("2025-01-01 00:02", "2025-01-01 00:05")
    assert all(len(d.ohlcv) == 3 for d in sliced)


def test_write_is_deterministic(tmp_path):
    ds = make_dataset()
    write_dataset(ds, tmp_path / "a")
    write_dataset(ds, tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")


# Each malformed case: (table, mutation, expected message fragment, row timestamp index or None)
def _set(col, i, value):
    def f(df):
        df = df.copy()
        if col == "ts":
            df[col] = df[col].astype(object)
        df.loc[i, col] = value
        if col == "ts":
            df[col] = pd.to_datetime(df[col], utc=True)
        return df
    return f


CASES = {
    "unsorted": ("ohlcv", lambda df: df.iloc[[0, 1, 3, 2, 4]].reset_index(drop=True), "not sorted", 3),
    "duplicate_ts": ("ohlcv", lambda df: df.assign(ts=df["ts"].where(df.index != 3, df["ts"].iloc[2])), "duplicate timestamp", 3),
    "naive_ts": ("ohlcv", lambda df: df.assign(ts=df["ts"].dt.tz_localize(None)), "no time zone", None),
    "non_utc": ("ohlcv", lambda df: df.assign(ts=df["ts"].dt.tz_convert("Europe/Paris")), "must be UTC", None),
    "nan_price": ("ohlcv", _set("close", 2, np.nan), "close is not finite", 2),
    "inf_price": ("ohlcv", _set("open", 1, np.inf), "open is not finite", 1),
    "zero_price": ("ohlcv", _set("low", 4, 0.0), "low must be > 0", 4),
    "negative_price": ("ohlcv", _set("high", 0, -5.0), "high must be > 0", 0),
    "high_below": ("ohlcv", _set("high", 2, 90.0), "high is below max(open, close)", 2),
    "low_above": ("ohlcv", _set("low", 3, 200.0), "low is above min(open, close)", 3),
    "negative_oi": ("open_interest", _set("open_interest", 1, -1.0), "open_interest must be >= 0", 1),
    "unknown_column": ("ohlcv", lambda df: df.assign(foo=1.0), "unknown column(s) ['foo']", None),
    "missing_column": ("open_interest", lambda df: df.drop(columns=["open_interest_value"]), "missing column(s) ['open_interest_value']", None),
    "string_price": ("ohlcv", lambda df: df.assign(close=df["close"].astype(str).where(df.index != 2, "abc")), "column 'close' is not numeric ('abc')", 2),
    "ts_not_time": ("funding", lambda df: df.assign(ts=["yesterday"]), "must be a timestamp", None),
    "absurd_price": ("ohlcv", _set("high", 2, 1e300), "high 1e+300 is beyond 1e+09", 2),
    "wick_1000x": ("ohlcv", _set("low", 1, 0.101), "high 102 is over 100x the low 0.101 in one bar", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_rejected(tmp_path, case):
    table, mutate, message, row = CASES[case]
    good = make_dataset(5)
    path = tmp_path / "d"
    write_dataset(good, path)
    bad_df = mutate(getattr(good, table))
    # write the malformed table file directly (as a foreign tool would), bypassing validation
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pandas(bad_df, preserve_index=False), path / f"{table}.parquet")
    with pytest.raises(DataError) as err:
        load_dataset(path)
    text = str(err.value)
    assert message in text
    assert f"{table}.parquet" in text
    if row is not None:
        ts = bad_df["ts"].iloc[row] if table == "ohlcv" else good.ohlcv["ts"].iloc[row]
        assert f"row {row}" in text and ts.isoformat() in text
    assert "\n" not in text

    # the CLI prints it as one line, exits 2, no traceback
    res = run_cli("info", str(path))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr and message in res.stderr

    # writing the malformed table over an existing dataset is refused and the target is untouched
    target = tmp_path / "target"
    write_dataset(good, target)
    before = snapshot(target)
    bad = dataclasses.replace(good, **{table: bad_df})
    with pytest.raises(DataError):
        write_dataset(bad, target)
    assert snapshot(target) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_bad_meta(tmp_path):
    path = tmp_path / "d"
    write_dataset(make_dataset(), path)
    meta = json.loads((path / "meta.json").read_text())
    for key, value, msg in [
        ("kind", "perp", "kind must be 'linear' or 'inverse'"),
        ("synthetic", "yes", "synthetic must be true or false"),
        ("contract_size", -1, "contract_size must be > 0"),
        ("symbol", "BTCUSDT", "ccxt unified symbol"),
        ("exchange", "binance", "unknown exchange 'binance'; known: binanceusdm"),
    ]:
        (path / "meta.json").write_text(json.dumps({**meta, key: value}))
        with pytest.raises(DataError, match="meta.json") as err:
            load_dataset(path)
        assert msg in str(err.value)
    (path / "meta.json").write_bytes(b'{"exchange": "caf\xe9"}')
    with pytest.raises(DataError, match="meta.json line 1: not UTF-8 text"):
        load_dataset(path)
    (path / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON at line 1"):
        load_dataset(path)
    (path / "meta.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "source"}))
    with pytest.raises(DataError, match=r"missing key\(s\) \['source'\]"):
        load_dataset(path)


def test_missing_and_corrupt_files(tmp_path):
    path = tmp_path / "d"
    write_dataset(make_dataset(), path)
    (path / "funding.parquet").unlink()
    with pytest.raises(DataError, match="funding.parquet: missing"):
        load_dataset(path)
    write_dataset(make_dataset(), path)
    (path / "ohlcv.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DataError, match="ohlcv.parquet: cannot read parquet"):
        load_dataset(path)
    with pytest.raises(DataError, match="not a dataset directory"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataError, match="no dataset directories"):
        load_collection(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)


def test_optional_tables_validated():
    from liqlab.io.dataset import validate_table

    ts = pd.date_range("2025-01-01", periods=3, freq="1min", tz="UTC")
    liq = pd.DataFrame({"ts": ts, "side": ["long", "short", "sideways"], "price": [1.0, np.nan, 2.0], "amount": 1.0, "value": 1.0})
    with pytest.raises(DataError, match=r"row 2 .*side must be 'long' or 'short'"):
        validate_table("liquidations", liq, "liquidations.parquet")
    ok = validate_table("liquidations", liq.iloc[:2], "liquidations.parquet")
    assert ok["price"].isna().sum() == 1  # per-bar sums may have no price
    tiers = pd.DataFrame({"tier": [1, 2], "min_notional": [0, 50_000], "max_notional": [50_000, 40_000],
                          "maintenance_margin_rate": [0.004, 0.005], "maintenance_amount": [0, 50], "max_leverage": [125, 100]})
    with pytest.raises(DataError, match=r"row 1 \(tier 2\): max_notional must exceed min_notional"):
        validate_table("leverage_tiers", tiers, "leverage_tiers.parquet")


def test_merge_tables():
    ds = make_dataset(6)
    a, b = ds.ohlcv.iloc[:4], ds.ohlcv.iloc[2:]
    merged = merge_tables("ohlcv", a, b)
    pd.testing.assert_frame_equal(merged, validate_table("ohlcv", ds.ohlcv))
    assert merge_tables("ohlcv", merged, merged).equals(merged)  # idempotent
    conflict = b.copy()
    conflict.loc[conflict.index[0], "close"] = 101.5
    with pytest.raises(DataError, match=r"duplicated timestamp with different values in \['close'\]"):
        merge_tables("ohlcv", a, conflict)


def test_atomic_write_failure_keeps_old(tmp_path):
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_write_keeps_extra_files(tmp_path):
    path = tmp_path / "d"
    write_dataset(make_dataset(), path)
    (path / "notes.txt").write_text("keep me")
    write_dataset(make_dataset(8), path)
    assert (path / "notes.txt").read_text() == "keep me"
    assert len(load_dataset(path).ohlcv) == 8


def test_corrupt_collection_json_is_one_line(tmp_path):
    write_dataset(make_dataset(), tmp_path / "c" / "binanceusdm")
    (tmp_path / "c" / "collection.json").write_text("{broken")
    with pytest.raises(DataError, match=r"collection.json: invalid JSON at line 1"):
        load_collection(tmp_path / "c")


@pytest.mark.parametrize("name,what", [("okx", "is named like a venue"), ("binance-copy", "holds dataset tables")])
def test_venue_folder_without_meta_json_is_named(tmp_path, name, what):
    coll = tmp_path / "coll"
    write_dataset(make_dataset(), coll / "binanceusdm")
    (coll / name).mkdir()
    (coll / "truth").mkdir()  # a simulator's truth/ folder is not a venue
    if name == "binance-copy":
        atomic.write_bytes(coll / name / "ohlcv.parquet", (coll / "binanceusdm" / "ohlcv.parquet").read_bytes())
    with pytest.raises(DataError, match=rf"{coll / name / 'meta.json'}: missing \(the folder {what} but has no"):
        load_collection(coll)
    before = snapshot(coll)
    res = run_cli("info", str(coll))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"{name}/meta.json: missing" in res.stderr
    assert snapshot(coll) == before
