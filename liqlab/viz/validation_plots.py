"""Bokeh figures for validation and fitting (used by notebooks/04_validation.ipynb).

Functions return Bokeh models and never call ``show()``; embed them with ``bokeh.embed`` /
``bokeh.io.output_notebook(resources=INLINE)`` or save with ``bokeh.resources.INLINE``. Synthetic data is
marked in every title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["metric_table", "params_table", "scatter_figure", "sweeps_figure", "validation_layout"]

SIDE_COLOR = {"long": "#1f5fbf", "short": "#c8323c"}  # long liquidations blue, short red


def _tag(synthetic: bool) -> str:
    return " [synthetic data]" if synthetic else ""


def sweeps_figure(series: pd.DataFrame, side: str, *, predictor: str = "heatmap", synthetic: bool = False,
                  width: int = 900, height: int = 260):
    """Realized liquidations (bars, left axis, USD) and the predictor's swept notional (line, right
    axis, USD) per validation step over time (UTC), one side."""
    from bokeh.models import (
        ColumnDataSource,
        HoverTool,
        LinearAxis,
        NumeralTickFormatter,
        Range1d,
    )
    from bokeh.plotting import figure

    if side not in SIDE_COLOR:
        from liqlab.errors import ParameterError

        raise ParameterError(f"side: must be 'long' or 'short', got {side!r}")
    col_r, col_p = f"realized_{side}", f"{predictor}_{side}"
    df = pd.DataFrame({
        "t": pd.to_datetime(series["start"]).dt.tz_convert("UTC").dt.tz_localize(None),
        "realized": series[col_r].to_numpy(float),
        "pred": series[col_p].to_numpy(float) if col_p in series else np.nan,
    }).replace([np.inf, -np.inf], np.nan).fillna(0.0)
    src = ColumnDataSource({c: df[c].to_numpy() for c in df.columns})  # dict: no DataFrame index round trip
    width_ms = float(np.median(np.diff(df["t"].to_numpy()).astype("timedelta64[ms]").astype(float))) if len(df) > 1 else 3.6e6
    rmax = float(df["realized"].max()) or 1.0
    pmax = float(df["pred"].max()) or 1.0
    p = figure(width=width, height=height, x_axis_type="datetime", y_range=Range1d(0, rmax * 1.05),
               title=f"{side} liquidations: realized (bars) vs {predictor} swept notional (line){_tag(synthetic)}",
               tools="xpan,xwheel_zoom,box_zoom,reset,save")
    p.vbar(x="t", top="realized", width=width_ms * 0.9, source=src, color=SIDE_COLOR[side], alpha=0.55,
           legend_label="realized (USD)")
    p.extra_y_ranges = {"pred": Range1d(0, pmax * 1.05)}
    p.add_layout(LinearAxis(y_range_name="pred", axis_label=f"{predictor} swept (USD)",
                            formatter=NumeralTickFormatter(format="$0.0a")), "right")
    p.line(x="t", y="pred", source=src, y_range_name="pred", color="#333333", line_width=1.2,
           legend_label=f"{predictor} swept (USD)")
    p.yaxis[0].axis_label = "realized (USD)"
    p.yaxis[0].formatter = NumeralTickFormatter(format="$0.0a")
    p.legend.location = "top_left"
    p.legend.click_policy = "hide"
    p.add_tools(HoverTool(tooltips=[("step start (UTC)", "@t{%F %H:%M}"), ("realized", "@realized{$0,0}"),
                                    ("swept", "@pred{$0,0}")], formatters={"@t": "datetime"}))
    return p


def scatter_figure(series: pd.DataFrame, side: str, *, predictor: str = "heatmap", synthetic: bool = False,
                   size: int = 330):
    """Rank–rank scatter (percentiles, 0..1) of predictor vs realized for one side."""
    from bokeh.plotting import figure

    from scipy.stats import rankdata

    x = series[f"{predictor}_{side}"].to_numpy(float)
    y = series[f"realized_{side}"].to_numpy(float)
    ok = np.isfinite(x) & np.isfinite(y)
    rx = rankdata(x[ok]) / max(1, ok.sum())
    ry = rankdata(y[ok]) / max(1, ok.sum())
    p = figure(width=size, height=size, title=f"{side}: rank of {predictor} vs realized{_tag(synthetic)}",
               x_axis_label=f"{predictor} percentile", y_axis_label="realized percentile",
               tools="box_zoom,reset,save")
    p.scatter(rx, ry, size=3, alpha=0.35, color=SIDE_COLOR[side])
    return p


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    if isinstance(v, (float, np.floating)):
        return f"{v:.3f}"
    return str(v)


def metric_table(report: Mapping[str, Any], *, width: int = 900):
    """DataTable: rows = heatmap, baselines, side-split rules; columns = metric per side."""
    from bokeh.models import ColumnDataSource, DataTable, TableColumn

    from liqlab.stats.validate import metric_table as flat

    t = flat(report)
    cols = [c for c in t.columns if c != "group"]
    data = {c: [_fmt(v) for v in t[c]] for c in cols}
    return DataTable(source=ColumnDataSource(data), width=width, height=30 + 26 * max(1, len(t)), index_position=None, reorderable=False,
                     columns=[TableColumn(field=c, title=c.replace("top_decile_capture", "top10_capture")) for c in cols])


def params_table(params: Mapping[str, Any], keys: Sequence[str] | None = None, *, width: int = 500):
    """DataTable of parameter name → value (e.g. fitted HeatmapParams.to_dict())."""
    from bokeh.models import ColumnDataSource, DataTable, TableColumn

    keys = list(keys) if keys is not None else list(params)
    vals = []
    for k in keys:
        v = params.get(k)
        if isinstance(v, (list, tuple)):
            v = ", ".join(_fmt(float(x)) if isinstance(x, (int, float)) else str(x) for x in v)
        vals.append(_fmt(v))
    src = ColumnDataSource({"name": keys, "value": vals})
    return DataTable(source=src, width=width, height=30 + 26 * max(1, len(keys)), index_position=None, reorderable=False,
                     columns=[TableColumn(field="name", title="parameter"), TableColumn(field="value", title="value")])


def validation_layout(series: pd.DataFrame, report: Mapping[str, Any], *, predictor: str = "heatmap"):
    """Sweeps over time for both sides, rank scatters, the metric table and the verdict."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    syn = bool(report.get("synthetic"))
    figs = [sweeps_figure(series, s, predictor=predictor, synthetic=syn) for s in ("long", "short")]
    sc = row(*[scatter_figure(series, s, predictor=predictor, synthetic=syn) for s in ("long", "short")])
    verdict = Div(text=f"<b>Beyond the excursion baseline:</b> {report.get('verdict', '')}", width=900)
    return column(*figs, sc, metric_table(report), verdict)
