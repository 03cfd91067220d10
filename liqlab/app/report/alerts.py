"""A report's alert banner: the clusters ``liqlab alert`` would report for each dataset, shown on top.

Settings are the report's ``alerts`` key (YAML ``alerts: {within_pct: 2, min_usd: 1e7}``; ``false``
turns the banner off; defaults :data:`~liqlab.app.alerts.DEFAULT_WITHIN_PCT` % and
:data:`~liqlab.app.alerts.DEFAULT_MIN_USD` USD). The map is built with the engine parameters the
report passes to its notebooks (names of ``HeatmapParams`` and ``params_file``), so the banner and the
heatmap notebook read the same map. A dataset whose map cannot be built gets an error line instead; the
run goes on.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from liqlab._util import one_line
from liqlab.app.alerts import DEFAULT_MIN_USD, DEFAULT_WITHIN_PCT, alert_records
from liqlab.errors import LiqlabError, ParameterError
from liqlab.viz.colour import usd

__all__ = ["DEFAULT_ALERTS", "alert_settings", "dataset_alerts", "alert_cell", "alert_text"]

#: The alert settings of a report that does not say otherwise.
DEFAULT_ALERTS: dict[str, float] = {"within_pct": DEFAULT_WITHIN_PCT, "min_usd": DEFAULT_MIN_USD}

#: Alerts listed in a banner (the run record keeps them all).
_SHOWN = 10


def alert_settings(value: Any, where: str, names: Mapping[str, str] | None = None) -> dict[str, float] | None:
    """The checked ``alerts`` setting of a report.

    Parameters
    ----------
    value : mapping, bool or None
        ``{within_pct, min_usd}`` (either may be left out: its default), True/None = defaults, False = off.
    where : str
        Where the value came from, for messages (``file: reports[name].alerts``).
    names : mapping, optional
        How a key is named in messages (e.g. ``{'min_usd': '--alert-min-usd'}``); default ``where.key``.

    Returns
    -------
    dict or None
        ``{'within_pct': %, 'min_usd': USD}``, or None when the banner is off.

    Raises
    ------
    ParameterError
        An unknown key or a value that is not a number in range, named with ``where``.
    """
    if value is False:
        return None
    if value is None or value is True:
        return dict(DEFAULT_ALERTS)
    if not isinstance(value, Mapping):
        raise ParameterError(f"{where}: expected false or a mapping {{within_pct, min_usd}}, got {value!r}")
    unknown = set(value) - set(DEFAULT_ALERTS)
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(DEFAULT_ALERTS)}")
    out = dict(DEFAULT_ALERTS)
    for k, v in value.items():
        if isinstance(v, str):  # YAML reads 1e7 as text
            try:
                v = float(v)
            except ValueError:
                pass
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok or (k == "within_pct" and v <= 0) or v < 0:
            name = (names or {}).get(k, f"{where}.{k}")
            raise ParameterError(f"{name}: need a finite number {'> 0' if k == 'within_pct' else '>= 0'}, got {v!r}")
        out[k] = float(v)
    return out


def _engine_params(parameters: Mapping) -> Any:
    """HeatmapParams from the report's parameters that name engine fields (and ``params_file``)."""
    from liqlab.engine.params import HeatmapParams

    fields = set(HeatmapParams().to_dict())
    pf = parameters.get("params_file")
    p = HeatmapParams.from_file(pf) if pf else HeatmapParams()
    changes = {k: v for k, v in parameters.items() if k in fields and v is not None}
    return p.replace(**changes) if changes else p


def dataset_alerts(path: Path, settings: Mapping, parameters: Mapping) -> dict:
    """The alerts of one dataset for the run record.

    Parameters
    ----------
    path : pathlib.Path
        Dataset directory or collection folder.
    settings : mapping
        From :func:`alert_settings` (within_pct %, min_usd USD).
    parameters : mapping
        The report's parameters (engine fields among them are used).

    Returns
    -------
    dict
        ``{'within_pct', 'min_usd', 'alerts': [records]}``, or with ``'error'`` (one line) instead of
        ``alerts`` when the map could not be built.
    """
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load_collection

    out: dict[str, Any] = {"within_pct": settings["within_pct"], "min_usd": settings["min_usd"]}
    try:
        hm = build_heatmap(load_collection(path), _engine_params(parameters), progress=False)
        out["alerts"] = alert_records(hm, within_pct=settings["within_pct"], min_usd=settings["min_usd"])
    except (LiqlabError, ValueError, OSError) as exc:
        out["error"] = one_line(exc)
    return out


def alert_text(info: Mapping) -> str:
    """One line summarising a dataset's alerts (for the index page and the console).

    Parameters
    ----------
    info : mapping
        From :func:`dataset_alerts`.

    Returns
    -------
    str
        ``'2 alerts (>= $10.00M within 2 %): long 56,059 $60.47M (-2.51 %); ...'``, ``'no alert ...'`` or the error.
    """
    rule = f"(>= {usd(info['min_usd'])} within {info['within_pct']:g} %)"
    if "error" in info:
        return f"alerts not computed: {info['error']}"
    recs = info.get("alerts") or []
    if not recs:
        return f"no alert {rule}"
    parts = [f"{r['side']} {r['price']:,.0f} {usd(r['notional_usd'])} ({r['distance_pct']:+.2f} %)" for r in recs[:3]]
    more = f"; +{len(recs) - 3} more" if len(recs) > 3 else ""
    return f"{len(recs)} alert{'s' if len(recs) != 1 else ''} {rule}: " + "; ".join(parts) + more


def alert_cell(label: str, info: Mapping):
    """A markdown cell for the top of a notebook: the dataset's alerts as a banner with a table.

    Parameters
    ----------
    label : str
        The dataset's name.
    info : mapping
        From :func:`dataset_alerts`.

    Returns
    -------
    nbformat.NotebookNode
        A markdown cell tagged ``liqlab-alert-banner``.
    """
    import nbformat

    recs = info.get("alerts") or []
    colour = ("#b00", "#fee") if recs else ("#555", "#f5f5f5")
    rows = "".join(
        f"<tr><td>{html.escape(str(r['side']))}</td><td>{r['price']:,.2f}</td><td>{r['distance_pct']:+.2f}</td>"
        f"<td>{usd(r['notional_usd'])}</td><td>{(r['age_hours'] or 0):.1f}</td><td>{r['venues']}</td></tr>"
        for r in recs[:_SHOWN])
    table = ("<table><tr><th>side</th><th>price (USD)</th><th>distance %</th><th>notional</th><th>age h</th>"
             f"<th>venues</th></tr>{rows}</table>") if rows else ""
    syn = " <b>(SYNTHETIC data)</b>" if any(r.get("synthetic") for r in recs) else ""
    text = (f'<div class="liqlab-alerts" style="border:2px solid {colour[0]};background:{colour[1]};padding:8px 12px">'
            f"<b>&#9888; ALERTS {html.escape(label)}</b>{syn}: {html.escape(alert_text(info))}{table}</div>")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["liqlab-alert-banner"]
    return cell
