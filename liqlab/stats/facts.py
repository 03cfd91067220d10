"""Stylized facts of open interest: one table that puts real and simulated markets side by side.

For each dataset (one venue and symbol) and each sampling step (the data's native open-interest step,
and 1 h by default) the facts of the relative open-interest change ``ΔOI/OI``, of its relation to the
price, to funding and to realized liquidations. Definitions (docs/FACTS.md has the reasoning):

- **Instants.** An open-interest row at ``ts`` is the open interest (base units) at the instant ``ts``.
  The price at an instant ``τ`` is the close of the bar that ends at ``τ`` (the bar labelled
  ``τ − bar step``; bars are labelled by their open); no such bar: no price (NaN).
- **Steps.** At the native step the snapshots are used as stored. At a coarser step ``S`` (e.g. ``1h``)
  the last snapshot of each UTC window ``[kS, (k+1)S)`` is kept, at its own instant.
- **Changes.** ``ΔOI_t/OI = (OI_t − OI_{t−1}) / OI_{t−1}`` between two kept snapshots exactly ``S``
  apart (never across a gap), and ``r_t = log p(t) − log p(t − S)`` over the same interval ``(t − S, t]``.
  ``r_{t−1}`` and ``r_{t+1}`` are the returns of the interval before and after.
- ``doi_sd``: standard deviation of ΔOI/OI (population, ``ddof=0``; a fraction per step).
- ``doi_kurtosis``: EXCESS (Fisher) kurtosis of ΔOI/OI, moment estimator ``m4 / m2² − 3`` (0 for a
  normal distribution).
- ``doi_top10_share``: the sum of the ``⌈0.1 n⌉`` largest of the ``n`` changes (positive ones only)
  over the sum of all positive changes: the share of all OI increases made in the top 10 % of steps.
- ``corr_abs_doi_abs_r``: Pearson corr(|ΔOI/OI|, |r|); ``corr_doi_r_prev``, ``corr_doi_r``,
  ``corr_doi_r_next``: Pearson corr of ΔOI_t/OI with ``r_{t−1}``, ``r_t``, ``r_{t+1}`` (the lead/lag: a
  snapshot stored one step off its instant moves the largest |corr| off the middle).
- ``doi_acf1``: lag-1 autocorrelation of ΔOI/OI (Pearson corr of adjacent changes).
- ``funding_corr_doi``, ``funding_corr_r``: Pearson corr of the funding rate paid at the end of each
  funding interval with ΔOI/OI and with ``r`` over that interval (the public stand-in for "funding
  against the long/short imbalance", which public data does not carry).
- ``liq_top1_share``: share of realized liquidation USD (both sides) in the top 1 % of hours
  (``⌈0.01 n⌉`` of the ``n`` hours with a price); ``liq_corr_abs_r``: Pearson corr of hourly
  liquidation USD with |r| of the same hour.
- ``oi_usd_median``: median open interest in USD (the level).

Facts that cannot be computed are NaN and the row's ``note`` says why. Computation only (no plotting).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from liqlab._util import to_ns
from liqlab.io.dataset import Collection, Dataset
from liqlab.errors import ParameterError
from liqlab.stats.metrics import _clean, _pearson

__all__ = [
    "DEFINITIONS",
    "DEFAULT_STEPS",
    "FACTS",
    "OIPath",
    "STEP_FACTS",
    "excess_kurtosis",
    "oi_path",
    "facts_side_by_side",
    "stylized_facts",
    "top_share",
    "REAL_BANDS",
    "band_check",
]

HOUR_NS = 3_600_000_000_000
DEFAULT_STEPS: tuple[str, ...] = ("native", "1h")
DEFAULT_FUNDING_HOURS = 8  # payments at 00, 08, 16 UTC when the funding table is a per-bar sample
TOP_FRACTION = 0.10  # doi_top10_share
LIQ_TOP_FRACTION = 0.01  # liq_top1_share

# facts that depend on the sampling step, then those computed on their own grid (funding interval, hour)
STEP_FACTS: tuple[str, ...] = (
    "doi_sd", "doi_kurtosis", "doi_top10_share", "corr_abs_doi_abs_r",
    "corr_doi_r_prev", "corr_doi_r", "corr_doi_r_next", "doi_acf1",
)
GRID_FACTS: tuple[str, ...] = ("funding_corr_doi", "funding_corr_r", "liq_top1_share", "liq_corr_abs_r",
                               "oi_usd_median")
FACTS: tuple[str, ...] = STEP_FACTS + GRID_FACTS
COUNTS: tuple[str, ...] = ("n_steps", "n_funding", "n_hours")

DEFINITIONS: dict[str, str] = {
    "doi_sd": "sd of ΔOI/OI per step (population, ddof=0; OI in base units)",
    "doi_kurtosis": "excess (Fisher) kurtosis of ΔOI/OI, m4/m2² − 3 (normal: 0)",
    "doi_top10_share": "sum of the ⌈0.1·n⌉ largest ΔOI/OI (positive only) / sum of all positive ΔOI/OI",
    "corr_abs_doi_abs_r": "Pearson corr(|ΔOI_t/OI|, |r_t|)",
    "corr_doi_r_prev": "Pearson corr(ΔOI_t/OI, r_{t−1}) (OI follows price)",
    "corr_doi_r": "Pearson corr(ΔOI_t/OI, r_t), the same interval",
    "corr_doi_r_next": "Pearson corr(ΔOI_t/OI, r_{t+1}) (OI leads price, or OI stored one step early)",
    "doi_acf1": "lag-1 autocorrelation of ΔOI/OI",
    "funding_corr_doi": "Pearson corr(funding rate paid at the end of an interval, ΔOI/OI over it)",
    "funding_corr_r": "Pearson corr(funding rate paid at the end of an interval, log return over it)",
    "liq_top1_share": "share of realized liquidation USD in the top 1 % of hours",
    "liq_corr_abs_r": "Pearson corr(hourly realized liquidation USD, |hourly log return|)",
    "oi_usd_median": "median open interest, USD",
    "n_steps": "number of ΔOI/OI values (changes exactly one step apart)",
    "n_funding": "number of funding intervals with a rate, OI and price at both ends",
    "n_hours": "number of hours with an hourly return (the liquidation grid)",
}


# ------------------------------------------------------------------------------------------ statistics


def excess_kurtosis(x: np.ndarray) -> float:
    """Excess (Fisher) kurtosis ``m4 / m2² − 3`` of the finite values (moment estimator); NaN if n < 4
    or constant.

    Parameters
    ----------
    x : np.ndarray
        (n,) values.

    Returns
    -------
    float
    """
    (x,) = _clean(x)
    if x.size < 4:
        return math.nan
    d = x - x.mean()
    m2 = float(np.mean(d * d))
    return float(np.mean(d ** 4)) / (m2 * m2) - 3.0 if m2 > 0 else math.nan


def top_share(x: np.ndarray, fraction: float) -> float:
    """Sum of the ``⌈fraction·n⌉`` largest of the ``n`` finite values (negative ones count 0) over the sum
    of all positive values; NaN if nothing is positive.

    Parameters
    ----------
    x : np.ndarray
        (n,) values.
    fraction : float
        Share of the values counted as "top", in (0, 1].

    Returns
    -------
    float
        In [0, 1].
    """
    (x,) = _clean(x)
    total = float(x[x > 0].sum())
    if x.size == 0 or total <= 0:
        return math.nan
    k = int(math.ceil(fraction * x.size - 1e-9))
    top = np.partition(x, x.size - k)[x.size - k:]
    return float(top[top > 0].sum()) / total


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the pairs where both are finite (NaN if fewer than 3 or either is constant)."""
    a, b = _clean(a, b)
    return _pearson(a, b) if a.size >= 3 else math.nan


