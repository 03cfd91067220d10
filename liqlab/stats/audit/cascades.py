"""Claim 2: forced orders accelerate the move when price reaches a dense cluster (non-linear cascades).

What the data can carry: realized liquidations per step (30 min to 1 h at best on public data; "within
seconds" needs trade-by-trade liquidations). Primary statistic: the next step's log range after a
high-liquidation step (realized USD at or above the training window's 90th percentile) against matched
steps without one: the coefficient of that indicator in a regression of log range(j+1) on it, the step's
own log range and the UTC hour block (the matching), Newey–West errors, fitted on the test window only.
Dose–response: the same regression with the swept heatmap notional in training-window terciles, in USD and
as a share of open interest; time of day: the interaction with the six UTC hours of least training-window
volume (or, without volume, the least range), the liquidity proxy.
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Steps, Subject
from liqlab.stats.audit.core import AuditSettings, Run, hac_ols

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "cascade_run", "quiet_hours"]

CLAIM = ("When price reaches a dense cluster, forced orders accelerate the move non-linearly rather than as a "
         "gradual drift; a level with more than $50M pending can trigger a spike of more than 3 % within "
         "seconds in low-liquidity windows.")
HYPOTHESIS = ("H1: after a step with heavy realized liquidations (≥ the training window's 90th percentile), the "
              "next step's range is larger than after matched steps (same own range, same UTC hour block) without "
              "them; the effect grows with the swept cluster size (USD and share of OI) and in low-liquidity hours.")
STATISTIC = ("β = coefficient of 1{realized ≥ q90(train)} in OLS of log range(j+1) on it, log range(j) and hour "
             "blocks, Newey–West SE, test window (last 40 %); 100·(e^β − 1) is the % change of the next range")

HOUR_BLOCKS = 4  # UTC hour blocks of the matching (6 hours each)


def quiet_hours(st: Steps, n: int = 6) -> np.ndarray:
    """The ``n`` UTC hours with the least training-window volume (or range, without volume): (24,) bool."""
    basis = st.volume_usd if np.isfinite(st.volume_usd[st.train]).any() else st.range_log
    mean = np.array([np.nanmean(basis[st.train & (st.hour == h)]) if (st.train & (st.hour == h)).any() else np.nan
                     for h in range(24)])
    order = np.argsort(np.where(np.isfinite(mean), mean, np.inf))
    out = np.zeros(24, dtype=bool)
    out[order[:n]] = True
    return out


def _design(st: Steps, extra: dict[str, np.ndarray]):
    """Rows j (test window, j+1 valid) and the regression of log range(j+1) on ``extra`` + controls."""
    rng = np.where(st.range_log > 0, st.range_log, np.nan)
    rows = np.flatnonzero(st.test[:-1] & st.valid[1:] & np.isfinite(rng[:-1]) & np.isfinite(rng[1:])
                          & np.isfinite(st.realized[:-1]))
    block = st.hour[rows] * HOUR_BLOCKS // 24
    cols = [np.ones(len(rows))] + [v[rows] for v in extra.values()] + [np.log(rng[rows])]
    cols += [(block == b).astype(float) for b in range(1, HOUR_BLOCKS)]
    names = ["const", *extra, "log_range_j"] + [f"hours_{6 * b:02d}" for b in range(1, HOUR_BLOCKS)]
    return np.log(rng[rows + 1]), np.column_stack(cols), names, rows


def _terciles(x: np.ndarray, st: Steps) -> dict[str, np.ndarray]:
    pos = st.train & np.isfinite(x) & (x > 0)
    if pos.sum() < 6:
        return {}
    a, b = np.quantile(x[pos], [1 / 3, 2 / 3])
    return {"small": ((x > 0) & (x < a)).astype(float), "mid": ((x >= a) & (x < b)).astype(float),
            "large": (x >= b).astype(float)}


def _dose(st: Steps) -> dict[str, dict]:
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = st.swept / np.where(st.oi_usd > 0, st.oi_usd, np.nan)
    for label, x in (("usd", st.swept), ("share_of_oi", scaled)):
        t = _terciles(x, st)
        if t:
            y, X, names, _ = _design(st, {f"swept_{k}": v for k, v in t.items()})
            res = hac_ols(y, X, names)
            out[label] = {k: res[f"swept_{k}"]["coef"] for k in t if f"swept_{k}" in res}
    return out


def cascade_run(sub: Subject, settings: AuditSettings) -> Run:
    """The cascade statistic on one subject (needs realized liquidations).

    Parameters
    ----------
    sub : Subject
    settings : AuditSettings

    Returns
    -------
    Run
        ``effect`` β (log points of next-step range), its 95 % CI and p-value; ``extra``: the %-change,
        the dose-response by swept-cluster tercile (USD, share of OI) and the quiet-hours interaction.
    """
    st = sub.steps
    if not st.has_realized:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="no realized liquidations in the data")
    liq = st.realized
    ok = st.train & np.isfinite(liq)
    if ok.sum() < 20:
        return Run(name=sub.name, kind=sub.kind, effect=None, note="fewer than 20 training steps with realized data")
    high = (liq >= np.quantile(liq[ok], 0.9)).astype(float)
    quiet = quiet_hours(st)[st.hour].astype(float)
    y, X, names, rows = _design(st, {"high_liq": high})
    res = hac_ols(y, X, names)
    if "high_liq" not in res:
        return Run(name=sub.name, kind=sub.kind, effect=None, n=len(rows), window="test", note="regression singular")
    b = res["high_liq"]
    y2, X2, n2, _ = _design(st, {"high_liq": high, "quiet": quiet, "high_x_quiet": high * quiet})
    inter = hac_ols(y2, X2, n2).get("high_x_quiet", {})
    return Run(name=sub.name, kind=sub.kind, effect=b["coef"], ci=(b["ci_low"], b["ci_high"]), p_value=b["p_value"],
               n=len(rows), window="test: last 40 % of steps (threshold, terciles, quiet hours from the first 60 %)",
               extra={"next_range_change_pct": 100 * (math.exp(b["coef"]) - 1),
                      "high_liquidation_steps": int(high[rows].sum()),
                      "quiet_hours_interaction": inter.get("coef"), "quiet_hours_interaction_p": inter.get("p_value"),
                      "dose_response_by_swept_tercile": _dose(st), "step": sub.heatmap.params.time_step})
