"""The magnet test end to end: :func:`magnet_test` (events, inference, placebo contrasts, pipeline null,
grid) and its result, :class:`MagnetResult` (JSON summary plus tables for the report)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import TRAIN_FRACTION, jsonable, progress as progress_bar
from liqlab.stats.magnet.contrasts import placebo_contrasts
from liqlab.stats.magnet.events import decided, events_for, funding_arrays, touch_dataset
from liqlab.stats.magnet.grid import GridResult, run_grid
from liqlab.stats.magnet.inference import (acceleration, dose_response, logit_test, random_level_hits, summarize,
                                           touch_curves)
from liqlab.stats.magnet.params import Bars, MagnetParams, coerce_params
from liqlab.stats.nulls import bootstrap_path_dataset, placebo_data
from liqlab.stats.resample import stationary_block_length

__all__ = ["MagnetResult", "magnet_test", "pipeline_null"]

PLACEBO_FIELDS = ("n_events", "untouched_share", "p_hat", "lift", "ci_low", "ci_high", "p_value")


@dataclass(frozen=True)
class MagnetResult:
    """Result of ``magnet_test``: ``summary`` (JSON-ready dict) plus tables for the report."""

    summary: dict
    events: pd.DataFrame
    placebo_events: pd.DataFrame | None = None
    dose: pd.DataFrame | None = None
    touch: dict = field(default_factory=dict)
    null_lifts: np.ndarray | None = None
    grid: GridResult | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The summary as strict JSON values (NaN/inf become None)."""
        return jsonable(self.summary)

    def write_json(self, path) -> None:
        """Write ``to_json_dict()`` atomically (what ``liqlab magnet --json`` and the notebook write)."""
        from liqlab.io import atomic

        atomic.write_json(path, self.to_json_dict())


def _heatmap_params(heatmap_params):
    from liqlab.engine.params import HeatmapParams

    return HeatmapParams.coerce(heatmap_params)


def _engine_params(hm, hp):
    """The engine parameters of a built heatmap (``hp`` for a stand-in without ``params``)."""
    return hm.params if hasattr(hm, "params") else hp


def _header(data, ds, p: MagnetParams, hm, hp) -> dict[str, Any]:
    return {"symbol": ds.symbol, "venue": ds.venue, "synthetic": bool(getattr(data, "synthetic", ds.synthetic)),
            "data_start": str(ds.start), "data_end": str(ds.end), "magnet_params": p.to_dict(),
            "heatmap_params": _engine_params(hm, hp).to_dict()}


def _placebo_part(data, ds, hm, hp, p: MagnetParams, ev: pd.DataFrame, bars: Bars) -> tuple[dict, pd.DataFrame]:
    """The placebo heatmap's summary and the OI-vs-placebo contrasts; (summary fields, placebo events)."""
    from liqlab.engine.heatmap import build_heatmap

    hm_pl = build_heatmap(placebo_data(data), _engine_params(hm, hp), progress=False)
    ev_pl = events_for(hm_pl, ds, p)  # the placebo changes open interest only: same bars and funding
    pl = summarize(ev_pl, p)
    pcs = placebo_contrasts(hm.times, hm.prices, hm.long, hm.short, hm_pl.long, hm_pl.short, bars, p, ev=ev,
                            ev_placebo=ev_pl, funding=funding_arrays(ds))
    out = {"placebo": {k: pl[k] for k in PLACEBO_FIELDS}, "placebo_lift": pl["lift"],
           "placebo_contrast": pcs["oi_specific"], "placebo_contrast_excess": pcs["excess"],
           "placebo_contrast_oi_map": pcs["oi_map"]}
    return out, ev_pl


def _pipeline_part(null: Mapping[str, Any], observed_lift: float, p0: float) -> dict[str, Any]:
    """The pipeline-null summary: the band of null lifts and, when defined, p0 and the p-value it implies."""
    out = {k: v for k, v in null.items() if k != "lifts"}
    lifts = null["lifts"]
    finite = lifts[np.isfinite(lifts)]
    if len(finite) and math.isfinite(observed_lift):
        centre = finite.mean()
        out["p0_pipeline"] = float(p0 + centre)
        far = np.sum(np.abs(finite - centre) >= abs(observed_lift - centre) - 1e-12)
        out["p_value"] = float((1 + far) / (1 + len(finite)))
    return out