def _sd(x: np.ndarray) -> float:
    (x,) = _clean(x)
    return float(np.std(x)) if x.size >= 2 else math.nan


# ------------------------------------------------------------------------------------- time alignment


def _median_step(t: np.ndarray) -> int | None:
    return int(np.median(np.diff(t))) if t.size > 1 else None


def _at(t: np.ndarray, values: np.ndarray, instants: np.ndarray) -> np.ndarray:
    """``values`` at exactly ``instants`` (``t`` sorted, unique, ns); NaN where ``t`` has no such instant."""
    out = np.full(instants.shape, np.nan)
    if t.size == 0:
        return out
    i = np.minimum(np.searchsorted(t, instants), t.size - 1)
    hit = t[i] == instants
    out[hit] = values[i[hit]]
    return out


@dataclass(frozen=True)
class _Prices:
    """Close prices indexed by the instant their bar ends (``bar ts + bar step``), ns UTC."""

    end: np.ndarray
    close: np.ndarray

    def log_at(self, instants: np.ndarray) -> np.ndarray:
        return np.log(_at(self.end, self.close, instants))


def _prices(ds: Dataset) -> _Prices:
    t = to_ns(ds.ohlcv["ts"])
    bar = _median_step(t) or 0
    return _Prices(end=t + bar, close=ds.ohlcv["close"].to_numpy(dtype=float))


