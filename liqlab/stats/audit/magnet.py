"""Claim 1: price is drawn toward dense liquidation clusters; between clusters on both sides ("vacuum
zones") toward the nearer dense side.

Primary statistic: the mirror-level first-passage test of :mod:`liqlab.stats.magnet` with its documented
default settings (horizon H = max(1 h, 4 bars)); the lift p̂ − ½ of the dominant cluster being touched
before a mirror level at the same log-distance on the other side, with its stationary-bootstrap interval.
Vacuum zones: at the same decision times, the densest short-liquidation level above and long-liquidation
level below (each within the test's band); where both are dense (each at least the median peak of the
training window) the nearer one races a mirror at its own distance on the far side, inside the zone.
Under a driftless price both races are won with probability ½.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from liqlab._util import TRAIN_FRACTION
from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "lift", "magnet_params", "magnet_events", "magnet_run", "vacuum_run"]

CLAIM = ("Price is drawn toward dense liquidation clusters; areas flanked by clusters on both sides "
         "('liquidity vacuum zones') draw price toward the nearest dense side.")
HYPOTHESIS = ("H1: the dominant cluster within k·ATR is touched before a mirror level at the same log-distance on "
              "the other side more often than ½ (lift > 0). Vacuum: between dense clusters on both sides, the "
              "nearer one is touched before its mirror inside the zone more often than ½.")
STATISTIC = ("lift = p̂ − ½ of the first-passage race (decided events), stationary-bootstrap 95 % CI and two-sided "
             "p-value; vacuum lift on the same design restricted to flanked zones, test window only")


def magnet_params(sub: Subject, settings: AuditSettings):
    """The magnet test's parameters for a subject: its defaults, H = max(1 h, 4 bars), the audit's bootstrap.

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    MagnetParams
    """
    from liqlab.stats.magnet import MagnetParams

    h = max(1.0, 4.0 * sub.bar_hours)
    return MagnetParams(horizon_hours=h, atr_hours=max(1.0, sub.bar_hours), post_hours=h,
                        bootstrap_reps=settings.bootstrap_reps, seed=settings.seed)


def magnet_events(sub: Subject, settings: AuditSettings) -> pd.DataFrame:
    """The first-passage events of the subject's default heatmap (:func:`liqlab.stats.magnet.events_for`);
    computed once per subject and magnet parameters (claims 1 and 7 share them)."""
    from liqlab.stats.magnet.events import events_for, touch_dataset

    mp = magnet_params(sub, settings)
    key = ("magnet_events", repr(mp))
    if key not in sub.memo:
        _, ds = touch_dataset(sub.data, None)
        sub.memo[key] = events_for(sub.heatmap, ds, mp)
    return sub.memo[key]


def lift(y: np.ndarray, settings: AuditSettings, p0: float = 0.5) -> tuple[dict, tuple[float, float] | None]:
    """:func:`liqlab.stats.magnet.lift_test` of outcomes ``y`` (n,) with the audit's bootstrap, and the CI of
    the lift (p̂ − p0), None when too few events."""
    from liqlab.stats.magnet import lift_test

    y = np.asarray(y, dtype=float)
    lt = lift_test(y[np.isfinite(y)], p0, reps=settings.bootstrap_reps, seed=settings.seed)
    return lt, (None if not math.isfinite(lt["ci_low"]) else (lt["ci_low"] - p0, lt["ci_high"] - p0))


def magnet_run(sub: Subject, settings: AuditSettings) -> Run:
    """The primary magnet statistic on one subject (lift, CI of the lift, p-value, decided events).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    Run
    """
    from liqlab.stats.magnet import decided

    p = magnet_params(sub, settings)
    ev = magnet_events(sub, settings)
    lt, ci = lift(decided(ev)["y"].to_numpy(float) if len(ev) else np.array([]), settings, p.p0)
    return Run(name=sub.name, kind=sub.kind, effect=lt["lift"], ci=ci, p_value=lt["p_value"], n=lt["n_events"],
               extra={"horizon_hours": p.horizon_hours, "p_hat": lt["p_hat"], "candidates": int(len(ev))})


def _one_sided(sub: Subject, settings: AuditSettings, side: str) -> pd.DataFrame:
    from liqlab.stats.magnet import Bars, find_events
    from liqlab.stats.magnet.events import funding_arrays, touch_dataset

    _, ds = touch_dataset(sub.data, None)
    hm = sub.heatmap
    zero = np.zeros_like(hm.long)
    long, short = (hm.long, zero) if side == "long" else (zero, hm.short)
    ev = find_events(hm.times, hm.prices, long, short, Bars.from_frame(ds.ohlcv), magnet_params(sub, settings),
                     funding=funding_arrays(ds))
    return ev.set_index("t")[["dist", "mass", "y"]]


def vacuum_run(sub: Subject, settings: AuditSettings) -> Run:
    """The vacuum-zone race on the subject's test window (dense = peak ≥ the training window's median peak).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    Run
        ``effect`` = p̂ − ½ of the nearer dense cluster beating its mirror; ``n`` decided zones.
    """
    up = _one_sided(sub, settings, "short")
    dn = _one_sided(sub, settings, "long")
    both = up.add_suffix("_up").join(dn.add_suffix("_dn"), how="inner")
    name = f"{sub.name} (vacuum zones)"
    if both.empty:
        return Run(name=name, kind=sub.kind, effect=None, n=0, window="test", note="no zone with clusters on both sides")
    t = both.index.tz_convert(None).to_numpy().astype("datetime64[ns]")
    cut = np.quantile(t.astype(np.int64), TRAIN_FRACTION)
    train = t.astype(np.int64) <= cut
    thr_up = float(np.median(both["mass_up"][train])) if train.any() else math.inf
    thr_dn = float(np.median(both["mass_dn"][train])) if train.any() else math.inf
    z = both[~train & (both["mass_up"] >= thr_up) & (both["mass_dn"] >= thr_dn)]
    y = np.where(z["dist_up"] <= z["dist_dn"], z["y_up"], z["y_dn"]).astype(float)
    lt, ci = lift(y, settings)
    return Run(name=name, kind=sub.kind, effect=lt["lift"], ci=ci, p_value=lt["p_value"], n=lt["n_events"],
               window="test: last 40 % of zones (dense threshold from the first 60 %)",
               extra={"zones": int(len(z))})
