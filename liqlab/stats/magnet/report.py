"""The magnet test's result in words and one table: :func:`result_table` (the referee table) and
:func:`conclusion` (what the result supports and what it cannot), both from a ``MagnetResult.summary``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from liqlab._util import jsonable

__all__ = ["conclusion", "result_table"]

_NAN = math.nan


def _g(d, k):
    v = d.get(k) if isinstance(d, Mapping) else None
    return _NAN if v is None else v


def _row(label: str, d: Mapping[str, Any], p0: Any, **extra: Any) -> dict[str, Any]:
    return {"row": label, "n_events": _g(d, "n_events"), "untouched_%": 100 * _g(d, "untouched_share"),
            "p_hat": _g(d, "p_hat"), "p0": p0, "lift": _g(d, "lift"), "ci_low": _g(d, "ci_low"),
            "ci_high": _g(d, "ci_high"), "p_value": _g(d, "p_value"), **extra}


def result_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """The referee table of a magnet-test summary.

    Parameters
    ----------
    summary : Mapping
        ``MagnetResult.summary`` (or its JSON form).

    Returns
    -------
    pd.DataFrame
        Rows = full sample (OI map), placebo map, grid best in-sample, grid frozen out-of-sample; columns =
        events, % untouched, p̂, p0 (analytic / pipeline), lift, 95% CI, p-value, logit Λ0 (HAC SE), SPA
        p-value, BY q-value. Missing entries are NaN.
    """
    s = jsonable(summary)
    p0 = _g(s, "p0")
    lg = s.get("logit", {}) or {}
    first = _row("all data, OI heatmap", s, p0)
    first = {**{k: first[k] for k in ("row", "n_events", "untouched_%", "p_hat", "p0")},
             "p0_pipeline": _g(s.get("pipeline_null", {}), "p0_pipeline"),
             **{k: first[k] for k in ("lift", "ci_low", "ci_high", "p_value")},
             "logit_L0": _g(lg.get("coef", {}) or {}, "const"), "logit_L0_se": _g(lg.get("se", {}) or {}, "const"),
             "spa_p_value": _NAN, "by_q_value": _NAN}
    rows = [first]
    if "placebo" in s:
        rows.append(_row("all data, placebo heatmap", s["placebo"], p0))
    if "grid" in s:
        gr = s["grid"]
        rows.append(_row(f"grid best in-sample ({gr['split']:.0%} of time)", gr.get("chosen_in_sample", {}), p0,
                         spa_p_value=_g(gr, "spa_p_value"), by_q_value=_g(gr, "min_q_value_by")))
        rows.append(_row("frozen choice, out-of-sample", gr.get("out_of_sample", {}), p0))
    return pd.DataFrame(rows).set_index("row")


def _headline(s: Mapping[str, Any], alpha: float) -> str:
    n = s.get("n_events") or 0
    ph, lo, hi, pv = s.get("p_hat"), s.get("ci_low"), s.get("ci_high"), s.get("p_value")
    if n < 30 or pv is None:
        return f"Only {n} decided events: too few for any conclusion about attraction."
    if pv <= alpha and ph > s["p0"]:
        return (f"The dominant cluster was touched before its mirror in {ph:.1%} of {n} events (95% CI "
                f"{lo:.1%}–{hi:.1%}, p = {pv:.3g}): more often than the {s['p0']:.0%} expected if price ignored it.")
    if pv <= alpha:
        return (f"The dominant cluster was touched first in only {ph:.1%} of {n} events (95% CI {lo:.1%}–{hi:.1%}, "
                f"p = {pv:.3g}): price moved away from clusters more often than toward them.")
    return (f"No evidence of attraction: the cluster was touched first in {ph:.1%} of {n} events (95% CI "
            f"{lo:.1%}–{hi:.1%}, p = {pv:.3g}); the data are compatible with no effect and rule out a "
            f"win rate above {hi:.1%} at this setting.")


def _placebo_text(s: Mapping[str, Any], pc: Mapping[str, Any], alpha: float) -> str:
    pv = s.get("p_value")
    found = pv is not None and pv <= alpha
    head = (f"A placebo heatmap with the open-interest information removed gives a lift of {s['placebo_lift']:+.3f}. "
            f"The cluster that open interest adds beyond path geometry (OI map minus the scaled placebo map) "
            f"lies on the other side of price from the placebo's cluster at {pc['n_discordant']} of "
            f"{pc['n_common']} decision times ({pc['discordant_share']:.1%})")
    cp, cl, ch = pc.get("p_value"), pc.get("ci_low"), pc.get("ci_high")
    if cp is None:
        return head + f"; {pc['n_events']} of them decided: too few to tell open interest from path geometry."
    if cp <= alpha and pc["p_hat"] > s["p0"]:
        return head + (f"; there price reached the open-interest side first in {pc['p_hat']:.1%} of "
                       f"{pc['n_events']} (95% CI {cl:.1%}–{ch:.1%}, p = {cp:.3g}): open interest adds to path geometry.")
    if cp <= alpha:
        return head + (f"; there price reached the path-geometry side first more often (open-interest side "
                       f"{pc['p_hat']:.1%} of {pc['n_events']}, 95% CI {cl:.1%}–{ch:.1%}, p = {cp:.3g}).")
    return head + (f"; there the open-interest side won {pc['p_hat']:.1%} of {pc['n_events']} races (95% CI "
                   f"{cl:.1%}–{ch:.1%}, p = {cp:.3g})."
                   + (" The effect is not shown to be specific to open interest." if found else
                      " Open interest does not change the answer."))


def _pipeline_text(s: Mapping[str, Any], pn: Mapping[str, Any]) -> str:
    inside = pn["q025"] <= s["lift"] <= pn["q975"]
    return (f"On {pn['reps']} bootstrapped price paths (no magnet by construction, same OI) the design gives "
            f"lifts from {pn['q025']:+.3f} to {pn['q975']:+.3f} (mean {pn['mean_lift']:+.3f}); the observed "
            f"{s['lift']:+.3f} is {'inside' if inside else 'outside'} that band"
            + (" — the design alone can produce it." if inside else "."))


def _logit_text(lg: Mapping[str, Any], alpha: float) -> str:
    c, se = lg["coef"]["const"], lg["se"]["const"]
    pm = (lg.get("p_value") or {}).get("side_momentum")
    msg = f"With momentum and funding controls the logit intercept is {c:+.2f} (HAC SE {se:.2f})"
    if pm is not None and pm <= alpha:
        msg += "; the momentum term is significant, so part of any raw effect is continuation or reversal of the recent move"
    return msg + "."


def _grid_text(gr: Mapping[str, Any]) -> str:
    oos = gr.get("out_of_sample", {})
    msg = (f"Across {gr['n_configs']} settings, Hansen's SPA p-value is {gr['spa_p_value']:.3f} "
           f"(smallest BY q-value {gr['min_q_value_by']:.3f}).")
    if oos.get("p_hat") is not None and oos.get("p_value") is not None:
        msg += (f" The setting frozen on the first {gr['split']:.0%} of time gives p̂ = {oos['p_hat']:.1%} "
                f"(p = {oos['p_value']:.3g}, {oos['n_events']} events) on the rest.")
    return msg


def conclusion(summary: Mapping[str, Any]) -> str:
    """Plain-language conclusion of a magnet-test summary.

    Parameters
    ----------
    summary : Mapping
        ``MagnetResult.summary`` (or its JSON form).

    Returns
    -------
    str
        Markdown paragraphs: what the result supports and what it cannot (synthetic data labelled).
    """
    s = jsonable(summary)
    alpha = s.get("magnet_params", {}).get("alpha", 0.05)
    out: list[str] = []
    if s.get("synthetic"):
        out.append("**These are SYNTHETIC data**: the result describes how the test behaves on a simulated market, "
                   "not how real markets behave.")
    out.append(_headline(s, alpha))
    pc = s.get("placebo_contrast")
    if pc and pc.get("n_common"):
        out.append(_placebo_text(s, pc, alpha))
    pn = s.get("pipeline_null")
    if pn and pn.get("q025") is not None and s.get("lift") is not None:
        out.append(_pipeline_text(s, pn))
    lg = s.get("logit") or {}
    if lg.get("ok"):
        out.append(_logit_text(lg, alpha))
    if s.get("grid"):
        out.append(_grid_text(s["grid"]))
    out.append("What this cannot support: a causal mechanism (hunting vs cascades vs mean reversion), other symbols, "
               "venues or periods than the one tested, or trading profits (no costs, no execution). The heatmap is "
               "itself an estimate from OI and leverage assumptions; realized liquidations are not used here.")
    return "\n\n".join(out)