def _last_per_window(t: np.ndarray, step: int) -> np.ndarray:
    """Indices of the last of the sorted instants ``t`` in each UTC window ``[k·step, (k+1)·step)``."""
    w = np.floor_divide(t, step)
    return np.flatnonzero(np.r_[w[1:] != w[:-1], True]) if t.size else np.zeros(0, dtype=np.int64)


# ---------------------------------------------------------------------------------------- OI path


@dataclass(frozen=True)
class OIPath:
    """Open interest sampled at one step, with the log returns around each snapshot.

    ``t``: instants (ns UTC, shape (n,)); ``doi``: ΔOI/OI over ``(t − step, t]`` (NaN for the first
    snapshot, after a gap or from zero OI); ``r_prev``, ``r``, ``r_next``: log returns of the intervals
    ending at ``t − step``, ``t`` and ``t + step`` (NaN where a price is missing).
    """

    step: int
    t: np.ndarray
    doi: np.ndarray
    r_prev: np.ndarray
    r: np.ndarray
    r_next: np.ndarray


def oi_path(ds: Dataset, step: int, *, native: bool, prices: _Prices | None = None) -> OIPath:
    """Sample the dataset's base-unit open interest at ``step`` ns (``native``: the rows as stored).

    Parameters
    ----------
    ds : Dataset
    step : int
        Sampling step in ns (ignored when ``native``).
    native : bool
        Use the rows as stored.
    prices : _Prices, optional
        The dataset's close series (computed when None).

    Returns
    -------
    OIPath
        Times (ns UTC), open interest (base units) and close (USD) at each sample.
    """
    t = to_ns(ds.open_interest["ts"])
    oi = ds.open_interest["open_interest"].to_numpy(dtype=float)
    if not native:
        keep = _last_per_window(t, step)
        t, oi = t[keep], oi[keep]
    doi = np.full(t.shape, np.nan)
    if t.size > 1:
        prev = oi[:-1]
        ok = (np.diff(t) == step) & (prev > 0)
        doi[1:][ok] = (oi[1:][ok] - prev[ok]) / prev[ok]
    lp = (prices or _prices(ds)).log_at
    at = [lp(t + k * step) for k in (-2, -1, 0, 1)]
    return OIPath(step=step, t=t, doi=doi, r_prev=at[1] - at[0], r=at[2] - at[1], r_next=at[3] - at[2])


def _path_facts(p: OIPath) -> dict[str, float]:
    d = p.doi
    return {
        "doi_sd": _sd(d),
        "doi_kurtosis": excess_kurtosis(d),
        "doi_top10_share": top_share(d, TOP_FRACTION),
        "corr_abs_doi_abs_r": _corr(np.abs(d), np.abs(p.r)),
        "corr_doi_r_prev": _corr(d, p.r_prev),
        "corr_doi_r": _corr(d, p.r),
        "corr_doi_r_next": _corr(d, p.r_next),
        "doi_acf1": _corr(d[1:], d[:-1]),
        "n_steps": float(np.isfinite(d).sum()),
    }


