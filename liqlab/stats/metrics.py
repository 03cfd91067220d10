"""Rank metrics of a prediction against realized values, per step, and what a predictor adds beyond a
baseline (docs/VALIDATION.md). One source of truth for the validation metric set (:func:`side_metrics`):

- ``spearman``: Spearman rank correlation of predicted vs realized (average ranks for ties).
- ``top_decile_capture``: share of realized USD that fell in the steps the prediction ranks in its top
  10 % (ties at the cut-off count fractionally: the expectation under random tie-breaking).
- ``auc_p95``: ROC AUC of the prediction for the event "realized > its 95th percentile" (Mann-Whitney).

Series are (T,) per step in time order (USD); NaN pairs are dropped. Ranks are ``scipy.stats.rankdata``
(average ranks). Results are JSON-ready (undefined values are None).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from liqlab._util import TRAIN_FRACTION, jsonable
from liqlab.errors import ParameterError
from liqlab.stats.resample import block_bootstrap_indices

__all__ = ["CI_LEVEL", "EXCEED_QUANTILE", "METRICS", "N_BOOT", "TOP_FRACTION", "auc_exceedance", "beyond_excursion",
           "partial_spearman", "partial_spearman_ci", "r2_gain", "side_metrics", "spearman", "top_decile_capture"]

METRICS = ("spearman", "top_decile_capture", "auc_p95")
TOP_FRACTION = 0.10  # top decile
EXCEED_QUANTILE = 0.95  # "big liquidation step" threshold for the AUC
N_BOOT = 500  # bootstrap replications for the CIs
CI_LEVEL = 0.95


def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x)


def _clean(*arrays: np.ndarray) -> list[np.ndarray]:
    """Drop positions where any array is not finite."""
    arrs = [np.asarray(a, dtype=float) for a in arrays]
    n = {a.shape for a in arrs}
    if len(n) != 1:
        raise ParameterError(f"series have different shapes {sorted(n)}")
    ok = np.ones(arrs[0].shape, dtype=bool)
    for a in arrs:
        ok &= np.isfinite(a)
    return [a[ok] for a in arrs]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two clean (n,) arrays (NaN if either is constant)."""
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else float("nan")


def spearman(pred: np.ndarray, real: np.ndarray) -> float:
    """Spearman rank correlation (average ranks for ties).

    Parameters
    ----------
    pred, real : np.ndarray
        (T,) series; pairs with a non-finite value are dropped.

    Returns
    -------
    float
        In [-1, 1]; NaN if either side is constant or fewer than 3 pairs remain.
    """
    p, r = _clean(pred, real)
    if p.size < 3:
        return float("nan")
    return _pearson(_rank(p), _rank(r))


