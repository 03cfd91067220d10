"""Validation of a heatmap against realized liquidations (docs/VALIDATION.md).

For every validation step the heatmap snapshot taken before the step says how much USD notional the
step's bars sweep (:mod:`liqlab.stats.steps`); that swept notional is compared, per side, with the
realized liquidations of the step (USD, events or per-bar sums, summed over the venues of the source)
by the rank metrics of :mod:`liqlab.stats.metrics`, next to simple baselines computed the same way, the
naive symmetric map, the price-only placebo map (:func:`liqlab.stats.nulls.placebo_data`), and to what
the heatmap adds beyond the bar's excursion. :func:`validate` runs it and :func:`verdict` says it in words.

Shapes: maps are (T, B) USD, series are (T,) per step; times are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import one_line, utc
from liqlab.engine.params import HeatmapParams, utc_time
from liqlab.errors import DataError, ParameterError
from liqlab.stats.metrics import (METRICS, N_BOOT, auc_exceedance, beyond_excursion, partial_spearman,
                                  partial_spearman_ci, r2_gain, side_metrics, spearman, top_decile_capture)
from liqlab.stats.nulls import placebo_data
from liqlab.stats.resample import block_bootstrap_indices
from liqlab.stats.steps import (SIDES, StepBars, baseline_series, heatmap_step_edges, heatmap_swept, infer_step,
                                offset_text, realized_per_step, step_bars, swept_notional, validation_step,
                                venue_datasets)

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
    "metric_table",
    "naive_maps",
    "naive_overrides",
    "partial_spearman",
    "partial_spearman_ci",
    "placebo_data",
    "r2_gain",
    "realized_per_step",
    "side_metrics",
    "spearman",
    "step_bars",
    "swept_notional",
    "top_decile_capture",
    "validate",
    "verdict",
]

SIDE_SPLITS = ("both", "taker", "candle", "fixed")
BASELINES = ("excursion_oi", "abs_return_oi", "volume", "naive_map", "placebo_map")
METRICS_NOTE = ("spearman: rank correlation of predicted swept notional vs realized, per step; "
                "top_decile_capture: share of realized USD in the predictor's top-10% steps; "
                "auc_p95: ROC AUC for realized > its 95th percentile. The heatmap snapshot is the one "
                "before each step (no look-ahead); baselines use the step's own bar, like the sweep.")
_VARIANT_ERRORS = (DataError, ParameterError, TypeError, ValueError)


def naive_overrides() -> dict[str, Any]:
    """HeatmapParams changes that make the naive symmetric map: the same leverage set with equal weights,
    flat margin model (no tiers), no clearing, no decay, no max age, both sides deposited the same (fixed
    50/50 split), OI decreases ignored.

    Returns
    -------
    dict[str, Any]
        HeatmapParams field → value.
    """
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
    ``venue_long``/``venue_short`` (T, B) USD, ``long``/``short``, ``params`` and ``replay``.

    Parameters
    ----------
    data : Dataset or Collection
    params : HeatmapParams
        The parameters whose leverage set and grid the naive map keeps.

    Returns
    -------
    types.SimpleNamespace
        The attributes above.
    """
    from types import SimpleNamespace

    p = params.replace(**naive_overrides())
    hm = _build(data, p)
    vl, vs = dict(hm.venue_long), dict(hm.venue_short)
    return SimpleNamespace(times=hm.times, prices=hm.prices, venue_long=vl, venue_short=vs, params=p,
                           replay=hm.replay, long=sum(vl.values()), short=sum(vs.values()))


@dataclass(frozen=True)
class Validation:
    """A validation run: the per-step series (``series``: time × columns, USD) and the ``report`` dict."""

    series: pd.DataFrame  # start, end, realized_{long,short}, heatmap_{long,short}, <baseline>_{long,short}, ...
    report: dict

    def to_json(self, path: str | Path) -> Path:
        """Write ``report`` as JSON, atomically; returns the path."""
        from liqlab.io import atomic

        atomic.write_json(path, self.report)
        return Path(path)

    def metric_table(self) -> pd.DataFrame:
        """One row per predictor (heatmap, baselines, side-split rules), columns <metric>_<side>."""
        return metric_table(self.report)


