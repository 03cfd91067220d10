"""Claim 5: the same USD notional weighs differently across assets ($20M in BTC is not $20M in SOL).

If a USD of liquidation levels meant the same everywhere, the absolute heatmap would rank the next move
across assets as well as a view scaled to each market's size. Statistic, on two assets' test windows
pooled: the Spearman correlation of the swept notional of a step with the next step's log range, read from
the relative heatmap (``Heatmap.relative``: notional / the venue's open interest at the snapshot, or / its
trailing 7-day traded volume) minus the same from the absolute map. Positive: scaling by the market's size ranks moves across assets better, so
the same USD weighs differently. Within one asset the two views rank almost alike; the pooling is the test.
"""

from __future__ import annotations

import math

import numpy as np

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Run, boot_summary

__all__ = ["CLAIM", "HYPOTHESIS", "STATISTIC", "RELATIVE_WINDOW", "BASES", "asset_series", "asset_run", "pooled_gain"]

CLAIM = "The same USD notional weighs differently across assets: $20M in BTC is not $20M in SOL."
HYPOTHESIS = ("H1: pooled over two assets, the relative view (swept notional / open interest, or / trailing traded "
              "volume) ranks the next step's range better than the absolute view in USD (Spearman difference > 0).")
STATISTIC = ("ρ_pooled(relative swept_j, log range_j+1) − ρ_pooled(USD swept_j, log range_j+1) over both assets' "
             "test windows, moving-block bootstrap 95 % CI (each asset resampled on its own); open-interest basis "
             "primary, volume basis alongside")

RELATIVE_WINDOW = "7D"  # the relative view's trailing volume window


BASES = ("open_interest", "volume")  # what the relative view divides by (Heatmap.relative's basis)


def asset_series(sub: Subject, basis: str = "open_interest") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(USD swept, relative swept, next-step log range) on the subject's test steps, (n,) each.

    Parameters
    ----------
    sub : Subject
    basis : {'open_interest', 'volume'}
        The relative view's divisor.

    Returns
    -------
    tuple of np.ndarray
        Empty arrays when the data lacks the divisor (no traded volume for the volume basis).
    """
    from liqlab.stats.steps import heatmap_swept

    st = sub.steps
    if basis == "volume" and not np.nansum(st.volume_usd) > 0:
        return np.array([]), np.array([]), np.array([])
    rl, rs = heatmap_swept(sub.heatmap.relative(RELATIVE_WINDOW, basis=basis), sub.data)
    rel = rl + rs
    rng = np.where(st.range_log > 0, st.range_log, np.nan)
    j = np.flatnonzero(st.test[:-1] & st.valid[1:])
    y = np.log(rng[j + 1])
    ok = np.isfinite(y) & np.isfinite(rel[j]) & np.isfinite(st.swept[j])
    return st.swept[j][ok], rel[j][ok], y[ok]


def pooled_gain(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
    """ρ(relative, y) − ρ(USD, y) over the assets' rows pooled (Spearman).

    Parameters
    ----------
    parts : list of tuple
        Per asset (USD swept, relative swept, next-step log range), (n_a,) each.

    Returns
    -------
    float
    """
    from liqlab.stats.metrics import spearman

    a = np.concatenate([p[0] for p in parts])
    r = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    return float(spearman(r, y) - spearman(a, y))


def asset_run(subs: list[Subject], settings: AuditSettings, basis: str = "open_interest") -> Run:
    """The pooled relative-vs-absolute statistic over subjects of two or more symbols.

    Parameters
    ----------
    subs : list of Subject
        Subjects of at least two symbols (the first of each symbol is used).
    settings : AuditSettings
    basis : {'open_interest', 'volume'}
        The relative view's divisor.

    Returns
    -------
    Run
        ``effect`` the Spearman gain of the relative view; ``extra`` each asset's own two correlations.
    """
    from liqlab.stats.metrics import spearman
    from liqlab.stats.resample import block_bootstrap_indices

    by_symbol: dict[str, Subject] = {}
    for s in subs:
        by_symbol.setdefault(s.symbol, s)
    name = " + ".join(f"{s.name} [{sym}]" for sym, s in by_symbol.items()) + f" (relative by {basis})"
    kind = "real" if all(s.kind == "real" for s in by_symbol.values()) else "synthetic"
    if len(by_symbol) < 2:
        return Run(name=name, kind=kind, effect=None, note="one asset only")
    parts = [asset_series(s, basis) for s in by_symbol.values()]
    if any(len(p[0]) < 20 for p in parts):
        return Run(name=name, kind=kind, effect=None, note=f"an asset without {basis} or with < 20 test steps")
    idx = [block_bootstrap_indices(len(p[0]), settings.bootstrap_reps, seed=settings.seed + i) for i, p in enumerate(parts)]
    boot = np.array([pooled_gain([tuple(x[ix[r]] for x in p) for p, ix in zip(parts, idx)])
                     for r in range(settings.bootstrap_reps)])
    lo, hi, p = boot_summary(boot)
    extra = {sym: {"spearman_usd": spearman(pa[0], pa[2]), "spearman_relative": spearman(pa[1], pa[2]), "steps": len(pa[0])}
             for sym, pa in zip(by_symbol, parts)}
    return Run(name=name, kind=kind, effect=pooled_gain(parts), ci=(float(lo), float(hi)) if math.isfinite(lo) else None,
               p_value=float(p), n=int(sum(len(pa[0]) for pa in parts)), window="test: last 40 % of each asset's steps",
               extra={"per_asset": extra, "relative_basis": basis})
