"""``liqlab bench``: speed and memory of the heatmap engine on SYNTHETIC arrays (printed, never asserted).

Cases (one JSON line each):

- ``year``: one year of 1m bars (525,600), 5m open interest, 1,000 log price bins, 8 leverages, both
  sides, hourly output (``side_split='taker'``, ``entry_price='typical'``). ``seconds`` is the full
  warm build from the loaded dataset, ``build_heatmap`` = fine pass + step recursion + assembly (median
  of ``repeats`` after a warm-up; target ≤ 0.3 s on the 2-core machine). ``fine_pass_seconds`` and
  ``kernel_seconds`` re-time the fine pass and the step recursion (both sides) alone, the same way.
  ``peak_memory_bytes`` is the peak traced memory of one full build (tracemalloc: numpy and Python
  allocations; not what the numba deposit kernel allocates itself, its CSR and scratch, ~2% of the
  output here), ``output_bytes`` the arrays of the Heatmap it returns (maps, layers, venue maps,
  agreement, replay), ``peak_over_output`` their ratio (target ≤ 3).
- ``scaling``: the same at 1/4, 1/2 and 1 year (cost should be linear in bars).
- ``rebuild_30d_3venues``: 30 days × 3 venues of 1m bars at the default grid; times the kernel-side
  rebuild ``Heatmap.with_params(half_life_hours=...)`` that the ipywidgets explorer runs.
- ``explore``: the same data through the JupyterLab explorer (``liqlab.viz.widgets.bench_rebuild``): a
  control change → engine → Bokeh sources updated, kernel side (target ≤ 0.5 s).
- ``browser``: slider → painted frame of the explorer page in headless Chromium
  (:mod:`liqlab.app.bench_browser`).
- ``facts``: ``liqlab.stats.facts.stylized_facts`` on the rebuild case's data (30 days × 3 venues, 5m open
  interest; native step and 1h): what a simulator calibration computes in a loop (target well under 1 s).
- ``append``: one new minute appended to the rebuild case's map with ``Heatmap.extend`` (target ≤ 5 ms),
  beside a full rebuild and whether the arrays are identical (:mod:`liqlab.app.bench_append`).

The input is generated here (geometric random walk, random-walk OI, taker volume) — not the agent
simulator — and labelled synthetic in every line. Each line carries the 1-minute load average: the
machine is shared, so compare timings taken at a low load.
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

CASES = ("year", "scaling", "rebuild", "explore", "facts", "append", "browser")
MIN_PER_YEAR = 525_600


def synthetic_dataset(n_bars: int, *, venue: str = "binanceusdm", seed: int = 0, oi_minutes: int = 5,
                      start: str = "2025-01-01"):
    """A SYNTHETIC Dataset: ``n_bars`` 1m bars (annual vol ~50%), OI every ``oi_minutes``, taker volume.

    Parameters
    ----------
    n_bars : int
        One-minute bars.
    venue : str
        ccxt venue id written in the metadata.
    seed : int
        Random seed.
    oi_minutes : int
        Minutes between open-interest observations.
    start : str
        First bar (UTC).

    Returns
    -------
    Dataset
        OHLCV around 60,000 USD with taker buy volume (base units), open interest (base units and USD),
        funding every 8 hours; ``meta['synthetic']`` is True.
    """
    import pandas as pd

    from liqlab.io.dataset import Dataset, make_meta

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
    meta = make_meta(venue, "BTC/USDT:USDT", source="liqlab.app.bench synthetic arrays", synthetic=True)
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


def _year_params(ds, n_bins: int):
    """Bench parameters; ``bin_width`` (bp) is chosen so that build_heatmap's grid over ``ds`` has ``n_bins`` bins."""
    from liqlab.engine.params import HeatmapParams

    p = HeatmapParams(leverages=(5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0), time_step="1h",
                      side_split="taker", entry_price="typical")
    lo = float(ds.ohlcv["low"].min()) * (1.0 - p.price_range)
    hi = float(ds.ohlcv["high"].max()) * (1.0 + p.price_range)
    # make_grid takes ceil(ln(hi/lo) / ln(1 + bw·1e-4)) bins: aim half a bin below n_bins
    return p.replace(bin_width=math.expm1(math.log(hi / lo) / (n_bins - 0.5)) * 1e4).validate()


def _heatmap_bytes(h) -> int:
    """Bytes of the distinct arrays a Heatmap holds (maps, layers, venue maps, agreement, grids, replay)."""
    arrays = [h.times, h.prices, h.edges, h.long, h.short, h.leverages, h.weights, h.long_layers, h.short_layers,
              h.agreement, h.close, *h.venue_long.values(), *h.venue_short.values(), h.replay.times, h.replay.edges]
    for rv in h.replay.venues:
        arrays += [*rv.fresh_long, *rv.fresh_short, rv.lo, rv.hi, rv.g, rv.rm_long, rv.rm_short, rv.shift,
                   rv.volume_usd, rv.close, rv.dropped_long, rv.dropped_short]
    seen: dict[int, int] = {}
    for a in arrays:
        base = a if a.base is None else a.base
        seen[id(base)] = max(seen.get(id(base), 0), int(a.nbytes))
    return sum(seen.values())


