"""Claim 6: some clusters never trigger even when price trades through them, because margin is topped up.

Statistic: the share of crossed heatmap notional with no realized liquidation response. A step "responds"
when its realized liquidations exceed the 90th percentile of the realized liquidations of training-window
steps that crossed no mapped notional (the background that needs no map); the share is Σ swept·1{no
response}/Σ swept over the test window. On one market the share mixes every reason a mapped level prints
nothing (the map is wrong, the position was closed, margin was added), so the claim's mechanism is tested
in the simulator on twins: the same seed with ``margin_topup`` on and off (same price path and traders).
There the silent share barely moves (a crossing step almost always liquidates someone), so the twin test
uses the fire rate of crossed notional, Σ realized / Σ swept over crossing steps: effect log rate(on) −
log rate(off) (negative: levels crossed without liquidating), paired moving-block bootstrap over the
common test steps.
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Steps, Subject
from liqlab.stats.audit.core import AuditSettings, Run, block_ci

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "silent_share", "fire_rate", "share_run", "paired_topup_run"]

CLAIM = ("Some clusters are never triggered even when price trades through them, because margin is topped up or "
         "replenished by funding.")
HYPOTHESIS = ("H1 (simulator twins): with margin top-ups, crossed heatmap notional liquidates less per USD "
              "(log fire-rate ratio on/off < 0). Real data: the share of crossed notional with no realized "
              "response, which public data cannot attribute to top-ups.")
STATISTIC = ("real: share = Σ swept·1{realized ≤ q90 of realized in training steps that crossed nothing} / Σ swept, "
             "test window, block-bootstrap CI; simulator twins: log(Σrealized/Σswept)(on) − (off), paired "
             "moving-block bootstrap 95 % CI")

RESPONSE_QUANTILE = 0.9  # a step responds when its realized liquidations exceed this quantile of the background


def _threshold(st: Steps) -> float:
    base = st.train & np.isfinite(st.realized) & (st.swept <= 0)
    if base.sum() < 10:  # almost every step crosses something: the least-crossing decile is the background
        ok = st.train & np.isfinite(st.realized)
        if ok.sum() < 10:
            return math.nan
        base = ok & (st.swept <= np.quantile(st.swept[ok], 0.1))
    return float(np.quantile(st.realized[base], RESPONSE_QUANTILE))


def silent_share(swept: np.ndarray, realized: np.ndarray, threshold: float) -> float:
    """Share of swept notional in steps whose realized liquidations do not exceed ``threshold``.

    Parameters
    ----------
    swept, realized : np.ndarray
        (n,) USD per step.
    threshold : float
        USD.

    Returns
    -------
    float
        In [0, 1]; NaN when nothing was swept.
    """
    tot = float(np.sum(swept))
    return float(np.sum(swept * (realized <= threshold)) / tot) if tot > 0 else math.nan


def _rows(st: Steps) -> np.ndarray:
    return np.flatnonzero(st.test & np.isfinite(st.realized) & np.isfinite(st.swept))


def share_run(sub: Subject, settings: AuditSettings) -> Run:
    """The silent share on one subject's test window (needs realized liquidations).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    Run
        ``effect`` the share (fraction), block-bootstrap CI; ``p_value`` None (a share has no null here).
    """
    st = sub.steps
    if not st.has_realized:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="no realized liquidations in the data")
    thr = _threshold(st)
    rows = _rows(st)
    if not math.isfinite(thr) or len(rows) < 20:
        return Run(name=sub.name, kind=sub.kind, effect=None, n=len(rows), note="too few steps")
    sw, re = st.swept[rows], st.realized[rows]
    lo, hi, _ = block_ci(lambda ix: silent_share(sw[ix], re[ix], thr), len(rows), settings.bootstrap_reps,
                         settings.seed)
    return Run(name=sub.name, kind=sub.kind, effect=silent_share(sw, re, thr), ci=(lo, hi) if math.isfinite(lo) else None,
               n=len(rows), window="test: last 40 % of steps (background threshold from the first 60 %)",
               extra={"threshold_usd": thr, "crossing_steps": int(np.sum(sw > 0)), "fire_rate": fire_rate(sw, re)})


def fire_rate(swept: np.ndarray, realized: np.ndarray) -> float:
    """Realized liquidations per USD of crossed heatmap notional over steps that cross any: Σrealized/Σswept."""
    m = swept > 0
    tot = float(np.sum(swept[m]))
    return float(np.sum(realized[m]) / tot) if tot > 0 else math.nan


def paired_topup_run(on: Subject, off: Subject, settings: AuditSettings) -> Run:
    """log fire rate(on) − log fire rate(off) between simulator twins (same seed, knob on/off).

    Parameters
    ----------
    on, off : Subject
        The same simulated market with and without margin top-ups.
    settings : AuditSettings

    Returns
    -------
    Run
        ``effect`` the paired log ratio (negative: crossed levels liquidate less), its CI and two-sided
        p-value (moving-block bootstrap over the common test steps); the silent shares in ``extra``.
    """
    a, b = on.steps, off.steps
    if not (a.has_realized and b.has_realized) or len(a.end) != len(b.end):
        return Run(name=on.name, kind="synthetic", effect=None, note="twins without realized data or common steps")
    rows = np.intersect1d(_rows(a), _rows(b))
    if len(rows) < 20:
        return Run(name=on.name, kind="synthetic", effect=None, n=len(rows), note="too few steps")
    sa, ra, sb, rb = a.swept[rows], a.realized[rows], b.swept[rows], b.realized[rows]

    def diff(ix: np.ndarray) -> float:
        fa, fb = fire_rate(sa[ix], ra[ix]), fire_rate(sb[ix], rb[ix])
        return math.log(fa / fb) if fa > 0 and fb > 0 else math.nan

    lo, hi, p = block_ci(diff, len(rows), settings.bootstrap_reps, settings.seed)
    thr = _threshold(b)
    return Run(name=on.name, kind="synthetic", effect=diff(np.arange(len(rows))),
               ci=(lo, hi) if math.isfinite(lo) else None, p_value=p, n=len(rows), window="test: last 40 % of steps",
               extra={"fire_rate_on": fire_rate(sa, ra), "fire_rate_off": fire_rate(sb, rb),
                      "silent_share_on": silent_share(sa, ra, thr), "silent_share_off": silent_share(sb, rb, thr)},
               note="SYNTHETIC twins")