def metric_table(report: Mapping[str, Any]) -> pd.DataFrame:
    """Flatten a validation report into rows = predictors, columns = <metric>_<side>.

    Parameters
    ----------
    report : Mapping
        ``Validation.report``.

    Returns
    -------
    pd.DataFrame
        Columns ``predictor``, ``group`` and ``<metric>_<side>``; predictors that failed are left out.
    """
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
    precision that decides the comparison the sentence makes.

    Parameters
    ----------
    beyond : Mapping
        ``report["beyond_excursion"]``: per side ``r2_gain`` and ``partial_spearman``.
    synthetic : bool
        Prefix the text with "[synthetic data]".
    placebo : Mapping, optional
        As above; without ``beyond_placebo`` the placebo sentence is left out.

    Returns
    -------
    str
    """
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




# ------------------------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class _Run:
    """One validation's inputs on the heatmap's step grid: bars (one per venue), realized and swept
    notional (long, short) (T,) USD, the baselines, and ``valid`` (T,): the scored steps."""

    data: Any
    realized: Any
    params: Any
    hm: Any
    start: np.ndarray
    end: np.ndarray
    step_td: pd.Timedelta
    bars: list
    real_l: np.ndarray
    real_s: np.ndarray
    swl: np.ndarray
    sws: np.ndarray
    base: dict
    valid: np.ndarray

    def on_valid(self, a: np.ndarray) -> np.ndarray:
        """``a`` on the scored steps, NaN elsewhere."""
        return np.where(self.valid, a, np.nan)

    def block(self, pred_l: np.ndarray, pred_s: np.ndarray) -> dict:
        """The metric set of a predictor (long, short) on the scored steps."""
        return _metrics_block(self.on_valid(pred_l), self.on_valid(pred_s), self.on_valid(self.real_l),
                              self.on_valid(self.real_s))

    def variant(self, params, data=None) -> tuple[np.ndarray, np.ndarray, dict]:
        """Swept notional (long, short) of the map built with other ``params`` (or other ``data``) on the
        same step grid, and that build's notes."""
        from liqlab.io.dataset import notes_dict

        hv = _build(self.data if data is None else data, params, False)
        if len(hv.times) != len(self.end) or (np.asarray(hv.times, "datetime64[ns]") != self.end).any():
            raise DataError("variant heatmap has a different step grid")
        vl, vs = heatmap_swept(hv, self.data, self.bars)
        return vl, vs, notes_dict(hv.meta.get("notes"))


def _build(data, params, progress: bool | None = False):
    from liqlab.engine.heatmap import build_heatmap

    return build_heatmap(data, params, progress=progress)


def _inputs(data, liquidations, params, heatmap, progress, overrides):
    """(data, realized source, params, heatmap): the data as a Collection, the map built at the
    validation step unless one is given (then its own parameters)."""
    from liqlab.io.dataset import as_collection

    data = as_collection(data)
    realized = as_collection(liquidations) if liquidations is not None else data
    p = HeatmapParams.coerce(params, **overrides)
    if heatmap is not None:
        return data, realized, heatmap.params, heatmap
    step = validation_step(data, realized, getattr(p, "time_step", None))
    p = p.replace(time_step=step) if p.time_step != step else p
    return data, realized, p, _build(data, p, progress)


def _scored(start: np.ndarray, end: np.ndarray, window: tuple[Any, Any] | None) -> np.ndarray:
    """Steps inside ``window`` = (start, end) (UTC, either may be None), bool (T,)."""
    scored = np.ones(len(end), dtype=bool)
    if window is not None:
        w0, w1 = window
        if w0 is not None:
            scored &= start >= np.datetime64(utc(utc_time(w0, "window start")).value, "ns")
        if w1 is not None:
            scored &= end <= np.datetime64(utc(utc_time(w1, "window end")).value, "ns")
    return scored