# ------------------------------------------------------------------------------ funding, liquidations


def _payments(ds: Dataset, bar: int, funding_hours: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Funding payments (instants ns, rates, interval ns). A table spaced like the bars or finer than 1 h
    is read as the rate in force per bar (CSV exports): one payment every ``funding_hours`` from 00:00 UTC,
    at the last rate before it (within the interval)."""
    t = to_ns(ds.funding["ts"])
    f = ds.funding["funding_rate"].to_numpy(dtype=float)
    step = _median_step(t)
    if step is None:
        return t, f, funding_hours * HOUR_NS
    if step >= HOUR_NS and step > bar:
        return t, f, step
    every = funding_hours * HOUR_NS
    pay = np.arange(-(-t[0] // every) * every, t[-1] + step + 1, every, dtype=np.int64)  # last row lasts a step
    i = np.searchsorted(t, pay, side="left") - 1  # last row strictly before the payment
    ok = (i >= 0) & (t[np.maximum(i, 0)] >= pay - every)
    return pay[ok], f[i[ok]], every


def _funding_facts(ds: Dataset, prices: _Prices, bar: int, funding_hours: int) -> dict[str, float]:
    out = {"funding_corr_doi": math.nan, "funding_corr_r": math.nan, "n_funding": 0.0}
    if len(ds.funding) == 0:
        return out
    pay, rate, every = _payments(ds, bar, funding_hours)
    t_oi = to_ns(ds.open_interest["ts"])
    oi = ds.open_interest["open_interest"].to_numpy(dtype=float)
    o1, o0 = _at(t_oi, oi, pay), _at(t_oi, oi, pay - every)
    with np.errstate(divide="ignore", invalid="ignore"):
        doi = np.where(o0 > 0, (o1 - o0) / o0, np.nan)
    r = prices.log_at(pay) - prices.log_at(pay - every)
    out["funding_corr_doi"] = _corr(rate, doi)
    out["funding_corr_r"] = _corr(rate, r)
    out["n_funding"] = float((np.isfinite(doi) & np.isfinite(r) & np.isfinite(rate)).sum())
    return out


def _liquidation_facts(ds: Dataset, prices: _Prices) -> dict[str, float]:
    out = {"liq_top1_share": math.nan, "liq_corr_abs_r": math.nan, "n_hours": 0.0}
    hours = np.unique(np.floor_divide(to_ns(ds.ohlcv["ts"]), HOUR_NS)) * HOUR_NS
    r = prices.log_at(hours + HOUR_NS) - prices.log_at(hours)
    hours, r = hours[np.isfinite(r)], r[np.isfinite(r)]
    out["n_hours"] = float(hours.size)
    liq = ds.liquidations
    if liq is None or len(liq) == 0 or hours.size == 0:
        return out
    h = np.floor_divide(to_ns(liq["ts"]), HOUR_NS) * HOUR_NS
    i = np.searchsorted(hours, h)
    inside = (i < hours.size) & (hours[np.minimum(i, hours.size - 1)] == h)
    usd = np.bincount(i[inside], weights=liq["value"].to_numpy(dtype=float)[inside], minlength=hours.size)
    out["liq_top1_share"] = top_share(usd, LIQ_TOP_FRACTION)
    out["liq_corr_abs_r"] = _corr(usd, np.abs(r))
    return out


# ---------------------------------------------------------------------------------------------- table


def _parse_step(spec: str) -> int | None:
    """``"native"`` -> None; otherwise a positive pandas duration ("5min", "1h") in ns."""
    if spec == "native":
        return None
    try:
        ns = int(pd.Timedelta(spec).value)
    except (ValueError, TypeError):
        raise ParameterError(f"step: not a duration or 'native': {spec!r} (e.g. 5min, 1h)") from None
    if ns <= 0:
        raise ParameterError(f"step: must be positive, got {spec!r}")
    return ns


def _step_text(ns: int | None) -> str:
    if ns is None:
        return ""
    off = pd.tseries.frequencies.to_offset(pd.Timedelta(ns, unit="ns"))
    return off.freqstr if off.freqstr[0].isdigit() else f"1{off.freqstr}"


def _dataset_rows(ds: Dataset, label: str, steps: tuple[str, ...], funding_hours: int) -> list[dict]:
    prices = _prices(ds)
    bar = _median_step(to_ns(ds.ohlcv["ts"])) or 0
    t_oi = to_ns(ds.open_interest["ts"])
    native = _median_step(t_oi)
    grid = {**_funding_facts(ds, prices, bar, funding_hours), **_liquidation_facts(ds, prices)}
    oi_usd = ds.open_interest["open_interest_value"].to_numpy(dtype=float)
    grid["oi_usd_median"] = float(np.median(oi_usd)) if oi_usd.size else math.nan
    base = {"dataset": label, "venue": ds.venue, "synthetic": ds.synthetic}
    rows = []
    for spec in steps:
        step = _parse_step(spec)
        row: dict = {**base, "step": spec, "step_used": _step_text(step or native),
                     **dict.fromkeys(STEP_FACTS, math.nan), "n_steps": 0.0, **grid}
        notes = []
        if native is None:
            notes.append("no open interest" if t_oi.size == 0 else "one open-interest row")
        elif step is not None and step < native:
            notes.append(f"step {spec} is finer than the native open-interest step {_step_text(native)}")
        else:
            path = oi_path(ds, step or native, native=step is None, prices=prices)
            row.update(_path_facts(path))
            if row["n_steps"] < 4:
                notes.append(f"only {int(row['n_steps'])} open-interest changes one step apart")
            elif not np.isfinite(path.r).any():
                notes.append("no price at the open-interest instants (bars coarser than the step?)")
        if len(ds.funding) == 0:
            notes.append("no funding")
        if ds.liquidations is None or len(ds.liquidations) == 0:
            notes.append("no realized liquidations")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return rows


Data = Dataset | Collection


def _labelled(data: Data | Mapping[str, Data] | Iterable[Data]) -> list[tuple[str, Dataset]]:
    if isinstance(data, Dataset):
        return [(data.venue, data)]
    if isinstance(data, Collection):
        return [(d.venue, d) for d in data]
    items = data.items() if isinstance(data, Mapping) else ((None, d) for d in data)
    out = []
    for key, item in items:
        for venue, ds in _labelled(item):
            out.append((venue if key is None else (key if isinstance(item, Dataset) else f"{key}/{venue}"), ds))
    return out


def stylized_facts(
    data: Data | Mapping[str, Data] | Iterable[Data],
    *,
    steps: Iterable[str] = DEFAULT_STEPS,
    funding_hours: int = DEFAULT_FUNDING_HOURS,
) -> pd.DataFrame:
    """The stylized facts of open interest, one row per dataset (venue) and step.

    ``data``: a Dataset, a Collection (one row group per venue), or several of them as a mapping
    ``{label: data}`` or a list. ``steps``: ``"native"`` (the open-interest table's median spacing, as
    stored) and/or durations such as ``"1h"`` (last snapshot per UTC window). ``funding_hours``: the
    payment interval assumed when the funding table is a per-bar sample of the rate in force.

    Columns: dataset, venue, synthetic, step, step_used, the :data:`FACTS` (definitions in
    :data:`DEFINITIONS` and the module docstring), n_steps, n_funding, n_hours, note (why facts are NaN).
    The funding, liquidation and level facts do not depend on the step and repeat in each step's row.

    Parameters
    ----------
    data : Dataset, Collection, Mapping or iterable of them
    steps : iterable of str
    funding_hours : int

    Returns
    -------
    pd.DataFrame
        One row per dataset/venue and step.
    """
    steps = tuple(steps)
    if not steps:
        raise ParameterError("steps: give at least one step ('native', '1h', ...)")
    for s in steps:
        _parse_step(s)
    if not (isinstance(funding_hours, (int, np.integer)) and 1 <= funding_hours <= 24):
        raise ParameterError(f"funding_hours: must be an integer in 1..24, got {funding_hours!r}")
    labelled = _labelled(data)
    seen: dict[str, int] = {}
    for i, (label, ds) in enumerate(labelled):  # the same venue twice in a list: "okx", "okx #2"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labelled[i] = (f"{label} #{seen[label]}", ds)
    rows = [row for label, ds in labelled for row in _dataset_rows(ds, label, steps, funding_hours)]
    cols = ["dataset", "venue", "synthetic", "step", "step_used", *FACTS, *COUNTS, "note"]
    return pd.DataFrame(rows, columns=cols)


def facts_side_by_side(facts: pd.DataFrame) -> pd.DataFrame:
    """Datasets as columns: rows ``(step, fact)`` for the step facts, then the funding, liquidation and
    level facts once (group ``"any step"``), from a :func:`stylized_facts` table.

    Parameters
    ----------
    facts : pd.DataFrame
        A :func:`stylized_facts` table.

    Returns
    -------
    pd.DataFrame
        Index (group, fact), one column per dataset/venue.
    """
    labels = list(dict.fromkeys(facts["dataset"]))
    by = facts.set_index(["dataset", "step"])
    blocks = []
    for step in dict.fromkeys(facts["step"]):
        part = by.xs(step, level="step").reindex(labels)
        block = part[["step_used", *STEP_FACTS, "n_steps"]].T
        block.index = pd.MultiIndex.from_product([[step], block.index])
        blocks.append(block)
    first = by.groupby(level="dataset", sort=False).head(1).droplevel("step").reindex(labels)
    grid = first[["synthetic", *GRID_FACTS, "n_funding", "n_hours"]].T
    grid.index = pd.MultiIndex.from_product([["any step"], grid.index])
    out = pd.concat([grid.iloc[:1], *blocks, grid.iloc[1:]])
    out.columns.name = None
    return out


# The real market's bands for the simulator's default world (BTC perpetuals on a large venue; the real
# files and their figures are in docs/FACTS.md). Wide on purpose: two real 5m windows and a 1h file
# span them, and a simulator fitted to one window would only reproduce that window.
# (step, fact) -> (low, high); step "native" is the 5m open-interest step.
REAL_BANDS: dict[tuple[str, str], tuple[float, float]] = {
    ("native", "doi_kurtosis"): (20.0, math.inf),
    ("native", "doi_top10_share"): (0.55, 0.75),
    ("native", "corr_abs_doi_abs_r"): (0.10, 0.35),
    ("1h", "corr_abs_doi_abs_r"): (0.25, 0.55),
    ("1h", "doi_kurtosis"): (8.0, math.inf),
    ("native", "oi_usd_median"): (2e9, 2e10),
}


def band_check(facts: pd.DataFrame, bands: Mapping[tuple[str, str], tuple[float, float]] = REAL_BANDS) -> pd.DataFrame:
    """One row per dataset/venue and banded fact of a :func:`stylized_facts` table: value, low, high, inside.

    Parameters
    ----------
    facts : pd.DataFrame
        A :func:`stylized_facts` table.
    bands : Mapping
        (step, fact) → (low, high).

    Returns
    -------
    pd.DataFrame
        Columns dataset, venue, step, fact, value, low, high, inside.
    """
    rows = []
    for (step, fact), (lo, hi) in bands.items():
        for _, r in facts[facts["step"] == step].iterrows():
            v = float(r[fact])
            rows.append({"dataset": r["dataset"], "venue": r["venue"], "step": step, "fact": fact, "value": v,
                         "low": lo, "high": hi, "inside": bool(lo <= v <= hi)})
    return pd.DataFrame(rows, columns=["dataset", "venue", "step", "fact", "value", "low", "high", "inside"])
