"""Fit heatmap parameters to realized liquidations (docs/VALIDATION.md, "Fitting").

The search has two levels, each with one documented criterion:

1. **Leverage mix, given the dynamics** (:func:`mix_regression`). The map is linear in the leverage
   weights (every layer receives the same deposits; docs/DESIGN.md), so the notional a step sweeps is
   ``Σ_k w_k·S_k(t)`` with ``S_k`` the sweep of layer k alone. Realized liquidations per step and side
   are regressed on those layer sweeps: ``E[y_t] = α_side + Σ_k β_k·S_k(t)``, β ≥ 0, α ≥ 0 (liquidations
   the map cannot see, e.g. of positions opened before the data start), fitted by quasi-Poisson
   maximum likelihood (variance ∝ mean: a cascade step is noisier than a quiet one) with iteratively
   re-weighted non-negative least squares. Only the *identifiable* layers enter: a leverage whose
   levels price never crossed in training (< ``IDENTIFIABLE_SHARE`` of the swept notional) leaves no
   trace in realized liquidations, so it keeps the starting mix's weight (the prior) and the crossed
   layers share the rest in proportion to β. ``Σβ`` is reported: were the engine's USD scale exact and
   realized liquidations complete, it would be the weight mass on the crossed leverages.
2. **Dynamics** (OI-decrease rule × leverage exponent of the half-life × half-life, a small grid): each
   configuration gets its regression mix, and the configuration with the highest training
   :func:`objective` (mean of the long and short Spearman correlations between swept and realized per
   step, the headline metric of ``liqlab validate``) wins, with one exception
   (:func:`select_configuration`): when the best uses another OI-decrease rule than the starting
   parameters and a configuration with the starting rule trails it by no more than one standard error
   of their paired difference (moving-block bootstrap of the training steps), the best configuration
   with the starting rule wins. 'proportional' and 'ignore' differ only when OI falls, and their
   objectives are often within noise of each other: a coin flip should not replace the starting rule.

The training window is the first ``train_fraction`` of the scored steps, minus a **burn-in**: the steps
that start within ``burn_in_hours`` of the data start (default 72 h, the burn-in of ``liqlab score``,
but at most a quarter of the training window).
The map starts empty at the data start, while the market does not: the first liquidations are of
positions opened before the data, which no map sees, and a map with a long half-life is still filling up
while one with a short half-life is already near its level. Scored there, the objective favours short
half-lives for a reason that has nothing to do with how long positions live (docs/VALIDATION.md,
"Burn-in"). The report then scores the fitted and the starting parameters on the later, untouched steps
(same metrics and baselines as ``liqlab validate``). The map is always built on all the data (it only
looks back), so the test-window state is what history gives it; nothing of the test window enters the
choice of parameters.
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

from liqlab._util import TRAIN_FRACTION, jsonable, progress as progress_bar
from liqlab.engine.params import HeatmapParams
from liqlab.errors import DataError, ParameterError
from liqlab.stats.metrics import N_BOOT, spearman
from liqlab.stats.mix import (IDENTIFIABLE_SHARE, LayerSweeps, MixFit, layer_share, mix_regression, truth_distance,
                              weights_distance)
from liqlab.stats.resample import block_bootstrap_indices
from liqlab.stats.score import DEFAULT_BURN_IN_HOURS
from liqlab.stats.steps import heatmap_step_edges, realized_per_step, step_bars, validation_step, venue_datasets

__all__ = ["HALF_LIVES", "HALF_LIFE_EXPONENTS", "OI_RULES", "IDENTIFIABLE_SHARE", "FitResult", "MixFit",
           "bootstrap_objectives", "fit", "mix_regression", "objective", "save_params", "select_configuration",
           "weights_distance"]

HALF_LIVES: tuple[float, ...] = (6.0, 24.0, 72.0, 168.0, 720.0, math.inf)  # hours
HALF_LIFE_EXPONENTS: tuple[float, ...] = (0.0, 1.0)  # γ: layer half-life = half_life·(L/10)^(−γ)
OI_RULES: tuple[str, ...] = ("proportional", "ignore", "highest_leverage")
BURN_IN_HOURS = DEFAULT_BURN_IN_HOURS  # training steps start this long after the data start (the score's burn-in)
BURN_IN_MAX_SHARE = 0.25  # ... but by default at most this share of the training window (short data)
MIN_STEPS = 10  # scored steps needed on each side of the train/test split (and left after the burn-in)
SELECTION_BOOT = 200  # moving-block bootstrap replications of the training objective (one-standard-error rule)


def objective(swept_long: np.ndarray, swept_short: np.ndarray, real_long: np.ndarray, real_short: np.ndarray,
              mask: np.ndarray) -> float:
    """Mean of the long and short Spearman correlations of swept vs realized over ``mask`` steps
    (a side whose correlation is undefined counts as 0).

    Parameters
    ----------
    swept_long, swept_short : np.ndarray
        (T,) swept notional per step, USD.
    real_long, real_short : np.ndarray
        (T,) realized liquidations per step, USD.
    mask : np.ndarray
        (T,) bool, the steps scored.

    Returns
    -------
    float
        In [-1, 1].
    """
    vals = []
    for s, r in ((swept_long, real_long), (swept_short, real_short)):
        rho = spearman(np.where(mask, s, np.nan), np.where(mask, r, np.nan))
        vals.append(rho if np.isfinite(rho) else 0.0)
    return float(np.mean(vals))


def bootstrap_objectives(swept: Sequence[tuple[np.ndarray, np.ndarray]], real_long: np.ndarray,
                         real_short: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The :func:`objective` of every configuration on every bootstrap resample of the steps, (R, C).

    ``swept``: C pairs (long, short) of swept notional (n,) USD on the same n steps (time order) as
    ``real_long``/``real_short`` (n,); ``idx`` (R, n) resampled step indices (e.g.
    :func:`liqlab.stats.resample.block_bootstrap_indices`). All configurations share each resample, so the
    spread of a difference between two columns is the noise of that paired difference.

    Parameters
    ----------
    swept : sequence of (np.ndarray, np.ndarray)
        C configurations' (long, short) swept notional, (n,) USD each.
    real_long, real_short : np.ndarray
        (n,) realized liquidations, USD.
    idx : np.ndarray
        (R, n) resampled step indices.

    Returns
    -------
    np.ndarray
        (R, C) objectives.
    """
    from scipy.stats import rankdata

    def rho(pred: np.ndarray, real: np.ndarray) -> np.ndarray:  # row-wise Spearman, 0 where undefined
        a = rankdata(pred, axis=1)
        b = rankdata(real, axis=1)
        a -= a.mean(1, keepdims=True)
        b -= b.mean(1, keepdims=True)
        den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
        return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), 0.0)

    idx = np.asarray(idx)
    rl, rs = np.asarray(real_long, float)[idx], np.asarray(real_short, float)[idx]
    return np.column_stack([0.5 * (rho(np.asarray(sl, float)[idx], rl) + rho(np.asarray(ss, float)[idx], rs))
                            for sl, ss in swept])


