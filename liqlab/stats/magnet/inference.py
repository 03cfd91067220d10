"""Inference of the magnet test: the lift of decided events against p0 (stationary bootstrap and HAC),
the logit with controls, dose-response, Benjamini–Yekutieli q-values, Kaplan–Meier time to touch,
post-touch acceleration, volatility-matched random levels, and Hansen's SPA / Romano–Wolf StepM over a
grid. Inputs are event frames of :func:`liqlab.stats.magnet.events.find_events` or arrays; outputs are
dicts and frames of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from liqlab._util import to_ns
from liqlab.errors import ParameterError
from liqlab.stats.magnet.events import decided
from liqlab.stats.magnet.params import HOUR_NS, Bars, MagnetParams
from liqlab.stats.resample import stationary_block_length

__all__ = ["acceleration", "by_qvalues", "dose_response", "hac_mean_test", "kaplan_meier", "lift_test",
           "logit_test", "random_level_hits", "spa_grid", "summarize", "touch_curves"]


def hac_mean_test(y: np.ndarray, p0: float = 0.5) -> dict[str, float]:
    """Newey–West (HAC) z-test of mean(y) = p0; lag floor(4·(n/100)^(2/9)). Two-sided p-value.

    Parameters
    ----------
    y : np.ndarray
        (n,) outcomes in time order.
    p0 : float
        Null mean.

    Returns
    -------
    dict[str, float]
        ``se``, ``z``, ``p_value`` (NaN with fewer than 2 values).
    """
    from scipy.stats import norm

    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n < 2:
        return {"se": math.nan, "z": math.nan, "p_value": math.nan}
    e = y - y.mean()
    lags = int(math.floor(4 * (n / 100) ** (2 / 9)))
    s = float(e @ e) / n
    for L in range(1, min(lags, n - 1) + 1):
        s += 2 * (1 - L / (lags + 1)) * float(e[L:] @ e[:-L]) / n
    se = math.sqrt(max(s, 0.0) / n)
    lift = float(y.mean()) - p0
    if se == 0:
        return {"se": 0.0, "z": math.copysign(math.inf, lift) if lift else 0.0, "p_value": 0.0 if lift else 1.0}
    z = lift / se
    return {"se": se, "z": z, "p_value": float(2 * norm.sf(abs(z)))}


def lift_test(
    y: np.ndarray, p0: float = 0.5, *, reps: int = 999, seed: int = 0, alpha: float = 0.05, min_events: int = 10
) -> dict[str, Any]:
    """p̂, lift = p̂ − p0, stationary-bootstrap (1−alpha) percentile CI of p̂ and two-sided p-value.

    y: (n,) 0/1 outcomes in time order. p-value = share of recentred bootstrap means at least as far
    from p̂ as p̂ is from p0 (with the +1 correction). Also the HAC z-test. NaN when n < min_events.

    Parameters
    ----------
    y : np.ndarray
        (n,) 0/1 outcomes in time order (NaN dropped).
    p0 : float
        Null probability.
    reps : int
        Bootstrap replications.
    seed : int
        Bootstrap seed.
    alpha : float
        1 − coverage of the CI.
    min_events : int
        Fewer decided events give NaN CI and p-value.

    Returns
    -------
    dict
        ``n_events``, ``p0``, ``p_hat``, ``lift``, ``ci_low``, ``ci_high``, ``p_value``, ``block_length``,
        ``se_boot``, ``se_hac``, ``p_value_hac``.
    """
    from arch.bootstrap import StationaryBootstrap

    y = np.asarray(y, dtype=np.float64)
    y = y[np.isfinite(y)]
    n = len(y)
    out: dict[str, Any] = {"n_events": int(n), "p0": float(p0)}
    if n == 0:
        out.update(p_hat=math.nan, lift=math.nan, ci_low=math.nan, ci_high=math.nan, p_value=math.nan,
                   block_length=math.nan, se_boot=math.nan, p_value_hac=math.nan, se_hac=math.nan)
        return out
    p_hat = float(y.mean())
    out.update(p_hat=p_hat, lift=p_hat - p0)
    hac = hac_mean_test(y, p0)
    out.update(se_hac=hac["se"], p_value_hac=hac["p_value"])
    if n < min_events:
        out.update(ci_low=math.nan, ci_high=math.nan, p_value=math.nan, block_length=math.nan, se_boot=math.nan)
        return out
    block = stationary_block_length(y)
    bs = StationaryBootstrap(block, y, seed=np.random.default_rng(seed))
    m = bs.apply(np.mean, reps)[:, 0]
    lo, hi = np.quantile(m, [alpha / 2, 1 - alpha / 2])
    dev = abs(p_hat - p0)
    far = int(np.sum(np.abs(m - p_hat) >= dev - 1e-12)) if dev > 0 else reps
    out.update(
        ci_low=float(lo), ci_high=float(hi), p_value=(1 + far) / (1 + reps),
        block_length=block, se_boot=float(m.std(ddof=1)),
    )
    return out


def logit_test(events: pd.DataFrame, *, controls: Sequence[str] = ("momentum", "funding", "dominance")) -> dict[str, Any]:
    """Logit P(Y=1) = Λ0 + β1·σ·momentum + β2·σ·funding + β3·log D with HAC standard errors.

    Λ0 > 0 (logit scale) means the magnet survives the controls; β3 > 0 is a dose-response. Controls
    with no variation (e.g. no funding data) are dropped. Returns coefficients, SEs, p-values; NaNs if
    the fit fails (e.g. perfect separation).

    Parameters
    ----------
    events : pd.DataFrame
        Events (decided rows are used).
    controls : sequence of str
        Any of "momentum", "funding", "dominance".

    Returns
    -------
    dict
        ``n``, ``terms``, ``coef``, ``se``, ``p_value`` (dicts by term) and ``ok``.
    """
    import warnings

    import statsmodels.api as sm

    ev = events[events["y"].notna()]
    cols: dict[str, np.ndarray] = {}
    sgn = ev["side"].to_numpy(dtype=float)
    if "momentum" in controls:
        cols["side_momentum"] = sgn * ev["momentum"].to_numpy(dtype=float)
    if "funding" in controls:
        cols["side_funding"] = sgn * ev["funding"].to_numpy(dtype=float) * 1e4  # bp per interval
    if "dominance" in controls:
        cols["log_dominance"] = np.log(np.minimum(ev["dominance"].to_numpy(dtype=float), 1e3))
    X = pd.DataFrame(cols)
    keep = np.isfinite(X.to_numpy()).all(axis=1) if len(cols) else np.ones(len(ev), bool)
    X = X.loc[keep]
    X = X.loc[:, [c for c in X.columns if X[c].std() > 0]]
    yv = ev["y"].to_numpy(dtype=float)[keep]
    names = ["const", *X.columns]
    out: dict[str, Any] = {"n": int(len(yv)), "terms": names}
    nan = {k: math.nan for k in names}
    if len(yv) < len(names) + 5 or yv.min() == yv.max():
        return {**out, "coef": nan, "se": nan, "p_value": nan, "ok": False}
    Xc = sm.add_constant(X.to_numpy(), has_constant="add")
    lags = int(math.floor(4 * (len(yv) / 100) ** (2 / 9)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.Logit(yv, Xc).fit(disp=0, cov_type="HAC", cov_kwds={"maxlags": max(lags, 1)})
        coef = dict(zip(names, map(float, fit.params)))
        se = dict(zip(names, map(float, fit.bse)))
        pv = dict(zip(names, map(float, fit.pvalues)))
        ok = all(math.isfinite(v) for v in se.values())
    except Exception:  # noqa: BLE001 - separation / singular design: report as not estimable
        return {**out, "coef": nan, "se": nan, "p_value": nan, "ok": False}
    return {**out, "coef": coef, "se": se, "p_value": pv, "ok": ok}


def _wilson(k: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    ph = k / n
    den = 1 + z * z / n
    c = (ph + z * z / (2 * n)) / den
    h = z * math.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
    return c - h, c + h


def dose_response(events: pd.DataFrame, by: str = "dominance", n_bins: int = 10) -> pd.DataFrame:
    """p̂ by quantile bin of ``by`` (decided events only) with a Wilson 95% CI per bin.

    Columns: bin, lo, hi (range of ``by``), n, p_hat, ci_low, ci_high. Fewer bins when events are few.

    Parameters
    ----------
    events : pd.DataFrame
        Events (decided rows are used).
    by : str
        The event column binned.
    n_bins : int
        Number of quantile bins (at most one per 5 events).

    Returns
    -------
    pd.DataFrame
        One row per bin.
    """
    ev = events[events["y"].notna()]
    x = ev[by].to_numpy(dtype=float)
    y = ev["y"].to_numpy(dtype=float)
    n_bins = int(max(1, min(n_bins, len(ev) // 5)))
    cols = ["bin", "lo", "hi", "n", "p_hat", "ci_low", "ci_high"]
    if len(ev) == 0:
        return pd.DataFrame(columns=cols)
    ranks = np.argsort(np.argsort(x, kind="stable"), kind="stable")
    b = (ranks * n_bins) // len(x)
    rows = []
    for i in range(n_bins):
        m = b == i
        k, n = float(y[m].sum()), int(m.sum())
        lo, hi = _wilson(k, n)
        rows.append((i + 1, float(x[m].min()), float(x[m].max()), n, k / n if n else math.nan, lo, hi))
    return pd.DataFrame(rows, columns=cols)


def by_qvalues(pvalues: Iterable[float]) -> np.ndarray:
    """Benjamini–Yekutieli q-values (FDR under arbitrary dependence); NaN p-values stay NaN.

    Parameters
    ----------
    pvalues : iterable of float

    Returns
    -------
    np.ndarray
        (m,) q-values.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(list(pvalues), dtype=np.float64)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = multipletests(p[ok], method="fdr_by")[1]
    return q


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Kaplan–Meier survival S(t) = P(not yet touched by t). Durations in hours; observed = touched.

    Returns the step function at each distinct event time (columns time, at_risk, events, survival),
    starting with (0, n, 0, 1).

    Parameters
    ----------
    durations : np.ndarray
        (n,) hours to touch (censoring time where not touched).
    observed : np.ndarray
        (n,) bool, touched.

    Returns
    -------
    pd.DataFrame
        As described.
    """
    d = np.asarray(durations, dtype=np.float64)
    o = np.asarray(observed, dtype=bool)
    if d.shape != o.shape:
        raise ParameterError(f"kaplan_meier: durations {d.shape} and observed {o.shape} differ in shape")
    n = len(d)
    rows = [(0.0, n, 0, 1.0)]
    s = 1.0
    for t in np.unique(d[o]):
        at_risk = int(np.sum(d >= t))
        ev = int(np.sum((d == t) & o))
        if at_risk > 0:
            s *= 1 - ev / at_risk
        rows.append((float(t), at_risk, ev, s))
    return pd.DataFrame(rows, columns=["time", "at_risk", "events", "survival"])


def touch_curves(events: pd.DataFrame, horizon_hours: float) -> dict[str, pd.DataFrame]:
    """Kaplan–Meier time-to-touch for cluster and mirror (censored at H), all events with a cluster.

    Parameters
    ----------
    events : pd.DataFrame
        Events with ``tau_cluster_h`` and ``tau_mirror_h`` (hours, NaN = not touched).
    horizon_hours : float
        Censoring time H.

    Returns
    -------
    dict[str, pd.DataFrame]
        ``cluster`` and ``mirror``: :func:`kaplan_meier` tables.
    """
    out = {}
    for name, col in (("cluster", "tau_cluster_h"), ("mirror", "tau_mirror_h")):
        tau = events[col].to_numpy(dtype=float)
        obs = np.isfinite(tau)
        out[name] = kaplan_meier(np.where(obs, tau, horizon_hours), obs)
    return out


def acceleration(events: pd.DataFrame) -> dict[str, float]:
    """Osler-style continuation after a touch: mean signed return (bp) over ``post_hours`` after the
    cluster vs after the mirror is touched (positive = keeps going through the level), and the Welch t.

    Parameters
    ----------
    events : pd.DataFrame
        Events with ``post_cluster_bp`` and ``post_mirror_bp``.

    Returns
    -------
    dict[str, float]
        ``n_cluster``, ``n_mirror``, ``mean_cluster_bp``, ``mean_mirror_bp``, ``diff_bp``, ``t_stat``.
    """
    c = events["post_cluster_bp"].to_numpy(dtype=float)
    m = events["post_mirror_bp"].to_numpy(dtype=float)
    c, m = c[np.isfinite(c)], m[np.isfinite(m)]
    out = {"n_cluster": int(len(c)), "n_mirror": int(len(m)),
           "mean_cluster_bp": float(c.mean()) if len(c) else math.nan,
           "mean_mirror_bp": float(m.mean()) if len(m) else math.nan}
    if len(c) > 1 and len(m) > 1:
        se = math.sqrt(c.var(ddof=1) / len(c) + m.var(ddof=1) / len(m))
        diff = float(c.mean() - m.mean())
        out.update(diff_bp=diff, t_stat=diff / se if se > 0 else math.nan)
    else:
        out.update(diff_bp=math.nan, t_stat=math.nan)
    return out


def random_level_hits(events: pd.DataFrame, bars: Bars, horizon_hours: float, *, seed: int = 0) -> dict[str, float]:
    """Hit probability within H: cluster vs volatility-matched random levels vs Brownian benchmark.

    Random level for event i: random side, log-distance d_j/σ_j·σ_i with j drawn from all events
    (σ = per-horizon log-return sd). Brownian benchmark: mean of 2·(1 − Φ(d_i/σ_i)).

    Parameters
    ----------
    events : pd.DataFrame
        Events (``t``, ``price``, ``dist``, ``sigma_h``, ``tau_cluster_h``).
    bars : Bars
        The bars that decide touches.
    horizon_hours : float
        H.
    seed : int
        Seed of the random levels.

    Returns
    -------
    dict[str, float]
        ``n``, ``cluster_hit``, ``random_hit``, ``brownian_hit`` (shares in [0, 1]).
    """
    from scipy.stats import norm

    ev = events
    n = len(ev)
    if n == 0:
        return {"n": 0, "cluster_hit": math.nan, "random_hit": math.nan, "brownian_hit": math.nan}
    rng = np.random.default_rng(seed)
    sig = ev["sigma_h"].to_numpy(float)
    d = ev["dist"].to_numpy(float)
    z = np.where(sig > 0, d / np.where(sig > 0, sig, 1), np.nan)
    zr = rng.choice(z[np.isfinite(z)], size=n) if np.isfinite(z).any() else np.full(n, np.nan)
    side = rng.choice([-1, 1], size=n)
    H = int(round(horizon_hours * HOUR_NS))
    hits = np.zeros(n, bool)
    for i, (t, P) in enumerate(zip(ev["t"].to_numpy(), ev["price"].to_numpy(float))):
        t = int(to_ns(np.asarray([t]))[0])
        a = int(np.searchsorted(bars.ts, t, "left"))
        e = int(np.searchsorted(bars.ts, t + H, "left"))
        lev = P * math.exp(side[i] * zr[i] * sig[i]) if np.isfinite(zr[i]) else math.nan
        if side[i] > 0:
            hits[i] = bool(np.any(bars.high[a:e] >= lev))
        else:
            hits[i] = bool(np.any(bars.low[a:e] <= lev))
    cluster_hit = np.isfinite(ev["tau_cluster_h"].to_numpy(float))
    bm = 2 * norm.sf(z[np.isfinite(z)])
    return {"n": int(n), "cluster_hit": float(cluster_hit.mean()), "random_hit": float(hits.mean()),
            "brownian_hit": float(bm.mean()) if len(bm) else math.nan}


def spa_grid(
    losses: np.ndarray, *, reps: int = 999, seed: int = 0, alpha: float = 0.05, block_size: float | None = None
) -> dict[str, Any]:
    """Hansen's SPA and Romano–Wolf StepM of configurations vs the benchmark loss 0 (the null).

    losses: (T_periods, M) per-period loss −Σ(Y − p0) of each configuration (0 where it has no event).
    Returns spa_p_value (consistent), its lower/upper variants and the StepM superior column indices.

    Parameters
    ----------
    losses : np.ndarray
        (T_periods, M) losses, periods in time order.
    reps : int
        Bootstrap replications.
    seed : int
        Bootstrap seed.
    alpha : float
        StepM family-wise size.
    block_size : float, optional
        Mean block length (default Politis–White on the mean loss).

    Returns
    -------
    dict
        ``spa_p_value``, ``spa_p_lower``, ``spa_p_upper``, ``stepm_superior`` (column indices), ``block_size``.
    """
    from arch.bootstrap import SPA, StepM

    L = np.asarray(losses, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] < 10 or L.shape[1] < 1:
        raise ParameterError(f"spa_grid: need a (periods >= 10, models >= 1) loss matrix, got {L.shape}")
    bench = np.zeros(L.shape[0])
    if block_size is None:
        block_size = stationary_block_length(L.mean(axis=1))
    spa = SPA(bench, L, block_size=block_size, reps=reps, bootstrap="stationary", seed=np.random.default_rng(seed))
    spa.compute()
    pv = spa.pvalues
    stepm = StepM(bench, L, size=alpha, block_size=block_size, reps=reps, bootstrap="stationary",
                  seed=np.random.default_rng(seed + 1))
    stepm.compute()
    sup = sorted(int(i) for i in stepm.superior_models) if stepm.superior_models is not None else []
    return {"spa_p_value": float(pv["consistent"]), "spa_p_lower": float(pv["lower"]),
            "spa_p_upper": float(pv["upper"]), "stepm_superior": sup, "block_size": float(block_size)}


def summarize(ev: pd.DataFrame, params: MagnetParams, *, bootstrap: bool = True) -> dict[str, Any]:
    """The result fields of one event set: n_events, untouched_share, double_touches, p̂, CI, p-value…

    Parameters
    ----------
    ev : pd.DataFrame
        Events of one map.
    params : MagnetParams
    bootstrap : bool
        Bootstrap CI and p-value (else p̂, lift and the HAC test only).

    Returns
    -------
    dict
        :func:`lift_test` fields plus ``n_candidates``, ``untouched_share``, ``double_touches``.
    """
    y = decided(ev)["y"].to_numpy(float)
    n_all = len(ev)
    if bootstrap:
        res = lift_test(y, params.p0, reps=params.bootstrap_reps, seed=params.seed, alpha=params.alpha)
    else:
        res = {"n_events": int(len(y)), "p0": params.p0, "p_hat": float(y.mean()) if len(y) else math.nan}
        res["lift"] = res["p_hat"] - params.p0
        hac = hac_mean_test(y, params.p0)
        res.update(se_hac=hac["se"], p_value_hac=hac["p_value"])
    res["n_candidates"] = int(n_all)
    res["untouched_share"] = float(ev["untouched"].mean()) if n_all else math.nan
    res["double_touches"] = int(ev["double"].sum())
    return res


