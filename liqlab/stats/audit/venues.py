"""Claim 4: a cluster seen on one exchange only lacks consensus and misfires more than one seen on several.

The engine's cross-venue agreement (``Heatmap.agreement``: how many venues' own maps have a cluster in a
cell) splits the aggregate map into cells with agreement ≥ 2 (multi-venue), = 1 (single-venue) and 0 (no
venue's cluster). Sweeps: the notional each part puts in a step's path, from the snapshot before it,
are separate predictors of the step's realized liquidations in the quasi-Poisson non-negative regression
(:func:`liqlab.stats.audit.age.bucket_weights`); effect β(single)/β(multi) − 1 (negative: single-venue
clusters realize less per USD, they misfire). Attraction: the first-passage magnet race on the multi-venue
part against the single-venue part (lift of each, in ``extra``).
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run, block_ci

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "agreement_parts", "venue_run"]

CLAIM = ("A cluster seen on one exchange only (cross-exchange divergence) lacks consensus and is more likely to "
         "misfire than one seen on several.")
HYPOTHESIS = ("H1: per USD swept, single-venue cells (agreement 1) predict less realized liquidation than "
              "multi-venue cells (agreement ≥ 2): β(single)/β(multi) − 1 < 0; and they attract price less.")
STATISTIC = ("β per agreement class from the quasi-Poisson NNLS of realized liquidations per step on the swept "
             "notional of multi-venue, single-venue and no-cluster cells; effect β(single)/β(multi) − 1, "
             "moving-block bootstrap 95 % CI, test window; magnet lift of each part alongside")


def agreement_parts(sub: Subject, permute_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Swept notional of the multi-venue, single-venue and no-cluster cells: ((3, T), (3, T)) USD.

    Parameters
    ----------
    sub : Subject
        A multi-venue subject.
    permute_seed : int, optional
        Shuffle the agreement counts across the cells of each snapshot first (a world where agreement
        carries no information: the known "off" case of the tests).

    Returns
    -------
    tuple of np.ndarray
        (long (3, T), short (3, T)), rows multi, single, none; crossed by the first venue's bars.
    """
    from liqlab.stats.steps import heatmap_step_edges, step_bars, swept_notional, venue_datasets

    hm = sub.heatmap
    agr = np.asarray(hm.agreement)
    if permute_seed is not None:
        agr = np.random.default_rng(permute_seed).permuted(agr, axis=1)
    start, end, _ = heatmap_step_edges(hm)
    b = step_bars(venue_datasets(sub.data)[0], start, end)
    out_l, out_s = [], []
    for m in (agr >= 2, agr == 1, agr == 0):
        sl, ss = swept_notional(hm.long * m, hm.short * m, hm.prices, b.low, b.high)
        out_l.append(sl)
        out_s.append(ss)
    return np.vstack(out_l), np.vstack(out_s)


def _ratio(L: np.ndarray, S: np.ndarray, rl: np.ndarray, rs: np.ndarray) -> float:
    from liqlab.stats.audit.age import bucket_weights

    beta = bucket_weights(L, S, rl, rs)
    return float(beta[1] / beta[0] - 1.0) if beta[0] > 0 else math.nan


def _attraction(sub: Subject, settings: AuditSettings) -> dict[str, float]:
    """Magnet lift of the multi-venue part and of the single-venue part of the map."""
    from liqlab.stats.audit.magnet import magnet_params
    from liqlab.stats.magnet import Bars, decided, find_events, lift_test
    from liqlab.stats.magnet.events import touch_dataset

    _, ds = touch_dataset(sub.data, None)
    hm, agr = sub.heatmap, np.asarray(sub.heatmap.agreement)
    out = {}
    for name, m in (("multi", agr >= 2), ("single", agr == 1)):
        ev = find_events(hm.times, hm.prices, hm.long * m, hm.short * m, Bars.from_frame(ds.ohlcv),
                         magnet_params(sub, settings))
        y = decided(ev)["y"].to_numpy(float) if len(ev) else np.array([])
        lt = lift_test(y, 0.5, reps=settings.bootstrap_reps, seed=settings.seed)
        out[f"lift_{name}"], out[f"events_{name}"] = lt["lift"], lt["n_events"]
    return out


def venue_run(sub: Subject, settings: AuditSettings, *, permute_seed: int | None = None,
              attraction: bool = True) -> Run:
    """The agreement statistic on one multi-venue subject's test window (needs realized liquidations).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings
    permute_seed : int, optional
        See :func:`agreement_parts`.
    attraction : bool
        Add the magnet lift of each part (``extra``).

    Returns
    -------
    Run
    """
    st = sub.steps
    if len(sub.venues) < 2:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="one venue: no cross-venue agreement")
    if not st.has_realized:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="no realized liquidations in the data")
    L, S = agreement_parts(sub, permute_seed)
    rows = np.flatnonzero(st.test & np.isfinite(st.realized) & np.all(np.isfinite(L), 0) & np.all(np.isfinite(S), 0))
    if len(rows) < 20:
        return Run(name=sub.name, kind=sub.kind, effect=None, n=len(rows), note="fewer than 20 test steps")
    L, S, rl, rs = L[:, rows], S[:, rows], st.realized_long[rows], st.realized_short[rows]
    lo, hi, p = block_ci(lambda ix: _ratio(L[:, ix], S[:, ix], rl[ix], rs[ix]), len(rows), settings.bootstrap_reps,
                         settings.seed)
    from liqlab.stats.audit.age import bucket_weights

    extra = {"beta_multi_single_none": bucket_weights(L, S, rl, rs).tolist(),
             "swept_share_multi_single_none": ((L + S).sum(1) / max(float((L + S).sum()), 1e-300)).tolist(),
             "venues": list(sub.venues)}
    if attraction:
        extra.update(_attraction(sub, settings))
    return Run(name=sub.name, kind=sub.kind, effect=_ratio(L, S, rl, rs), ci=(lo, hi) if math.isfinite(lo) else None,
               p_value=p, n=len(rows), window="test: last 40 % of steps", extra=extra)
