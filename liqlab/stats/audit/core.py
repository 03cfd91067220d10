"""The audit's result types, its settings, and the few numbers every claim computes the same way.

A claim's result (:class:`ClaimResult`) holds the hypothesis tested, the statistic, one :class:`Run` per
dataset or simulated world it ran on, the headline effect with its 95 % interval, the simulator power
(:class:`Power`, for a claim the simulator can switch on) and the verdict, one of :data:`VERDICTS`.
:class:`AuditSettings` holds every setting (seeds that choose, seeds that report, simulated days,
bootstrap size, the power target); :func:`hac_ols` and :func:`block_ci` are the regression and interval
every claim module uses. Effects are unitless unless the statistic names a unit; times are UTC.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liqlab._util import jsonable
from liqlab.errors import ParameterError

__all__ = ["VERDICTS", "SUPPORTED", "NOT_SUPPORTED", "NOT_TESTABLE", "Run", "Power", "ClaimResult", "AuditSettings",
           "hac_ols", "block_ci", "boot_summary", "fire_rank", "headline", "load_settings"]

SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE = "supported", "not supported", "not testable here"
VERDICTS: tuple[str, ...] = (SUPPORTED, NOT_SUPPORTED, NOT_TESTABLE)


@dataclass(frozen=True)
class Run:
    """One statistic measured on one dataset or on a set of simulated worlds.

    ``effect`` in the claim's statistic's unit; ``ci`` its 95 % interval (low, high) or None; ``p_value``
    two-sided unless the claim says one-sided; ``q_value`` Benjamini–Yekutieli across the audit (set by the
    registry); ``n`` steps or events used; ``kind`` 'real' or 'synthetic'; ``window`` what part of the
    data was scored (e.g. 'test: last 40 %').
    """

    name: str
    kind: str
    effect: float | None
    ci: tuple[float, float] | None = None
    p_value: float | None = None
    n: int = 0
    window: str = "all"
    q_value: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain, strict-JSON values (NaN → None)."""
        return jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class Power:
    """Detection rate of a claim's statistic in simulated worlds where the claim is switched on.

    ``knob`` (a :class:`liqlab.sim.config.SimulationConfig` field) was set to ``value``, the smallest of
    ``ladder`` whose rejection rate on ``choose_seeds`` reached the target (else the largest); ``power``
    is the rejection rate (at ``alpha``, in the claimed direction) on ``report_seeds``, which the choice
    never saw, and ``null_rejection`` the rate with the knob at 0 on the same report seeds.
    """

    knob: str
    value: float
    ladder: tuple[float, ...]
    choose_seeds: tuple[int, ...]
    report_seeds: tuple[int, ...]
    choose_rates: tuple[float, ...]
    power: float
    power_ci: tuple[float, float]
    null_rejection: float
    days: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """Plain, strict-JSON values."""
        return jsonable(dataclasses.asdict(self))


