"""Claim 4: a cluster seen on one exchange only lacks consensus and misfires more than one seen on several.

The engine's cross-venue agreement (``Heatmap.agreement``: how many venues' own maps have a cluster in a
cell) splits the aggregate map into cells with agreement ≥ 2 (multi-venue), = 1 (single-venue) and 0 (no
venue's cluster), each crossed by the step's bars from the snapshot before it. In every test-window step
that crosses clustered notional, the single-venue share f = single/(single + multi) is set against the
step's realized liquidations per USD crossed (its "fire rate"); the effect is the Spearman correlation of
the two (negative: the more of a step's crossed clusters are single-venue, the less it liquidates per USD,
so single-venue clusters misfire), with a moving-block bootstrap interval. Attraction: the first-passage
magnet race on the multi-venue part and on the single-venue part (lift of each, in ``extra``).
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run, block_ci, fire_rank

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "agreement_parts", "venue_run"]

CLAIM = ("A cluster seen on one exchange only (cross-exchange divergence) lacks consensus and is more likely to "
         "misfire than one seen on several.")
HYPOTHESIS = ("H1: steps whose crossed clusters are more single-venue (agreement 1) liquidate less per USD crossed "
              "than steps whose clusters several venues agree on (Spearman < 0); single-venue clusters attract less.")
STATISTIC = ("Spearman ρ(single-venue share of crossed clustered notional, realized liquidations / crossed notional) "
             "over test-window steps that cross clusters, moving-block bootstrap 95 % CI; magnet lift of the "
             "multi- and single-venue parts alongside")


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


def _attraction(sub: Subject, settings: AuditSettings) -> dict[str, float]:
    """Magnet lift of the multi-venue part and of the single-venue part of the map."""
    from liqlab.stats.audit.magnet import lift, magnet_params
    from liqlab.stats.magnet import Bars, decided, find_events
    from liqlab.stats.magnet.events import touch_dataset

    _, ds = touch_dataset(sub.data, None)
    hm, agr = sub.heatmap, np.asarray(sub.heatmap.agreement)
    out = {}
    for name, m in (("multi", agr >= 2), ("single", agr == 1)):
        ev = find_events(hm.times, hm.prices, hm.long * m, hm.short * m, Bars.from_frame(ds.ohlcv),
                         magnet_params(sub, settings))
        y = decided(ev)["y"].to_numpy(float) if len(ev) else np.array([])
        lt, _ = lift(y, settings)
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
    tot = L.sum(0) + S.sum(0)
    clustered = L[:2].sum(0) + S[:2].sum(0)
    rows = np.flatnonzero(st.test & np.isfinite(st.realized) & np.isfinite(tot) & (clustered > 0))
    if len(rows) < 20:
        return Run(name=sub.name, kind=sub.kind, effect=None, n=len(rows), note="fewer than 20 test steps")
    f = (L[1, rows] + S[1, rows]) / clustered[rows]
    rate = st.realized[rows] / tot[rows]
    lo, hi, p = block_ci(lambda ix: fire_rank(f[ix], rate[ix]), len(rows), settings.bootstrap_reps, settings.seed)
    share = (L + S)[:, rows].sum(1) / max(float(tot[rows].sum()), 1e-300)
    extra = {"swept_share_multi_single_none": share.tolist(), "venues": list(sub.venues),
             "mean_single_share": float(f.mean())}
    if attraction:
        extra.update(_attraction(sub, settings))
    return Run(name=sub.name, kind=sub.kind, effect=fire_rank(f, rate), ci=(lo, hi) if math.isfinite(lo) else None,
               p_value=p, n=len(rows), window="test: last 40 % of steps", extra=extra)