def select_configuration(objectives: np.ndarray, boot: np.ndarray, preferred: np.ndarray) -> tuple[int, np.ndarray]:
    """The one-standard-error rule of the dynamics search: (index chosen, SE (C,) of each gap to the best).

    ``objectives`` (C,) training objectives; ``boot`` (R, C) the same on R shared resamples
    (:func:`bootstrap_objectives`); ``preferred`` (C,) bool: the configurations with the starting OI rule.
    The best configuration wins unless it is not preferred and a preferred one trails it by no more than
    one standard error of their paired difference (sd over the resamples); then the best preferred one
    wins. A rule the data cannot tell from the starting one does not replace it.

    Parameters
    ----------
    objectives : np.ndarray
        (C,) training objectives.
    boot : np.ndarray
        (R, C) objectives on shared resamples.
    preferred : np.ndarray
        (C,) bool, the configurations with the starting OI rule.

    Returns
    -------
    tuple
        (index chosen, (C,) SE of each configuration's gap to the best).
    """
    objectives = np.asarray(objectives, float)
    boot = np.asarray(boot, float)
    preferred = np.asarray(preferred, bool)
    if objectives.ndim != 1 or boot.shape[1:] != objectives.shape or preferred.shape != objectives.shape:
        raise ParameterError(f"select_configuration: shapes objectives {objectives.shape}, boot {boot.shape}, "
                             f"preferred {preferred.shape} do not agree")
    best = int(np.argmax(objectives))
    se = (boot[:, [best]] - boot).std(0, ddof=1) if boot.shape[0] > 1 else np.zeros_like(objectives)
    if preferred[best]:
        return best, se
    ok = preferred & (objectives[best] - objectives <= se)
    if not ok.any():
        return best, se
    cand = np.flatnonzero(ok)
    return int(cand[np.argmax(objectives[cand])]), se


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters, the search trail and the out-of-sample report."""

    params: Any  # HeatmapParams (fitted)
    start_params: Any  # HeatmapParams the search started from (defaults unless given)
    objective_train: float
    objective_test: float
    objective_test_start: float
    train: tuple[str, str]  # training steps used (after the burn-in) [start, end) UTC
    test: tuple[str, str]
    burn_in_hours: float  # steps starting this soon after the data start were left out of training
    selection: dict  # how the configuration was chosen (_selection_summary)
    trials: pd.DataFrame  # one row per evaluated configuration
    test_report: dict  # liqlab.stats.validate report of the fitted params on the test window
    test_report_start: dict  # same for the starting params
    test_series: pd.DataFrame  # per-step series of the fitted map (liqlab.stats.validate.Validation.series), all steps
    mix: dict  # how the fitted mix was made (_mix_summary)
    truth: dict | None  # on simulated data: the true leverage mix and the distance to it
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (the report ``liqlab fit --json`` writes)."""
        return {
            "synthetic": bool(self.test_report.get("synthetic", False)),
            "objective": "mean of long and short Spearman(swept notional, realized liquidations) per step",
            "mix_estimator": "quasi-Poisson regression of realized liquidations on the leverage layers' sweeps "
                             "(identifiable layers; the others keep the prior weight)",
            "params": self.params.to_dict(),
            "start_params": self.start_params.to_dict(),
            "objective_train": self.objective_train,
            "objective_test": self.objective_test,
            "objective_test_start_params": self.objective_test_start,
            "train": list(self.train),
            "test": list(self.test),
            "burn_in_hours": self.burn_in_hours,
            "selection": _json(self.selection),
            "n_trials": len(self.trials),
            "landscape": self.landscape(),
            "trials_top": _json(self.trials.sort_values("objective", ascending=False).head(10).to_dict("records")),
            "mix": _json(self.mix),
            "test_report": self.test_report,
            "test_report_start_params": self.test_report_start,
            "truth": self.truth,
            "seconds": self.seconds,
        }

    def landscape(self) -> dict[str, Any]:
        """How much the objective varies over the searched configurations, on train and on test, and
        whether the training ranking of configurations carries over to the test window (Spearman);
        ``runner_up``: the second-best configuration on train, and ``train_gap_to_runner_up`` how far
        behind it is (a gap of a few thousandths says the choice between the two is not firm)."""
        t = self.trials
        if len(t) == 0:
            return {}
        out = {"train_min": float(t.objective.min()), "train_max": float(t.objective.max()),
               "test_min": float(t.objective_test.min()), "test_max": float(t.objective_test.max()),
               "train_test_rank_correlation": _json(spearman(t.objective.to_numpy(), t.objective_test.to_numpy())),
               "best_test_config": _json(t.loc[t.objective_test.idxmax()].to_dict())}
        if len(t) > 1:  # how close the choice was: the second-best configuration on train
            ranked = t.sort_values("objective", ascending=False, kind="stable")
            r2 = ranked.iloc[1]
            out["runner_up"] = {k: _json(r2[k]) for k in ("oi_decrease", "half_life_hours", "half_life_exponent",
                                                               "objective", "objective_test")}
            out["train_gap_to_runner_up"] = float(ranked.objective.iloc[0] - r2.objective)
        return out

    def mix_table(self) -> pd.DataFrame:
        """One row per leverage: prior weight, share of the swept notional in training, identifiable,
        regression coefficient β, fitted weight, and (on simulated data) the true USD-notional weight."""
        m = self.mix
        df = pd.DataFrame({"leverage": m["leverages"], "prior weight": m["prior_weights"],
                           "share of swept notional": m["layer_swept_share"], "identifiable": m["identifiable"],
                           "beta": m["coef"], "fitted weight": m["weights"]})
        if self.truth:
            tw = dict(zip(self.truth["notional"]["true_leverages"], self.truth["notional"]["true_weights"]))
            df["true weight (synthetic)"] = [tw.get(float(x), 0.0) for x in m["leverages"]]
        return df

    def save_params(self, path: str | Path) -> Path:
        """Write the fitted parameters (YAML for .yaml/.yml, else JSON), loadable by HeatmapParams."""
        return save_params(self.params, path, note=self._note())

    def _note(self) -> str:
        return (f"fitted by liqlab fit on {self.train[0]} .. {self.train[1]} (objective {self.objective_train:.4f}); "
                f"test {self.test[0]} .. {self.test[1]} objective {self.objective_test:.4f}"
                + (" [synthetic data]" if self.test_report.get("synthetic") else ""))