@dataclass(frozen=True)
class ClaimResult:
    """One audited claim: what was tested, on what, the effect, the power and the verdict."""

    id: int
    claim: str
    hypothesis: str
    statistic: str
    data: tuple[Run, ...]
    effect: float | None
    ci: tuple[float, float] | None
    power: Power | None
    verdict: str
    notes: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ParameterError(f"verdict: must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        """The claim's JSON entry: ``id, claim, hypothesis, statistic, data, effect, ci, power, verdict, notes``."""
        return jsonable({
            "id": self.id, "claim": self.claim, "hypothesis": self.hypothesis, "statistic": self.statistic,
            "data": [r.to_dict() for r in self.data], "effect": self.effect,
            "ci": list(self.ci) if self.ci is not None else None,
            "power": self.power.to_dict() if self.power is not None else None,
            "verdict": self.verdict, "notes": self.notes,
        })


@dataclass(frozen=True)
class AuditSettings:
    """Every setting of an audit (the one home of its defaults).

    Simulated worlds: ``sim_days`` days (UTC, 1m bars) on ``sim_venues`` after ``sim_warmup_days``;
    settings are chosen on ``choose_seeds`` and power is reported on ``report_seeds`` (disjoint);
    ``ladders`` maps a knob to the strengths tried, weakest first. ``power_target``: the rejection rate a
    strength must reach on the choosing seeds. ``bootstrap_reps``: replications of every interval.
    ``equivalence_margin``: the largest difference in bounce rate (fraction) that still counts as "no
    more than other levels" (claim 7). ``alpha``: the test size, also the FDR level of Benjamini–Yekutieli.
    """

    alpha: float = 0.05
    power_target: float = 0.8
    sim_days: float = 30.0
    sim_warmup_days: float = 5.0
    sim_venues: tuple[str, ...] = ("binanceusdm", "bybit", "okx")
    choose_seeds: tuple[int, ...] = (1000, 1001, 1002, 1003)
    report_seeds: tuple[int, ...] = (2000, 2001, 2002, 2003, 2004, 2005)
    ladders: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: {
        "hunt_intensity": (0.2, 0.4), "cascade_impact": (1.0, 2.0, 4.0), "margin_topup": (0.1, 0.25, 0.5)})
    bootstrap_reps: int = 499
    equivalence_margin: float = 0.05
    step: str = "1h"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 < self.alpha < 1 and 0 < self.power_target <= 1):
            raise ParameterError(f"alpha and power_target must be in (0, 1), got {self.alpha!r}, {self.power_target!r}")
        if not (self.sim_days > 0 and self.sim_warmup_days >= 0):
            raise ParameterError(f"sim_days must be > 0 and sim_warmup_days >= 0, got {self.sim_days!r}")
        if not self.choose_seeds or not self.report_seeds:
            raise ParameterError("choose_seeds and report_seeds must each name at least one seed")
        if set(self.choose_seeds) & set(self.report_seeds):
            raise ParameterError(f"choose_seeds and report_seeds must not overlap, both have "
                                 f"{sorted(set(self.choose_seeds) & set(self.report_seeds))}")
        if not (isinstance(self.bootstrap_reps, int) and self.bootstrap_reps >= 19):
            raise ParameterError(f"bootstrap_reps must be an integer >= 19, got {self.bootstrap_reps!r}")
        if not (0 < self.equivalence_margin < 1):
            raise ParameterError(f"equivalence_margin must be in (0, 1), got {self.equivalence_margin!r}")
        for k, v in self.ladders.items():
            if not v or any(not (x > 0 and math.isfinite(x)) for x in v):
                raise ParameterError(f"ladders.{k}: needs positive strengths, got {v!r}")

    @classmethod
    def fast(cls, **changes: Any) -> "AuditSettings":
        """Small worlds and few seeds: seconds, for the notebook and the tests (wide intervals, low power)."""
        base = dict(sim_days=4.0, sim_warmup_days=3.0, sim_venues=("binanceusdm", "bybit"), choose_seeds=(1000,),
                    report_seeds=(2000, 2001), ladders={"hunt_intensity": (0.4,), "cascade_impact": (4.0,),
                                                        "margin_topup": (0.5,)}, bootstrap_reps=99)
        base.update(changes)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        return jsonable(dataclasses.asdict(self))


