"""Claim 3: clusters older than about 90 minutes lose predictive weight.

The heatmap's notional a step sweeps is split by the age of the levels (the kernel's maximum age, re-run
on the stored step inputs: the map of levels younger than a, minus the map younger than the previous edge),
into < 90 min, 90 min–6 h, 6–24 h and > 24 h (edges rounded to whole heatmap steps, reported). The four
sweeps are separate predictors of the step's realized liquidations in the quasi-Poisson non-negative
regression the fit uses for the leverage mix (:func:`liqlab.stats.mix.mix_regression`): β_b is realized USD
per USD swept of age b, the bucket's predictive weight; the fitted half-life is the log-linear decay of β
over the buckets' middle ages. Ratios of β are unstable when the young bucket's β is near 0, so the
verdict reads a rank statistic: in every test-window step that crosses mapped notional, the share of it
older than 90 min against the step's realized liquidations per USD crossed (its fire rate); the effect is
their Spearman correlation (negative: the older the crossed levels, the less they liquidate per USD),
with a moving-block bootstrap interval over steps.
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run, block_ci, fire_rank

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "AGE_EDGES_HOURS", "age_sweeps", "bucket_weights", "age_run"]

CLAIM = "Clusters older than about 90 minutes lose predictive weight unless fresh open interest reinforces them."
HYPOTHESIS = ("H1: steps whose crossed levels are older than 90 min liquidate less per USD crossed (Spearman of "
              "the old share and the fire rate < 0); the weight per USD decays with age (four buckets, half-life).")
STATISTIC = ("Spearman ρ(share of crossed notional older than 90 min, realized / crossed notional) over test-window "
             "steps that cross mapped notional, moving-block bootstrap 95 % CI; β of the buckets < 90 min, "
             "90 min–6 h, 6–24 h, > 24 h (quasi-Poisson NNLS) and the fitted half-life alongside")

AGE_EDGES_HOURS: tuple[float, ...] = (1.5, 6.0, 24.0)
"""Upper edges of the first three age buckets (hours); the last bucket is everything older."""


def age_sweeps(sub: Subject) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Swept notional per age bucket, long and short: ((4, T), (4, T)) USD, and the edges used (hours).

    Parameters
    ----------
    sub : Subject

    Returns
    -------
    tuple
        (long (4, T), short (4, T), edges in hours after rounding to whole steps).
    """
    from liqlab.stats.steps import heatmap_swept

    hm = sub.heatmap
    step_h = float(hm.replay.step_hours)
    cum_l, cum_s, edges = [], [], []
    for a in AGE_EDGES_HOURS:
        steps = max(1, int(round(a / step_h)))
        edges.append(steps * step_h)
        sl, ss = heatmap_swept(hm.with_params(max_age_hours=steps * step_h), sub.data)
        cum_l.append(sl)
        cum_s.append(ss)
    sl, ss = heatmap_swept(hm.with_params(max_age_hours=None), sub.data)
    cum_l.append(sl)
    cum_s.append(ss)
    L = np.diff(np.vstack([np.zeros_like(cum_l[0])] + cum_l), axis=0)
    S = np.diff(np.vstack([np.zeros_like(cum_s[0])] + cum_s), axis=0)
    return np.clip(L, 0, None), np.clip(S, 0, None), tuple(edges)


def bucket_weights(L: np.ndarray, S: np.ndarray, rl: np.ndarray, rs: np.ndarray) -> np.ndarray:
    """β per age bucket (realized USD per USD swept) from :func:`liqlab.stats.mix.mix_regression`.

    Parameters
    ----------
    L, S : np.ndarray
        (4, n) swept notional per bucket, long and short, USD.
    rl, rs : np.ndarray
        (n,) realized liquidations, USD.

    Returns
    -------
    np.ndarray
        (4,) β ≥ 0.
    """
    from liqlab.stats.mix import mix_regression

    k = L.shape[0]
    fit = mix_regression(L, S, rl, rs, np.ones(L.shape[1], dtype=bool), np.ones(k, dtype=bool), np.full(k, 1.0 / k))
    return np.asarray(fit.coef, dtype=float)


def _half_life(beta: np.ndarray, edges: tuple[float, ...]) -> float:
    """Hours over which β halves: log-linear fit of β over the buckets' middle ages (β > 0 only)."""
    bounds = (0.0, *edges)
    mids = np.array([(bounds[i] + bounds[i + 1]) / 2 for i in range(len(edges))] + [2 * edges[-1]])
    ok = beta > 0
    if ok.sum() < 2:
        return math.nan
    slope = np.polyfit(mids[ok], np.log2(beta[ok]), 1)[0]
    return float(-1.0 / slope) if slope < 0 else math.inf


def age_run(sub: Subject, settings: AuditSettings) -> Run:
    """The age statistic on one subject's test window (needs realized liquidations).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    Run
        ``effect`` the Spearman ρ of old share and fire rate, its CI; ``extra``: β per bucket, edges,
        half-life (h).
    """
    st = sub.steps
    if not st.has_realized:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="no realized liquidations in the data")
    L, S, edges = age_sweeps(sub)
    rows = np.flatnonzero(st.test & np.isfinite(st.realized) & np.all(np.isfinite(L), 0) & np.all(np.isfinite(S), 0)
                          & ((L + S).sum(0) > 0))
    if len(rows) < 20:
        return Run(name=sub.name, kind=sub.kind, effect=None, n=len(rows), note="fewer than 20 test steps")
    L, S, rl, rs = L[:, rows], S[:, rows], st.realized_long[rows], st.realized_short[rows]
    beta = bucket_weights(L, S, rl, rs)
    tot = (L + S).sum(0)
    old = (L[1:] + S[1:]).sum(0) / tot
    rate = (rl + rs) / tot
    lo, hi, p = block_ci(lambda ix: fire_rank(old[ix], rate[ix]), len(rows), settings.bootstrap_reps, settings.seed)
    ci = (lo, hi) if math.isfinite(lo) else None
    share = (L + S).sum(axis=1) / max(float((L + S).sum()), 1e-300)
    return Run(name=sub.name, kind=sub.kind, effect=fire_rank(old, rate), ci=ci, p_value=p, n=len(rows),
               window="test: last 40 % of steps",
               extra={"edges_hours": list(edges), "beta_by_bucket": beta.tolist(),
                      "swept_share_by_bucket": share.tolist(), "half_life_hours": _half_life(beta, edges)})
