"""The audit's report as Markdown: docs/AUDIT.md and the README's findings rows, from the audit's JSON.

:func:`audit_markdown` renders a whole report from the dict :meth:`liqlab.stats.audit.Audit.to_dict` gives
(or the JSON file ``liqlab audit --json`` wrote), with each claim's method taken from its module's
docstring, so the text and the code have one home. :func:`findings_table` gives the short table.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["audit_markdown", "findings_table", "fmt"]


def fmt(x: Any, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant figures, '-' for None/NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}g}"
    return str(x)


def _ci(ci) -> str:
    return "-" if not ci or ci[0] is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _power(pw: Mapping[str, Any] | None) -> str:
    if not pw:
        return "-"
    return (f"{fmt(pw['power'], 2)} at {pw['knob']}={fmt(pw['value'])} (null {fmt(pw['null_rejection'], 2)}; "
            f"{len(pw['report_seeds'])} report seeds)")


def _data_cell(c: Mapping[str, Any]) -> str:
    runs = [r for r in c["data"] if r.get("effect") is not None]
    real = sorted({r["name"].split(" (")[0] for r in runs if r["kind"] == "real"})
    syn = sorted({r["name"].split(" (")[0].split(",")[0] for r in runs if r["kind"] != "real"})
    parts = real + ([f"synthetic: {', '.join(syn)}"] if syn else [])
    return "; ".join(parts) if parts else "-"


def findings_table(audit: Mapping[str, Any]) -> str:
    """The short table (claim, verdict, effect with CI, data) of an audit dict, as Markdown.

    Parameters
    ----------
    audit : mapping
        :meth:`liqlab.stats.audit.Audit.to_dict`.

    Returns
    -------
    str
    """
    lines = ["| # | claim | verdict | effect [95 % CI] | power (simulator) | data |", "|---|---|---|---|---|---|"]
    for c in audit["claims"]:
        short = c["claim"].split(":")[0].split(";")[0].rstrip(".")
        lines.append(f"| {c['id']} | {short} | **{c['verdict']}** | {fmt(c['effect'])} {_ci(c['ci'])} | "
                     f"{_power(c['power'])} | {_data_cell(c)} |")
    return "\n".join(lines) + "\n"


def _runs_table(runs: list[Mapping[str, Any]]) -> str:
    if not runs:
        return "No run.\n"
    lines = ["| data | kind | effect | 95 % CI | p | BY q | n | window |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['kind']} | {fmt(r['effect'])} | {_ci(r['ci'])} | {fmt(r['p_value'])} | "
                     f"{fmt(r['q_value'])} | {r['n']} | {r['window']} |")
    return "\n".join(lines) + "\n"


def _method(cid: int) -> str:
    from liqlab.stats.audit.registry import CLAIMS

    doc = inspect.getdoc(CLAIMS[cid][0]) or ""
    return doc.split("\n\n", 1)[1].strip() if "\n\n" in doc else ""


def _claim_section(c: Mapping[str, Any]) -> str:
    pw = c["power"]
    out = [f"## Claim {c['id']}: {c['verdict']}", "", f"> {c['claim']}", "", _method(c["id"]), "",
           f"- **Hypothesis.** {c['hypothesis']}", f"- **Statistic.** {c['statistic']}",
           f"- **Effect (headline run).** {fmt(c['effect'])} {_ci(c['ci'])}",
           f"- **Power.** {_power(pw)}" + (
               f"; strength chosen on seeds {pw['choose_seeds']} (rejection rates {[fmt(x, 2) for x in pw['choose_rates']]}"
               f" along the ladder {pw['ladder']}), power reported on seeds {pw['report_seeds']}, "
               f"{fmt(pw['days'])} simulated days each" if pw else ""),
           f"- **Verdict.** {c['verdict']}: {c['notes']}", "", _runs_table(c["data"])]
    extras = [f"- {r['name']}: " + ", ".join(f"{k} = {_extra(v)}" for k, v in r["extra"].items())
              for r in c["data"] if r.get("extra")]
    if extras:
        out += ["Details per run:", "", *extras, ""]
    return "\n".join(out)


def _extra(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_extra(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_extra(x) for x in v) + "]"
    return fmt(v)


def _shown(path: str) -> str:
    """A command-line input as the report shows it: the real-data folder as ``$LIQLAB_REAL_DATA``."""
    import os

    real = os.environ.get("LIQLAB_REAL_DATA")
    p = str(path).rstrip("/")
    return "$LIQLAB_REAL_DATA" if (real and p == real.rstrip("/")) or p.endswith("shared/data/real") else p


def audit_markdown(audit: Mapping[str, Any]) -> str:
    """A full report (docs/AUDIT.md) from an audit dict.

    Parameters
    ----------
    audit : mapping
        :meth:`liqlab.stats.audit.Audit.to_dict` (or the JSON ``liqlab audit`` wrote).

    Returns
    -------
    str
        Markdown.
    """
    s = audit["settings"]
    inputs = " ".join(_shown(x) for x in (audit.get("inputs") or audit["datasets"]))
    head = [
        "# Claims audit", "",
        "<!-- generated by `liqlab audit ... --markdown`; edit the code, not this file -->", "",
        "What the explainers of liquidation heatmaps tell traders, claim by claim: the hypothesis tested, the "
        "statistic, the data it ran on, the effect with its 95 % interval, the power where the simulator can "
        "switch the claim on, and a verdict (supported, not supported, not testable here). Runs marked "
        "*synthetic* are SIMULATED markets.", "",
        f"Generated with `liqlab audit {inputs} --json OUT --markdown docs/AUDIT.md` in {fmt(audit['seconds'])} s "
        f"({audit['worlds_made']} simulated worlds).", "",
        "**How choices were kept away from the reported figures.** Every threshold on a real dataset (quantiles, "
        "terciles, quiet hours, dense-zone cut-offs) is taken from its first 60 % of steps and the effect is "
        "measured on the last 40 %; the magnet and bounce statistics use the magnet test's documented defaults "
        "and choose nothing. A simulator knob's strength is chosen on seeds "
        f"{list(s['choose_seeds'])} and power is reported on seeds {list(s['report_seeds'])} "
        f"({fmt(s['sim_days'])} days, venues {', '.join(s['sim_venues'])}). Benjamini–Yekutieli runs over every "
        f"real-data p-value of the audit at once (FDR {fmt(s['alpha'])}); a switchable claim counts only if its "
        f"power reaches {fmt(s['power_target'])}. Power is the rejection rate at α = {fmt(s['alpha'])} on the "
        "simulated worlds, before the correction (a lower bound on the seeds the corrected test needs).", "",
        "## Summary", "", findings_table(audit),
    ]
    if audit.get("skipped"):
        head += ["Inputs skipped: " + "; ".join(audit["skipped"]), ""]
    return "\n".join(head + [_claim_section(c) for c in audit["claims"]])
