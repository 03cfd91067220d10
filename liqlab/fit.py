"""Fit heatmap parameters to realized liquidations (issue #8, part 2).

Objective (documented, one definition: :func:`objective`): on the TRAINING steps, the mean of the long
and short Spearman rank correlations between the heatmap's swept notional per step (snapshot before
the step, see :mod:`liqlab.validate`) and the realized liquidations of that step.

Search (small and deterministic):

1. For each open-interest-decrease rule (``oi_decrease``, needs an engine build each), each leverage
   preset and each half-life on a short grid: score the preset mix (``Heatmap.with_params``: only the
   step recursion is re-run). Keep the best (rule, half-life, preset).
2. Coordinate descent on the leverage weights from the best preset: for each leverage k in turn, try
   w_k × {0, ½, 2, 4} (a zero weight restarts at 1/K), renormalise, keep the best move if it raises the
   objective by more than ``tol``; at most ``passes`` sweeps over k, stop early when nothing moves.
3. Re-tune the half-life on its grid with the fitted weights.

The training window is the first ``train_fraction`` of the scored steps; the report then scores the
fitted and the starting parameters on the later, untouched steps (same metrics and baselines as
``liqlab validate``). The map is always built on all the data (it only looks back), so the test-window
state is what history gives it; nothing of the test window enters the choice of parameters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import validate as V
from .errors import DataError, ParameterError
from .params import HeatmapParams

__all__ = ["HALF_LIVES", "OI_RULES", "FitResult", "fit", "objective", "save_params", "weights_distance"]

HALF_LIVES: tuple[float, ...] = (6.0, 24.0, 72.0, 168.0, 720.0, math.inf)  # hours
OI_RULES: tuple[str, ...] = ("proportional", "ignore", "highest_leverage")
WEIGHT_FACTORS: tuple[float, ...] = (0.0, 0.5, 2.0, 4.0)
TRAIN_FRACTION = 0.6
PASSES = 2
TOL = 1e-4


def objective(swept_long: np.ndarray, swept_short: np.ndarray, real_long: np.ndarray, real_short: np.ndarray,
              mask: np.ndarray) -> float:
    """Mean of the long and short Spearman correlations of swept vs realized over ``mask`` steps
    (a side whose correlation is undefined counts as 0)."""
    vals = []
    for s, r in ((swept_long, real_long), (swept_short, real_short)):
        rho = V.spearman(np.where(mask, s, np.nan), np.where(mask, r, np.nan))
        vals.append(rho if np.isfinite(rho) else 0.0)
    return float(np.mean(vals))


def weights_distance(lev_a: Sequence[float], w_a: Sequence[float], lev_b: Sequence[float],
                     w_b: Sequence[float]) -> dict[str, float]:
    """Distances between two leverage mixes (weights normalised to 1, aligned on the union of leverages).

    ``total_variation``: ½·Σ|a − b| in [0, 1]; ``mean_log_leverage_diff``: difference of the mixes' mean
    ln(leverage) (how far the centre moved, in log units; 0.69 = a factor of 2).
    """
    a = {float(l): float(x) for l, x in zip(lev_a, w_a)}
    b = {float(l): float(x) for l, x in zip(lev_b, w_b)}
    sa, sb = sum(a.values()), sum(b.values())
    if sa <= 0 or sb <= 0:
        raise ParameterError("weights_distance: weights must have a positive sum")
    levs = sorted(set(a) | set(b))
    va = np.array([a.get(l, 0.0) for l in levs]) / sa
    vb = np.array([b.get(l, 0.0) for l in levs]) / sb
    ll = np.log(np.array(levs))
    return {"total_variation": float(0.5 * np.abs(va - vb).sum()),
            "mean_log_leverage_diff": float(va @ ll - vb @ ll)}


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters, the search trail and the out-of-sample report."""

    params: Any  # HeatmapParams (fitted)
    start_params: Any  # HeatmapParams the search started from (defaults unless given)
    objective_train: float
    objective_test: float
    objective_test_start: float
    train: tuple[str, str]  # scored training window [start, end) UTC
    test: tuple[str, str]
    trials: pd.DataFrame  # one row per evaluated configuration
    test_report: dict  # liqlab.validate report of the fitted params on the test window
    test_report_start: dict  # same for the starting params
    test_series: pd.DataFrame  # per-step series of the fitted map (liqlab.validate.Validation.series), all steps
    truth: dict | None  # on simulated data: the true leverage mix and the distance to it
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the report ``liqlab fit --json`` writes)."""
        return {
            "synthetic": bool(self.test_report.get("synthetic", False)),
            "objective": "mean of long and short Spearman(swept notional, realized liquidations) per step",
            "params": self.params.to_dict(),
            "start_params": self.start_params.to_dict(),
            "objective_train": self.objective_train,
            "objective_test": self.objective_test,
            "objective_test_start_params": self.objective_test_start,
            "train": list(self.train),
            "test": list(self.test),
            "n_trials": len(self.trials),
            "landscape": self.landscape(),
            "trials_top": _jsonable(self.trials.sort_values("objective", ascending=False).head(10).to_dict("records")),
            "test_report": self.test_report,
            "test_report_start_params": self.test_report_start,
            "truth": self.truth,
            "seconds": self.seconds,
        }

    def landscape(self) -> dict[str, Any]:
        """How much the objective varies over the searched configurations, on train and on test, and
        whether the training ranking of configurations carries over to the test window (Spearman)."""
        t = self.trials
        if len(t) == 0:
            return {}
        out = {"train_min": float(t.objective.min()), "train_max": float(t.objective.max()),
               "test_min": float(t.objective_test.min()), "test_max": float(t.objective_test.max()),
               "train_test_rank_correlation": _jsonable(V.spearman(t.objective.to_numpy(), t.objective_test.to_numpy())),
               "best_test_config": _jsonable(t.loc[t.objective_test.idxmax()].to_dict())}
        return out

    def save_params(self, path: str | Path) -> Path:
        """Write the fitted parameters (YAML for .yaml/.yml, else JSON), loadable by HeatmapParams."""
        return save_params(self.params, path, note=self._note())

    def _note(self) -> str:
        return (f"fitted by liqlab fit on {self.train[0]} .. {self.train[1]} (objective {self.objective_train:.4f}); "
                f"test {self.test[0]} .. {self.test[1]} objective {self.objective_test:.4f}"
                + (" [synthetic data]" if self.test_report.get("synthetic") else ""))


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) else (x if math.isfinite(x) else str(x))
    if isinstance(x, np.integer):
        return int(x)
    return x


def save_params(params, path: str | Path, note: str = "") -> Path:
    """Save HeatmapParams as YAML (.yaml/.yml) or JSON, atomically; ``HeatmapParams.from_file`` reads it."""
    from . import atomic

    path = Path(path)
    d = params.to_dict()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        head = f"# {note}\n" if note else ""
        atomic.write_text(path, head + yaml.safe_dump(d, sort_keys=True))
    else:
        import json

        atomic.write_text(path, json.dumps(d, indent=2, sort_keys=True) + "\n")
    return path


# -------------------------------------------------------------------------------------------- search


class _Sweeps:
    """Per-leverage-layer swept notional (K, T) per side for one built heatmap (one OI rule).

    The step recursion is re-run on the heatmap's replay (the kernel contract of docs/DESIGN.md, what
    ``Heatmap.with_params`` does) for each half-life; layers are unweighted, so for the 'proportional'
    and 'ignore' rules the swept notional of any leverage mix is the weighted sum of the layer sweeps
    (exactly what the weighted map would sweep). 'highest_leverage' depends on the weights: re-run per mix.
    """

    def __init__(self, hm, data, bars):
        self.hm = hm
        self.prices = np.asarray(hm.prices, float)
        p = hm.params
        names = p.venues if p.venues is not None else hm.replay.venue_names
        by_venue = {d.venue: b for d, b in zip(V._venue_datasets(data), bars)}
        self.venues = [(hm.replay.venue(n), by_venue[n]) for n in names]
        self.rule = p.oi_decrease
        from .kernel import max_age_steps

        self.A = max_age_steps(p.max_age_hours, hm.replay.step_hours)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def layers(self, half_life: float, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from .kernel import run_steps

        key = float(half_life)
        if self.rule != "highest_leverage" and key in self._cache:
            return self._cache[key]
        K = len(w)
        T = len(self.hm.times)
        SL = np.zeros((K, T))
        SS = np.zeros((K, T))
        for rv, b in self.venues:
            L, S = run_steps(rv, w, half_life, self.A, self.rule)
            for k in range(K):
                sl, ss = V.swept_notional(L[k], S[k], self.prices, b.low, b.high)
                SL[k] += sl
                SS[k] += ss
        if self.rule != "highest_leverage":
            self._cache[key] = (SL, SS)
        return SL, SS

    def swept(self, half_life: float, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Swept notional (long, short) (T,) USD of leverage weights ``w`` (normalised) and half-life."""
        w = np.asarray(w, float) / np.sum(w)
        SL, SS = self.layers(half_life, w)
        return w @ SL, w @ SS