def top_decile_capture(pred: np.ndarray, real: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Share of total realized value in the steps the prediction ranks in its top ``fraction``.

    Exactly ``fraction·n`` steps are "top"; steps tied with the cut-off value count fractionally
    (the expected capture under random tie-breaking). NaN if nothing was realized.

    Parameters
    ----------
    pred, real : np.ndarray
        (T,) predicted and realized series (USD); pairs with a non-finite value are dropped.
    fraction : float
        Share of the steps counted as "top", in (0, 1].

    Returns
    -------
    float
        Captured share of realized USD, in [0, 1].
    """
    if not 0 < fraction <= 1:
        raise ParameterError(f"fraction must be in (0, 1], got {fraction}")
    p, r = _clean(pred, real)
    total = float(r.sum())
    if p.size == 0 or total <= 0:
        return float("nan")
    k = fraction * p.size  # number of top slots (may be fractional)
    order = np.argsort(-p, kind="mergesort")
    ps, rs = p[order], r[order]
    captured = 0.0
    taken = 0.0
    i = 0
    n = ps.size
    while i < n and taken < k:
        j = i
        while j < n and ps[j] == ps[i]:
            j += 1
        group = j - i
        share = min(1.0, (k - taken) / group)
        captured += share * float(rs[i:j].sum())
        taken += share * group
        i = j
    return captured / total


def auc_exceedance(pred: np.ndarray, real: np.ndarray, quantile: float = EXCEED_QUANTILE) -> float:
    """ROC AUC of ``pred`` for the event ``real > quantile(real)`` (ties count 1/2; NaN if one class).

    Parameters
    ----------
    pred, real : np.ndarray
        (T,) predicted and realized series (USD); pairs with a non-finite value are dropped.
    quantile : float
        Quantile of ``real`` above which a step counts as an exceedance.

    Returns
    -------
    float
        AUC in [0, 1] (Mann–Whitney U / (n1·n0)).
    """
    p, r = _clean(pred, real)
    if p.size == 0:
        return float("nan")
    y = r > np.quantile(r, quantile)
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = _rank(p)
    u = float(ranks[y].sum()) - n1 * (n1 + 1) / 2.0
    return u / (n1 * n0)


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman correlation of x and y controlling for z (partial correlation of the ranks).

    Parameters
    ----------
    x, y, z : np.ndarray
        (T,) series; positions where any is not finite are dropped.

    Returns
    -------
    float
        In [-1, 1]; NaN with fewer than 4 values or a degenerate control.
    """
    a, b, c = _clean(x, y, z)
    if a.size < 4:
        return float("nan")
    ra, rb, rc = _rank(a), _rank(b), _rank(c)
    rxy, rxz, ryz = _pearson(ra, rb), _pearson(ra, rc), _pearson(rb, rc)
    den = math.sqrt(max(0.0, (1 - rxz**2) * (1 - ryz**2)))
    return (rxy - rxz * ryz) / den if den > 0 else float("nan")


def side_metrics(pred: np.ndarray, real: np.ndarray) -> dict[str, float | None]:
    """The metric set (``METRICS``) of one prediction for one side.

    Parameters
    ----------
    pred, real : np.ndarray
        (T,) predicted and realized series of one side (USD).

    Returns
    -------
    dict[str, float | None]
        ``spearman``, ``top_decile_capture``, ``auc_p95``; None where undefined.
    """
    out = {
        "spearman": spearman(pred, real),
        "top_decile_capture": top_decile_capture(pred, real),
        "auc_p95": auc_exceedance(pred, real),
    }
    return {k: jsonable(v) for k, v in out.items()}


def _ci(values: np.ndarray, level: float = CI_LEVEL) -> list[float | None]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [None, None]
    a = (1 - level) / 2
    return [float(np.quantile(v, a)), float(np.quantile(v, 1 - a))]


def partial_spearman_ci(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, *, n_boot: int = N_BOOT, block: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Partial Spearman of x, y given z with a moving-block bootstrap CI (steps in time order).

    Parameters
    ----------
    x, y, z : np.ndarray
        (T,) series in time order.
    n_boot : int
        Bootstrap replications.
    block : int, optional
        Block length in steps (default ``n^(1/3)``).
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``estimate`` (None if undefined), ``ci`` [low, high] (95 %), ``n`` steps used.
    """
    a, b, c = _clean(x, y, z)
    est = partial_spearman(a, b, c)
    idx = block_bootstrap_indices(a.size, n_boot, block, seed)
    boots = np.array([partial_spearman(a[i], b[i], c[i]) for i in idx]) if a.size else np.array([])
    return {"estimate": jsonable(est), "ci": _ci(boots), "n": int(a.size)}


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return beta


def r2_gain(
    pred: np.ndarray,
    base: np.ndarray,
    real: np.ndarray,
    *,
    train_fraction: float = TRAIN_FRACTION,
    n_boot: int = N_BOOT,
    block: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Out-of-sample gain from adding ``pred`` to the ``base`` model of realized liquidations.

    Model (OLS on the first ``train_fraction`` of the steps, in time order): log1p(real) ~ 1 +
    log1p(base) + 1{base = 0} [+ log1p(pred) + 1{pred = 0}], all USD (the indicators keep the many
    zero steps from bending the log fit). On the later steps each model's R² = 1 − SSE/SST (SST around
    the test mean; below 0 when a model predicts worse than that mean), reported as ``r2_base`` and
    ``r2_full``. ``gain`` = 1 − SSE_full/SSE_base: the out-of-sample R² of the full model with the base
    model as the benchmark (= (R²_full − R²_base)/(1 − R²_base)), the share of the base model's test
    error the predictor removes. It is at most 1, > 0 exactly when the full model predicts better, and
    does not depend on how the two compare with the test mean. ``ci``: 95 % percentile interval of the
    gain over a moving-block bootstrap of the test steps (models fixed); every replicate is ≤ 1, so the
    interval is too.

    Parameters
    ----------
    pred, base, real : np.ndarray
        (T,) non-negative USD series in time order: the predictor, the base predictor, realized.
    train_fraction : float
        First share of the steps used to fit both models, in (0, 1).
    n_boot : int
        Bootstrap replications of the CI.
    block : int, optional
        Block length in steps (default ``n^(1/3)``).
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``r2_base``, ``r2_full``, ``gain`` (None when undefined or too few steps), ``ci`` [low, high],
        ``n_train``, ``n_test``.
    """
    if not 0 < train_fraction < 1:
        raise ParameterError(f"train_fraction must be in (0, 1), got {train_fraction}")
    p, b, r = _clean(pred, base, real)
    if (p < 0).any() or (b < 0).any() or (r < 0).any():
        raise ParameterError("r2_gain needs non-negative USD series")
    n = p.size
    ntr = round(train_fraction * n)
    out: dict[str, Any] = {"r2_base": None, "r2_full": None, "gain": None, "ci": [None, None],
                           "n_train": ntr, "n_test": n - ntr}
    if ntr < 5 or n - ntr < 5:
        return out
    lp, lb, ly = np.log1p(p), np.log1p(b), np.log1p(r)
    one = np.ones(n)
    Xb = np.column_stack([one, lb, (b == 0).astype(float)])
    Xf = np.column_stack([one, lb, (b == 0).astype(float), lp, (p == 0).astype(float)])
    tr, te = slice(0, ntr), slice(ntr, n)
    eb = ly[te] - Xb[te] @ _ols(Xb[tr], ly[tr])
    ef = ly[te] - Xf[te] @ _ols(Xf[tr], ly[tr])
    yt = ly[te]

    def stats(i):
        sst = float(((yt[i] - yt[i].mean()) ** 2).sum())
        sb, sf = float((eb[i] ** 2).sum()), float((ef[i] ** 2).sum())
        gain = 1 - sf / sb if sb > 0 else float("nan")
        if sst <= 0:
            return float("nan"), float("nan"), gain
        return 1 - sb / sst, 1 - sf / sst, gain

    r2b, r2f, g = stats(np.arange(yt.size))
    idx = block_bootstrap_indices(yt.size, n_boot, block, seed)
    boots = np.array([stats(i)[2] for i in idx])
    out.update(r2_base=jsonable(r2b), r2_full=jsonable(r2f), gain=jsonable(g), ci=_ci(boots))
    return out


def beyond_excursion(
    pred: np.ndarray, excursion: np.ndarray, real: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Any]:
    """What ``pred`` adds beyond the excursion baseline: partial Spearman and out-of-sample R² gain.

    Parameters
    ----------
    pred, excursion, real : np.ndarray
        (T,) USD series in time order.
    n_boot : int
        Bootstrap replications.
    seed : int
        Bootstrap seed.

    Returns
    -------
    dict
        ``partial_spearman`` (:func:`partial_spearman_ci`) and ``r2_gain`` (:func:`r2_gain`).
    """
    return {
        "partial_spearman": partial_spearman_ci(pred, real, excursion, n_boot=n_boot, seed=seed),
        "r2_gain": r2_gain(pred, excursion, real, n_boot=n_boot, seed=seed),
    }


