"""Claim 7: clusters are structural fragility, not support or resistance: price does not bounce off them
more than off other levels.

From the magnet test's events (:func:`liqlab.stats.audit.magnet.magnet_events`): when price touches the
dominant cluster, the signed return from the level ``post_hours`` (= the horizon) later is negative when it
went back (a bounce). The matched other level is the mirror at the same log-distance on the other side,
touched in the same windows. Effect: bounce rate at clusters − bounce rate at mirrors (fraction), moving-block
bootstrap 95 % CI over events. The claim is an absence, so it is judged by equivalence: supported when
the interval's upper end stays below the audit's ``equivalence_margin``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run, block_ci

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "bounce_difference", "bounce_run"]

CLAIM = ("Intensity should be read as structural fragility, not as support or resistance: price does not bounce "
         "off clusters more than off other levels.")
HYPOTHESIS = ("H0 (the claim): bounce rate at touched clusters − bounce rate at touched mirror levels ≤ margin; "
              "the S/R reading predicts a positive difference.")
STATISTIC = ("difference of bounce rates (share of touches followed by a return back through the level after H), "
             "clusters − mirrors at the same distance, moving-block bootstrap 95 % CI over events; equivalence "
             "margin from the settings")


def bounce_difference(post_cluster_bp: np.ndarray, post_mirror_bp: np.ndarray) -> float:
    """Bounce rate at clusters − at mirrors: share of finite post-touch returns < 0, each over its touches.

    Parameters
    ----------
    post_cluster_bp, post_mirror_bp : np.ndarray
        (n,) signed returns (bp) from the touched level, positive = continued through it; NaN = not touched.

    Returns
    -------
    float
        Difference of two fractions; NaN when either level has no touch.
    """
    c = post_cluster_bp[np.isfinite(post_cluster_bp)]
    m = post_mirror_bp[np.isfinite(post_mirror_bp)]
    if len(c) == 0 or len(m) == 0:
        return math.nan
    return float(np.mean(c < 0) - np.mean(m < 0))


def bounce_run(sub: Subject, settings: AuditSettings, events: pd.DataFrame | None = None) -> Run:
    """The bounce statistic on one subject (all events; the test's settings are fixed, nothing is chosen).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings
    events : pd.DataFrame, optional
        Precomputed magnet events (``post_cluster_bp``, ``post_mirror_bp``).

    Returns
    -------
    Run
        ``effect`` the difference of bounce rates, its CI and the two-sided p-value of 0.
    """
    from liqlab.stats.audit.magnet import magnet_events

    ev = magnet_events(sub, settings) if events is None else events
    if len(ev) == 0:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="no cluster events")
    pc = ev["post_cluster_bp"].to_numpy(float)
    pm = ev["post_mirror_bp"].to_numpy(float)
    lo, hi, p = block_ci(lambda ix: bounce_difference(pc[ix], pm[ix]), len(ev), settings.bootstrap_reps, settings.seed)
    return Run(name=sub.name, kind=sub.kind, effect=bounce_difference(pc, pm), ci=(lo, hi) if math.isfinite(lo) else None,
               p_value=p, n=int(np.isfinite(pc).sum() + np.isfinite(pm).sum()),
               extra={"bounce_cluster": float(np.mean(pc[np.isfinite(pc)] < 0)) if np.isfinite(pc).any() else None,
                      "bounce_mirror": float(np.mean(pm[np.isfinite(pm)] < 0)) if np.isfinite(pm).any() else None,
                      "touches_cluster": int(np.isfinite(pc).sum()), "touches_mirror": int(np.isfinite(pm).sum())})
