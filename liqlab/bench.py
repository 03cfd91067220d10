"""``liqlab bench``: speed and memory of the heatmap engine on SYNTHETIC arrays (printed, never asserted).

Cases (one JSON line each):

- ``year``: one year of 1m bars (525,600), 5m open interest, 1,000 log price bins, 8 leverages, both
  sides, hourly output. Reports the fine pass (numpy, bars → step inputs) and the kernel (step
  recursion, median of ``repeats`` after a warm-up) separately, and the kernel's peak traced memory
  (tracemalloc, which tracks numpy allocations) against the size of its output arrays.
- ``scaling``: the same at 1/4, 1/2 and 1 year (cost should be linear in bars).
- ``rebuild_30d_3venues``: 30 days × 3 venues of 1m bars at the default grid; times the kernel-side
  rebuild ``Heatmap.with_params(half_life_hours=...)`` that the ipywidgets explorer runs.
- ``explore``: the same data through the JupyterLab explorer (``liqlab.widgets.bench_rebuild``): a
  control change → engine → Bokeh sources updated, kernel side (target ≤ 0.5 s).

The input is generated here (geometric random walk, random-walk OI, taker volume) — not the agent
simulator — and labelled synthetic in every line.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["run_bench", "synthetic_dataset", "CASES"]

CASES = ("year", "scaling", "rebuild", "explore")
MIN_PER_YEAR = 525_600


def synthetic_dataset(n_bars: int, *, venue: str = "binanceusdm", seed: int = 0, oi_minutes: int = 5,
                      start: str = "2025-01-01"):
    """A SYNTHETIC Dataset: ``n_bars`` 1m bars (annual vol ~50%), OI every ``oi_minutes``, taker volume."""
    import pandas as pd

    from .dataset import Dataset, make_meta

    rng = np.random.default_rng(seed)
    sd = 0.5 / math.sqrt(MIN_PER_YEAR)
    c = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, sd, n_bars)))
    o = np.r_[60_000.0, c[:-1]]
    wick = np.abs(rng.normal(0.0, sd * 0.5, (2, n_bars)))
    h = np.maximum(o, c) * (1 + wick[0])
    lo = np.minimum(o, c) * (1 - wick[1])
    v = rng.gamma(2.0, 5.0, n_bars)
    ts = pd.date_range(start, periods=n_bars, freq="1min", tz="UTC")
    ohlcv = pd.DataFrame({"ts": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v,
                          "taker_buy_volume": v * rng.uniform(0.3, 0.7, n_bars)})
    n_oi = n_bars // oi_minutes
    oi = 50_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n_oi)))
    oidf = pd.DataFrame({"ts": ts[::oi_minutes][:n_oi], "open_interest": oi,
                         "open_interest_value": oi * c[::oi_minutes][:n_oi]})
    fts = ts[::480]
    fund = pd.DataFrame({"ts": fts, "funding_rate": rng.normal(1e-4, 5e-5, len(fts))})
    meta = make_meta(venue, "BTC/USDT:USDT", source="liqlab.bench synthetic arrays", synthetic=True)
    return Dataset(meta=meta, ohlcv=ohlcv, open_interest=oidf, funding=fund)


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median seconds over ``repeats`` runs after one warm-up run; returns (median, all, last result)."""
    res = fn()  # warm-up (numba compile / cache load, page faults)
    times = []
    for _ in range(repeats):
        del res
        gc.collect()
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, res


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        res = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, res


def _year_case(n_bars: int, *, n_bins: int, repeats: int, use_numba: bool | None, label: str) -> dict[str, Any]:
    from .heatmap import fine_pass
    from .kernel import run_steps
    from .params import HeatmapParams

    ds = synthetic_dataset(n_bars)
    p = HeatmapParams(leverages=(5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0), time_step="1h",
                      side_split="taker", entry_price="typical").validate()
    lo = float(ds.ohlcv["low"].min()) * 0.75
    hi = float(ds.ohlcv["high"].max()) * 1.25
    edges = np.geomspace(lo, hi, n_bins + 1)
    step_ns = 3_600_000_000_000
    t0 = int(ds.ohlcv["ts"].iloc[0].value)
    T = int(math.ceil(n_bars * 60e9 / step_ns))
    t = time.perf_counter()
    rv = fine_pass(ds, p, t0, T, edges, [])
    fine_s = time.perf_counter() - t
    w = p.weights()

    def kern():
        return run_steps(rv, w, p.half_life_hours, 0, p.oi_decrease, use_numba=use_numba)

    med, all_t, (L, S) = _timed(kern, repeats)
    out_bytes = int(L.nbytes + S.nbytes)
    del L, S
    peak, res = _peak(kern)
    del res
    return {
        "case": label, "synthetic": True, "bars": int(n_bars), "oi_observations": int(len(ds.open_interest)),
        "bins": int(n_bins), "leverages": len(p.leverages), "sides": 2, "steps": int(T),
        "seconds": round(med, 4), "seconds_all": [round(x, 4) for x in all_t], "fine_pass_seconds": round(fine_s, 4),
        "kernel_seconds_per_million_bars": round(med / n_bars * 1e6, 4),
        "entries": int(len(rv.fresh_long[3]) + len(rv.fresh_short[3])),
        "peak_memory_bytes": int(peak), "output_bytes": out_bytes, "peak_over_output": round(peak / out_bytes, 3),
        "numba": _numba_used(use_numba),
    }


