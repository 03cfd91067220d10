"""Score the heatmap engine against a simulation's truth (``liqlab score DATA``).

Metric (per snapshot j and side, on the price bins *of that side* within ``band`` of the reference
close — long: close·(1−band) ≤ price < close, short: close < price ≤ close·(1+band) — and only the bins
where the estimated or the true map is non-zero):

- ``spearman``: Spearman rank correlation between estimated and true USD notional over those bins
  (snapshots with fewer than ``min_bins`` such bins, or a constant map, are skipped and counted);
- ``top_decile_share``: share of the true notional of those bins that sits in the estimated top 10%
  of them (ceil(10%) bins by estimated notional); a map unrelated to the truth scores about 0.1.

Why this band: true long levels only exist below the mark price and true short levels above it (the
others have been liquidated), and an engine's far tail (2x–3x levels ~30–50% away) is mostly empty
on both maps; bins where both maps are zero would add ties that inflate the correlation. The first
``burn_in_hours`` are skipped because the simulator starts with positions opened before its output
(warm-up), which no estimator built on the output data can see. Both choices are reported in the JSON.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from liqlab.errors import DataError, ParameterError
from liqlab.engine.params import LEVERAGE_PRESETS, HeatmapParams

__all__ = ["score", "score_maps", "DEFAULT_BAND", "DEFAULT_BURN_IN_HOURS"]

DEFAULT_BAND = 0.2           # fraction of the close on each side
DEFAULT_BURN_IN_HOURS = 72.0
MIN_BINS = 5


def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, method="average")


def _snapshot_metrics(est: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(spearman, top-decile share) of two 1-D maps over the same bins (NaN if undefined)."""
    if len(est) < MIN_BINS:
        return math.nan, math.nan
    re, rt = _rank(est), _rank(true)
    sp = math.nan
    if re.std() > 0 and rt.std() > 0:
        sp = float(np.corrcoef(re, rt)[0, 1])
    tot = true.sum()
    share = math.nan
    if tot > 0:
        k = max(1, int(math.ceil(0.1 * len(est))))
        top = np.argsort(-est, kind="stable")[:k]
        share = float(true[top].sum() / tot)
    return sp, share


def score_maps(est_long, est_short, true_long, true_short, prices, close, *, band: float = DEFAULT_BAND,
               start_index: int = 0) -> dict[str, Any]:
    """Metrics of estimated vs true maps (T, B) USD on the same grid; ``close`` (T,) reference price.

    Returns {'long': {...}, 'short': {...}} with spearman_mean, spearman_p10, spearman_median,
    top_decile_share (mean), notional_ratio_median (estimated / true USD inside the band),
    n_snapshots (scored) and n_skipped.

    Parameters
    ----------
    est_long, est_short, true_long, true_short : np.ndarray
        (T, B) = time × price maps, USD, on the same grid.
    prices : np.ndarray
        (B,) bin centres, USD.
    close : np.ndarray
        (T,) reference price, USD.
    band : float
        Fraction of the close on each side scored.
    start_index : int
        First snapshot scored (the burn-in).

    Returns
    -------
    dict
        As described.
    """
    out: dict[str, Any] = {}
    prices = np.asarray(prices, dtype=np.float64)
    for side, est, tru in (("long", est_long, true_long), ("short", est_short, true_short)):
        sps, shares, ratios = [], [], []
        skipped = 0
        for j in range(start_index, est.shape[0]):
            c = close[j]
            if not np.isfinite(c):
                skipped += 1
                continue
            if side == "long":
                inb = (prices < c) & (prices >= c * (1 - band))
            else:
                inb = (prices > c) & (prices <= c * (1 + band))
            e = np.asarray(est[j][inb], dtype=np.float64)
            t = np.asarray(tru[j][inb], dtype=np.float64)
            nz = (e > 0) | (t > 0)
            sp, sh = _snapshot_metrics(e[nz], t[nz])
            if not np.isfinite(sp):
                skipped += 1
                continue
            sps.append(sp)
            if np.isfinite(sh):
                shares.append(sh)
            if t.sum() > 0:
                ratios.append(e.sum() / t.sum())
        a = np.asarray(sps)
        out[side] = {
            "spearman_mean": float(a.mean()) if len(a) else math.nan,
            "spearman_p10": float(np.percentile(a, 10)) if len(a) else math.nan,
            "spearman_median": float(np.median(a)) if len(a) else math.nan,
            "top_decile_share": float(np.mean(shares)) if shares else math.nan,
            "notional_ratio_median": float(np.median(ratios)) if ratios else math.nan,
            "n_snapshots": int(len(a)),
            "n_skipped": int(skipped),
        }
    return out