@dataclass
class _Context:
    real_l: np.ndarray
    real_s: np.ndarray
    train: np.ndarray  # bool (T,)
    test: np.ndarray


def _split(valid: np.ndarray, train_fraction: float):
    idx = np.flatnonzero(valid)
    ntr = round(train_fraction * idx.size)
    if ntr < 10 or idx.size - ntr < 10:
        raise DataError(f"only {idx.size} scored steps: too few for a {train_fraction:.0%}/"
                        f"{1 - train_fraction:.0%} train/test split (need >= 10 on each side)")
    cut = int(idx[ntr])  # first test step
    train = valid & (np.arange(valid.size) < cut)
    test = valid & (np.arange(valid.size) >= cut)
    return train, test, cut


def _fmt(t: np.datetime64) -> str:
    return pd.Timestamp(t).tz_localize("UTC").isoformat()


def fit(
    data,
    liquidations=None,
    params=None,
    *,
    train_fraction: float = TRAIN_FRACTION,
    half_lives: Sequence[float] = HALF_LIVES,
    oi_rules: Sequence[str] = OI_RULES,
    presets: Sequence[str] | None = None,
    passes: int = PASSES,
    tol: float = TOL,
    truth: str | Path | Mapping | None = "auto",
    n_boot: int = V.N_BOOT,
    progress: bool | None = None,
    **overrides: Any,
) -> FitResult:
    """Fit leverage mix, half-life and OI-decrease rule on the training window; report on the test window.

    ``data``/``liquidations``/``params``/``overrides`` as in :func:`liqlab.validate.validate` (the
    leverage SET comes from the params; the fit chooses its weights). ``truth``: the simulator's truth
    (folder or dict with ``leverages`` and ``leverage_weights``); "auto" looks for ``truth/`` in or
    next to the data folder. Returns a :class:`FitResult`.
    """
    from .heatmap import build_heatmap
    from .params import LEVERAGE_PRESETS, preset_weights

    t0 = time.perf_counter()
    if not 0 < train_fraction < 1:
        raise ParameterError(f"train_fraction: must be in (0, 1), got {train_fraction}")
    if passes < 0:
        raise ParameterError(f"passes: must be >= 0, got {passes}")
    bad = [r for r in oi_rules if r not in OI_RULES]
    if bad or not oi_rules:
        raise ParameterError(f"oi_rules: choose from {list(OI_RULES)}, got {list(oi_rules)}")
    try:
        half_lives = tuple(float(h) for h in half_lives)
    except (TypeError, ValueError):
        raise ParameterError(f"half_lives: need numbers of hours, got {list(half_lives)}") from None
    if not half_lives or any(not h > 0 for h in half_lives):
        raise ParameterError(f"half_lives: need positive hours (inf = no decay), got {list(half_lives)}")
    presets = tuple(presets) if presets is not None else tuple(LEVERAGE_PRESETS)
    unknown = [p for p in presets if p not in LEVERAGE_PRESETS]
    if unknown or not presets:
        raise ParameterError(f"presets: choose from {list(LEVERAGE_PRESETS)}, got {list(presets)}")

    data = V._load(data)
    realized = V._load(liquidations) if liquidations is not None else data
    p0 = HeatmapParams.coerce(params, **overrides)
    step = V.validation_step(data, realized, p0.time_step)
    if p0.time_step != step:
        p0 = p0.replace(time_step=step)

    # one engine build per OI rule; the step grid, bars and realized series are shared
    builds: dict[str, Any] = {}
    for rule in dict.fromkeys(list(oi_rules) + [p0.oi_decrease]):
        builds[rule] = build_heatmap(data, p0.replace(oi_decrease=rule), progress=False)
    first = builds[oi_rules[0]]
    start, end, _ = V.heatmap_step_edges(first)
    for rule, hm in builds.items():
        if len(hm.times) != len(end) or (np.asarray(hm.times, "datetime64[ns]") != end).any():
            raise DataError(f"heatmap step grid differs for oi_decrease={rule}")
    bars = [V.step_bars(d, start, end) for d in V._venue_datasets(data)]
    real_l, real_s = V.realized_per_step(realized, start, end)
    sweeps = {rule: _Sweeps(hm, data, bars) for rule, hm in builds.items()}
    K = len(p0.leverages)
    sl0, ss0 = sweeps[oi_rules[0]].swept(p0.half_life_hours, np.full(K, 1.0 / K))
    valid = np.isfinite(sl0) & np.isfinite(ss0) & np.isfinite(real_l) & np.isfinite(real_s)
    train, test, cut = _split(valid, train_fraction)
    ctx = _Context(real_l=real_l, real_s=real_s, train=train, test=test)

    trials: list[dict[str, Any]] = []
    n_total = len(oi_rules) * len(presets) * len(half_lives) + passes * K * len(WEIGHT_FACTORS) + len(half_lives)
    bar = _progress(n_total, progress)

    def score(rule: str, hl: float, w: np.ndarray, mask: np.ndarray) -> float:
        sl, ss = sweeps[rule].swept(hl, w)
        return objective(sl, ss, ctx.real_l, ctx.real_s, mask)

    def evaluate(stage: str, rule: str, hl: float, w: np.ndarray, preset: str | None = None) -> float:
        val = score(rule, hl, w, train)
        # the test-window objective is recorded for the report only; the search never reads it
        trials.append({"stage": stage, "oi_decrease": rule, "half_life_hours": hl, "preset": preset,
                       "weights": [round(float(x), 6) for x in np.asarray(w) / np.sum(w)], "objective": val,
                       "objective_test": score(rule, hl, w, test)})
        bar.update(1)
        return val

    # 1. grid: OI rule x preset x half-life
    best = (-math.inf, oi_rules[0], half_lives[0], presets[0])
    for rule in oi_rules:
        for preset in presets:
            for hl in half_lives:
                val = evaluate("grid", rule, hl, preset_weights(preset, p0.leverages), preset)
                if val > best[0] + 1e-12:
                    best = (val, rule, hl, preset)
    best_val, rule, hl, preset = best

    # 2. coordinate descent on the weights
    w = preset_weights(preset, p0.leverages)
    for i in range(passes):
        moved = False
        for k in range(K):
            cand = (best_val, None)
            for f in WEIGHT_FACTORS:
                c = w.copy()
                c[k] = (1.0 / K) if (c[k] == 0 and f > 0) else c[k] * f
                if c.sum() <= 0 or np.allclose(c / c.sum(), w):
                    bar.update(1)
                    continue
                c = c / c.sum()
                val = evaluate("weights", rule, hl, c)
                if val > cand[0] + tol:
                    cand = (val, c)
            if cand[1] is not None:
                best_val, w = cand[0], cand[1]
                moved = True
        if not moved:
            bar.update((passes - i - 1) * K * len(WEIGHT_FACTORS))
            break

    # 3. half-life again with the fitted weights
    for h in half_lives:
        val = evaluate("half_life", rule, h, w)
        if val > best_val + tol:
            best_val, hl = val, h
    bar.close()

    w_out = tuple(round(float(x), 6) for x in w / w.sum())
    fitted = p0.replace(oi_decrease=rule, half_life_hours=hl, leverage_weights=w_out, leverage_preset=preset)
    hm_fit = builds[rule].with_params(leverage_weights=w_out, leverage_preset=preset, half_life_hours=hl)
    hm_start = builds[p0.oi_decrease].with_params(leverage_preset=p0.leverage_preset,
                                                  leverage_weights=p0.leverage_weights,
                                                  half_life_hours=p0.half_life_hours)
    window = (pd.Timestamp(start[cut]).tz_localize("UTC"), None)
    val = V.validate(data, realized, heatmap=hm_fit, window=window, side_splits=None, n_boot=n_boot)
    rep = val.report
    rep0 = V.validate(data, realized, heatmap=hm_start, window=window, side_splits=None, n_boot=n_boot).report
    obj_test = score(rule, hl, np.asarray(w_out), test)
    obj_test0 = score(p0.oi_decrease, p0.half_life_hours, p0.weights(), test)
    tr_idx, te_idx = np.flatnonzero(train), np.flatnonzero(test)
    truth_info = _truth_distance(truth, data, fitted, _layer_share(sweeps[rule], hl, w, train))
    if truth_info is not None:
        # the objective at the TRUE mix (same rule and half-life): is the truth the objective's optimum?
        tw = dict(zip(truth_info["notional"]["true_leverages"], truth_info["notional"]["true_weights"]))
        wt = np.array([tw.get(float(l), 0.0) for l in p0.leverages])
        if wt.sum() > 0:
            truth_info["objective_train_true_mix"] = score(rule, hl, wt, train)
            truth_info["objective_test_true_mix"] = score(rule, hl, wt, test)
            truth_info["true_mix_coverage"] = float(wt.sum() / sum(tw.values()))
    return FitResult(
        params=fitted, start_params=p0, objective_train=float(best_val), objective_test=obj_test,
        objective_test_start=obj_test0,
        train=(_fmt(start[tr_idx[0]]), _fmt(end[tr_idx[-1]])), test=(_fmt(start[te_idx[0]]), _fmt(end[te_idx[-1]])),
        trials=pd.DataFrame(trials), test_report=rep, test_report_start=rep0, test_series=val.series,
        truth=truth_info,
        seconds=time.perf_counter() - t0,
    )


