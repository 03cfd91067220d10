"""The ``coinglass-csv`` format: CSV exports with ``price_*`` OHLC, ``oi_*`` (USD), ``funding_*`` and optional
``liquidation_long_usd`` / ``liquidation_short_usd`` columns; and the measured alignment of its open interest
to the bars (:func:`oi_alignment`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.io.importers.read import _ISO_RE, _LINE, _Parsed, _bar_spacing, _csv_rows, _epoch, _is_number, _iso_time, _line, _numeric, _table_from_rows, _tag

FUNDING_UNITS = ("auto", "fraction", "percent")


def _funding_scale(values: np.ndarray, unit: str, label: str) -> tuple[float, str]:
    """Factor that turns the file's funding column into a fraction per interval, and the unit used."""
    if unit not in FUNDING_UNITS:
        raise ParameterError(f"--funding-unit: must be one of {list(FUNDING_UNITS)}, got {unit!r}")
    if unit == "fraction":
        return 1.0, "fraction"
    if unit == "percent":
        return 0.01, "percent"
    finite = np.abs(values[np.isfinite(values)])
    # typical funding is ~1e-4 as a fraction (0.01 as a percent); a median above 1e-3 means percent
    if finite.size and float(np.median(finite)) > 1e-3:
        return 0.01, "percent (auto: median |rate| > 0.001)"
    return 1.0, "fraction (auto: median |rate| <= 0.001)"


def _read_coinglass(label: str, raw: bytes, funding_unit: str, parsed: _Parsed) -> int:
    rows, lines = _csv_rows(label, raw)
    if not rows or _is_number(rows[0][0]):
        raise DataError(f"{label} line 1: a coinglass CSV needs a header row (timestamp, price_open, ..., oi_close, funding_close)")
    header = [h.lower() for h in rows[0]]
    tcol = "timestamp" if "timestamp" in header else ("datetime_utc" if "datetime_utc" in header else None)
    if tcol is None:
        raise DataError(f"{label} line {lines[0]}: bad header: no 'timestamp' or 'datetime_utc' column")
    needed = [tcol, "price_open", "price_high", "price_low", "price_close"]
    optional = [c for c in ("oi_close", "funding_close", "liquidation_long_usd", "liquidation_short_usd", "volume")
                if c in header]
    if tcol == "timestamp" and "datetime_utc" in header:
        optional.append("datetime_utc")
    df = _table_from_rows(label, rows, lines, header, needed + optional)
    ts = _epoch(df, tcol, label) if tcol == "timestamp" else _iso_time(df, tcol, label)
    if "datetime_utc" in optional:
        _same_times(ts, df, "datetime_utc", label)
        optional.remove("datetime_utc")
    bar = _bar_spacing(ts, df, label)
    price_cols = ["price_open", "price_high", "price_low", "price_close"]
    _numeric(df, price_cols + optional, label)
    volume = df["volume"] if "volume" in df else pd.Series(np.zeros(len(df)), index=df.index)
    ohlcv = pd.DataFrame({"ts": ts, "open": df["price_open"], "high": df["price_high"], "low": df["price_low"],
                          "close": df["price_close"], "volume": volume, _LINE: df[_LINE]})
    parsed.add("ohlcv", _tag(ohlcv, label))
    notes = parsed.notes
    notes["price_source"] = "coinglass-csv price_* columns (CoinGlass exports may carry spot prices, not the perpetual's)"
    if "volume" not in df:
        notes["volume"] = "not in source; stored as 0 (no taker or volume information)"
    if "oi_close" in df:
        oi_usd = df["oi_close"].to_numpy()
        al = oi_alignment(ts, df["price_open"].to_numpy(), df["price_close"].to_numpy(), oi_usd, bar)
        at_open = al.instant == "open"
        price = df["price_open" if at_open else "price_close"].to_numpy()
        oi_ts = ts if at_open or bar is None else ts + pd.Timedelta(int(bar), "ns")
        oi = pd.DataFrame({"ts": oi_ts, "open_interest": oi_usd / price, "open_interest_value": oi_usd,
                           _LINE: df[_LINE]})
        parsed.add("open_interest", _tag(oi, label))
        notes["open_interest_source"] = (
            f"coinglass-csv oi_close is USD: open_interest (base) = oi_close / the price at the OI's instant "
            f"(the bar's {'open: price_open, stored at the bar open time' if at_open else 'close: price_close, stored at the bar close time'})"
        )
        notes["open_interest_alignment"] = al.note
        if al.warning:
            parsed.warnings.append(f"{label}: {al.warning}")
    if "funding_close" in df:
        f = df["funding_close"].to_numpy()
        scale, used = _funding_scale(f, funding_unit, label)
        fund = pd.DataFrame({"ts": ts, "funding_rate": f * scale, _LINE: df[_LINE]})
        parsed.add("funding", _tag(fund, label))
        notes["funding_source"] = f"coinglass-csv funding_close, unit {used}"
        notes["funding_sampled"] = (
            "one row per bar: the rate in force (last published / predicted), not one row per funding payment"
        )
    if "liquidation_long_usd" in df and "liquidation_short_usd" in df:
        close = df["price_close"]
        parts = []
        for side, col in (("long", "liquidation_long_usd"), ("short", "liquidation_short_usd")):
            v = df[col]
            parts.append(pd.DataFrame({"ts": ts, "side": side, "price": np.nan, "amount": v / close,
                                       "value": v, _LINE: df[_LINE]}))
        liq = pd.concat(parts, ignore_index=True).sort_values(["ts", "side"], kind="stable").reset_index(drop=True)
        liq["side"] = liq["side"].astype(object)
        parsed.add("liquidations", _tag(liq, label))
        notes["liquidations_source"] = (
            "coinglass-csv per-bar sums (price empty; amount = USD / bar close); CoinGlass may sum several venues"
        )
    return len(df)