def save_params(params, path: str | Path, note: str = "") -> Path:
    """Save HeatmapParams as YAML (.yaml/.yml) or JSON, atomically; ``HeatmapParams.from_file`` reads it.

    Parameters
    ----------
    params : HeatmapParams
    path : str or Path
        ``.yaml``/``.yml`` for YAML, anything else for JSON.
    note : str
        A comment line at the top of a YAML file.

    Returns
    -------
    Path
    """
    from liqlab.io import atomic

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


def _split(valid: np.ndarray, train_fraction: float):
    idx = np.flatnonzero(valid)
    ntr = round(train_fraction * idx.size)
    if ntr < MIN_STEPS or idx.size - ntr < MIN_STEPS:
        raise DataError(f"only {idx.size} scored steps: too few for a {train_fraction:.0%}/"
                        f"{1 - train_fraction:.0%} train/test split (need >= {MIN_STEPS} on each side)")
    cut = int(idx[ntr])  # first test step
    train = valid & (np.arange(valid.size) < cut)
    test = valid & (np.arange(valid.size) >= cut)
    return train, test, cut


def _burn_in(train: np.ndarray, start: np.ndarray, hours: float) -> np.ndarray:
    """The training steps (bool (T,)) without those that start less than ``hours`` after the first
    step's start ``start[0]`` (UTC datetime64 (T,)); DataError if fewer than MIN_STEPS remain."""
    keep = train & (start >= start[0] + np.timedelta64(int(round(hours * 3.6e12)), "ns"))
    if int(keep.sum()) < MIN_STEPS:
        raise DataError(f"burn_in_hours: {hours:g} h leaves {int(keep.sum())} of the {int(train.sum())} training "
                        f"steps (need >= {MIN_STEPS}); give a shorter burn-in (--burn-in) or more data")
    return keep


