"""The audit's registry: the eight claims, how each is run, the multiple-testing correction, the verdicts.

:data:`CLAIMS` maps a claim's id to the function that runs it on the audit's :class:`Context` and
returns a :class:`Draft` (runs, power, notes, the claimed direction, why real data cannot carry it if
so). :func:`run_audit` runs them all, applies Benjamini–Yekutieli to every real-data p-value of the
audit at once (claims and their secondary statistics), and judges each claim with one rule:

- no real-data run of the primary statistic → "not testable here" (the draft says why and what data would do);
- a claim the simulator can switch on whose statistic reaches less than the power target there →
  "not testable here" (a real-data negative would mean nothing);
- otherwise "supported" when a primary real run has q < alpha with the effect in the claimed direction,
  else "not supported". Claim 7 states an absence: "not supported" when a run shows clusters bouncing
  significantly more (q < alpha), "supported" when the largest real sample's interval stays below the
  equivalence margin, else inconclusive ("not testable here").
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liqlab.stats.audit import assets, age, bounce, cadence, cascades, magnet, topup, venues
from liqlab.stats.audit.context import Subject, make_subject
from liqlab.stats.audit.core import (NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, AuditSettings, ClaimResult, Power, Run,
                                     headline)
from liqlab.stats.audit.worlds import Worlds, power, seed_summary

__all__ = ["CLAIMS", "Context", "Draft", "Audit", "run_audit", "judge"]


@dataclass(eq=False)
class Context:
    """What every claim reads: the subjects (datasets under audit), the settings, the simulated worlds."""

    subjects: list[Subject]
    settings: AuditSettings
    worlds: Worlds
    tick: Callable[[str], None] = lambda what: None

    def real(self) -> list[Subject]:
        """The real subjects."""
        return [s for s in self.subjects if s.kind == "real"]

    def each(self, fn: Callable[[Subject, AuditSettings], Run], subjects: Sequence[Subject] | None = None,
             label: str = "") -> list[Run]:
        """``fn`` on every subject (default: all), ticking the progress bar."""
        out = []
        for s in (self.subjects if subjects is None else subjects):
            out.append(fn(s, self.settings))
            self.tick(f"{label} {s.name}")
        return out

    def null_worlds(self, fn: Callable[[Subject, AuditSettings], Run], label: str) -> Run:
        """``fn`` on the knob-free simulated worlds of the reporting seeds, as one synthetic Run."""
        runs = [fn(self.worlds.subject(seed), self.settings) for seed in self.settings.report_seeds]
        return seed_summary(runs, f"simulated default world, report seeds ({label})", self.settings)


@dataclass(frozen=True)
class Draft:
    """A claim before the verdict: its runs (``primary`` names the runs the verdict reads), power, notes,
    the claimed direction (+1, −1, or 0 = an absence judged by equivalence) and, when no real data can
    carry it, why not (``untestable``)."""

    runs: tuple[Run, ...]
    primary: tuple[str, ...]
    direction: int
    notes: str
    power: Power | None = None
    untestable: str = ""


def _claim1(ctx: Context) -> Draft:
    runs = ctx.each(magnet.magnet_run, label="claim 1")
    runs += ctx.each(magnet.vacuum_run, ctx.real(), label="claim 1 vacuum")
    pw, on, off = power(magnet.magnet_run, ctx.worlds, "hunt_intensity", +1)
    return Draft(tuple(runs) + (on, off), tuple(r.name for r in runs if r.kind == "real" and "vacuum" not in r.name),
                 +1, "Primary: the mirror race; vacuum zones are a secondary test on the real data's test window "
                     "(few zones: wide intervals).", pw)


def _claim2(ctx: Context) -> Draft:
    runs = ctx.each(cascades.cascade_run, label="claim 2")
    pw, on, off = power(cascades.cascade_run, ctx.worlds, "cascade_impact", +1)
    return Draft(tuple(runs) + (on, off), tuple(r.name for r in runs if r.kind == "real" and r.effect is not None), +1,
                 "'Within seconds' and '$50M → 3 % spike' are not testable here: the finest public realized "
                 "liquidations are hourly sums (trade-by-trade liquidation prints at second resolution would "
                 "carry them). The test is what hourly data can carry: the next step's range after heavy "
                 "liquidation steps, with dose-response by swept cluster size (USD and share of OI) and the "
                 "quiet-hours interaction in each run's extra.", pw,
                 untestable="no real dataset has realized liquidations" if not any(
                     s.steps.has_realized for s in ctx.real()) else "")


def _claim3(ctx: Context) -> Draft:
    runs = ctx.each(age.age_run, label="claim 3") + [ctx.null_worlds(age.age_run, "claim 3")]
    return Draft(tuple(runs), tuple(r.name for r in runs if r.kind == "real" and r.effect is not None), -1,
                 "The simulator has no knob for the claim (its positions close at a holding-time rate); the test "
                 "suite checks the statistic's sign on worlds with 1 h and 400 h median holding times.",
                 untestable="no real dataset has realized liquidations" if not any(
                     s.steps.has_realized for s in ctx.real()) else "")


def _claim4(ctx: Context) -> Draft:
    multi = [s for s in ctx.subjects if len(s.venues) > 1]
    runs = ctx.each(venues.venue_run, multi, label="claim 4") + [ctx.null_worlds(venues.venue_run, "claim 4")]
    real_multi = [s for s in ctx.real() if len(s.venues) > 1 and s.steps.has_realized]
    why = "" if real_multi else (
        "no real multi-venue data with open interest and realized liquidations: the real Binance and Bybit files "
        "overlap on prices only (no OI), and the realized series sums three venues against Binance OI. Per-venue "
        "OI with per-venue liquidations (e.g. each exchange's liquidation stream recorded with `liqlab record`) "
        "would carry it.")
    return Draft(tuple(runs), tuple(r.name for r in runs if r.kind == "real" and r.effect is not None), -1,
                 "Simulated venues differ in arrivals, basis and noise; agreement is the engine's per-cell count.",
                 untestable=why)


def _claim5(ctx: Context) -> Draft:
    runs: list[Run] = []
    for kind in ("real", "synthetic"):
        group = [s for s in ctx.subjects if s.kind == kind]
        if len({s.symbol for s in group}) > 1:
            runs += [assets.asset_run(group, ctx.settings, basis) for basis in assets.BASES]
    eth = {seed: ctx.worlds.subject(seed, asset="ETH") for seed in ctx.settings.report_seeds}   # each world once
    for basis in assets.BASES:  # simulated BTC and ETH markets (the simulator's symbol presets), report seeds
        pairs = [assets.asset_run([ctx.worlds.subject(seed), eth[seed]], ctx.settings, basis)
                 for seed in ctx.settings.report_seeds]
        runs.append(seed_summary(pairs, f"simulated BTC + ETH presets, report seeds (relative by {basis})", ctx.settings))
    ctx.tick("claim 5")
    why = "" if any(r.kind == "real" and r.effect is not None for r in runs) else (
        "needs two assets with open interest: the real BTC and ETH 5m files (Binance, OKX) carry prices and volume "
        "but no open interest, so no heatmap, and the files with open interest are BTC only. ETH open interest at "
        "5m next to the BTC file would carry it.")
    prim = tuple(r.name for r in runs if r.kind == "real" and r.effect is not None and "open_interest" in r.name)
    return Draft(tuple(runs), prim, +1,
                 "Relative view: Heatmap.relative by open interest (primary) and by trailing 7-day volume. In the "
                 "simulator the ETH preset differs from BTC in price, volatility, open interest and volume, and "
                 "forced orders of the same USD move both alike (one impact depth), so a gain there comes from "
                 "the scale of open interest and volatility, not from a different price impact per USD.",
                 untestable=why)


def _claim6(ctx: Context) -> Draft:
    runs = ctx.each(topup.share_run, label="claim 6")

    def twins(sub: Subject, s: AuditSettings) -> Run:
        return topup.paired_topup_run(sub, ctx.worlds.subject(sub.seed), s)

    pw, on, off = power(twins, ctx.worlds, "margin_topup", -1)
    return Draft(tuple(runs) + (on,), (), -1,
                 "Real runs give the share of crossed notional with no realized response; it mixes every reason a "
                 "mapped level prints nothing (map error, closed positions, top-ups). The null rejection of the "
                 "twin test is 0 by construction (identical twins). Margin replenished by funding is not a "
                 "separate knob: the simulator's funding already moves every liquidation price.", pw,
                 untestable="public data cannot attribute silent levels to margin top-ups: that needs account-level "
                            "margin changes (e.g. an on-chain perpetual exchange's public position ledger).")


def _claim7(ctx: Context) -> Draft:
    runs = ctx.each(bounce.bounce_run, label="claim 7") + [ctx.null_worlds(bounce.bounce_run, "claim 7")]
    return Draft(tuple(runs), tuple(r.name for r in runs if r.kind == "real" and r.effect is not None), 0,
                 f"Judged by equivalence: supported when the 95 % interval's upper end is below "
                 f"{ctx.settings.equivalence_margin:g} (settings.equivalence_margin).")


def _claim8(ctx: Context) -> Draft:
    return Draft((), (), 0, cadence.NOTES, untestable=cadence.WHY)


CLAIMS: dict[int, tuple[Any, Callable[[Context], Draft]]] = {
    1: (magnet, _claim1), 2: (cascades, _claim2), 3: (age, _claim3), 4: (venues, _claim4),
    5: (assets, _claim5), 6: (topup, _claim6), 7: (bounce, _claim7), 8: (cadence, _claim8),
}
"""Claim id → (its module: CLAIM, HYPOTHESIS, STATISTIC; the function that runs it)."""


def judge(d: Draft, settings: AuditSettings) -> tuple[str, str]:
    """The verdict of a draft whose runs carry q-values, and the reason in one sentence.

    Parameters
    ----------
    d : Draft
    settings : AuditSettings

    Returns
    -------
    tuple of str
        (verdict, reason).
    """
    prim = [r for r in d.runs if r.name in d.primary and r.kind == "real"]
    if d.untestable or not prim:
        return NOT_TESTABLE, d.untestable or "no real-data run could compute the statistic"
    if d.power is not None and d.power.power < settings.power_target:
        return NOT_TESTABLE, (f"the statistic detects the simulated effect ({d.power.knob}={d.power.value:g}) in only "
                              f"{d.power.power:.0%} of report seeds (< {settings.power_target:.0%})")
    a = settings.alpha
    if d.direction == 0:
        if any(r.q_value is not None and r.q_value < a and (r.effect or 0) > 0 for r in prim):
            return NOT_SUPPORTED, "clusters bounce significantly more than matched levels (BY q < alpha)"
        best = headline(prim)
        if best is not None and best.ci is not None and best.ci[1] < settings.equivalence_margin:
            return SUPPORTED, (f"{best.name} (the largest real sample): the interval's upper end "
                               f"{best.ci[1]:.3g} is below the margin {settings.equivalence_margin:g}, and no run "
                               f"shows a significant bounce excess")
        return NOT_TESTABLE, "inconclusive: the interval is too wide to rule out a bounce excess beyond the margin"
    hit = [r for r in prim if r.q_value is not None and r.q_value < a and np.sign(r.effect or 0) == d.direction]
    if hit:
        return SUPPORTED, f"{hit[0].name}: BY q = {hit[0].q_value:.3g} with the claimed sign"
    return NOT_SUPPORTED, "no real run rejects with the claimed sign after Benjamini–Yekutieli (q ≥ alpha or wrong sign)"


@dataclass(frozen=True)
class Audit:
    """Every claim's result, the settings, the datasets audited, the simulated worlds made, wall seconds."""

    claims: tuple[ClaimResult, ...]
    settings: AuditSettings
    datasets: tuple[str, ...]
    worlds_made: int
    seconds: float
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"claims": [...]}`` plus ``settings``, ``datasets``, ``worlds_made``, ``seconds``."""
        from liqlab._util import jsonable

        return jsonable({"claims": [c.to_dict() for c in self.claims], "settings": self.settings.to_dict(),
                         "datasets": list(self.datasets), "worlds_made": self.worlds_made,
                         "seconds": self.seconds, **self.meta})

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON, atomically; returns the path."""
        import json

        from liqlab.io.atomic import write_text

        write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return Path(path)