def _run(data, realized, p, hm, window) -> _Run:
    start, end, step_td = heatmap_step_edges(hm)
    bars = [step_bars(d, start, end) for d in venue_datasets(data)]
    real_l, real_s = realized_per_step(realized, start, end)
    swl, sws = heatmap_swept(hm, data, bars)
    valid = (_scored(start, end, window) & np.isfinite(swl) & np.isfinite(sws) & np.isfinite(real_l)
             & np.isfinite(real_s))
    if valid.sum() < 10:
        raise DataError(f"{getattr(data, 'path', 'data')}: only {int(valid.sum())} steps have both a prior "
                        f"heatmap snapshot and realized liquidations (need >= 10); check the time ranges overlap")
    return _Run(data=data, realized=realized, params=p, hm=hm, start=start, end=end, step_td=step_td, bars=bars,
                real_l=real_l, real_s=real_s, swl=swl, sws=sws, base=baseline_series(bars), valid=valid)


def _series(r: _Run) -> pd.DataFrame:
    series = pd.DataFrame({
        "start": pd.to_datetime(r.start).tz_localize("UTC"),
        "end": pd.to_datetime(r.end).tz_localize("UTC"),
        "realized_long": r.real_l, "realized_short": r.real_s,
        "heatmap_long": r.swl, "heatmap_short": r.sws,
    })
    for k, (bl, bs) in r.base.items():
        series[f"{k}_long"] = bl
        series[f"{k}_short"] = bs
    return series


def _share_zero(a: np.ndarray, valid: np.ndarray) -> float | None:
    v = float(np.mean(a[valid] == 0))
    return v if math.isfinite(v) else None