def _fmt(t: np.datetime64) -> str:
    return pd.Timestamp(t).tz_localize("UTC").isoformat()


@dataclass
class _Context:
    """The fit's problem: data, the starting parameters, one build and layer sweeps per OI rule, the step
    grid [start, end) (T,) UTC, realized liquidations (T,) USD, the train/test masks and the layers the
    training window crossed."""

    data: Any
    realized: Any
    p0: Any
    builds: dict
    sweeps: dict
    start: np.ndarray
    end: np.ndarray
    real_l: np.ndarray
    real_s: np.ndarray
    train: np.ndarray  # bool (T,)
    test: np.ndarray
    cut: int  # first test step
    burn_in_hours: float
    prior: np.ndarray  # (K,) starting weights
    share: np.ndarray  # (K,) share of the swept notional per layer in training
    ident: np.ndarray  # (K,) bool: identifiable layers

    def score(self, rule: str, hl: float, gamma: float, w: np.ndarray, mask: np.ndarray) -> float:
        """The :func:`objective` of one configuration (OI rule, half-life, γ, weights) over ``mask``."""
        sl, ss = self.sweeps[rule].swept(hl, w, gamma)
        return objective(sl, ss, self.real_l, self.real_s, mask)


def _check_search(train_fraction: float, burn_in_hours: float | None, oi_rules: Sequence[str],
                  half_lives: Sequence[float], half_life_exponents: Sequence[float]) -> tuple[tuple, tuple]:
    """Refuse bad search settings (ParameterError naming the parameter); the two grids as float tuples."""
    if not 0 < train_fraction < 1:
        raise ParameterError(f"train_fraction: must be in (0, 1), got {train_fraction}")
    if burn_in_hours is not None and not (isinstance(burn_in_hours, (int, float)) and 0 <= burn_in_hours < math.inf):
        raise ParameterError(f"burn_in_hours: need finite hours >= 0, got {burn_in_hours!r}")
    bad = [r for r in oi_rules if r not in OI_RULES]
    if bad or not oi_rules:
        raise ParameterError(f"oi_rules: choose from {list(OI_RULES)}, got {list(oi_rules)}")
    hls = _grid("half_lives", half_lives, "positive hours (inf = no decay)", lambda h: h > 0)
    exps = _grid("half_life_exponents", half_life_exponents, "numbers in [0, 3]", lambda g: 0.0 <= g <= 3.0)
    return hls, exps


