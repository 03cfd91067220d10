"""The claims audit: every testable statement of the heatmap explainers, with an effect and a verdict.

Eight claims (docs/AUDIT.md): magnet and vacuum zones (:mod:`~liqlab.stats.audit.magnet`), non-linear
cascades (:mod:`~liqlab.stats.audit.cascades`), age of levels (:mod:`~liqlab.stats.audit.age`), single-
versus multi-venue clusters (:mod:`~liqlab.stats.audit.venues`), USD across assets
(:mod:`~liqlab.stats.audit.assets`), silent clusters and margin top-ups (:mod:`~liqlab.stats.audit.topup`),
support and resistance (:mod:`~liqlab.stats.audit.bounce`), vendor refresh cadence
(:mod:`~liqlab.stats.audit.cadence`). :mod:`~liqlab.stats.audit.core` holds the result types and settings,
:mod:`~liqlab.stats.audit.context` the per-step series every claim reads, :mod:`~liqlab.stats.audit.worlds`
the simulated worlds and power, :mod:`~liqlab.stats.audit.registry` the claim list, the Benjamini–Yekutieli
correction and the verdict rule, :mod:`~liqlab.stats.audit.markdown` the report text. Computation only:
numbers and frames, never figures. Units: USD, fractions, log points; times UTC.
"""

from __future__ import annotations

from liqlab.stats.audit.core import (NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED, VERDICTS, AuditSettings, ClaimResult,
                                     Power, Run, load_settings)
from liqlab.stats.audit.registry import CLAIMS, Audit, run_audit

__all__ = ["AuditSettings", "Audit", "ClaimResult", "Power", "Run", "CLAIMS", "VERDICTS", "SUPPORTED",
           "NOT_SUPPORTED", "NOT_TESTABLE", "load_settings", "run_audit"]
