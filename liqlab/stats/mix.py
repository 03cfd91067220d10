"""The leverage mix of a fit: its regression on the layers' sweeps (:func:`mix_regression`, quasi-Poisson
with β ≥ 0, see :mod:`liqlab.stats.fit`) and its distance to another mix (:func:`weights_distance`),
e.g. the simulator's true one (:func:`truth_distance`).

Layers are (K, T) = leverage × step, USD swept per step by each unweighted leverage layer; weights (K,)
sum to 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liqlab.errors import DataError, ParameterError
from liqlab.stats.steps import swept_notional, venue_datasets

__all__ = ["IDENTIFIABLE_SHARE", "IRLS_ITERATIONS", "LayerSweeps", "MixFit", "layer_share", "mix_regression", "truth_distance", "weights_distance"]

IDENTIFIABLE_SHARE = 0.01  # a leverage layer is identifiable if it holds >= 1% of the swept notional in training
IRLS_ITERATIONS = 50
HL_FIXED_POINT = 4  # regression rounds for 'highest_leverage', whose layers depend on the weights


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

    Parameters
    ----------
    layers_long, layers_short : np.ndarray
        (K, T) USD swept per step by each layer.
    real_long, real_short : np.ndarray
        (T,) USD realized per step.
    mask : np.ndarray
        (T,) bool, steps used.
    identifiable : np.ndarray
        (K,) bool, layers estimated.
    prior : np.ndarray
        (K,) prior weights.
    iterations : int
        Maximum re-weighting rounds.

    Returns
    -------
    MixFit
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


class LayerSweeps:
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
        by_venue = {d.venue: b for d, b in zip(venue_datasets(data), bars)}
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
                sl, ss = swept_notional(L[k], S[k], self.prices, b.low, b.high)
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

    def mix(self, half_life: float, gamma: float, prior: np.ndarray, ctx,
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


def layer_share(sw: "LayerSweeps", hl: float, gamma: float, w: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of the (unweighted) swept notional per leverage layer over the ``mask`` steps (K,).

    Every layer receives the same deposits, so this says how often each leverage's levels were
    actually crossed; a layer that is never crossed cannot be identified from sweeps (its weight
    changes no step's ranking).

    Parameters
    ----------
    sw : LayerSweeps
    hl : float
        Half-life in hours.
    gamma : float
        Leverage exponent of the half-life.
    w : np.ndarray
        (K,) leverage weights.
    mask : np.ndarray
        (T,) bool, the steps counted.

    Returns
    -------
    np.ndarray
        (K,) shares summing to 1 (all 0 when nothing was swept).
    """
    SL, SS = sw.layers(hl, np.asarray(w, float) / np.sum(w), gamma)
    tot = np.nansum(np.where(mask, SL, 0.0), axis=1) + np.nansum(np.where(mask, SS, 0.0), axis=1)
    return tot / tot.sum() if tot.sum() > 0 else tot


def weights_distance(lev_a: Sequence[float], w_a: Sequence[float], lev_b: Sequence[float],
                     w_b: Sequence[float]) -> dict[str, float]:
    """Distances between two leverage mixes (weights normalised to 1, aligned on the union of leverages).

    ``total_variation``: ½·Σ|a − b| in [0, 1]; ``mean_log_leverage_diff``: difference of the mixes' mean
    ln(leverage) (how far the centre moved, in log units; 0.69 = a factor of 2).

    Parameters
    ----------
    lev_a, w_a : sequence of float
        Leverages (x) and weights of the first mix.
    lev_b, w_b : sequence of float
        The same of the second mix.

    Returns
    -------
    dict[str, float]
        ``total_variation`` and ``mean_log_leverage_diff``.
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


def truth_distance(truth, data, fitted, layer_share: np.ndarray | None = None,
                    mf: MixFit | None = None) -> dict | None:
    """Distance of the fitted leverage mix to the simulator's true one (None when no truth is known).

    The true mix is the truth's ``leverage_weights`` (liqlab.sim.simulation: shares of new USD notional by
    leverage, what the engine's deposit weights estimate); ``count_weights`` (shares by number of
    positions), when present, is compared too. ``identifiable``: the same distance restricted to the
    leverages whose levels were actually crossed in the training window (both mixes renormalised
    there): a leverage whose levels price never reaches leaves no trace in realized sweeps, so its
    weight cannot be learnt from them. ``swept_mass``: the regression's Σβ next to the true weight mass
    on those leverages. Presets' distances are given for scale.

    Parameters
    ----------
    truth : str, Path, Mapping or None
        Truth folder, ``config.json`` file or dict; "auto" looks for ``truth/`` in or next to ``data.path``.
    data : Dataset or Collection
    fitted : HeatmapParams
        The fitted parameters (leverages and weights).
    layer_share : np.ndarray, optional
        (K,) share of the swept notional per layer in training.
    mf : MixFit, optional
        The fitted regression (for ``swept_mass``).

    Returns
    -------
    dict or None
        ``notional`` (and ``by_count``) distances, ``total_variation``, ``mean_log_leverage_diff``,
        ``identifiable``, ``note``.
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