def _builds(data, p0, oi_rules: Sequence[str], max_memory) -> dict[str, Any]:
    """One engine build per OI rule (the starting rule included), each within its share of the budget."""
    from liqlab.engine.heatmap import build_heatmap

    builds: dict[str, Any] = {}
    rules = list(dict.fromkeys(list(oi_rules) + [p0.oi_decrease]))
    share = _memory_share(max_memory, heatmaps_held(len(rules)))
    for rule in rules:
        try:
            builds[rule] = build_heatmap(data, p0.replace(oi_decrease=rule), progress=False, max_memory=share)
        except ParameterError as exc:
            raise ParameterError(f"fit holds up to {heatmaps_held(len(rules))} heatmaps at once (one per OI rule, "
                                 f"the fitted and the starting map, a baseline map), each allowed that share of "
                                 f"the budget: {exc}") from None
    return builds


def _context(data, realized, p0, oi_rules: Sequence[str], train_fraction: float, burn_in_hours: float | None,
             max_memory) -> _Context:
    """Build the maps, share the step grid, bars and realized series, split train/test, apply the burn-in
    and decide (once, with the starting dynamics) which layers the training window crossed."""
    builds = _builds(data, p0, oi_rules, max_memory)
    start, end, _ = heatmap_step_edges(builds[oi_rules[0]])
    for rule, hm in builds.items():
        if len(hm.times) != len(end) or (np.asarray(hm.times, "datetime64[ns]") != end).any():
            raise DataError(f"heatmap step grid differs for oi_decrease={rule}")
    bars = [step_bars(d, start, end) for d in venue_datasets(data)]
    real_l, real_s = realized_per_step(realized, start, end)
    sweeps = {rule: LayerSweeps(hm, data, bars) for rule, hm in builds.items()}
    prior = p0.weights()
    sl0, ss0 = sweeps[p0.oi_decrease].swept(p0.half_life_hours, prior, p0.half_life_exponent)
    valid = np.isfinite(sl0) & np.isfinite(ss0) & np.isfinite(real_l) & np.isfinite(real_s)
    train, test, cut = _split(valid, train_fraction)
    if burn_in_hours is None:
        span = (end[np.flatnonzero(train)[-1]] - start[0]) / np.timedelta64(1, "h")
        burn_in_hours = min(BURN_IN_HOURS, BURN_IN_MAX_SHARE * float(span))
    train = _burn_in(train, start, float(burn_in_hours))
    share = layer_share(sweeps[p0.oi_decrease], p0.half_life_hours, p0.half_life_exponent, prior, train)
    return _Context(data=data, realized=realized, p0=p0, builds=builds, sweeps=sweeps, start=start, end=end,
                    real_l=real_l, real_s=real_s, train=train, test=test, cut=cut,
                    burn_in_hours=float(burn_in_hours), prior=prior, share=share, ident=share >= IDENTIFIABLE_SHARE)