def magnet_test(
    data,
    heatmap_params=None,
    params: MagnetParams | Mapping | None = None,
    *,
    heatmap=None,
    placebo: bool = True,
    pipeline_reps: int = 0,
    grid: Mapping[str, Sequence] | None = None,
    split: float = TRAIN_FRACTION,
    progress: bool | None = None,
    **overrides: Any,
) -> MagnetResult:
    """Run the magnet test: events, p̂, lift, bootstrap CI, p-value, HAC, logit, dose-response,
    acceleration, random levels, touch curves, placebo contrast, optional pipeline null and optional grid.

    Parameters
    ----------
    data : Dataset, Collection or path
        Prices and open interest; the touch venue's bars decide touches.
    heatmap_params : HeatmapParams, dict or None
        Engine parameters of the heatmap (defaults when None).
    params : MagnetParams, dict or None
        Test parameters; ``overrides`` (MagnetParams fields) are applied on top.
    heatmap : Heatmap, optional
        A prebuilt heatmap of ``data`` to test instead of building one.
    placebo : bool
        Add the placebo heatmap (:func:`liqlab.stats.nulls.placebo_data`) and the OI-vs-placebo contrasts.
    pipeline_reps : int
        Rerun the whole pipeline on this many bootstrapped price paths (0 = skip).
    grid : Mapping, optional
        Grid of settings (:func:`liqlab.stats.magnet.grid.run_grid`), selected on the first ``split`` of time.
    split : float
        Selection share of time for the grid.
    progress : bool or None
        Progress bars (None = on a terminal).

    Returns
    -------
    MagnetResult
        ``summary`` (prices USD, distances log price, durations hours, times UTC) and the event tables.
    """
    from liqlab.engine.heatmap import build_heatmap

    p = coerce_params(params, overrides)
    data, ds = touch_dataset(data, p.venue)
    hp = _heatmap_params(heatmap_params)
    hm = heatmap if heatmap is not None else build_heatmap(data, hp, progress=bool(progress))
    ev = events_for(hm, ds, p)
    bars = Bars.from_frame(ds.ohlcv)
    summary = _header(data, ds, p, hm, hp)
    summary.update(summarize(ev, p))
    summary["logit"] = logit_test(ev)
    summary["acceleration"] = acceleration(ev)
    summary["random_levels"] = random_level_hits(ev, bars, p.horizon_hours, seed=p.seed)
    ev_pl, null_lifts, gres = None, None, None
    summary["placebo_lift"] = math.nan
    if placebo:
        part, ev_pl = _placebo_part(data, ds, hm, hp, p, ev, bars)
        summary.update(part)
    if pipeline_reps > 0:
        null = pipeline_null(data, _engine_params(hm, hp), p, reps=pipeline_reps, progress=progress)
        null_lifts = null["lifts"]
        summary["pipeline_null"] = _pipeline_part(null, summary["lift"], p.p0)
    if grid:
        gres = run_grid(data, grid, _engine_params(hm, hp), p, split=split, heatmap=hm)
        summary.update(grid=gres.summary, spa_p_value=gres.summary["spa_p_value"], chosen=gres.summary["chosen"])
    return MagnetResult(summary=summary, events=ev, placebo_events=ev_pl, dose=dose_response(ev),
                        touch=touch_curves(ev, p.horizon_hours), null_lifts=null_lifts, grid=gres)


def pipeline_null(data, heatmap_params, params: MagnetParams, *, reps: int = 50, seed: int | None = None,
                  progress: bool | None = None) -> dict[str, Any]:
    """Rerun the whole pipeline on ``reps`` stationary-block-bootstrapped price paths (OI kept).

    Parameters
    ----------
    data : Dataset, Collection or path
    heatmap_params : HeatmapParams, dict or None
    params : MagnetParams
    reps : int
        Number of bootstrapped paths (:func:`liqlab.stats.nulls.bootstrap_path_dataset`).
    seed : int, optional
        Base seed (default ``params.seed``); path r uses ``seed·100003 + r``.
    progress : bool or None
        Progress bar (None = on a terminal).

    Returns
    -------
    dict
        ``lifts`` (reps,) (NaN where a path gave no decided event) and their ``mean_lift``, ``sd_lift``,
        ``q025``, ``q975``: the design's own null band.
    """
    from liqlab.engine.heatmap import build_heatmap

    data, ds = touch_dataset(data, params.venue)
    base = params.seed if seed is None else seed
    hp = _heatmap_params(heatmap_params)
    lifts = np.full(reps, np.nan)
    block = max(30.0, stationary_block_length(np.abs(np.diff(np.log(ds.ohlcv["close"].to_numpy(float))))))
    for r in progress_bar(range(reps), desc="pipeline null", enabled=progress):
        bd = bootstrap_path_dataset(data, seed=base * 100_003 + r, block_bars=block)
        hm = build_heatmap(bd, hp, progress=False)
        _, bds = touch_dataset(bd, params.venue)
        y = decided(events_for(hm, bds, params))["y"].to_numpy(float)
        if len(y):
            lifts[r] = y.mean() - params.p0
    f = lifts[np.isfinite(lifts)]
    return {"reps": int(reps), "lifts": lifts, "mean_lift": float(f.mean()) if len(f) else math.nan,
            "sd_lift": float(f.std(ddof=1)) if len(f) > 1 else math.nan,
            "q025": float(np.quantile(f, 0.025)) if len(f) else math.nan,
            "q975": float(np.quantile(f, 0.975)) if len(f) else math.nan}
