"""Simulated worlds for the audit: a claim switched on by a simulator knob, the power of its statistic.

A claim the simulator can switch on (the cluster hunter ``hunt_intensity``, forced-order impact
``cascade_impact``, margin top-ups ``margin_topup``) must be detectable there before its real-data verdict
counts. :func:`power` picks the knob's strength on the choosing seeds (the weakest strength of the ladder
whose rejection rate reaches the target) and reports the rejection rate at that strength, and with the
knob at 0, on the reporting seeds, which the choice never saw. All worlds are SYNTHETIC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqlab.stats.audit.context import Subject
from liqlab.stats.audit.core import AuditSettings, Power, Run

__all__ = ["Worlds", "Statistic", "power", "rejects", "seed_summary"]

Statistic = Callable[[Subject, AuditSettings], Run]
"""A claim's statistic on one subject: a :class:`Run` with ``effect`` and ``p_value``."""


@dataclass(eq=False)
class Worlds:
    """Simulated markets of an audit, made on demand: the knob-free (null) worlds are kept for reuse,
    switched-on worlds are dropped once their statistic is computed. ``progress`` is ticked per world."""

    settings: AuditSettings
    tick: Callable[[str], None] | None = None
    _null: dict[int, Subject] = field(default_factory=dict)
    made: int = 0

    def subject(self, seed: int, knobs: Mapping[str, float] | None = None, **extra: Any) -> Subject:
        """The simulated world of ``seed`` with ``knobs`` (config fields) set, as a synthetic Subject.

        Parameters
        ----------
        seed : int
            The simulator's seed.
        knobs : mapping, optional
            :class:`liqlab.sim.config.SimulationConfig` fields, e.g. ``{"cascade_impact": 2.0}``.
        **extra
            More config fields (not part of the null cache: with any, the world is never kept).

        Returns
        -------
        Subject
        """
        from liqlab.sim.simulation import simulate_market

        knobs = {k: v for k, v in dict(knobs or {}).items() if v}
        if not knobs and not extra and seed in self._null:
            return self._null[seed]
        s = self.settings
        m = simulate_market(days=s.sim_days, warmup_days=s.sim_warmup_days, venues=s.sim_venues, seed=seed,
                            **knobs, **extra)
        label = ", ".join([f"{k}={v:g}" for k, v in knobs.items()] + [f"{k}={v}" for k, v in extra.items()]) or "null"
        sub = Subject(name=f"simulated seed {seed} ({label})", kind="synthetic", data=m.collection, step=s.step,
                      seed=seed)
        self.made += 1
        if self.tick is not None:
            self.tick(sub.name)
        if not knobs and not extra:
            self._null[seed] = sub
        return sub


def rejects(run: Run, direction: int, alpha: float) -> bool:
    """Whether a run rejects the null at ``alpha`` with its effect in the claimed ``direction`` (+1/−1)."""
    return (run.p_value is not None and math.isfinite(run.p_value) and run.p_value < alpha
            and run.effect is not None and np.sign(run.effect) == direction)


def _rate(stat: Statistic, worlds: Worlds, seeds, knob: str, value: float, direction: int) -> tuple[float, list[Run]]:
    runs = [stat(worlds.subject(seed, {knob: value}), worlds.settings) for seed in seeds]
    return float(np.mean([rejects(r, direction, worlds.settings.alpha) for r in runs])), runs


def power(stat: Statistic, worlds: Worlds, knob: str, direction: int) -> tuple[Power, Run, Run]:
    """Choose the knob's strength on the choosing seeds; power and null rejection on the reporting seeds.

    Parameters
    ----------
    stat : Statistic
        The claim's statistic.
    worlds : Worlds
    knob : str
        The config field that switches the claim on (its ladder: ``settings.ladders[knob]``).
    direction : int
        +1 if the claim predicts a positive effect, −1 a negative one.

    Returns
    -------
    tuple
        (:class:`Power`, the reporting seeds at the chosen strength as one synthetic :class:`Run`, the same
        with the knob at 0).
    """
    from liqlab.stats.magnet.inference import _wilson

    s = worlds.settings
    ladder = tuple(s.ladders[knob])
    rates = []
    chosen = ladder[-1]
    for v in ladder:
        r, _ = _rate(stat, worlds, s.choose_seeds, knob, v, direction)
        rates.append(r)
        if r >= s.power_target:
            chosen = v
            break
    pw, on_runs = _rate(stat, worlds, s.report_seeds, knob, chosen, direction)
    nr, off_runs = _rate(stat, worlds, s.report_seeds, knob, 0.0, direction)
    n = len(s.report_seeds)
    p = Power(knob=knob, value=float(chosen), ladder=ladder, choose_seeds=tuple(s.choose_seeds),
              report_seeds=tuple(s.report_seeds), choose_rates=tuple(rates), power=pw,
              power_ci=_wilson(pw * n, n), null_rejection=nr, days=s.sim_days, alpha=s.alpha)
    return (p, seed_summary(on_runs, f"simulated, {knob}={chosen:g}, report seeds", s),
            seed_summary(off_runs, f"simulated null ({knob}=0), report seeds", s))


def seed_summary(runs: list[Run], name: str, settings: AuditSettings) -> Run:
    """Several seeds' runs of one statistic as one synthetic Run: mean effect, t-interval across seeds,
    the share of seeds that reject (in ``extra``) and the per-seed effects.

    Parameters
    ----------
    runs : list of Run
    name : str
    settings : AuditSettings

    Returns
    -------
    Run
        ``p_value``: a one-sample t-test of the seeds' effects against 0 (NaN with fewer than 2).
    """
    from scipy import stats as st

    eff = np.array([r.effect if r.effect is not None else np.nan for r in runs], dtype=float)
    eff = eff[np.isfinite(eff)]
    mean = float(eff.mean()) if len(eff) else math.nan
    ci, p = None, math.nan
    if len(eff) >= 2 and eff.std(ddof=1) > 0:
        se = eff.std(ddof=1) / math.sqrt(len(eff))
        t = st.t.ppf(0.975, len(eff) - 1)
        ci = (mean - t * se, mean + t * se)
        p = float(2 * st.t.sf(abs(mean / se), len(eff) - 1))
    rej = [bool(r.p_value is not None and math.isfinite(r.p_value) and r.p_value < settings.alpha) for r in runs]
    return Run(name=name, kind="synthetic", effect=mean, ci=ci, p_value=p, n=int(sum(r.n for r in runs)),
               window=runs[0].window if runs else "all",
               extra={"seeds": len(runs), "per_seed_effect": [r.effect for r in runs],
                      "share_rejecting": float(np.mean(rej)) if rej else math.nan},
               note="SYNTHETIC")