def _search(ctx: _Context, oi_rules, half_life_exponents, half_lives, progress: bool | None):
    """Every configuration's regression mix and objectives: (trials, mixes, training sweeps (long, short))."""
    trials: list[dict[str, Any]] = []
    mixes: list[MixFit] = []
    train_sweeps: list[tuple[np.ndarray, np.ndarray]] = []
    configs = [(r, g, h) for r in oi_rules for g in half_life_exponents for h in half_lives]
    for rule, gamma, hl in progress_bar(configs, desc="fit", unit="cfg", enabled=progress):
        mf = ctx.sweeps[rule].mix(hl, gamma, ctx.prior, ctx, ctx.ident)
        sl, ss = ctx.sweeps[rule].swept(hl, mf.weights, gamma)
        # the test-window objective is recorded for the report only; the search never reads it
        trials.append({"oi_decrease": rule, "half_life_exponent": gamma, "half_life_hours": hl,
                       "weights": [round(float(x), 6) for x in mf.weights],
                       "objective": objective(sl, ss, ctx.real_l, ctx.real_s, ctx.train),
                       "objective_test": objective(sl, ss, ctx.real_l, ctx.real_s, ctx.test),
                       "swept_mass": mf.swept_mass, "deviance": mf.deviance,
                       "intercept_long": mf.intercepts[0], "intercept_short": mf.intercepts[1]})
        mixes.append(mf)
        train_sweeps.append((sl[ctx.train], ss[ctx.train]))
    return trials, mixes, train_sweeps


def _choose(ctx: _Context, trials: list[dict], train_sweeps) -> tuple[int, dict[str, Any]]:
    """The one-standard-error choice among the trials (index, selection summary); adds each trial's SE."""
    objs = np.array([t["objective"] for t in trials])
    idx = block_bootstrap_indices(int(ctx.train.sum()), SELECTION_BOOT, seed=0)
    boot = bootstrap_objectives(train_sweeps, ctx.real_l[ctx.train], ctx.real_s[ctx.train], idx)
    preferred = np.array([t["oi_decrease"] == ctx.p0.oi_decrease for t in trials])
    pick, se = select_configuration(objs, boot, preferred)
    for t, e in zip(trials, se):
        t["se_of_gap_to_best"] = float(e)
    return pick, _selection_summary(trials, objs, pick, ctx.p0.oi_decrease)


def _truth_part(ctx: _Context, truth, fitted, mf: MixFit, cfg: tuple[str, float, float]) -> dict | None:
    """The distance to the simulator's true mix and the objective AT the true mix (same dynamics)."""
    info = truth_distance(truth, ctx.data, fitted, ctx.share, mf)
    if info is None:
        return None
    tw = dict(zip(info["notional"]["true_leverages"], info["notional"]["true_weights"]))
    wt = np.array([tw.get(float(lev), 0.0) for lev in ctx.p0.leverages])
    if wt.sum() > 0:  # is the truth the objective's optimum?
        info["objective_train_true_mix"] = ctx.score(*cfg, wt, ctx.train)
        info["objective_test_true_mix"] = ctx.score(*cfg, wt, ctx.test)
        info["true_mix_coverage"] = float(wt.sum() / sum(tw.values()))
    return info


def _test_validations(ctx: _Context, w_out: tuple, cfg: tuple[str, float, float], n_boot: int):
    """``validate`` of the fitted and of the starting map on the test window: (Validation, start report)."""
    from liqlab.stats.validate import validate

    rule, hl, gamma = cfg
    p0 = ctx.p0
    hm_fit = ctx.builds[rule].with_params(leverage_weights=w_out, half_life_hours=hl, half_life_exponent=gamma)
    hm_start = ctx.builds[p0.oi_decrease].with_params(
        leverage_preset=p0.leverage_preset, leverage_weights=p0.leverage_weights,
        half_life_hours=p0.half_life_hours, half_life_exponent=p0.half_life_exponent)
    window = (pd.Timestamp(ctx.start[ctx.cut]).tz_localize("UTC"), None)
    val = validate(ctx.data, ctx.realized, heatmap=hm_fit, window=window, side_splits=None, n_boot=n_boot)
    rep0 = validate(ctx.data, ctx.realized, heatmap=hm_start, window=window, side_splits=None, n_boot=n_boot).report
    return val, rep0


