"""Validation of a heatmap against realized liquidations (docs/VALIDATION.md).

For every validation step j (length Δ, the heatmap's ``time_step``) the heatmap snapshot taken at the
END of step j−1 (so before any bar of step j: no look-ahead) says how much USD notional step j's bars
sweep: long levels with bin centre ≥ the step's low, short levels with centre ≤ its high (the engine's
own clearing rule). That swept notional is compared, per side, with the realized liquidations of step j
(USD, events or per-bar sums, summed over the venues of the source) by rank metrics, next to simple
baselines computed the same way, and to what the heatmap adds beyond the bar's excursion.

Metrics (one source of truth: :func:`side_metrics`):

- ``spearman``: Spearman rank correlation of predicted vs realized (average ranks for ties).
- ``top_decile_capture``: share of realized USD that fell in the steps the prediction ranks in its top
  10 % (ties at the cut-off count fractionally: the expectation under random tie-breaking).
- ``auc_p95``: ROC AUC of the prediction for the event "realized > its 95th percentile" (Mann-Whitney).

Shapes: maps are (T, B) USD, series are (T,) per step; times are UTC.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError, ParameterError
from liqlab.engine.params import HeatmapParams, utc_time
from liqlab.io.dataset import notes_dict

__all__ = [
    "METRICS",
    "SIDES",
    "SIDE_SPLITS",
    "StepBars",
    "Validation",
    "auc_exceedance",
    "baseline_series",
    "beyond_excursion",
    "block_bootstrap_indices",
    "infer_step",
    "naive_maps",
    "naive_overrides",
    "partial_spearman",
    "partial_spearman_ci",
    "placebo_data",
    "r2_gain",
    "rankdata",
    "realized_per_step",
    "side_metrics",
    "spearman",
    "step_bars",
    "swept_notional",
    "top_decile_capture",
    "validate",
]

METRICS = ("spearman", "top_decile_capture", "auc_p95")
SIDES = ("long", "short")
SIDE_SPLITS = ("both", "taker", "candle", "fixed")
BASELINES = ("excursion_oi", "abs_return_oi", "volume", "naive_map", "placebo_map")
TOP_FRACTION = 0.10  # top decile
EXCEED_QUANTILE = 0.95  # "big liquidation step" threshold for the AUC
R2_TRAIN_FRACTION = 0.6  # chronological split for the out-of-sample R² gain
N_BOOT = 500  # bootstrap replications for the CIs
CI_LEVEL = 0.95


# ------------------------------------------------------------------------------------------ metrics


def _clean(*arrays: np.ndarray) -> list[np.ndarray]:
    """Drop positions where any array is not finite."""
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    n = {a.shape for a in arrs}
    if len(n) != 1:
        raise ParameterError(f"series have different shapes {sorted(n)}")
    ok = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        ok &= np.isfinite(a)
    return [a[ok] for a in arrs]


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) of a 1-D array; ties share the mean of their ranks."""
    x = np.asarray(x, dtype=float)
    n = x.size
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # boundaries of runs of equal values
    new = np.r_[True, xs[1:] != xs[:-1]]
    start = np.flatnonzero(new)
    end = np.r_[start[1:], n]
    avg = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(n, dtype=float)
    ranks[order] = np.repeat(avg, end - start)
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else float("nan")


def spearman(pred: np.ndarray, real: np.ndarray) -> float:
    """Spearman rank correlation (NaN pairs dropped; NaN if either side is constant or n < 3)."""
    p, r = _clean(pred, real)
    if p.size < 3:
        return float("nan")
    return _pearson(rankdata(p), rankdata(r))


