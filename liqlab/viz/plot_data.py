"""Bokeh figures for a first look at a dataset: price, open interest, funding, realized liquidations.

Functions return Bokeh models; they never call ``show()``. Titles say SYNTHETIC when the data is.
"""

from __future__ import annotations

import pandas as pd

from liqlab.io.coverage import oi_usd, resample_ohlcv
from liqlab.io.dataset import Collection, Dataset

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
LONG_COLOR, SHORT_COLOR = "#2166ac", "#b2182b"


def _naive(ts):
    """UTC timestamps without a time zone: what Bokeh's datetime axes expect (avoids its tz warning)."""
    ts = pd.DatetimeIndex(ts)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def _datasets(data) -> tuple[Dataset, ...]:
    return data.datasets if isinstance(data, Collection) else (data,)


def title_for(data, what: str) -> str:
    ds = _datasets(data)
    venues = ", ".join(d.venue for d in ds)
    tag = "SYNTHETIC · " if any(d.synthetic for d in ds) else ""
    return f"{tag}{what} — {ds[0].symbol} on {venues}"


def market_figure(data: Dataset | Collection, rule: str = "15min", width: int = 900):
    """Three linked panels (time on x, UTC): close price per venue (USD), open interest (USD), funding rate.

    Parameters
    ----------
    data : Dataset or Collection
        The data shown.
    rule : str
        Resampling step of the bars and OI (pandas offset alias).
    width : int
        Width (px).

    Returns
    -------
    bokeh.layouts.column
    """
    from bokeh.layouts import column
    from bokeh.models import HoverTool, NumeralTickFormatter
    from bokeh.plotting import figure

    ds = _datasets(data)
    p1 = figure(title=title_for(data, "Price"), x_axis_type="datetime", height=260, width=width,
                tools="xpan,xwheel_zoom,box_zoom,reset,save")
    p2 = figure(title="Open interest (USD)", x_axis_type="datetime", height=200, width=width, x_range=p1.x_range,
                tools="xpan,xwheel_zoom,box_zoom,reset,save")
    p3 = figure(title="Funding rate (per interval)", x_axis_type="datetime", height=180, width=width,
                x_range=p1.x_range, tools="xpan,xwheel_zoom,box_zoom,reset,save")
    for i, d in enumerate(ds):
        c = PALETTE[i % len(PALETTE)]
        bars = resample_ohlcv(d.ohlcv, rule)
        p1.line(_naive(bars["ts"]), bars["close"], color=c, legend_label=d.venue)
        oi = oi_usd(d).resample(rule).last().dropna()
        p2.line(_naive(oi.index), oi.to_numpy(), color=c, legend_label=d.venue)
        if len(d.funding):
            p3.scatter(_naive(d.funding["ts"]), d.funding["funding_rate"], color=c, size=4, legend_label=d.venue)
            p3.step(_naive(d.funding["ts"]), d.funding["funding_rate"], color=c, mode="after", alpha=0.5)
    p2.yaxis.formatter = NumeralTickFormatter(format="$0.0a")
    p3.yaxis.formatter = NumeralTickFormatter(format="0.000%")
    for p in (p1, p2, p3):
        p.legend.location = "top_left"
        p.legend.click_policy = "hide"
        p.add_tools(HoverTool(tooltips=[("time", "@x{%F %H:%M}"), ("value", "@y{0,0.0000}")],
                              formatters={"@x": "datetime"}, mode="vline"))
    return column(p1, p2, p3)


def liquidations_figure(data: Dataset | Collection, rule: str = "1h", width: int = 900):
    """Realized liquidations per step in USD: longs below zero (blue), shorts above (red), all venues.

    Parameters
    ----------
    data, rule, width
        As :func:`market_figure` (``rule``: the step the events are summed over).

    Returns
    -------
    bokeh.plotting.figure
        Says so in its title when the data has no liquidations.
    """
    from bokeh.models import NumeralTickFormatter
    from bokeh.plotting import figure

    frames = []
    for d in _datasets(data):
        if d.liquidations is not None and len(d.liquidations):
            frames.append(d.liquidations.assign(venue=d.venue))
    p = figure(title=title_for(data, f"Realized liquidations per {rule} (USD)"), x_axis_type="datetime",
               height=260, width=width, tools="xpan,xwheel_zoom,box_zoom,reset,save")
    p.yaxis.formatter = NumeralTickFormatter(format="$0.0a")
    if not frames:
        p.title.text += " — none in this dataset"
        return p
    liq = pd.concat(frames)
    step = pd.Timedelta(rule)
    sums = liq.groupby([liq["ts"].dt.floor(rule), "side"])["value"].sum().unstack(fill_value=0.0)
    width_ms = step.total_seconds() * 1000 * 0.9
    if "long" in sums:
        p.vbar(x=_naive(sums.index), top=-sums["long"].to_numpy(), width=width_ms, color=LONG_COLOR, legend_label="longs liquidated")
    if "short" in sums:
        p.vbar(x=_naive(sums.index), top=sums["short"].to_numpy(), width=width_ms, color=SHORT_COLOR, legend_label="shorts liquidated")
    p.legend.location = "top_left"
    return p


def coverage_figure(cov: pd.DataFrame, width: int = 900):
    """Horizontal bars of each table's time span per venue (gaps counted in the hover).

    Parameters
    ----------
    cov : pandas.DataFrame
        Coverage rows (:func:`liqlab.io.coverage.coverage`): ``venue``, ``table``, ``start``, ``end`` (UTC),
        ``rows``, ``gaps``.
    width : int
        Width (px).

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    cov = cov.dropna(subset=["start", "end"]).copy()
    cov["label"] = cov["venue"] + " · " + cov["table"]
    cov["gaps"] = cov["gaps"].fillna(0).astype(int) if "gaps" in cov else 0
    src = ColumnDataSource(dict(label=cov["label"].tolist(), start=cov["start"].dt.tz_localize(None),
                                end=cov["end"].dt.tz_localize(None), rows=cov["rows"].tolist(),
                                gaps=cov["gaps"].tolist()))
    p = figure(y_range=list(reversed(cov["label"].tolist())), x_axis_type="datetime", height=40 + 22 * len(cov),
               width=width, title="Coverage per table", tools="xpan,xwheel_zoom,reset,save")
    p.hbar(y="label", left="start", right="end", height=0.6, source=src, color="#4a7ab5")
    p.add_tools(HoverTool(tooltips=[("table", "@label"), ("rows", "@rows"), ("gaps", "@gaps")]))
    return p


def ledger_figure(summary: pd.DataFrame, title: str, width: int = 450):
    """Bar chart of a small summary table.

    Parameters
    ----------
    summary : pandas.DataFrame
        Index = category, first column = the value.
    title : str
        Figure title.
    width : int
        Width (px).

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.plotting import figure

    cats = [str(c) for c in summary.index]
    p = figure(x_range=cats, height=260, width=width, title=title, tools="save")
    p.vbar(x=cats, top=summary.iloc[:, 0].to_numpy(dtype=float), width=0.8, color="#4a7ab5")
    p.xaxis.major_label_orientation = 0.8
    return p