def fit(
    data,
    liquidations=None,
    params=None,
    *,
    train_fraction: float = TRAIN_FRACTION,
    half_lives: Sequence[float] = HALF_LIVES,
    half_life_exponents: Sequence[float] = HALF_LIFE_EXPONENTS,
    oi_rules: Sequence[str] = OI_RULES,
    truth: str | Path | Mapping | None = "auto",
    burn_in_hours: float | None = None,
    n_boot: int = N_BOOT,
    progress: bool | None = None,
    max_memory: int | str | None = None,
    **overrides: Any,
) -> FitResult:
    """Fit leverage mix, half-life (and its leverage exponent) and OI-decrease rule on the training
    window; report on the test window (module docstring).

    Parameters
    ----------
    data, liquidations, params, overrides
        As in :func:`liqlab.stats.validate.validate`; the params' leverage SET is searched, their mix is the prior.
    train_fraction : float
        First share of the scored steps used for training (time order), in (0, 1).
    half_lives : sequence of float
        Half-life grid in hours (inf = no decay).
    half_life_exponents : sequence of float
        Leverage exponents γ of the half-life, in [0, 3].
    oi_rules : sequence of str
        OI-decrease rules to try (``OI_RULES``).
    truth : str, Path, Mapping or None
        The simulator's truth (folder or dict with ``leverages`` and ``leverage_weights``); "auto" looks
        for ``truth/`` in or next to the data folder.
    burn_in_hours : float, optional
        Training steps that start within this many hours of the data start are left out (the map is still
        filling up there); None: ``BURN_IN_HOURS`` (72 h), at most ``BURN_IN_MAX_SHARE`` of the training span.
    n_boot : int
        Bootstrap replications of the test-window report.
    progress : bool or None
        Progress bar over the configurations (None = on a terminal).
    max_memory : int, str or None
        Byte budget of the whole fit (int or '8G'; None = half the available memory), shared by the
        :func:`heatmaps_held` maps held at once; a fit that would not fit is refused before the first build.

    Returns
    -------
    FitResult
    """
    from liqlab.io.dataset import as_collection

    t0 = time.perf_counter()
    half_lives, half_life_exponents = _check_search(train_fraction, burn_in_hours, oi_rules, half_lives,
                                                    half_life_exponents)
    data = as_collection(data)
    realized = as_collection(liquidations) if liquidations is not None else data
    p0 = HeatmapParams.coerce(params, **overrides)
    step = validation_step(data, realized, p0.time_step)
    if p0.time_step != step:
        p0 = p0.replace(time_step=step)
    ctx = _context(data, realized, p0, oi_rules, train_fraction, burn_in_hours, max_memory)
    trials, mixes, train_sweeps = _search(ctx, oi_rules, half_life_exponents, half_lives, progress)
    pick, selection = _choose(ctx, trials, train_sweeps)
    mf = mixes[pick]
    cfg = (trials[pick]["oi_decrease"], trials[pick]["half_life_hours"], trials[pick]["half_life_exponent"])
    w_out = tuple(round(float(x), 6) for x in mf.weights)
    fitted = p0.replace(oi_decrease=cfg[0], half_life_hours=cfg[1], half_life_exponent=cfg[2], leverage_weights=w_out)
    val, rep0 = _test_validations(ctx, w_out, cfg, n_boot)
    tr_idx, te_idx = np.flatnonzero(ctx.train), np.flatnonzero(ctx.test)
    return FitResult(
        params=fitted, start_params=p0, objective_train=float(trials[pick]["objective"]),
        objective_test=ctx.score(*cfg, np.asarray(w_out), ctx.test),
        objective_test_start=ctx.score(p0.oi_decrease, p0.half_life_hours, p0.half_life_exponent, ctx.prior, ctx.test),
        train=(_fmt(ctx.start[tr_idx[0]]), _fmt(ctx.end[tr_idx[-1]])),
        test=(_fmt(ctx.start[te_idx[0]]), _fmt(ctx.end[te_idx[-1]])),
        burn_in_hours=ctx.burn_in_hours, selection=selection, trials=pd.DataFrame(trials), test_report=val.report,
        test_report_start=rep0, test_series=val.series, mix=_mix_summary(p0.leverages, ctx.prior, ctx.share, mf),
        truth=_truth_part(ctx, truth, fitted, mf, cfg), seconds=time.perf_counter() - t0,
    )