def _year_case(n_bars: int, *, n_bins: int, repeats: int, use_numba: bool | None, label: str) -> dict[str, Any]:
    from liqlab.engine.fine import fine_pass
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.kernel import max_age_steps, run_steps

    ds = synthetic_dataset(n_bars)
    p = _year_params(ds, n_bins)

    def build():
        return build_heatmap(ds, p, progress=False, use_numba=use_numba)

    med, all_t, h = _timed(build, repeats)
    out_bytes = _heatmap_bytes(h)
    T, B = h.long.shape
    edges, rv, w = h.edges, h.replay.venues[0], h.weights
    del h
    step_ns = int(round(p.step_hours * 3600e9))
    t0 = int(ds.ohlcv["ts"].iloc[0].value) // step_ns * step_ns     # build_heatmap's time origin
    fine_med = _timed(lambda: fine_pass(ds, p, t0, T, edges, use_numba=use_numba), repeats)[0]
    A = max_age_steps(p.max_age_hours, p.step_hours)
    kern_med = _timed(lambda: run_steps(rv, w, p.half_life_hours, A, p.oi_decrease, use_numba=use_numba,
                                        half_life_exponent=p.half_life_exponent), repeats)[0]
    entries = int(len(rv.fresh_long[3]) + len(rv.fresh_short[3]))
    peak, res = _peak(build)
    del res
    return {
        "case": label, "synthetic": True, "bars": int(n_bars), "oi_observations": int(len(ds.open_interest)),
        "bins": int(B), "leverages": len(p.leverages), "sides": 2, "steps": int(T),
        "seconds": round(med, 4), "seconds_all": [round(x, 4) for x in all_t],
        "seconds_per_million_bars": round(med / n_bars * 1e6, 4),
        "fine_pass_seconds": round(fine_med, 4), "kernel_seconds": round(kern_med, 4),
        "entries": entries, "peak_memory_bytes": int(peak), "output_bytes": out_bytes,
        "peak_over_output": round(peak / out_bytes, 3), "numba": _numba_used(use_numba),
    }


def _numba_used(use_numba: bool | None) -> bool:
    from liqlab._jit import numba_available, want_numba

    return bool(want_numba(use_numba) and numba_available())


def _three_venues(days: float):
    """``days`` of 1m bars per venue of :data:`liqlab._util.VENUES` (SYNTHETIC): (bars per venue, Collection)."""
    from liqlab._util import VENUES
    from liqlab.io.dataset import Collection

    n = int(days * 1440)
    return n, Collection(datasets=tuple(synthetic_dataset(n, venue=v, seed=i) for i, v in enumerate(VENUES)))


def _rebuild_case(days: float, *, repeats: int, use_numba: bool | None) -> dict[str, Any]:
    from liqlab.engine.heatmap import build_heatmap

    n, coll = _three_venues(days)
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
    """The rebuild case's data through the JupyterLab explorer (liqlab.viz.widgets.bench_rebuild)."""
    from liqlab.viz.widgets import bench_rebuild

    _, coll = _three_venues(days)
    r = bench_rebuild(coll, repeats=repeats)
    r["case"] = "explore_rebuild_30d_3venues" if days == 30 else f"explore_rebuild_{days:g}d_3venues"
    return r


def _facts_case(days: float, *, repeats: int) -> dict[str, Any]:
    from liqlab.stats.facts import stylized_facts

    n, coll = _three_venues(days)
    med, all_t, f = _timed(lambda: stylized_facts(coll), repeats)
    return {
        "case": f"facts_{days:g}d_3venues", "synthetic": True, "bars": int(n * 3), "venues": 3,
        "oi_rows": int(sum(len(d.open_interest) for d in coll)), "steps": list(dict.fromkeys(f["step"])),
        "seconds": round(med, 4), "seconds_all": [round(x, 4) for x in all_t],
    }


def run_bench(cases=CASES, *, repeats: int = 3, bars: int = MIN_PER_YEAR, bins: int = 1000, rebuild_days: float = 30.0,
              use_numba: bool | None = None, progress: bool | None = None) -> Iterator[dict[str, Any]]:
    """Run the benchmark cases (see the module docstring).

    Parameters
    ----------
    cases : sequence of str
        Subset of :data:`CASES`.
    repeats : int
        Timed repeats after one warm-up (the median is reported).
    bars : int
        One-minute bars of the year case (>= 120; tests use tiny ones).
    bins : int
        Price bins of the year case (>= 2).
    rebuild_days : float
        Days per venue of the rebuild, explore and facts cases.
    use_numba : bool, optional
        Force numba on or off (None: numba unless ``LIQLAB_NO_NUMBA``).
    progress : bool, optional
        Progress bar over the cases (None: only on a terminal).

    Yields
    ------
    dict
        One result per case: seconds, memory in bytes, sizes, ``synthetic: True`` and the 1-minute load
        average.

    Raises
    ------
    ParameterError
        Unknown case or out-of-range sizes.
    """
    from liqlab._util import progress as progress_bar
    from liqlab.errors import ParameterError

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
    if "facts" in cases:
        plan.append(("facts", lambda: _facts_case(rebuild_days, repeats=repeats)))
    if "append" in cases:
        from liqlab.app.bench_append import append_case

        plan.append(("append", lambda: append_case(rebuild_days, repeats=max(repeats, 9), use_numba=use_numba)))
    if "browser" in cases:   # headless Chromium on the explorer page: liqlab.app.bench_browser
        from liqlab.app.bench_browser import browser_case

        plan.append(("browser", browser_case))
    for name, fn in progress_bar(plan, desc="bench", unit="case", enabled=progress):
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
    """The JSON lines ``liqlab bench`` prints.

    Parameters
    ----------
    **kw
        Arguments of :func:`run_bench`.

    Returns
    -------
    list of str
        One JSON object per case.
    """
    return [json.dumps(r) for r in run_bench(**kw)]