def _numba_used(use_numba: bool | None) -> bool:
    from .kernel import _want_numba, numba_available

    return bool(_want_numba(use_numba) and numba_available())


def _rebuild_case(days: float, *, repeats: int, use_numba: bool | None) -> dict[str, Any]:
    from .dataset import Collection
    from .heatmap import build_heatmap

    n = int(days * 1440)
    coll = Collection(datasets=tuple(synthetic_dataset(n, venue=v, seed=i) for i, v in
                                     enumerate(("binanceusdm", "bybit", "okx"))))
    t = time.perf_counter()
    h = build_heatmap(coll, progress=False, use_numba=use_numba)
    build_s = time.perf_counter() - t
    halves = iter([24.0, 48.0, 96.0, 12.0, 6.0, 200.0, 300.0, 400.0] * 4)

    def rebuild():
        return h.with_params(half_life_hours=next(halves))

    med, all_t, h2 = _timed(rebuild, repeats)
    out_bytes = int(h2.long_layers.nbytes * 2 + h2.long.nbytes * 2
                    + sum(a.nbytes for a in h2.venue_long.values()) * 2 + h2.agreement.nbytes)
    del h2
    peak, res = _peak(rebuild)
    del res
    T, B = h.long.shape
    return {
        "case": "rebuild_30d_3venues" if days == 30 else f"rebuild_{days:g}d_3venues", "synthetic": True,
        "bars": int(n * 3), "venues": 3, "bins": int(B), "leverages": len(h.leverages), "sides": 2, "steps": int(T),
        "seconds": round(med, 4), "seconds_all": [round(x, 4) for x in all_t], "full_build_seconds": round(build_s, 4),
        "peak_memory_bytes": int(peak), "output_bytes": out_bytes, "peak_over_output": round(peak / out_bytes, 3),
        "numba": _numba_used(use_numba),
    }


def _explore_case(days: float, *, repeats: int) -> dict[str, Any]:
    """The rebuild case's data through the JupyterLab explorer (liqlab.widgets.bench_rebuild)."""
    from .dataset import Collection
    from .widgets import bench_rebuild

    n = int(days * 1440)
    coll = Collection(datasets=tuple(synthetic_dataset(n, venue=v, seed=i) for i, v in
                                     enumerate(("binanceusdm", "bybit", "okx"))))
    r = bench_rebuild(coll, repeats=repeats)
    r["case"] = "explore_rebuild_30d_3venues" if days == 30 else f"explore_rebuild_{days:g}d_3venues"
    return r


def run_bench(cases=CASES, *, repeats: int = 3, bars: int = MIN_PER_YEAR, bins: int = 1000, rebuild_days: float = 30.0,
              use_numba: bool | None = None, progress: bool | None = None) -> Iterator[dict[str, Any]]:
    """Yield one result dict per case (see module docstring). ``bars`` scales the year case (tests use tiny)."""
    from tqdm.auto import tqdm

    from .errors import ParameterError

    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise ParameterError(f"cases: unknown {unknown}; choose from {list(CASES)}")
    if repeats < 1:
        raise ParameterError(f"repeats: must be >= 1, got {repeats}")
    if bars < 120 or bins < 2:
        raise ParameterError(f"bars/bins: need bars >= 120 and bins >= 2, got {bars}, {bins}")
    plan: list[tuple[str, Callable[[], dict]]] = []
    if "year" in cases:
        plan.append(("year", lambda: _year_case(bars, n_bins=bins, repeats=repeats, use_numba=use_numba, label="year")))
    if "scaling" in cases:
        for frac in (0.25, 0.5, 1.0):
            nb = max(120, int(bars * frac))
            plan.append((f"scaling_{frac:g}", lambda nb=nb, frac=frac: _year_case(
                nb, n_bins=bins, repeats=repeats, use_numba=use_numba, label=f"scaling_{frac:g}")))
    if "rebuild" in cases:
        plan.append(("rebuild", lambda: _rebuild_case(rebuild_days, repeats=repeats, use_numba=use_numba)))
    if "explore" in cases:
        plan.append(("explore", lambda: _explore_case(rebuild_days, repeats=repeats)))
    disable = None if progress is None else not progress
    for name, fn in tqdm(plan, desc="bench", unit="case", disable=disable, leave=False):
        r = fn()
        r["load_avg_1min"] = _load()  # the machine is shared: context for the timings
        yield r


def _load() -> float | None:
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):  # pragma: no cover - not on every OS
        return None


def main_json(**kw) -> list[str]:
    """The JSON lines ``liqlab bench`` prints."""
    return [json.dumps(r) for r in run_bench(**kw)]
