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

from liqlab.stats import validate as V
from liqlab.errors import DataError, ParameterError
from liqlab.engine.params import HeatmapParams
from liqlab.stats.score import DEFAULT_BURN_IN_HOURS

__all__ = ["HALF_LIVES", "HALF_LIFE_EXPONENTS", "OI_RULES", "IDENTIFIABLE_SHARE", "FitResult", "MixFit",
           "bootstrap_objectives", "fit", "mix_regression", "objective", "save_params", "select_configuration",
           "weights_distance"]

HALF_LIVES: tuple[float, ...] = (6.0, 24.0, 72.0, 168.0, 720.0, math.inf)  # hours
HALF_LIFE_EXPONENTS: tuple[float, ...] = (0.0, 1.0)  # γ: layer half-life = half_life·(L/10)^(−γ)
OI_RULES: tuple[str, ...] = ("proportional", "ignore", "highest_leverage")
TRAIN_FRACTION = 0.6
BURN_IN_HOURS = DEFAULT_BURN_IN_HOURS  # training steps start this long after the data start (the score's burn-in)
BURN_IN_MAX_SHARE = 0.25  # ... but by default at most this share of the training window (short data)
MIN_STEPS = 10  # scored steps needed on each side of the train/test split (and left after the burn-in)
SELECTION_BOOT = 200  # moving-block bootstrap replications of the training objective (one-standard-error rule)
IDENTIFIABLE_SHARE = 0.01  # a leverage layer is identifiable if it holds >= 1% of the swept notional in training
IRLS_ITERATIONS = 50
HL_FIXED_POINT = 4  # regression rounds for 'highest_leverage', whose layers depend on the weights


def objective(swept_long: np.ndarray, swept_short: np.ndarray, real_long: np.ndarray, real_short: np.ndarray,
              mask: np.ndarray) -> float:
    """Mean of the long and short Spearman correlations of swept vs realized over ``mask`` steps
    (a side whose correlation is undefined counts as 0)."""
    vals = []
    for s, r in ((swept_long, real_long), (swept_short, real_short)):
        rho = V.spearman(np.where(mask, s, np.nan), np.where(mask, r, np.nan))
        vals.append(rho if np.isfinite(rho) else 0.0)
    return float(np.mean(vals))


