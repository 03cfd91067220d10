"""OI-vs-placebo contrasts of the magnet test: does open interest add anything beyond the price path's
geometry? The placebo map is the same engine on :func:`liqlab.stats.nulls.placebo_data`; the primary
contrast is a side race at decision times where the OI-specific (excess) map and the placebo map put
their clusters on opposite sides of price.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from liqlab.errors import DataError
from liqlab.stats.magnet.events import decided, find_events
from liqlab.stats.magnet.inference import lift_test
from liqlab.stats.magnet.params import Bars, MagnetParams
from liqlab.stats.resample import stationary_block_length

__all__ = ["discordant_contrast", "excess_contrast", "excess_maps", "paired_placebo", "placebo_contrasts"]


def paired_placebo(ev: pd.DataFrame, ev_placebo: pd.DataFrame, params: MagnetParams) -> dict[str, Any]:
    """Λ_OI − Λ_placebo on paired events (decision times where both maps gave a decided event).

    Parameters
    ----------
    ev, ev_placebo : pd.DataFrame
        Events of the OI map and of the placebo map (:func:`~liqlab.stats.magnet.events.find_events`).
    params : MagnetParams
        ``p0``, ``alpha``, ``bootstrap_reps`` and ``seed`` of the bootstrap.

    Returns
    -------
    dict
        ``n_paired``, ``lift_diff`` and its stationary-bootstrap ``diff_ci_low``, ``diff_ci_high``,
        ``diff_p_value`` (NaN with fewer than 10 pairs).
    """
    from arch.bootstrap import StationaryBootstrap

    a = decided(ev).set_index("step")["y"]
    b = decided(ev_placebo).set_index("step")["y"]
    common = a.index.intersection(b.index)
    diff = (a.loc[common] - b.loc[common]).to_numpy(float)
    out: dict[str, Any] = {"n_paired": int(len(diff)), "lift_diff": float(diff.mean()) if len(diff) else math.nan}
    if len(diff) >= 10 and np.any(diff != diff[0]):
        bs = StationaryBootstrap(stationary_block_length(diff), diff, seed=np.random.default_rng(params.seed + 7))
        m = bs.apply(np.mean, params.bootstrap_reps)[:, 0]
        lo, hi = np.quantile(m, [params.alpha / 2, 1 - params.alpha / 2])
        dev = abs(out["lift_diff"])
        far = int(np.sum(np.abs(m - out["lift_diff"]) >= dev - 1e-12)) if dev > 0 else params.bootstrap_reps
        out.update(diff_ci_low=float(lo), diff_ci_high=float(hi), diff_p_value=(1 + far) / (1 + params.bootstrap_reps))
    elif len(diff) >= 10:  # every paired outcome differs by the same amount (typically 0: identical choices)
        d = float(diff[0])
        out.update(diff_ci_low=d, diff_ci_high=d, diff_p_value=1.0 if d == 0 else 1 / (1 + params.bootstrap_reps))
    else:
        out.update(diff_ci_low=math.nan, diff_ci_high=math.nan, diff_p_value=math.nan)
    return out


def excess_maps(long: np.ndarray, short: np.ndarray, long_pl: np.ndarray, short_pl: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """The OI-specific part of a heatmap: OI map minus the placebo map scaled to the same total per row.

    long/short (T, B) USD of the OI map, long_pl/short_pl (T, B) USD of the placebo map (same grid).
    Per snapshot row j, c_j = Σ(long+short) / Σ(long_pl+short_pl); the excess is max(map − c_j·placebo, 0):
    USD that open interest put at a level beyond what the path geometry alone would put there.
    Returns (long_excess, short_excess), (T, B) each.

    Parameters
    ----------
    long, short : np.ndarray
        (T, B) USD, the OI map.
    long_pl, short_pl : np.ndarray
        (T, B) USD, the placebo map on the same grid.

    Returns
    -------
    tuple of np.ndarray
        (long_excess, short_excess), (T, B) USD each.
    """
    tot = long.sum(axis=1) + short.sum(axis=1)
    tot_pl = long_pl.sum(axis=1) + short_pl.sum(axis=1)
    c = np.divide(tot, tot_pl, out=np.zeros_like(tot, dtype=np.float64), where=tot_pl > 0)[:, None]
    return np.maximum(long - c * long_pl, 0.0), np.maximum(short - c * short_pl, 0.0)


def excess_contrast(ev_excess: pd.DataFrame, params: MagnetParams) -> dict[str, Any]:
    """The mirror-level test on the events of the excess maps (``excess_maps``): do OI-specific
    clusters attract price? ``lift_test`` fields (``n_events``, ``p_hat``, ``lift``, CI, ``p_value``).

    Parameters
    ----------
    ev_excess : pd.DataFrame
        Events of the excess maps.
    params : MagnetParams

    Returns
    -------
    dict
        As described, plus ``n_candidates``.
    """
    y = decided(ev_excess)["y"].to_numpy(float)
    res = lift_test(y, params.p0, reps=params.bootstrap_reps, seed=params.seed + 13, alpha=params.alpha)
    out = {k: res[k] for k in ("n_events", "p_hat", "lift", "ci_low", "ci_high", "p_value", "p_value_hac")}
    out["n_candidates"] = int(len(ev_excess))
    return out


def placebo_contrasts(times: np.ndarray, prices: np.ndarray, long: np.ndarray, short: np.ndarray,
                      long_pl: np.ndarray, short_pl: np.ndarray, bars: Bars, params: MagnetParams, *,
                      ev: pd.DataFrame, ev_placebo: pd.DataFrame, funding=None) -> dict[str, Any]:
    """Every OI-vs-placebo contrast of one heatmap and its placebo (same (T, B) grid, USD).

    ``oi_specific`` (the primary): ``discordant_contrast`` of the excess maps' events against the
    placebo's: where the cluster OI adds beyond path geometry and the path-geometry cluster are on
    opposite sides of price, which side does price reach first? ``excess``: the mirror test on the
    excess maps at every decision time (tests "price exogenous"; not specific, since the excess
    cluster usually sits on the placebo's side). ``oi_map``: ``discordant_contrast`` of the OI map
    against the placebo map, with the paired difference. ``ev``/``ev_placebo`` = events of the two maps.

    Parameters
    ----------
    times : np.ndarray
        (T,) snapshot times (UTC).
    prices : np.ndarray
        (B,) bin centres, USD.
    long, short, long_pl, short_pl : np.ndarray
        (T, B) USD: the OI map and the placebo map.
    bars : Bars
        The bars that decide touches.
    params : MagnetParams
    ev, ev_placebo : pd.DataFrame
        Events of the OI map and of the placebo map.
    funding : tuple of np.ndarray, optional
        (ts, rate) of the funding control.

    Returns
    -------
    dict
        ``oi_specific``, ``excess`` and ``oi_map`` (dicts of counts and ``lift_test`` fields).
    """
    if np.shape(long_pl) != np.shape(long):
        raise DataError(f"placebo map {np.shape(long_pl)} and OI map {np.shape(long)} are on different grids")
    ev_ex = find_events(times, prices, *excess_maps(long, short, long_pl, short_pl), bars, params, funding=funding)
    oi_specific = discordant_contrast(ev_ex, ev_placebo, params)
    oi_specific.pop("paired")
    return {"oi_specific": oi_specific, "excess": excess_contrast(ev_ex, params),
            "oi_map": discordant_contrast(ev, ev_placebo, params)}


def discordant_contrast(ev: pd.DataFrame, ev_placebo: pd.DataFrame, params: MagnetParams) -> dict[str, Any]:
    """OI map against the placebo map where they disagree: a first-passage race between their sides.

    Decision times where both maps give a cluster (same t, same price P) are *common*; a common time
    is *discordant* when the OI map's cluster is on the opposite side of P from the placebo map's. At
    such a time the OI event's level (log-distance d on the OI side) and its mirror (distance d on the
    placebo side) are a race between the two maps' sides: Y = 1 if price reaches the OI side first.
    The two levels are equidistant, so under a driftless price P(Y = 1) = p0 = 1/2 exactly, even
    conditioned on a touch within the horizon (the discordant selection uses information up to t
    only). Same-side disagreements (different levels above or below P) carry no race: a continuous
    path meets the nearer level first. Concordant times give both maps the same answer, so the paired
    difference Λ_OI − Λ_placebo is 0 there; this contrast keeps only the times that can tell them apart.

    Returns the counts (``n_common``, ``n_discordant``, ``discordant_share``, ``level_differs_share``)
    and ``lift_test`` fields of the decided discordant outcomes (``n_events``, ``p_hat``, ``lift``,
    ``ci_low``, ``ci_high``, ``p_value``, ``p_value_hac``); the old paired difference is under ``paired``.

    Parameters
    ----------
    ev, ev_placebo : pd.DataFrame
        Events of the two maps on the same decision times (column ``step``).
    params : MagnetParams

    Returns
    -------
    dict
        The fields above.
    """
    a = ev.set_index("step")
    b = ev_placebo.set_index("step")
    common = a.index.intersection(b.index)
    side_a, side_b = a.loc[common, "side"].to_numpy(), b.loc[common, "side"].to_numpy()
    lev_a, lev_b = a.loc[common, "level"].to_numpy(float), b.loc[common, "level"].to_numpy(float)
    disc = side_a != side_b
    y = a.loc[common[disc], "y"].to_numpy(float)
    res = lift_test(y, params.p0, reps=params.bootstrap_reps, seed=params.seed + 11, alpha=params.alpha)
    n = len(common)
    out = {"n_common": int(n), "n_discordant": int(disc.sum()),
           "discordant_share": float(disc.mean()) if n else math.nan,
           "level_differs_share": float(np.mean(~np.isclose(lev_a, lev_b, rtol=1e-12))) if n else math.nan}
    out.update({k: res[k] for k in ("n_events", "p_hat", "lift", "ci_low", "ci_high", "p_value", "p_value_hac")})
    out["paired"] = paired_placebo(ev, ev_placebo, params)
    return out