def _progress(total: int, progress: bool | None):
    import sys

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    return tqdm(total=total, desc="fit", unit="cfg", disable=disable, leave=False)


IDENTIFIABLE_SHARE = 0.01  # a leverage layer is identifiable if it holds >= 1% of the swept notional


def _layer_share(sw: _Sweeps, hl: float, w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of the (unweighted) swept notional per leverage layer over the ``mask`` steps (K,).

    Every layer receives the same deposits, so this says how often each leverage's levels were
    actually crossed; a layer that is never crossed cannot be identified from sweeps (its weight
    changes no step's ranking)."""
    SL, SS = sw.layers(hl, np.asarray(w, float) / np.sum(w))
    tot = np.nansum(np.where(mask, SL, 0.0), axis=1) + np.nansum(np.where(mask, SS, 0.0), axis=1)
    return tot / tot.sum() if tot.sum() > 0 else tot


def _truth_distance(truth, data, fitted, layer_share: np.ndarray | None = None) -> dict | None:
    """Distance of the fitted leverage mix to the simulator's true one (None when no truth is known).

    The true mix is the truth's ``leverage_weights`` (liqlab.simulation: shares of new USD notional by
    leverage, what the engine's deposit weights estimate); ``count_weights`` (shares by number of
    positions), when present, is compared too. ``identifiable``: the same distance restricted to the
    leverages whose levels were actually crossed in the training window (both mixes renormalised
    there): a leverage whose levels price never reaches leaves no trace in realized sweeps, so its
    weight cannot be learnt from them. Presets' distances are given for scale.
    """
    cfg = _truth_config(truth, data)
    if cfg is None:
        return None
    from .params import preset_weights

    out: dict[str, Any] = {"fitted_leverages": [float(x) for x in fitted.leverages],
                           "fitted_weights": [float(x) for x in fitted.weights()]}
    levs = cfg.get("leverages")
    for key, label in (("leverage_weights", "notional"), ("count_weights", "by_count")):
        w = cfg.get(key)
        if not (isinstance(levs, Sequence) and isinstance(w, Sequence) and len(levs) == len(w) and sum(w) > 0):
            continue
        d = weights_distance(fitted.leverages, fitted.weights(), levs, w)
        ref = {name: weights_distance(fitted.leverages, preset_weights(name, fitted.leverages), levs, w)["total_variation"]
               for name in ("conservative", "balanced", "retail-high", "uniform")}
        out[label] = {"source_key": key, "true_leverages": [float(x) for x in levs], "true_weights": [float(x) for x in w],
                      **d, "presets_total_variation": ref}
    if "notional" not in out:
        return None
    out["total_variation"] = out["notional"]["total_variation"]
    out["mean_log_leverage_diff"] = out["notional"]["mean_log_leverage_diff"]
    if layer_share is not None:
        ident = [float(l) for l, sh in zip(fitted.leverages, layer_share) if sh >= IDENTIFIABLE_SHARE]
        out["layer_swept_share"] = [float(x) for x in layer_share]
        fw = dict(zip([float(x) for x in fitted.leverages], fitted.weights()))
        tw = dict(zip(out["notional"]["true_leverages"], out["notional"]["true_weights"]))
        a = [fw.get(l, 0.0) for l in ident]
        b = [tw.get(l, 0.0) for l in ident]
        if ident and sum(a) > 0 and sum(b) > 0:
            out["identifiable"] = {"leverages": ident, "fitted_weights": [x / sum(a) for x in a],
                                   "true_weights": [x / sum(b) for x in b], **weights_distance(ident, a, ident, b)}
    out["note"] = ("total_variation / mean_log_leverage_diff: fitted vs the true USD-notional mix over all "
                   "leverages; identifiable: the same over the leverages whose levels were crossed in training")
    return out


def _truth_config(truth, data) -> dict | None:
    """The truth config (dict with ``leverages`` and weights) from a folder, file or dict; None if absent."""
    import json

    if truth is None:
        return None
    if isinstance(truth, Mapping):
        cfg = dict(truth)
    else:
        if isinstance(truth, str) and truth == "auto":
            root = getattr(data, "path", None)
            cands = [Path(root) / "truth", Path(root).parent / "truth"] if root else []
            folder = next((c for c in cands if (c / "config.json").exists()), None)
            if folder is None:
                return None
        else:
            folder = Path(truth)
        f = folder / "config.json" if folder.is_dir() else folder
        try:
            cfg = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{f}: cannot read the simulator truth ({exc})") from None
    if "leverages" not in cfg and isinstance(cfg.get("leverage_mix"), Mapping):
        cfg = {**cfg, **cfg["leverage_mix"]}
    return cfg if "leverages" in cfg else None