def bootstrap_objectives(swept: Sequence[tuple[np.ndarray, np.ndarray]], real_long: np.ndarray,
                         real_short: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The :func:`objective` of every configuration on every bootstrap resample of the steps, (R, C).

    ``swept``: C pairs (long, short) of swept notional (n,) USD on the same n steps (time order) as
    ``real_long``/``real_short`` (n,); ``idx`` (R, n) resampled step indices (e.g.
    :func:`liqlab.stats.validate.block_bootstrap_indices`). All configurations share each resample, so the
    spread of a difference between two columns is the noise of that paired difference.
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
class MixFit:
    """The regression estimate of the leverage mix for one configuration (see the module docstring).

    ``weights`` (K,) sum to 1; ``coef`` (K,) are the β of the identifiable layers (0 elsewhere), USD of
    realized liquidations per USD of layer sweep; ``intercepts`` (long, short) USD per step;
    ``identifiable`` (K,) bool; ``deviance`` is the Poisson deviance of the fit (USD units, for
    comparison on the same steps only); ``iterations`` of the re-weighting.
    """

    weights: np.ndarray
    coef: np.ndarray
    intercepts: tuple[float, float]
    identifiable: np.ndarray
    deviance: float
    iterations: int

    @property
    def swept_mass(self) -> float:
        """Σβ over the identifiable layers (the implied weight mass on them if the USD scale were exact)."""
        return float(self.coef.sum())


def _nnls(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    scale = np.linalg.norm(X, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    ny = float(np.linalg.norm(y)) or 1.0
    b = nnls(X / scale, y / ny, maxiter=100 * (X.shape[1] + 1))[0]
    return b * ny / scale


def mix_regression(layers_long: np.ndarray, layers_short: np.ndarray, real_long: np.ndarray,
                   real_short: np.ndarray, mask: np.ndarray, identifiable: np.ndarray,
                   prior: np.ndarray, *, iterations: int = IRLS_ITERATIONS) -> MixFit:
    """Leverage weights from realized liquidations (quasi-Poisson, identity link, β ≥ 0).

    ``layers_long``/``layers_short`` (K, T) USD swept per step by each unweighted layer;
    ``real_long``/``real_short`` (T,) USD realized per step; ``mask`` (T,) bool steps used;
    ``identifiable`` (K,) bool layers estimated; ``prior`` (K,) weights kept by the other layers
    (normalised). Model: E[y] = α_side + Σ_k β_k·S_k, Var[y] ∝ E[y]; solved by iteratively re-weighted
    NNLS (weights 1/μ). Weights: the non-identifiable layers keep their prior weight m_k, the
    identifiable ones share 1 − Σm in proportion to β (all prior if every β is 0).
    """
    SL = np.asarray(layers_long, float)
    SS = np.asarray(layers_short, float)
    K, T = SL.shape
    ident = np.asarray(identifiable, bool)
    prior = np.asarray(prior, float)
    if SS.shape != (K, T) or ident.shape != (K,) or prior.shape != (K,) or np.shape(mask) != (T,):
        raise ParameterError(f"mix_regression: shapes layers {SL.shape}/{SS.shape}, identifiable {ident.shape}, "
                             f"prior {prior.shape}, mask {np.shape(mask)} do not agree")
    if not prior.sum() > 0:
        raise ParameterError("mix_regression: the prior weights sum to 0")
    prior = prior / prior.sum()
    m = np.asarray(mask, bool) & np.isfinite(real_long) & np.isfinite(real_short)
    m &= np.isfinite(SL).all(0) & np.isfinite(SS).all(0)
    n = int(m.sum())
    ki = np.flatnonzero(ident)
    y = np.concatenate([np.asarray(real_long, float)[m], np.asarray(real_short, float)[m]])
    X = np.zeros((2 * n, ki.size + 2))
    X[:n, :ki.size] = SL[ki][:, m].T
    X[n:, :ki.size] = SS[ki][:, m].T
    X[:n, ki.size] = 1.0
    X[n:, ki.size + 1] = 1.0
    coef = np.zeros(K)
    if n == 0 or not np.any(y > 0):
        return MixFit(weights=prior, coef=coef, intercepts=(0.0, 0.0), identifiable=ident, deviance=0.0, iterations=0)
    floor = 1e-9 * float(y.mean())
    b = _nnls(X, y)
    it = 0
    for it in range(1, iterations + 1):
        mu = np.maximum(X @ b, floor)
        r = 1.0 / np.sqrt(mu)
        nb = _nnls(X * r[:, None], y * r)
        done = np.allclose(nb, b, rtol=1e-7, atol=1e-12 * max(1.0, float(np.abs(b).max())))
        b = nb
        if done:
            break
    mu = np.maximum(X @ b, floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = 2.0 * float(np.sum(np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0) - (y - mu)))
    coef[ki] = b[:ki.size]
    w = np.where(ident, 0.0, prior)
    rest = 1.0 - w.sum()
    if coef.sum() > 0 and rest > 0:
        w = w + rest * coef / coef.sum()
    elif coef.sum() > 0:  # the prior gives the crossed layers nothing: they take what the data say
        w = coef / coef.sum()
    else:
        w = prior.copy()
    return MixFit(weights=w / w.sum(), coef=coef, intercepts=(float(b[ki.size]), float(b[ki.size + 1])),
                  identifiable=ident, deviance=dev, iterations=it)


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
            "selection": _jsonable(self.selection),
            "n_trials": len(self.trials),
            "landscape": self.landscape(),
            "trials_top": _jsonable(self.trials.sort_values("objective", ascending=False).head(10).to_dict("records")),
            "mix": _jsonable(self.mix),
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
               "train_test_rank_correlation": _jsonable(V.spearman(t.objective.to_numpy(), t.objective_test.to_numpy())),
               "best_test_config": _jsonable(t.loc[t.objective_test.idxmax()].to_dict())}
        if len(t) > 1:  # how close the choice was: the second-best configuration on train
            ranked = t.sort_values("objective", ascending=False, kind="stable")
            r2 = ranked.iloc[1]
            out["runner_up"] = {k: _jsonable(r2[k]) for k in ("oi_decrease", "half_life_hours", "half_life_exponent",
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


class _Sweeps:
    """Per-leverage-layer swept notional (K, T) per side for one built heatmap (one OI rule).

    The step recursion is re-run on the heatmap's replay (the kernel contract of docs/DESIGN.md, what
    ``Heatmap.with_params`` does) for each half-life; layers are unweighted, so for the 'proportional'
    and 'ignore' rules the swept notional of any leverage mix is the weighted sum of the layer sweeps
    (exactly what the weighted map would sweep). 'highest_leverage' depends on the weights: re-run per call.
    """

    def __init__(self, hm, data, bars):
        self.hm = hm
        self.prices = np.asarray(hm.prices, float)
        p = hm.params
        names = p.venues if p.venues is not None else hm.replay.venue_names
        by_venue = {d.venue: b for d, b in zip(V._venue_datasets(data), bars)}
        self.venues = [(hm.replay.venue(n), by_venue[n]) for n in names]
        self.rule = p.oi_decrease
        from liqlab.engine.kernel import max_age_steps

        self.A = max_age_steps(p.max_age_hours, hm.replay.step_hours)
        self._cache: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}  # (half-life, γ) → layers

    def layers(self, half_life: float, w: np.ndarray, gamma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Unweighted swept notional per layer (long, short), each (K, T) USD, for half-life ``half_life``
        hours and leverage exponent ``gamma`` (``w`` only matters for 'highest_leverage')."""
        from liqlab.engine.kernel import run_steps

        key = (float(half_life), float(gamma))
        if self.rule != "highest_leverage" and key in self._cache:
            return self._cache[key]
        K = len(w)
        T = len(self.hm.times)
        SL = np.zeros((K, T))
        SS = np.zeros((K, T))
        for rv, b in self.venues:
            L, S = run_steps(rv, w, half_life, self.A, self.rule, half_life_exponent=gamma)
            for k in range(K):
                sl, ss = V.swept_notional(L[k], S[k], self.prices, b.low, b.high)
                SL[k] += sl
                SS[k] += ss
        if self.rule != "highest_leverage":
            self._cache[key] = (SL, SS)
        return SL, SS

    def swept(self, half_life: float, w: np.ndarray, gamma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Swept notional (long, short) (T,) USD of leverage weights ``w`` (normalised), half-life and γ."""
        w = np.asarray(w, float) / np.sum(w)
        SL, SS = self.layers(half_life, w, gamma)
        return w @ SL, w @ SS

    def mix(self, half_life: float, gamma: float, prior: np.ndarray, ctx: "_Context",
            identifiable: np.ndarray) -> MixFit:
        """The regression mix on the training steps; for 'highest_leverage' (whose layers depend on the
        weights) the layers are recomputed with the estimate and the regression repeated (fixed point,
        at most ``HL_FIXED_POINT`` rounds)."""
        w = np.asarray(prior, float) / np.sum(prior)
        rounds = HL_FIXED_POINT if self.rule == "highest_leverage" else 1
        res = None
        for _ in range(rounds):
            SL, SS = self.layers(half_life, w, gamma)
            res = mix_regression(SL, SS, ctx.real_l, ctx.real_s, ctx.train, identifiable, prior)
            if np.allclose(res.weights, w, atol=1e-4):
                break
            w = res.weights
        return res


@dataclass
class _Context:
    real_l: np.ndarray
    real_s: np.ndarray
    train: np.ndarray  # bool (T,)
    test: np.ndarray


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
    n_boot: int = V.N_BOOT,
    progress: bool | None = None,
    max_memory: int | str | None = None,
    **overrides: Any,
) -> FitResult:
    """Fit leverage mix, half-life (and its leverage exponent) and OI-decrease rule on the training
    window; report on the test window.

    ``data``/``liquidations``/``params``/``overrides`` as in :func:`liqlab.stats.validate.validate`: the
    leverage SET comes from the params, and their mix is the prior kept by leverages the training
    window never crossed. ``truth``: the simulator's truth (folder or dict with ``leverages`` and
    ``leverage_weights``); "auto" looks for ``truth/`` in or next to the data folder. ``max_memory``:
    byte budget of the whole fit (int or '8G'; None = half the available memory): up to
    :func:`heatmaps_held` heatmaps are in memory at once, so each build gets that share of it and a fit
    that would not fit is refused before the first build. ``burn_in_hours``: training steps that start
    within this many hours of the data start are left out of the regression and the objective (the map
    is still filling up there; module docstring); the test window is unchanged. None: ``BURN_IN_HOURS``
    (72 h), but at most ``BURN_IN_MAX_SHARE`` of the training window's span; the value used is
    ``FitResult.burn_in_hours``. Returns a :class:`FitResult`.
    """
    from liqlab.engine.heatmap import build_heatmap

    t0 = time.perf_counter()
    if not 0 < train_fraction < 1:
        raise ParameterError(f"train_fraction: must be in (0, 1), got {train_fraction}")
    if burn_in_hours is not None and not (isinstance(burn_in_hours, (int, float)) and 0 <= burn_in_hours < math.inf):
        raise ParameterError(f"burn_in_hours: need finite hours >= 0, got {burn_in_hours!r}")
    bad = [r for r in oi_rules if r not in OI_RULES]
    if bad or not oi_rules:
        raise ParameterError(f"oi_rules: choose from {list(OI_RULES)}, got {list(oi_rules)}")
    half_lives = _grid("half_lives", half_lives, "positive hours (inf = no decay)", lambda h: h > 0)
    half_life_exponents = _grid("half_life_exponents", half_life_exponents, "numbers in [0, 3]",
                                lambda g: 0.0 <= g <= 3.0)

    data = V._load(data)
    realized = V._load(liquidations) if liquidations is not None else data
    p0 = HeatmapParams.coerce(params, **overrides)
    step = V.validation_step(data, realized, p0.time_step)
    if p0.time_step != step:
        p0 = p0.replace(time_step=step)

    # one engine build per OI rule; the step grid, bars and realized series are shared
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
    first = builds[oi_rules[0]]
    start, end, _ = V.heatmap_step_edges(first)
    for rule, hm in builds.items():
        if len(hm.times) != len(end) or (np.asarray(hm.times, "datetime64[ns]") != end).any():
            raise DataError(f"heatmap step grid differs for oi_decrease={rule}")
    bars = [V.step_bars(d, start, end) for d in V._venue_datasets(data)]
    real_l, real_s = V.realized_per_step(realized, start, end)
    sweeps = {rule: _Sweeps(hm, data, bars) for rule, hm in builds.items()}
    prior = p0.weights()
    sl0, ss0 = sweeps[p0.oi_decrease].swept(p0.half_life_hours, prior, p0.half_life_exponent)
    valid = np.isfinite(sl0) & np.isfinite(ss0) & np.isfinite(real_l) & np.isfinite(real_s)
    train, test, cut = _split(valid, train_fraction)
    if burn_in_hours is None:
        span = (end[np.flatnonzero(train)[-1]] - start[0]) / np.timedelta64(1, "h")
        burn_in_hours = min(BURN_IN_HOURS, BURN_IN_MAX_SHARE * float(span))
    train = _burn_in(train, start, float(burn_in_hours))
    ctx = _Context(real_l=real_l, real_s=real_s, train=train, test=test)
    # which layers the training window crossed: decided once, with the starting dynamics, so every
    # configuration estimates the same coefficients
    share = _layer_share(sweeps[p0.oi_decrease], p0.half_life_hours, p0.half_life_exponent, prior, train)
    ident = share >= IDENTIFIABLE_SHARE

    trials: list[dict[str, Any]] = []
    bar = _progress(len(oi_rules) * len(half_life_exponents) * len(half_lives), progress)

    def score(rule: str, hl: float, gamma: float, w: np.ndarray, mask: np.ndarray) -> float:
        sl, ss = sweeps[rule].swept(hl, w, gamma)
        return objective(sl, ss, ctx.real_l, ctx.real_s, mask)

    mixes: list[MixFit] = []
    train_sweeps: list[tuple[np.ndarray, np.ndarray]] = []  # per configuration, swept (long, short) on training steps
    for rule in oi_rules:
        for gamma in half_life_exponents:
            for hl in half_lives:
                mf = sweeps[rule].mix(hl, gamma, prior, ctx, ident)
                sl, ss = sweeps[rule].swept(hl, mf.weights, gamma)
                # the test-window objective is recorded for the report only; the search never reads it
                trials.append({"oi_decrease": rule, "half_life_exponent": gamma, "half_life_hours": hl,
                               "weights": [round(float(x), 6) for x in mf.weights],
                               "objective": objective(sl, ss, ctx.real_l, ctx.real_s, train),
                               "objective_test": objective(sl, ss, ctx.real_l, ctx.real_s, test),
                               "swept_mass": mf.swept_mass, "deviance": mf.deviance,
                               "intercept_long": mf.intercepts[0], "intercept_short": mf.intercepts[1]})
                mixes.append(mf)
                train_sweeps.append((sl[train], ss[train]))
                bar.update(1)
    bar.close()
    objs = np.array([t["objective"] for t in trials])
    boot = bootstrap_objectives(train_sweeps, real_l[train], real_s[train],
                                V.block_bootstrap_indices(int(train.sum()), SELECTION_BOOT, seed=0))
    preferred = np.array([t["oi_decrease"] == p0.oi_decrease for t in trials])
    pick, se = select_configuration(objs, boot, preferred)
    for t, e in zip(trials, se):
        t["se_of_gap_to_best"] = float(e)
    selection = _selection_summary(trials, objs, pick, p0.oi_decrease)
    best_val, mf = float(objs[pick]), mixes[pick]
    rule, hl, gamma = trials[pick]["oi_decrease"], trials[pick]["half_life_hours"], trials[pick]["half_life_exponent"]

    w_out = tuple(round(float(x), 6) for x in mf.weights)
    fitted = p0.replace(oi_decrease=rule, half_life_hours=hl, half_life_exponent=gamma, leverage_weights=w_out)
    hm_fit = builds[rule].with_params(leverage_weights=w_out, half_life_hours=hl, half_life_exponent=gamma)
    hm_start = builds[p0.oi_decrease].with_params(leverage_preset=p0.leverage_preset,
                                                  leverage_weights=p0.leverage_weights,
                                                  half_life_hours=p0.half_life_hours,
                                                  half_life_exponent=p0.half_life_exponent)
    window = (pd.Timestamp(start[cut]).tz_localize("UTC"), None)
    val = V.validate(data, realized, heatmap=hm_fit, window=window, side_splits=None, n_boot=n_boot)
    rep = val.report
    rep0 = V.validate(data, realized, heatmap=hm_start, window=window, side_splits=None, n_boot=n_boot).report
    obj_test = score(rule, hl, gamma, np.asarray(w_out), test)
    obj_test0 = score(p0.oi_decrease, p0.half_life_hours, p0.half_life_exponent, prior, test)
    tr_idx, te_idx = np.flatnonzero(train), np.flatnonzero(test)
    truth_info = _truth_distance(truth, data, fitted, share, mf)
    if truth_info is not None:
        # the objective at the TRUE mix (same dynamics): is the truth the objective's optimum?
        tw = dict(zip(truth_info["notional"]["true_leverages"], truth_info["notional"]["true_weights"]))
        wt = np.array([tw.get(float(l), 0.0) for l in p0.leverages])
        if wt.sum() > 0:
            truth_info["objective_train_true_mix"] = score(rule, hl, gamma, wt, train)
            truth_info["objective_test_true_mix"] = score(rule, hl, gamma, wt, test)
            truth_info["true_mix_coverage"] = float(wt.sum() / sum(tw.values()))
    return FitResult(
        params=fitted, start_params=p0, objective_train=float(best_val), objective_test=obj_test,
        objective_test_start=obj_test0,
        train=(_fmt(start[tr_idx[0]]), _fmt(end[tr_idx[-1]])), test=(_fmt(start[te_idx[0]]), _fmt(end[te_idx[-1]])),
        burn_in_hours=float(burn_in_hours), selection=selection,
        trials=pd.DataFrame(trials), test_report=rep, test_report_start=rep0, test_series=val.series,
        mix=_mix_summary(p0.leverages, prior, share, mf), truth=truth_info,
        seconds=time.perf_counter() - t0,
    )


def heatmaps_held(n_rules: int) -> int:
    """Heatmaps a fit holds at once: one build per OI rule, then the fitted and the starting map and one
    baseline map of the test-window validation."""
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


def _progress(total: int, progress: bool | None):
    import sys

    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    return tqdm(total=total, desc="fit", unit="cfg", disable=disable, leave=False)


def _layer_share(sw: _Sweeps, hl: float, gamma: float, w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of the (unweighted) swept notional per leverage layer over the ``mask`` steps (K,).

    Every layer receives the same deposits, so this says how often each leverage's levels were
    actually crossed; a layer that is never crossed cannot be identified from sweeps (its weight
    changes no step's ranking)."""
    SL, SS = sw.layers(hl, np.asarray(w, float) / np.sum(w), gamma)
    tot = np.nansum(np.where(mask, SL, 0.0), axis=1) + np.nansum(np.where(mask, SS, 0.0), axis=1)
    return tot / tot.sum() if tot.sum() > 0 else tot


def _truth_distance(truth, data, fitted, layer_share: np.ndarray | None = None,
                    mf: MixFit | None = None) -> dict | None:
    """Distance of the fitted leverage mix to the simulator's true one (None when no truth is known).

    The true mix is the truth's ``leverage_weights`` (liqlab.sim.simulation: shares of new USD notional by
    leverage, what the engine's deposit weights estimate); ``count_weights`` (shares by number of
    positions), when present, is compared too. ``identifiable``: the same distance restricted to the
    leverages whose levels were actually crossed in the training window (both mixes renormalised
    there): a leverage whose levels price never reaches leaves no trace in realized sweeps, so its
    weight cannot be learnt from them. ``swept_mass``: the regression's Σβ next to the true weight mass
    on those leverages. Presets' distances are given for scale.
    """
    cfg = _truth_config(truth, data)
    if cfg is None:
        return None
    from liqlab.engine.params import preset_weights

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
            if mf is not None:
                out["identifiable"]["swept_mass"] = {"fitted": mf.swept_mass, "true": float(sum(b))}
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
