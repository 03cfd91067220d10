"""Coverage and gaps per table: what a researcher checks before trusting a dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from liqlab.io.dataset import Collection, Dataset


def table_coverage(df: pd.DataFrame, expected_step: pd.Timedelta | None = None) -> dict:
    """Rows, first/last ts (UTC), typical step, number of gaps (> 1.5 × step) and the largest gap.

    Parameters
    ----------
    df : pd.DataFrame
        A table with a ``ts`` column (UTC, sorted).
    expected_step : pd.Timedelta, optional
        The table's period (default: the median step).

    Returns
    -------
    dict
        rows, start, end, step, gaps, largest_gap, missing_share (fraction of the expected rows absent).
    """
    out = {"rows": int(len(df)), "start": None, "end": None, "step": None, "gaps": 0, "largest_gap": None,
           "missing_share": 0.0}
    if df is None or len(df) == 0 or "ts" not in df:
        return out
    ts = df["ts"]
    out["start"], out["end"] = ts.iloc[0], ts.iloc[-1]
    if len(df) < 2:
        return out
    d = ts.diff().iloc[1:]
    step = expected_step or d.median()
    big = d[d > step * 1.5]
    out["step"] = step
    out["gaps"] = int(len(big))
    out["largest_gap"] = big.max() if len(big) else pd.Timedelta(0)
    span = ts.iloc[-1] - ts.iloc[0]
    expected_rows = span / step + 1 if step > pd.Timedelta(0) else len(df)
    out["missing_share"] = float(max(0.0, 1.0 - len(df) / expected_rows))
    return out


def coverage(data: Dataset | Collection) -> pd.DataFrame:
    """One row per venue and table: rows, start, end, step, gaps, largest gap, missing share.

    Parameters
    ----------
    data : Dataset or Collection

    Returns
    -------
    pd.DataFrame
        (venues × tables) rows × (venue, table, rows, start, end, step, gaps, largest_gap, missing_share).
    """
    datasets = data.datasets if isinstance(data, Collection) else (data,)
    rows = []
    for ds in datasets:
        for name, df in ds.tables().items():
            if "ts" not in df.columns:
                rows.append({"venue": ds.venue, "table": name, "rows": len(df)})
                continue
            step = pd.Timedelta(hours=8) if name == "funding" else None
            c = table_coverage(df, step) if name != "liquidations" else {"rows": len(df),
                "start": df["ts"].iloc[0] if len(df) else None, "end": df["ts"].iloc[-1] if len(df) else None}
            rows.append({"venue": ds.venue, "table": name, **c})
    cols = ["venue", "table", "rows", "start", "end", "step", "gaps", "largest_gap", "missing_share"]
    out = pd.DataFrame(rows).reindex(columns=cols)
    out["gaps"] = out["gaps"].astype("Int64")  # counts (empty where not applicable, e.g. event tables)
    return out


def resample_ohlcv(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Aggregate 1m bars to a coarser step (open first, high max, low min, close last, volumes summed).

    Parameters
    ----------
    df : pd.DataFrame
        An ``ohlcv`` table (prices USD, volumes base units).
    rule : str
        pandas offset alias, e.g. ``'1h'``; bars are labelled by their left (UTC) edge.

    Returns
    -------
    pd.DataFrame
        The coarser bars; steps without a bar are dropped.
    """
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    for c in ("taker_buy_volume",):
        if c in df:
            agg[c] = "sum"
    if "mark_close" in df:
        agg["mark_close"] = "last"
    out = df.set_index("ts").resample(rule, label="left", closed="left").agg(agg).dropna(subset=["close"])
    return out.reset_index()


def oi_usd(ds: Dataset) -> pd.Series:
    """Open interest in USD indexed by ts (the stored value, or base units × close).

    Parameters
    ----------
    ds : Dataset

    Returns
    -------
    pd.Series
        USD, indexed by the open-interest timestamps (UTC).
    """
    oi = ds.open_interest.set_index("ts")
    val = oi["open_interest_value"]
    if not np.isfinite(val).all() or (val == 0).all():
        close = ds.ohlcv.set_index("ts")["close"].reindex(oi.index, method="ffill")
        val = oi["open_interest"] * close
    return val
