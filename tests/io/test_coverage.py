"""Coverage and gaps per table."""

from __future__ import annotations

import pandas as pd

from liqlab.io.coverage import coverage, resample_ohlcv, table_coverage
from test_dataset import make_dataset


def test_gap_is_counted_with_its_length_and_missing_share():
    ds = make_dataset(10)
    holed = ds.ohlcv.drop(index=[4, 5, 6]).reset_index(drop=True)   # a 4-minute step where 1 is expected
    c = table_coverage(holed)
    assert c["rows"] == 7 and c["gaps"] == 1
    assert c["largest_gap"] == pd.Timedelta(minutes=4)
    assert abs(c["missing_share"] - 0.3) < 1e-12
    assert table_coverage(ds.ohlcv)["gaps"] == 0


def test_coverage_table_per_venue_and_table():
    cov = coverage(make_dataset(10))
    assert list(cov["table"]) == ["ohlcv", "open_interest", "funding"]
    assert list(cov["rows"]) == [10, 10, 1]
    assert str(cov["gaps"].dtype) == "Int64"


def test_resample_keeps_ohlc_relations_and_sums_volume():
    ds = make_dataset(10)
    r = resample_ohlcv(ds.ohlcv, "5min")
    assert len(r) == 2
    assert r["open"].iloc[0] == ds.ohlcv["open"].iloc[0] and r["close"].iloc[0] == ds.ohlcv["close"].iloc[4]
    assert r["high"].iloc[0] == ds.ohlcv["high"].iloc[:5].max() and r["low"].iloc[1] == ds.ohlcv["low"].iloc[5:].min()
    assert r["volume"].sum() == ds.ohlcv["volume"].sum()
    assert r["taker_buy_volume"].sum() == ds.ohlcv["taker_buy_volume"].sum()