def top_decile_capture(pred: np.ndarray, real: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Share of total realized value in the steps the prediction ranks in its top ``fraction``.

    Exactly ``fraction·n`` steps are "top"; steps tied with the cut-off value count fractionally
    (the expected capture under random tie-breaking). NaN if nothing was realized.
    """
    if not 0 < fraction <= 1:
        raise ParameterError(f"fraction must be in (0, 1], got {fraction}")
    p, r = _clean(pred, real)
    total = float(r.sum())
    if p.size == 0 or total <= 0:
        return float("nan")
    k = fraction * p.size  # number of top slots (may be fractional)
    order = np.argsort(-p, kind="mergesort")
    ps, rs = p[order], r[order]
    captured = 0.0
    taken = 0.0
    i = 0
    n = ps.size
    while i < n and taken < k:
        j = i
        while j < n and ps[j] == ps[i]:
            j += 1
        group = j - i
        share = min(1.0, (k - taken) / group)
        captured += share * float(rs[i:j].sum())
        taken += share * group
        i = j
    return captured / total


def auc_exceedance(pred: np.ndarray, real: np.ndarray, quantile: float = EXCEED_QUANTILE) -> float:
    """ROC AUC of ``pred`` for the event ``real > quantile(real)`` (ties count 1/2; NaN if one class)."""
    p, r = _clean(pred, real)
    if p.size == 0:
        return float("nan")
    y = r > np.quantile(r, quantile)
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    u = float(ranks[y].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y controlling for z (partial correlation of the ranks)."""
    a, b, c = _clean(x, y, z)
    if a.size < 4:
        return float("nan")
    ra, rb, rc = rankdata(a), rankdata(b), rankdata(c)
    rxy, rxz, ryz = _pearson(ra, rb), _pearson(ra, rc), _pearson(rb, rc)
    den = math.sqrt(max(0.0, (1 - rxz**2) * (1 - ryz**2)))
    return (rxy - rxz * ryz) / den if den > 0 else float("nan")


def side_metrics(pred: np.ndarray, real: np.ndarray) -> dict[str, float | None]:
    """The metric set (``METRICS``) of one prediction for one side."""
    out = {
        "spearman": spearman(pred, real),
        "top_decile_capture": top_decile_capture(pred, real),
        "auc_p95": auc_exceedance(pred, real),
    }
    return {k: _num(v) for k, v in out.items()}


def _num(v: float) -> float | None:
    """JSON-friendly float: NaN/inf become None."""
    return float(v) if v is not None and np.isfinite(v) else None


# ---------------------------------------------------------------------------------------- bootstrap


def default_block_length(n: int) -> int:
    """Moving-block length: ⌈n^(1/3)⌉ (the usual rate for variance estimation), at least 1."""
    return max(1, math.ceil(n ** (1.0 / 3.0)))


def block_bootstrap_indices(n: int, n_boot: int, block: int | None = None, seed: int = 0) -> np.ndarray:
    """(n_boot, n) index arrays of a moving-block bootstrap (overlapping blocks, cut to length n)."""
    if n <= 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    block = default_block_length(n) if block is None else max(1, min(int(block), n))
    rng = np.random.default_rng(seed)
    nblocks = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(n_boot, nblocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(n_boot, -1)[:, :n]
    return idx


def _ci(values: np.ndarray, level: float = CI_LEVEL) -> list[float | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [None, None]
    a = (1 - level) / 2
    return [float(np.quantile(v, a)), float(np.quantile(v, 1 - a))]


def partial_spearman_ci(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, *, n_boot: int = N_BOOT, block: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Partial Spearman of x, y given z with a moving-block bootstrap CI (steps in time order)."""
    a, b, c = _clean(x, y, z)
    est = partial_spearman(a, b, c)
    idx = block_bootstrap_indices(a.size, n_boot, block, seed)
    boots = np.array([partial_spearman(a[i], b[i], c[i]) for i in idx]) if a.size else np.array([])
    return {"estimate": _num(est), "ci": _ci(boots), "n": int(a.size)}


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return beta


def r2_gain(
    pred: np.ndarray,
    base: np.ndarray,
    real: np.ndarray,
    *,
    train_fraction: float = R2_TRAIN_FRACTION,
    n_boot: int = N_BOOT,
    block: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Out-of-sample gain from adding ``pred`` to the ``base`` model of realized liquidations.

    Model (OLS on the first ``train_fraction`` of the steps, in time order): log1p(real) ~ 1 +
    log1p(base) + 1{base = 0} [+ log1p(pred) + 1{pred = 0}], all USD (the indicators keep the many
    zero steps from bending the log fit). On the later steps each model's R² = 1 − SSE/SST (SST around
    the test mean; below 0 when a model predicts worse than that mean), reported as ``r2_base`` and
    ``r2_full``. ``gain`` = 1 − SSE_full/SSE_base: the out-of-sample R² of the full model with the base
    model as the benchmark (= (R²_full − R²_base)/(1 − R²_base)), the share of the base model's test
    error the predictor removes. It is at most 1, > 0 exactly when the full model predicts better, and
    does not depend on how the two compare with the test mean. ``ci``: 95 % percentile interval of the
    gain over a moving-block bootstrap of the test steps (models fixed); every replicate is ≤ 1, so the
    interval is too.
    """
    if not 0 < train_fraction < 1:
        raise ParameterError(f"train_fraction must be in (0, 1), got {train_fraction}")
    p, b, r = _clean(pred, base, real)
    if (p < 0).any() or (b < 0).any() or (r < 0).any():
        raise ParameterError("r2_gain needs non-negative USD series")
    n = p.size
    ntr = round(train_fraction * n)
    out: dict[str, Any] = {"r2_base": None, "r2_full": None, "gain": None, "ci": [None, None],
                           "n_train": ntr, "n_test": n - ntr}
    if ntr < 5 or n - ntr < 5:
        return out
    lp, lb, ly = np.log1p(p), np.log1p(b), np.log1p(r)
    one = np.ones(n)
    Xb = np.column_stack([one, lb, (b == 0).astype(float)])
    Xf = np.column_stack([one, lb, (b == 0).astype(float), lp, (p == 0).astype(float)])
    tr, te = slice(0, ntr), slice(ntr, n)
    eb = ly[te] - Xb[te] @ _ols(Xb[tr], ly[tr])
    ef = ly[te] - Xf[te] @ _ols(Xf[tr], ly[tr])
    yt = ly[te]

    def stats(i):
        sst = float(((yt[i] - yt[i].mean()) ** 2).sum())
        sb, sf = float((eb[i] ** 2).sum()), float((ef[i] ** 2).sum())
        gain = 1 - sf / sb if sb > 0 else float("nan")
        if sst <= 0:
            return float("nan"), float("nan"), gain
        return 1 - sb / sst, 1 - sf / sst, gain

    r2b, r2f, g = stats(np.arange(yt.size))
    idx = block_bootstrap_indices(yt.size, n_boot, block, seed)
    boots = np.array([stats(i)[2] for i in idx])
    out.update(r2_base=_num(r2b), r2_full=_num(r2f), gain=_num(g), ci=_ci(boots))
    return out


def beyond_excursion(
    pred: np.ndarray, excursion: np.ndarray, real: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any]:
    """What ``pred`` adds beyond the excursion baseline: partial Spearman and out-of-sample R² gain."""
    return {
        "partial_spearman": partial_spearman_ci(pred, real, excursion, n_boot=n_boot, seed=seed),
        "r2_gain": r2_gain(pred, excursion, real, n_boot=n_boot, seed=seed),
    }


# ---------------------------------------------------------------------------------------- per step


def swept_notional(
    long_map: np.ndarray, short_map: np.ndarray, prices: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """USD notional each step's bars sweep, read from the snapshot BEFORE the step.

    ``long_map``/``short_map`` (T, B) USD are snapshots at the END of steps 0..T−1; ``low``/``high``
    (T,) are the extremes of step j's bars (NaN = no bars). Returns (long, short) (T,): entry j sums
    long[j−1, centre ≥ low[j]] and short[j−1, centre ≤ high[j]]; entry 0 (no prior snapshot) and steps
    without bars are NaN.
    """
    L = np.asarray(long_map, dtype=np.float64)
    S = np.asarray(short_map, dtype=np.float64)
    prices = np.asarray(prices, dtype=float)
    T, B = L.shape
    if S.shape != (T, B) or prices.shape != (B,) or np.shape(low) != (T,) or np.shape(high) != (T,):
        raise ParameterError(f"swept_notional: shapes map {L.shape}/{S.shape}, prices {prices.shape}, "
                             f"low {np.shape(low)}, high {np.shape(high)} do not agree")
    out_l = np.full(T, np.nan)
    out_s = np.full(T, np.nan)
    if T < 2:
        return out_l, out_s
    # suffix sums of long (bins b..B-1), prefix sums of short (bins 0..b)
    suf = np.zeros((T - 1, B + 1))
    suf[:, :B] = np.cumsum(L[:-1, ::-1], axis=1)[:, ::-1]
    pre = np.zeros((T - 1, B + 1))
    pre[:, 1:] = np.cumsum(S[:-1], axis=1)
    lo, hi = np.asarray(low, float)[1:], np.asarray(high, float)[1:]
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo_idx = np.searchsorted(prices, np.where(ok, lo, 0.0), side="left")  # first centre >= low
    hi_idx = np.searchsorted(prices, np.where(ok, hi, 0.0), side="right")  # count of centres <= high
    rows = np.arange(T - 1)
    out_l[1:] = np.where(ok, suf[rows, lo_idx], np.nan)
    out_s[1:] = np.where(ok, pre[rows, hi_idx], np.nan)
    return out_l, out_s


@dataclass(frozen=True)
class StepBars:
    """One venue's bars aggregated to validation steps [start, end) (all (T,), NaN = no bars)."""

    start: np.ndarray  # datetime64[ns] UTC (naive values)
    end: np.ndarray
    open: np.ndarray  # price
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume_usd: np.ndarray  # Σ volume·close (USD); NaN if the venue reports no volume
    oi_usd: np.ndarray  # open interest value (USD) at the step's start (last observation at or before)


def _ns(ts) -> np.ndarray:
    """Timestamps (Series/array/Index, tz-aware or naive UTC) as int64 ns."""
    s = pd.to_datetime(pd.Series(np.asarray(ts)) if not isinstance(ts, pd.Series) else ts, utc=True)
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)


def _step_index(ts_ns: np.ndarray, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """Step j with start_j <= t < end_j for each t, or −1."""
    j = np.searchsorted(end_ns, ts_ns, side="right")
    jj = np.minimum(j, len(end_ns) - 1)
    ok = (j < len(end_ns)) & (ts_ns >= start_ns[jj]) & (ts_ns < end_ns[jj])
    return np.where(ok, j, -1)


def step_bars(ds, start: np.ndarray, end: np.ndarray) -> StepBars:
    """Aggregate a Dataset's OHLCV (and OI) to steps [start_j, end_j) (datetime64[ns] arrays)."""
    s_ns = np.asarray(start, dtype="datetime64[ns]").astype(np.int64)
    e_ns = np.asarray(end, dtype="datetime64[ns]").astype(np.int64)
    T = len(e_ns)
    o = ds.ohlcv
    j = _step_index(_ns(o["ts"]), s_ns, e_ns)
    keep = j >= 0
    df = pd.DataFrame({
        "j": j[keep],
        "open": o["open"].to_numpy(float)[keep],
        "high": o["high"].to_numpy(float)[keep],
        "low": o["low"].to_numpy(float)[keep],
        "close": o["close"].to_numpy(float)[keep],
        "vusd": (o["volume"].to_numpy(float) * o["close"].to_numpy(float))[keep],
    })
    g = df.groupby("j", sort=True).agg(open=("open", "first"), high=("high", "max"), low=("low", "min"),
                                       close=("close", "last"), vusd=("vusd", "sum"))
    full = g.reindex(np.arange(T))
    vol = full["vusd"].to_numpy(float)
    if not (o["volume"].to_numpy(float) > 0).any():
        vol = np.full(T, np.nan)  # the venue reports no volume at all
    oi = ds.open_interest
    if len(oi):
        oi_ns = _ns(oi["ts"])
        k = np.searchsorted(oi_ns, s_ns, side="right") - 1
        val = oi["open_interest_value"].to_numpy(float)
        oi_usd = np.where(k >= 0, val[np.maximum(k, 0)], np.nan)
    else:
        oi_usd = np.full(T, np.nan)
    return StepBars(
        start=s_ns.astype("datetime64[ns]"), end=e_ns.astype("datetime64[ns]"),
        open=full["open"].to_numpy(float), high=full["high"].to_numpy(float), low=full["low"].to_numpy(float),
        close=full["close"].to_numpy(float), volume_usd=vol, oi_usd=oi_usd,
    )


def _liquidation_tables(source) -> list[tuple[str, pd.DataFrame]]:
    """(name, liquidations table) of every dataset in a Dataset/Collection that has one."""
    datasets = getattr(source, "datasets", None) or (source,)
    return [(str(d.path or d.venue), d.liquidations) for d in datasets if d.liquidations is not None]


def infer_step(liquidations: pd.DataFrame) -> pd.Timedelta | None:
    """Time step of a per-bar-sums liquidations table (all prices empty), None for events."""
    if liquidations is None or len(liquidations) == 0 or liquidations["price"].notna().any():
        return None
    ts = np.unique(_ns(liquidations["ts"]))
    if ts.size < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(ts))), unit="ns")


def realized_per_step(source, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Realized long/short liquidations (USD) per step, summed over all venues of ``source``.

    Steps that do not overlap the span of the realized data (first row .. last row, plus one step for
    per-bar sums) are NaN; overlapping steps without rows are 0.
    Raises DataError when ``source`` has no liquidations table.
    """
    tables = _liquidation_tables(source)
    if not tables:
        where = getattr(source, "path", None) or "data"
        raise DataError(f"{where}: no liquidations table (realized liquidations are needed; "
                        f"give another dataset with --liquidations)")
    s_ns = np.asarray(start, dtype="datetime64[ns]").astype(np.int64)
    e_ns = np.asarray(end, dtype="datetime64[ns]").astype(np.int64)
    T = len(e_ns)
    out = {"long": np.zeros(T), "short": np.zeros(T)}
    covered = np.zeros(T, dtype=bool)
    for _, liq in tables:
        if len(liq) == 0:
            continue
        ts = _ns(liq["ts"])
        step = infer_step(liq)
        lo_t = ts.min()
        hi_t = ts.max() + (step.value if step is not None else 1)
        covered |= (s_ns < hi_t) & (e_ns > lo_t)  # the step overlaps the span of the realized data
        j = _step_index(ts, s_ns, e_ns)
        val = liq["value"].to_numpy(float)
        side = liq["side"].astype(str).to_numpy()
        for name in SIDES:
            m = (j >= 0) & (side == name)
            out[name] += np.bincount(j[m], weights=val[m], minlength=T)
    for name in SIDES:
        out[name][~covered] = np.nan
    return out["long"], out["short"]


def baseline_series(bars: Sequence[StepBars]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Simple per-step predictors (long, short), USD, summed over venues.

    - ``excursion_oi``: (open − low)/open · OI for longs, (high − open)/open · OI for shorts.
    - ``abs_return_oi``: |close − open|/open · OI, both sides.
    - ``volume``: traded volume (USD), both sides (absent when no venue reports volume).
    """
    T = len(bars[0].end)
    exl, exs, ar = np.zeros(T), np.zeros(T), np.zeros(T)
    vol = np.zeros(T)
    has_vol = False
    for b in bars:
        exl = exl + (b.open - b.low) / b.open * b.oi_usd
        exs = exs + (b.high - b.open) / b.open * b.oi_usd
        ar = ar + np.abs(b.close - b.open) / b.open * b.oi_usd
        if np.isfinite(b.volume_usd).any():
            has_vol = True
            vol = vol + b.volume_usd
        else:
            vol = vol + np.nan
    out = {"excursion_oi": (exl, exs), "abs_return_oi": (ar, ar.copy())}
    if has_vol and np.isfinite(vol).any():
        out["volume"] = (vol, vol.copy())
    return out


# --------------------------------------------------------------------------------- with the engine


def naive_overrides() -> dict[str, Any]:
    """HeatmapParams changes that make the naive symmetric map: the same leverage set with equal weights,
    flat margin model (no tiers), no clearing, no decay, no max age, both sides deposited the same (fixed
    50/50 split), OI decreases ignored."""
    return {
        "leverage_preset": "uniform",
        "leverage_weights": None,
        "margin_model": "flat",
        "clearing": "none",
        "half_life_hours": math.inf,
        "max_age_hours": None,
        "side_split": "fixed",
        "long_share": 0.5,
        "oi_decrease": "ignore",
        "funding_drift": False,
    }


def naive_maps(data, params) -> Any:
    """The naive symmetric map: ``params`` with :func:`naive_overrides` (levels stay after price trades
    through them, within a step too). Returns an object with ``times``, ``prices``,
    ``venue_long``/``venue_short`` (T, B) USD, ``long``/``short``, ``params`` and ``replay``."""
    from types import SimpleNamespace

    p = params.replace(**naive_overrides())
    hm = _build(data, p)
    vl, vs = dict(hm.venue_long), dict(hm.venue_short)
    return SimpleNamespace(times=hm.times, prices=hm.prices, venue_long=vl, venue_short=vs, params=p,
                           replay=hm.replay, long=sum(vl.values()), short=sum(vs.values()))


def placebo_data(data):
    """The same data with open interest replaced by steady growth (the price-only placebo).

    Each venue's OI becomes a straight line from 0.5 to 1.5 × its median (base units) over its OI
    timestamps: a constant increment at every observation, never a decrease. A heatmap built from it
    deposits the same base amount at every step at the then price, so it keeps the price path's
    geometry (levels at fixed distances, cleared when traded through, decay) but none of the
    information in open-interest changes (docs/VALIDATION.md, "price-only placebo")."""
    from liqlab.io.dataset import Collection

    def one(d):
        oi = d.open_interest
        n = len(oi)
        med = float(np.median(oi["open_interest"].to_numpy(float))) if n else 0.0
        base = np.linspace(0.5, 1.5, n) * (med if med > 0 else 1.0)
        close = pd.merge_asof(oi[["ts"]], d.ohlcv[["ts", "close"]], on="ts")["close"].bfill().to_numpy(float)
        new = pd.DataFrame({"ts": oi["ts"], "open_interest": base, "open_interest_value": base * close})
        notes = d.meta.get("notes") if isinstance(d.meta.get("notes"), dict) else {}
        meta = {**d.meta, "notes": {**notes, "placebo": "open interest replaced by steady growth (price-only placebo)"}}
        return dataclasses.replace(d, open_interest=new, meta=meta)

    if isinstance(data, Collection):
        return dataclasses.replace(data, datasets=tuple(one(d) for d in data.datasets))
    return one(data)


def _venue_datasets(data) -> list:
    return list(getattr(data, "datasets", None) or (data,))


def _map_of(hm, venue: str, side: str) -> np.ndarray:
    maps = getattr(hm, f"venue_{side}", None) or {}
    if venue in maps:
        return np.asarray(maps[venue])
    if len(maps) <= 1:
        return np.asarray(getattr(hm, side))
    raise DataError(f"heatmap has no map for venue {venue!r}; has {sorted(maps)}")


def heatmap_step_edges(hm) -> tuple[np.ndarray, np.ndarray, pd.Timedelta]:
    """(start, end, Δ) of the heatmap's output steps: step j covers [times[j] − Δ, times[j])."""
    end = np.asarray(hm.times, dtype="datetime64[ns]")
    step = None
    rp = getattr(hm, "replay", None)
    if rp is not None and getattr(rp, "step_hours", None):
        step = pd.Timedelta(hours=float(rp.step_hours))
    if step is None:
        ts = getattr(hm.params, "time_step", None)
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(ts)) if ts else pd.Timedelta(np.median(np.diff(end)))
    return end - np.timedelta64(step.value, "ns"), end, step


def heatmap_swept(hm, data, bars: Sequence[StepBars] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Swept notional (long, short) per heatmap step, summed over venues, each venue's map crossed by
    that venue's own bars. Steps where any venue has no bars are NaN."""
    start, end, _ = heatmap_step_edges(hm)
    dss = _venue_datasets(data)
    if bars is None:
        bars = [step_bars(d, start, end) for d in dss]
    tl = np.zeros(len(end))
    ts = np.zeros(len(end))
    prices = np.asarray(hm.prices, float)
    for d, b in zip(dss, bars):
        sl, ss = swept_notional(_map_of(hm, d.venue, "long"), _map_of(hm, d.venue, "short"), prices, b.low, b.high)
        tl = tl + sl
        ts = ts + ss
    return tl, ts


def data_step(data) -> pd.Timedelta:
    """Bar length of the data (median spacing of the first venue's OHLCV)."""
    ts = _ns(_venue_datasets(data)[0].ohlcv["ts"])
    if ts.size < 2:
        raise DataError(f"{getattr(data, 'path', 'data')}: fewer than 2 bars")
    return pd.Timedelta(int(np.median(np.diff(ts))), unit="ns")


def _offset_str(td: pd.Timedelta) -> str:
    mins = td.total_seconds() / 60
    if mins >= 60 and mins % 60 == 0:
        return f"{int(mins // 60)}h"
    if mins == int(mins):
        return f"{int(mins)}min"
    return f"{int(td.total_seconds())}s"


def validation_step(data, realized, requested: str | None = None) -> str:
    """The validation time step: the coarsest of the data's bars, the realized sums' step and the
    requested ``time_step`` (the finer series is aggregated to it)."""
    steps = [data_step(data)]
    for _, liq in _liquidation_tables(realized):
        s = infer_step(liq)
        if s is not None:
            steps.append(s)
    if requested:
        try:
            steps.append(pd.Timedelta(pd.tseries.frequencies.to_offset(requested)))
        except (ValueError, TypeError):
            raise ParameterError(f"time_step: not a pandas offset: {requested!r}") from None
    return _offset_str(max(steps))


@dataclass(frozen=True)
class Validation:
    """A validation run: the per-step series (``series``: time × columns, USD) and the ``report`` dict."""

    series: pd.DataFrame  # start, end, realized_{long,short}, heatmap_{long,short}, <baseline>_{long,short}, ...
    report: dict

    def to_json(self, path: str | Path) -> Path:
        from liqlab.io import atomic

        atomic.write_json(path, self.report)
        return Path(path)

    def metric_table(self) -> pd.DataFrame:
        """One row per predictor (heatmap, baselines, side-split rules), columns <metric>_<side>."""
        return metric_table(self.report)


def metric_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Flatten a validation report into rows = predictors, columns = <metric>_<side>."""
    rows = []

    def add(name, group, block):
        if "error" in block:
            return
        row = {"predictor": name, "group": group}
        for side in SIDES:
            for m in METRICS:
                row[f"{m}_{side}"] = block.get(side, {}).get(m)
        rows.append(row)

    add("heatmap", "heatmap", report["heatmap"])
    for k, v in report.get("baselines", {}).items():
        add(k, "baseline", v)
    for k, v in report.get("side_split", {}).items():
        add(f"side_split={k}", "side_split", v)
    return pd.DataFrame(rows)


def _metrics_block(pred_l, pred_s, real_l, real_s) -> dict:
    return {"long": side_metrics(pred_l, real_l), "short": side_metrics(pred_s, real_s)}


def _load(data):
    from liqlab.io.dataset import Collection, Dataset, load

    if isinstance(data, (Dataset, Collection)):
        return data
    return load(data)


def _pair(a: float, b: float) -> tuple[str, str, int]:
    """``a`` and ``b`` at the fewest decimals (3 to 6) that tell them apart, and their order: 1 if a > b,
    −1 if a < b, 0 if equal even at 6 decimals (then shown at 3)."""
    for d in range(3, 7):
        if round(a, d) != round(b, d):
            return f"{a:.{d}f}", f"{b:.{d}f}", 1 if a > b else -1
    return f"{a:.3f}", f"{b:.3f}", 0


def _r2_text(g: Mapping[str, Any]) -> str:
    """'out-of-sample R² −0.120 with the excursion alone, −0.080 with the heatmap; gain +0.036 [...]'."""
    lo, hi = g["ci"]

    def r2(x):
        return "n/a" if x is None else f"{x:+.3f}"

    return (f"out-of-sample R² {r2(g.get('r2_base'))} with the excursion alone, {r2(g.get('r2_full'))} with the "
            f"heatmap; gain (share of the excursion model's test error removed) {g['gain']:+.3f}, 95% CI "
            f"[{lo:+.3f}, {hi:+.3f}]")


def verdict(beyond: Mapping[str, Any], synthetic: bool, placebo: Mapping[str, Any] | None = None) -> str:
    """Plain sentences: what the heatmap adds beyond the excursion baseline (per side, with both models'
    out-of-sample R² beside the gain) and, when the price-only placebo was scored (``placebo`` =
    {"heatmap": metrics, "placebo_map": metrics, "beyond_placebo": {side: partial Spearman CI}}), whether
    open-interest information adds anything beyond the price path's geometry. Numbers are shown at the
    precision that decides the comparison the sentence makes."""
    parts = []
    for side in SIDES:
        b = beyond.get(side, {})
        g = b.get("r2_gain", {})
        ps = b.get("partial_spearman", {})
        lo, _ = (g.get("ci") or [None, None])
        plo, _ = (ps.get("ci") or [None, None])
        if g.get("gain") is None or lo is None:
            parts.append(f"{side}: not enough data to tell")
        elif lo > 0:
            r2f = g.get("r2_full")
            caveat = ("; but neither model predicts the test steps better than their own mean (both R² < 0)"
                      if r2f is not None and r2f < 0 else "")
            parts.append(f"{side}: the heatmap adds to the excursion baseline ({_r2_text(g)}; partial Spearman "
                         f"{ps.get('estimate'):+.3f}){caveat}")
        else:
            extra = ""
            if plo is not None and plo > 0:
                extra = (f", although its rank association with realized liquidations given the excursion is "
                         f"positive (partial Spearman {ps.get('estimate'):+.3f}, 95% CI lower bound {plo:+.3f})")
            parts.append(f"{side}: the heatmap adds nothing measurable beyond the excursion baseline ({_r2_text(g)})"
                         f"{extra}")
    tag = "[synthetic data] " if synthetic else ""
    text = tag + "; ".join(parts) + "."
    if placebo and "beyond_placebo" in placebo:
        sides = []
        for side in SIDES:
            hp = (placebo.get("heatmap") or {}).get(side, {}).get("spearman")
            pp = (placebo.get("placebo_map") or {}).get(side, {}).get("spearman")
            bp = placebo["beyond_placebo"].get(side, {})
            lo, hi = bp.get("ci") or [None, None]
            if hp is None or pp is None or lo is None:
                continue
            ptxt, htxt, order = _pair(pp, hp)
            rank = {1: "better than", -1: "worse than", 0: "as well as"}[order]
            adds = ("adds nothing measurable" if lo <= 0 else
                    "adds a little" if bp["estimate"] < 0.1 else "adds")
            link = "even so, " if order >= 0 and lo > 0 else ""
            sides.append(f"{side}: the price-only placebo map ranks realized liquidations {rank} the heatmap "
                         f"(Spearman {ptxt} vs {htxt}); {link}given the placebo, the heatmap's partial Spearman is "
                         f"{bp['estimate']:+.3f} [{lo:+.3f}, {hi:+.3f}], so open-interest information {adds}")
        if sides:
            text += " Beyond the price path's geometry: " + "; ".join(sides) + "."
    return text


def validate(
    data,
    liquidations=None,
    params=None,
    *,
    window: tuple[Any, Any] | None = None,
    side_splits: Sequence[str] | None = SIDE_SPLITS,
    naive: bool = True,
    placebo: bool = True,
    heatmap=None,
    n_boot: int = N_BOOT,
    seed: int = 0,
    progress: bool | None = None,
    **overrides: Any,
) -> Validation:
    """Score a heatmap's swept notional against realized liquidations, next to baselines.

    ``data``: Dataset, Collection or path (prices, OI; its liquidations table is the realized series
    unless ``liquidations`` (Dataset/Collection/path) is given). ``params``: HeatmapParams, dict or None,
    plus keyword ``overrides``. ``window`` = (start, end) restricts the SCORED steps (the map is built on
    all the data, so its state at the window start is the one history gives). ``heatmap``: a prebuilt
    Heatmap to score instead (its time step is then the validation step). ``side_splits``: engine rules
    scored head to head (None = skip); ``naive``/``placebo``: add the naive symmetric map and the
    price-only placebo map (:func:`placebo_data`) as baselines. ``progress``: the engine's progress bar
    for the main build (None = on a terminal). Returns a :class:`Validation`.
    """
    data = _load(data)
    realized_src = _load(liquidations) if liquidations is not None else data
    p = HeatmapParams.coerce(params, **overrides)
    dss = _venue_datasets(data)
    if heatmap is None:
        step = validation_step(data, realized_src, getattr(p, "time_step", None))
        p = p.replace(time_step=step) if p.time_step != step else p
        hm = _build(data, p, progress)
    else:
        hm = heatmap
        p = hm.params
    start, end, step_td = heatmap_step_edges(hm)
    bars = [step_bars(d, start, end) for d in dss]
    real_l, real_s = realized_per_step(realized_src, start, end)
    swl, sws = heatmap_swept(hm, data, bars)
    base = baseline_series(bars)

    scored = np.ones(len(end), dtype=bool)
    if window is not None:
        w0, w1 = window
        if w0 is not None:
            scored &= start >= _dt64(utc_time(w0, "window start"))
        if w1 is not None:
            scored &= end <= _dt64(utc_time(w1, "window end"))
    valid = scored & np.isfinite(swl) & np.isfinite(sws) & np.isfinite(real_l) & np.isfinite(real_s)
    if valid.sum() < 10:
        raise DataError(f"{getattr(data, 'path', 'data')}: only {int(valid.sum())} steps have both a prior "
                        f"heatmap snapshot and realized liquidations (need >= 10); check the time ranges overlap")
    series = pd.DataFrame({
        "start": pd.to_datetime(start).tz_localize("UTC"),
        "end": pd.to_datetime(end).tz_localize("UTC"),
        "realized_long": real_l, "realized_short": real_s,
        "heatmap_long": swl, "heatmap_short": sws,
    })
    for k, (bl, bs) in base.items():
        series[f"{k}_long"] = bl
        series[f"{k}_short"] = bs

    def on_valid(a):
        return np.where(valid, a, np.nan)

    rl, rs = on_valid(real_l), on_valid(real_s)
    report: dict[str, Any] = {
        "synthetic": bool(getattr(data, "synthetic", False) or getattr(realized_src, "synthetic", False)),
        "data": {
            "path": str(getattr(data, "path", None)),
            "venues": [d.venue for d in dss],
            "symbol": dss[0].symbol,
            "realized_source": str(getattr(realized_src, "path", None)),
            "time_step": _offset_str(step_td),
            "n_steps_scored": int(valid.sum()),
            "start": str(series["start"][valid].iloc[0]),
            "end": str(series["end"][valid].iloc[-1]),
            "realized_long_usd": float(np.nansum(rl)),
            "realized_short_usd": float(np.nansum(rs)),
        },
        "params": p.to_dict() if hasattr(p, "to_dict") else None,
        "metrics_note": ("spearman: rank correlation of predicted swept notional vs realized, per step; "
                         "top_decile_capture: share of realized USD in the predictor's top-10% steps; "
                         "auc_p95: ROC AUC for realized > its 95th percentile. The heatmap snapshot is the one "
                         "before each step (no look-ahead); baselines use the step's own bar, like the sweep."),
        "heatmap": _metrics_block(on_valid(swl), on_valid(sws), rl, rs),
        "baselines": {k: _metrics_block(on_valid(bl), on_valid(bs), rl, rs) for k, (bl, bs) in base.items()},
    }
    report["diagnostics"] = {
        "heatmap_zero_sweep_share": {"long": _num(float(np.mean(swl[valid] == 0))),
                                     "short": _num(float(np.mean(sws[valid] == 0)))},
        "realized_zero_share": {"long": _num(float(np.mean(real_l[valid] == 0))),
                                "short": _num(float(np.mean(real_s[valid] == 0)))},
        "engine_notes": list(notes_dict((getattr(hm, "meta", None) or {}).get("notes")).values()),
    }
    exl, exs = base["excursion_oi"]
    report["beyond_excursion"] = {
        "long": beyond_excursion(on_valid(swl), on_valid(exl), rl, n_boot=n_boot, seed=seed),
        "short": beyond_excursion(on_valid(sws), on_valid(exs), rs, n_boot=n_boot, seed=seed + 1),
    }

    def variant(params, data_=None):
        hv = _build(data if data_ is None else data_, params, False)
        if len(hv.times) != len(end) or (np.asarray(hv.times, "datetime64[ns]") != end).any():
            raise DataError("variant heatmap has a different step grid")
        vl, vs = heatmap_swept(hv, data, bars)
        return vl, vs, list(notes_dict(hv.meta.get("notes")).values())

    if naive:
        try:
            nm = naive_maps(data, p)
            if len(nm.times) != len(end):
                raise DataError("naive map has a different step grid")
            nl, ns = heatmap_swept(nm, data, bars)
            report["baselines"]["naive_map"] = _metrics_block(on_valid(nl), on_valid(ns), rl, rs)
            series["naive_map_long"] = nl
            series["naive_map_short"] = ns
        except (DataError, ParameterError, TypeError, ValueError) as exc:
            report["baselines"]["naive_map"] = {"error": _one_line(exc)}
    if placebo:
        try:
            pl, ps, _ = variant(p, placebo_data(data))
            report["baselines"]["placebo_map"] = _metrics_block(on_valid(pl), on_valid(ps), rl, rs)
            series["placebo_map_long"] = pl
            series["placebo_map_short"] = ps
            report["beyond_placebo"] = {
                "long": partial_spearman_ci(on_valid(swl), rl, on_valid(pl), n_boot=n_boot, seed=seed + 2),
                "short": partial_spearman_ci(on_valid(sws), rs, on_valid(ps), n_boot=n_boot, seed=seed + 3),
                "note": "partial Spearman of the heatmap vs realized, controlling for the price-only placebo map",
            }
        except (DataError, ParameterError, TypeError, ValueError) as exc:
            report["baselines"]["placebo_map"] = {"error": _one_line(exc)}
    if side_splits:
        report["side_split"] = {}
        for rule in side_splits:
            try:
                vl, vs, notes = variant(p.replace(side_split=rule))
                block = _metrics_block(on_valid(vl), on_valid(vs), rl, rs)
                block["beyond_excursion_partial_spearman"] = {
                    "long": _num(partial_spearman(on_valid(vl), rl, on_valid(exl))),
                    "short": _num(partial_spearman(on_valid(vs), rs, on_valid(exs))),
                }
                notes = [n for n in notes if "side_split" in n]
                if notes:
                    block["notes"] = notes
                report["side_split"][rule] = block
            except (DataError, ParameterError, TypeError, ValueError) as exc:
                report["side_split"][rule] = {"error": _one_line(exc)}
    report["verdict"] = verdict(report["beyond_excursion"], report["synthetic"],
                                {"heatmap": report["heatmap"], "placebo_map": report["baselines"].get("placebo_map"),
                                 **({"beyond_placebo": report["beyond_placebo"]} if "beyond_placebo" in report else {})})
    return Validation(series=series, report=report)


def _build(data, params, progress: bool | None = False):
    from liqlab.engine.heatmap import build_heatmap

    return build_heatmap(data, params, progress=progress)


def _dt64(x) -> np.datetime64:
    """A timestamp (naive = UTC) as naive datetime64[ns] UTC."""
    t = pd.Timestamp(x)
    t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t
    return np.datetime64(t.value, "ns")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