def load_settings(path: str | Path | None = None, **changes: Any) -> AuditSettings:
    """Settings from a JSON/YAML file (``fast: true`` starts from :meth:`AuditSettings.fast`).

    Parameters
    ----------
    path : str or Path, optional
        A mapping of :class:`AuditSettings` fields (unknown names are refused).
    **changes
        Fields that win over the file.

    Returns
    -------
    AuditSettings
    """
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ParameterError(f"{p}: cannot read the settings file ({exc.strerror or exc})") from None
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                raw = yaml.safe_load(text) or {}
            else:
                raw = json.loads(text)
        except ValueError as exc:
            raise ParameterError(f"{p}: not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                                 f"{' '.join(str(exc).split())}") from None
        if not isinstance(raw, dict):
            raise ParameterError(f"{p}: the settings file must hold a mapping of setting names")
    raw.update(changes)
    fast = bool(raw.pop("fast", False))
    names = {f.name for f in dataclasses.fields(AuditSettings)}
    bad = sorted(set(raw) - names)
    if bad:
        raise ParameterError(f"unknown audit setting(s) {bad}; known: {sorted(names)}")
    for k in ("sim_venues", "choose_seeds", "report_seeds"):
        if k in raw:
            raw[k] = tuple(raw[k])
    if "ladders" in raw:
        raw["ladders"] = {str(k): tuple(float(x) for x in v) for k, v in dict(raw["ladders"]).items()}
    return AuditSettings.fast(**raw) if fast else AuditSettings(**raw)


def hac_ols(y: np.ndarray, X: np.ndarray, names: Sequence[str]) -> dict[str, dict[str, float]]:
    """OLS with Newey–West (HAC) standard errors (lag ⌊4·(n/100)^(2/9)⌋), rows in time order.

    Parameters
    ----------
    y : np.ndarray
        (n,) response.
    X : np.ndarray
        (n, k) regressors, a constant column included by the caller.
    names : sequence of str
        (k,) names of the columns.

    Returns
    -------
    dict
        name → ``{"coef", "se", "ci_low", "ci_high", "p_value"}`` (two-sided); empty when n ≤ k + 2 or
        the design is singular.
    """
    import statsmodels.api as sm

    y = np.asarray(y, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    ok = np.isfinite(y) & np.all(np.isfinite(X), axis=1)
    y, X = y[ok], X[ok]
    n, k = X.shape
    if n <= k + 2 or np.linalg.matrix_rank(X) < k:
        return {}
    lags = int(math.floor(4 * (n / 100) ** (2 / 9)))
    res = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": lags})
    ci = res.conf_int(0.05)
    return {nm: {"coef": float(res.params[i]), "se": float(res.bse[i]), "ci_low": float(ci[i, 0]),
                 "ci_high": float(ci[i, 1]), "p_value": float(res.pvalues[i])} for i, nm in enumerate(names)}


def block_ci(stat: Callable[[np.ndarray], float], n: int, reps: int, seed: int) -> tuple[float, float, float]:
    """Moving-block bootstrap of a statistic of ``n`` time-ordered rows: (95 % low, high, two-sided p of 0).

    Parameters
    ----------
    stat : callable
        Maps an index array (rows, in resample order) to the statistic (NaN allowed).
    n : int
        Rows.
    reps : int
        Resamples (blocks of ⌈n^(1/3)⌉, :func:`liqlab.stats.resample.block_bootstrap_indices`).
    seed : int

    Returns
    -------
    tuple of float
        (low, high, p) as :func:`boot_summary` gives them for the resampled statistic (NaN when fewer than
        10 finite resamples).
    """
    from liqlab.stats.resample import block_bootstrap_indices

    if n < 5:
        return math.nan, math.nan, math.nan
    return boot_summary(np.array([stat(ix) for ix in block_bootstrap_indices(n, reps, seed=seed)], dtype=np.float64))


def boot_summary(vals: np.ndarray) -> tuple[float, float, float]:
    """(2.5 %, 97.5 % quantile, two-sided p of 0) of bootstrap replicates of a statistic.

    Parameters
    ----------
    vals : np.ndarray
        (R,) replicates (NaN dropped).

    Returns
    -------
    tuple of float
        Percentile interval and p = 2·Φ(−|mean|/sd) of the replicates (the bootstrap standard error's normal
        test: unlike a count of replicates past 0 it has no floor at 2/(R + 1), which a multiple-testing
        correction over many p-values would otherwise turn into a verdict); all NaN with fewer than 10
        finite replicates.
    """
    from scipy.stats import norm

    vals = np.asarray(vals, dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    if len(vals) < 10:
        return math.nan, math.nan, math.nan
    lo, hi = np.quantile(vals, [0.025, 0.975])
    sd, mean = float(np.std(vals, ddof=1)), float(np.mean(vals))
    p = float(2 * norm.sf(abs(mean) / sd)) if sd > 0 else (0.0 if mean != 0 else 1.0)
    return float(lo), float(hi), p


def fire_rank(f: np.ndarray, rate: np.ndarray) -> float:
    """Spearman ρ of a share ``f`` (n,) of the crossed notional (single-venue, or older than an age) and the
    fire rate ``rate`` (n,) (realized USD per USD crossed); negative when steps whose crossed notional is more
    of that kind liquidate less per USD."""
    from liqlab.stats.metrics import spearman

    return float(spearman(f, rate))


def headline(runs: Sequence[Run]) -> Run | None:
    """The run a claim's headline effect comes from: the real run with the most observations, else the
    simulated one with the most (None when no run has an effect)."""
    with_effect = [r for r in runs if r.effect is not None and math.isfinite(r.effect)]
    real = [r for r in with_effect if r.kind == "real"]
    pool = real or with_effect
    return max(pool, key=lambda r: r.n) if pool else None