def _same_times(ts: pd.Series, df: pd.DataFrame, col: str, label: str) -> None:
    """When the text column ``col`` holds ISO times, they must equal ``ts`` (else DataError naming the
    line); a column in another form is ignored (the epoch column is the source)."""
    s = df[col].astype(str).str.strip()
    if not s.str.fullmatch(_ISO_RE).all():
        return
    other = _iso_time(df, col, label)
    diff = (other.to_numpy() != ts.to_numpy())
    if diff.any():
        i = int(np.flatnonzero(diff)[0])
        raise DataError(f"{label} line {_line(df, i)}: timestamp is {ts.iloc[i].isoformat()} but {col} says "
                        f"{df[col].iloc[i]!r} ({other.iloc[i].isoformat()}); which one is right?")


@dataclass(frozen=True)
class OIAlignment:
    """Which instant of a bar a per-bar open-interest value belongs to, as measured by :func:`oi_alignment`.

    ``instant``: 'open' or 'close' of the bar; ``corr_same``/``corr_previous``: correlation of the USD
    OI change between consecutive rows with the log return of the same bar / of the previous bar;
    ``pairs``: consecutive bar pairs used; ``measured``: False when the data could not tell (then
    'close', the column's name, is assumed and ``warning`` says so).
    """

    instant: str
    corr_same: float | None
    corr_previous: float | None
    pairs: int
    measured: bool
    note: str
    warning: str | None = None


#: fewest consecutive bar pairs for the lead/lag measurement
OI_ALIGNMENT_MIN_PAIRS = 30


def oi_alignment(ts: pd.Series, price_open: np.ndarray, price_close: np.ndarray, oi_usd: np.ndarray,
                 bar_ns: int | None) -> OIAlignment:
    """Measure whether per-bar USD open interest is the value at the bar's open or at its close.

    USD open interest moves with price (value = base amount × price), so its change from one row to the
    next follows the return of the bar it spans. If the value is at the close, row t − row t−1 spans
    bar t (same-bar return); at the open it spans bar t−1 (previous-bar return). The instant whose
    correlation is higher by more than 4/√n (n bar pairs) and above 4/√n wins; otherwise it cannot be
    told (fewer than OI_ALIGNMENT_MIN_PAIRS pairs, or no clear difference) and 'close' is assumed.

    Parameters
    ----------
    ts : pd.Series
        Bar open times (UTC), shape (n,).
    price_open, price_close : np.ndarray
        Bar open and close (USD), shape (n,).
    oi_usd : np.ndarray
        Open interest per bar (USD), shape (n,).
    bar_ns : int or None
        The bar spacing (ns); None when unknown.

    Returns
    -------
    OIAlignment
        The instant, both correlations, the pairs used, whether it was measured, and the note to store.
    """
    t = np.asarray(ts.array.asi8, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(np.asarray(price_close, float) / np.asarray(price_open, float))
    n = len(t)
    cs = cp = None
    pairs = 0
    if bar_ns is not None and n >= 3:
        step = np.diff(t) == bar_ns
        i = np.flatnonzero(step[1:] & step[:-1]) + 2  # rows i with i-1 and i-2 one bar before each other
        d = np.diff(np.asarray(oi_usd, float))[i - 1]
        same, prev = r[i], r[i - 1]
        ok = np.isfinite(d) & np.isfinite(same) & np.isfinite(prev)
        d, same, prev = d[ok], same[ok], prev[ok]
        pairs = int(d.size)
        if pairs >= 3 and np.std(d) > 0 and np.std(same) > 0 and np.std(prev) > 0:
            cs = float(np.corrcoef(d, same)[0, 1])
            cp = float(np.corrcoef(d, prev)[0, 1])
    what = (f"corr(change of oi_close in USD, log return of the same bar) = {cs:+.2f}, of the previous bar "
            f"= {cp:+.2f}, over {pairs} consecutive bar pairs" if cs is not None else
            f"{pairs} consecutive bar pairs with varying prices and OI")
    z = 4.0 / math.sqrt(max(pairs, 1))
    if cs is not None and pairs >= OI_ALIGNMENT_MIN_PAIRS:
        if cp - cs > z and cp > z:
            return OIAlignment("open", cs, cp, pairs, True,
                               f"measured at import: {what}: the value is the OI at the bar's OPEN; converted to "
                               f"base units with price_open and stored at the bar's open time")
        if cs - cp > z and cs > z:
            return OIAlignment("close", cs, cp, pairs, True,
                               f"measured at import: {what}: the value is the OI at the bar's CLOSE; converted to "
                               f"base units with price_close and stored at the bar's close time (open + one bar)")
    warning = (f"cannot tell whether oi_close is the OI at the bar's open or at its close ({what}; need >= "
               f"{OI_ALIGNMENT_MIN_PAIRS} pairs and a clear difference); assumed the close (price_close, stored at "
               f"the bar's close time)")
    return OIAlignment("close", cs, cp, pairs, False, "NOT measured: " + warning, warning)