def score(data, params: HeatmapParams | dict | None = None, *, presets: bool = True, placebo: bool = True,
          band: float = DEFAULT_BAND,
          burn_in_hours: float = DEFAULT_BURN_IN_HOURS, progress: bool | None = None, **overrides) -> dict[str, Any]:
    """Score the engine on a simulated collection (a folder with ``truth/``) against the true map.

    Runs: ``true_mix`` (the engine with the simulator's leverage set and true deposit weights, other
    parameters from ``params``/overrides), ``params`` (the given parameters as they are, default
    engine leverage set) and, if ``presets``, every leverage preset over the true leverage set (kernel
    re-runs only). ``placebo``: also ``placebo_true_mix``, the same engine on the price-only placebo (open
    interest replaced by a constant increment per observation): how much of the score open interest
    earns, ``oi_gain`` = true_mix − placebo_true_mix per side. Returns a JSON-friendly dict; the data
    are labelled synthetic.

    Parameters
    ----------
    data : str, Path or Collection
        A simulated collection with its ``truth/`` folder.
    params : HeatmapParams, dict or None
        Engine parameters (plus ``overrides``).
    presets : bool
        Score every leverage preset too.
    placebo : bool
        Score the price-only placebo (:func:`liqlab.stats.nulls.placebo_data`).
    band : float
        Fraction of the close on each side scored.
    burn_in_hours : float
        Snapshots within this many hours of the start are not scored.
    progress : bool or None
        The engine's progress bar (None = on a terminal).

    Returns
    -------
    dict
        ``runs`` (per run and side), ``oi_gain`` and the run's settings.
    """
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.sim.truth import true_heatmap

    if not (0 < band < 1):
        raise ParameterError(f"band: must be in (0, 1), got {band!r}")
    if not (burn_in_hours >= 0):
        raise ParameterError(f"burn_in_hours: must be >= 0, got {burn_in_hours!r}")
    path, truth, coll, p, lev, w_true = _load_scored(data, params, overrides)
    p_true = p.replace(leverages=lev, leverage_weights=w_true)
    h_true = build_heatmap(coll, p_true, progress=progress)
    times, edges = h_true.times, h_true.edges
    tl, ts = true_heatmap(truth, times, edges, venues=h_true.meta["venues"])
    step_h = h_true.replay.step_hours
    j0 = min(int(math.ceil(burn_in_hours / step_h)), max(len(times) - 1, 0))

    def run(h):
        return score_maps(h.long, h.short, tl, ts, h.prices, h.close, band=band, start_index=j0)

    runs: dict[str, Any] = {"true_mix": run(h_true)}
    if placebo:
        from liqlab.stats.nulls import placebo_data

        runs["placebo_true_mix"] = run(build_heatmap(placebo_data(coll), p_true, progress=progress))
    if presets:
        for name in LEVERAGE_PRESETS:
            runs[f"preset:{name}"] = run(h_true.with_params(leverage_weights=None, leverage_preset=name))
    if not np.array_equal(np.asarray(p.leverages), np.asarray(lev)):
        runs["params"] = _params_run(coll, p, truth, h_true, run, band, j0, progress)
    gain = ({side: runs["true_mix"][side]["spearman_mean"] - runs["placebo_true_mix"][side]["spearman_mean"]
             for side in ("long", "short")} if placebo else None)
    return {
        "data": str(path),
        "synthetic": True,
        "oi_gain": gain,
        "metric": {"band": band, "burn_in_hours": burn_in_hours, "min_bins": MIN_BINS,
                   "bins": "bins of the side within band of the close where either map is non-zero",
                   "snapshots": f"{len(times) - j0} of {len(times)} ({step_h:g} h steps)"},
        "true_mix": {"leverages": list(lev), "leverage_weights": list(w_true)},
        "params": p.to_dict(),
        "runs": runs,
    }


def _load_scored(data, params, overrides):
    """(path, truth, collection, params, true leverages, true weights) of a simulated collection."""
    from liqlab.engine.params import HeatmapParams
    from liqlab.io.dataset import load_collection
    from liqlab.sim.truth import load_truth

    if not isinstance(data, (str, os.PathLike)):
        raise ParameterError("data: score needs the path of a simulated collection (with truth/)")
    path = Path(data)
    if not (path / "truth" / "config.json").exists():
        raise DataError(f"{path}: no truth/config.json — score needs a collection written by `liqlab simulate`")
    truth = load_truth(path)
    coll = load_collection(path)
    p = HeatmapParams.coerce(params, **overrides)
    lev = tuple(float(x) for x in truth.leverage_mix["leverages"])
    w_true = tuple(float(x) for x in truth.leverage_mix["leverage_weights"])
    if not lev or len(lev) != len(w_true):
        raise DataError(f"{path / 'truth' / 'config.json'}: no usable true leverage mix (leverages/leverage_weights)")
    return path, truth, coll, p, lev, w_true


def _params_run(coll, p, truth, h_true, run, band: float, j0: int, progress) -> dict[str, Any]:
    """The score of the given parameters as they are (their own leverage set)."""
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.sim.truth import true_heatmap

    h_p = build_heatmap(coll, p, progress=progress)
    if h_p.edges.shape == h_true.edges.shape and np.allclose(h_p.edges, h_true.edges):
        return run(h_p)
    # pragma: no cover - same data and grid params give the same grid
    tl2, ts2 = true_heatmap(truth, h_p.times, h_p.edges, venues=h_true.meta["venues"])
    return score_maps(h_p.long, h_p.short, tl2, ts2, h_p.prices, h_p.close, band=band, start_index=j0)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the runs (one row per run and side).

    Parameters
    ----------
    result : dict
        A :func:`score` result.

    Returns
    -------
    str
    """
    lines = [f"{'run':<22} {'side':<6} {'spearman':>9} {'p10':>7} {'top10%':>7} {'est/true':>9} {'n':>5}"]
    for name, r in result["runs"].items():
        for side in ("long", "short"):
            m = r[side]
            lines.append(f"{name:<22} {side:<6} {m['spearman_mean']:>9.3f} {m['spearman_p10']:>7.3f} "
                         f"{m['top_decile_share']:>7.3f} {m['notional_ratio_median']:>9.3f} {m['n_snapshots']:>5d}")
    if result.get("oi_gain"):
        g = result["oi_gain"]
        lines.append(f"open interest's gain (true_mix - placebo_true_mix): long {g['long']:+.3f}, short {g['short']:+.3f}")
    return "\n".join(lines)