def _report(r: _Run, series: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """The heatmap's and the baselines' metrics, diagnostics and what the map adds beyond the excursion."""
    from liqlab.io.dataset import notes_dict

    dss = venue_datasets(r.data)
    rl, rs = r.on_valid(r.real_l), r.on_valid(r.real_s)
    report: dict[str, Any] = {
        "synthetic": bool(getattr(r.data, "synthetic", False) or getattr(r.realized, "synthetic", False)),
        "data": {
            "path": str(getattr(r.data, "path", None)), "venues": [d.venue for d in dss], "symbol": dss[0].symbol,
            "realized_source": str(getattr(r.realized, "path", None)), "time_step": offset_text(r.step_td),
            "n_steps_scored": int(r.valid.sum()), "start": str(series["start"][r.valid].iloc[0]),
            "end": str(series["end"][r.valid].iloc[-1]), "realized_long_usd": float(np.nansum(rl)),
            "realized_short_usd": float(np.nansum(rs)),
        },
        "params": r.params.to_dict() if hasattr(r.params, "to_dict") else None,
        "metrics_note": METRICS_NOTE,
        "heatmap": r.block(r.swl, r.sws),
        "baselines": {k: r.block(bl, bs) for k, (bl, bs) in r.base.items()},
    }
    report["diagnostics"] = {
        "heatmap_zero_sweep_share": {"long": _share_zero(r.swl, r.valid), "short": _share_zero(r.sws, r.valid)},
        "realized_zero_share": {"long": _share_zero(r.real_l, r.valid), "short": _share_zero(r.real_s, r.valid)},
        "engine_notes": notes_dict((getattr(r.hm, "meta", None) or {}).get("notes")),
    }
    exl, exs = r.base["excursion_oi"]
    report["beyond_excursion"] = {
        "long": beyond_excursion(r.on_valid(r.swl), r.on_valid(exl), rl, n_boot=n_boot, seed=seed),
        "short": beyond_excursion(r.on_valid(r.sws), r.on_valid(exs), rs, n_boot=n_boot, seed=seed + 1),
    }
    return report


def _add_baseline(r: _Run, report: dict, series: pd.DataFrame, name: str, sweep) -> tuple | None:
    """Score the map a baseline's ``sweep()`` gives (swept (long, short) (T,) USD) and add its series; an
    error line instead when it cannot be built. Returns the swept pair, or None after an error."""
    try:
        bl, bs = sweep()
    except _VARIANT_ERRORS as exc:
        report["baselines"][name] = {"error": one_line(exc)}
        return None
    report["baselines"][name] = r.block(bl, bs)
    series[f"{name}_long"] = bl
    series[f"{name}_short"] = bs
    return bl, bs


def _naive_swept(r: _Run) -> tuple[np.ndarray, np.ndarray]:
    nm = naive_maps(r.data, r.params)
    if len(nm.times) != len(r.end):
        raise DataError("naive map has a different step grid")
    return heatmap_swept(nm, r.data, r.bars)


def _add_placebo(r: _Run, report: dict, series: pd.DataFrame, n_boot: int, seed: int) -> None:
    """The price-only placebo map as a baseline, and the heatmap's partial Spearman given it."""
    got = _add_baseline(r, report, series, "placebo_map", lambda: r.variant(r.params, placebo_data(r.data))[:2])
    if got is None:
        return
    pl, ps = got
    rl, rs = r.on_valid(r.real_l), r.on_valid(r.real_s)
    report["beyond_placebo"] = {
        "long": partial_spearman_ci(r.on_valid(r.swl), rl, r.on_valid(pl), n_boot=n_boot, seed=seed + 2),
        "short": partial_spearman_ci(r.on_valid(r.sws), rs, r.on_valid(ps), n_boot=n_boot, seed=seed + 3),
        "note": "partial Spearman of the heatmap vs realized, controlling for the price-only placebo map",
    }


def _side_split_block(r: _Run, rule: str) -> dict:
    vl, vs, notes = r.variant(r.params.replace(side_split=rule))
    exl, exs = r.base["excursion_oi"]
    block = r.block(vl, vs)
    block["beyond_excursion_partial_spearman"] = {
        "long": _finite(partial_spearman(r.on_valid(vl), r.on_valid(r.real_l), r.on_valid(exl))),
        "short": _finite(partial_spearman(r.on_valid(vs), r.on_valid(r.real_s), r.on_valid(exs))),
    }
    notes = {k: v for k, v in notes.items() if "side_split" in k or "side_split" in v}
    if notes:
        block["notes"] = notes
    return block


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _add_side_splits(r: _Run, report: dict, rules: Sequence[str]) -> None:
    """Each side-split rule's map head to head (an error line for a rule that cannot be built)."""
    report["side_split"] = {}
    for rule in rules:
        try:
            report["side_split"][rule] = _side_split_block(r, rule)
        except _VARIANT_ERRORS as exc:
            report["side_split"][rule] = {"error": one_line(exc)}


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

    Parameters
    ----------
    data : Dataset, Collection or path
        Prices and open interest; its liquidations table is the realized series unless ``liquidations``
        is given.
    liquidations : Dataset, Collection or path, optional
        The source of realized liquidations (any time step).
    params : HeatmapParams, dict or None
        Engine parameters, plus keyword ``overrides``.
    window : tuple, optional
        (start, end) UTC restricting the SCORED steps (the map is built on all the data, so its state at
        the window start is the one history gives).
    side_splits : sequence of str or None
        Engine side-split rules scored head to head (None = skip).
    naive, placebo : bool
        Add the naive symmetric map and the price-only placebo map (:func:`placebo_data`) as baselines.
    heatmap : Heatmap, optional
        A prebuilt Heatmap to score instead (its time step is then the validation step).
    n_boot : int
        Bootstrap replications of the CIs.
    seed : int
        Bootstrap seed.
    progress : bool or None
        The engine's progress bar for the main build (None = on a terminal).

    Returns
    -------
    Validation
        ``series`` (T steps × columns, USD) and ``report`` (JSON-ready dict with the verdict).
    """
    data, realized, p, hm = _inputs(data, liquidations, params, heatmap, progress, overrides)
    r = _run(data, realized, p, hm, window)
    series = _series(r)
    report = _report(r, series, n_boot, seed)
    if naive:
        _add_baseline(r, report, series, "naive_map", lambda: _naive_swept(r))
    if placebo:
        _add_placebo(r, report, series, n_boot, seed)
    if side_splits:
        _add_side_splits(r, report, side_splits)
    pl = {"heatmap": report["heatmap"], "placebo_map": report["baselines"].get("placebo_map")}
    if "beyond_placebo" in report:
        pl["beyond_placebo"] = report["beyond_placebo"]
    report["verdict"] = verdict(report["beyond_excursion"], report["synthetic"], pl)
    return Validation(series=series, report=report)