def _with_q(drafts: dict[int, Draft]) -> dict[int, Draft]:
    """Benjamini–Yekutieli over every real run's p-value of the audit (all claims at once)."""
    from liqlab.stats.magnet.inference import by_qvalues

    keys = [(i, k) for i, d in drafts.items() for k, r in enumerate(d.runs)
            if r.kind == "real" and r.p_value is not None and math.isfinite(r.p_value)]
    q = by_qvalues([drafts[i].runs[k].p_value for i, k in keys]) if keys else []
    out = {i: list(d.runs) for i, d in drafts.items()}
    for (i, k), qv in zip(keys, q):
        out[i][k] = dataclasses.replace(out[i][k], q_value=float(qv))
    return {i: dataclasses.replace(d, runs=tuple(out[i])) for i, d in drafts.items()}


def run_audit(data: Sequence[Any], settings: AuditSettings | None = None, *, names: Sequence[str] | None = None,
              claims: Sequence[int] | None = None, progress: bool | None = None) -> Audit:
    """Audit the claims on the given datasets and on simulated worlds.

    Parameters
    ----------
    data : sequence
        Datasets, collections or paths (real or synthetic; each is one subject).
    settings : AuditSettings, optional
    names : sequence of str, optional
        Labels of the datasets (default: folder names).
    claims : sequence of int, optional
        Claim ids to run and report (default all eight).
    progress : bool or None
        A progress bar (None: only on a terminal).

    Returns
    -------
    Audit
    """
    from liqlab._util import progress as bar

    s = settings or AuditSettings()
    t0 = time.perf_counter()
    subjects = [make_subject(d, None if names is None else names[i], s.step) for i, d in enumerate(data)]
    wanted = sorted(CLAIMS if claims is None else set(claims))
    with bar(total=None, desc="audit", unit="step", enabled=progress) as pb:
        def tick(what: str) -> None:
            pb.set_postfix_str(what[:40], refresh=False)
            pb.update()

        ctx = Context(subjects, s, Worlds(s, tick), tick)
        drafts = {i: CLAIMS[i][1](ctx) for i in wanted}
    drafts = _with_q(drafts)
    results = []
    for i in wanted:
        mod, d = CLAIMS[i][0], drafts[i]
        verdict, why = judge(d, s)
        h = headline([r for r in d.runs if r.name in d.primary] or list(d.runs))
        results.append(ClaimResult(id=i, claim=mod.CLAIM, hypothesis=mod.HYPOTHESIS, statistic=mod.STATISTIC,
                                   data=d.runs, effect=None if h is None else h.effect,
                                   ci=None if h is None else h.ci, power=d.power, verdict=verdict,
                                   notes=f"{why.rstrip('.')}. {d.notes}".strip()))
    return Audit(claims=tuple(results), settings=s, datasets=tuple(x.name for x in subjects),
                 worlds_made=ctx.worlds.made, seconds=time.perf_counter() - t0,
                 meta={"synthetic_note": "runs of kind 'synthetic' are SIMULATED markets"})