_INF_PARAMS = ("half_life_hours", "max_age_hours")


def _json(x: Any) -> Any:
    """Strict JSON of a fit summary (:func:`liqlab._util.jsonable`), except that an infinite half-life or
    max age keeps the parameters' own text 'inf' (no decay), as ``HeatmapParams.to_dict`` writes it."""
    if isinstance(x, Mapping):
        return {str(k): "inf" if k in _INF_PARAMS and isinstance(v, (float, np.floating)) and math.isinf(v) and v > 0
                else _json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json(v) for v in x]
    return jsonable(x)


def heatmaps_held(n_rules: int) -> int:
    """Heatmaps a fit holds at once: one build per OI rule, then the fitted and the starting map and one
    baseline map of the test-window validation.

    Parameters
    ----------
    n_rules : int
        Number of OI rules searched (the starting rule included).

    Returns
    -------
    int
    """
    return n_rules + 3


def _memory_share(max_memory: int | str | None, n: int) -> int | None:
    """The fit's byte budget (see liqlab.engine.memory) divided by the ``n`` heatmaps it holds at once."""
    from liqlab.engine.memory import resolve_budget

    budget = resolve_budget(max_memory, "max_memory")
    return None if budget is None else budget // n


def _selection_summary(trials: list[dict], objectives: np.ndarray, pick: int, start_rule: str) -> dict[str, Any]:
    """How the dynamics were chosen: the best training configuration, the chosen one, and why."""
    def cfg(i: int) -> dict[str, Any]:
        t = trials[i]
        return {k: t[k] for k in ("oi_decrease", "half_life_hours", "half_life_exponent", "objective", "se_of_gap_to_best")}

    best = int(np.argmax(objectives))
    why = ("highest training objective" if pick == best else
           f"one-standard-error rule: within one SE of the best, with the starting OI rule '{start_rule}'")
    return {"rule": ("highest training objective, unless a configuration with the starting OI rule is within "
                     "one standard error (moving-block bootstrap of the paired difference) of it"),
            "bootstrap_replications": SELECTION_BOOT, "best": cfg(best), "chosen": cfg(pick), "reason": why}


def _grid(name: str, values: Sequence[float], what: str, ok) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: need {what}, got {list(values)}") from None
    if not out or not all(ok(v) for v in out):
        raise ParameterError(f"{name}: need {what}, got {list(values)}")
    return out


def _mix_summary(leverages, prior: np.ndarray, share: np.ndarray, mf: MixFit) -> dict[str, Any]:
    """How the fitted mix was made: per leverage the prior, the swept share, the β and the weight."""
    return {"leverages": [float(x) for x in leverages], "prior_weights": [float(x) for x in prior],
            "layer_swept_share": [float(x) for x in share], "identifiable": [bool(x) for x in mf.identifiable],
            "coef": [float(x) for x in mf.coef], "weights": [float(x) for x in mf.weights],
            "swept_mass": mf.swept_mass, "intercepts_usd_per_step": list(mf.intercepts),
            "irls_iterations": mf.iterations,
            "note": ("weights of identifiable leverages (levels crossed in training) come from the quasi-Poisson "
                     "regression of realized liquidations on the layer sweeps (coef = β); the others keep the "
                     "prior weight; swept_mass = Σβ")}


