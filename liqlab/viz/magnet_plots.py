"""Bokeh figures for the magnet test's referee report. Functions return Bokeh models, never show().

Plotting only: the numbers come from ``liqlab.stats.magnet`` / ``liqlab.stats.calibrate`` results (computation
modules never import this one). Titles say SYNTHETIC when the data are simulated.
Probabilities are fractions, lifts are p̂ − p0, times in hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "dose_figure",
    "null_histogram",
    "touch_figure",
    "grid_figure",
    "calibration_figure",
    "report_layout",
]

CLUSTER = "#c0392b"
MIRROR = "#2c6fbb"
NEUTRAL = "#555555"


def _title(text: str, synthetic: bool) -> str:
    return f"{text} [SYNTHETIC]" if synthetic else text


def dose_figure(dose: pd.DataFrame, *, p0: float = 0.5, placebo: tuple[float, float] | None = None,
                synthetic: bool = False, by: str = "dominance"):
    """p̂ by quantile bin of dominance with Wilson 95% CIs, the p0 line and the placebo CI band.

    Parameters
    ----------
    dose : pandas.DataFrame
        One row per bin: ``bin``, ``lo``/``hi`` (the bin's range of ``by``), ``n`` (events), ``p_hat``,
        ``ci_low``/``ci_high`` (fractions).
    p0 : float
        The no-magnet probability (dashed line).
    placebo : tuple of float, optional
        The placebo's (low, high) CI of p̂, drawn as a band.
    synthetic : bool
        Mark the title SYNTHETIC.
    by : str
        What the bins are quantiles of.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import BoxAnnotation, ColumnDataSource, HoverTool, Span, Whisker
    from bokeh.plotting import figure

    src = ColumnDataSource({c: dose[c].to_numpy() for c in ("bin", "lo", "hi", "n", "p_hat", "ci_low", "ci_high")})
    p = figure(title=_title(f"P(cluster touched first) by {by} bin", synthetic), height=300, width=560,
               x_axis_label=f"{by} bin (1 = weakest)", y_axis_label="p̂ (95% CI)", y_range=(0, 1),
               tools="pan,box_zoom,reset,save")
    if placebo is not None and all(map(math.isfinite, placebo)):
        p.add_layout(BoxAnnotation(bottom=placebo[0], top=placebo[1], fill_alpha=0.15, fill_color=NEUTRAL))
    p.add_layout(Span(location=p0, dimension="width", line_dash="dashed", line_color=NEUTRAL))
    p.add_layout(Whisker(source=src, base="bin", lower="ci_low", upper="ci_high", line_color=CLUSTER))
    r = p.scatter("bin", "p_hat", source=src, size=8, color=CLUSTER)
    p.add_tools(HoverTool(renderers=[r], tooltips=[("bin", "@bin"), (by, "@lo{0.00}–@hi{0.00}"), ("n", "@n"),
                                                  ("p̂", "@p_hat{0.000}"), ("CI", "@ci_low{0.000}–@ci_high{0.000}")]))
    return p


def null_histogram(null_lifts: np.ndarray, observed: float, *, p0: float = 0.5, synthetic: bool = False,
                   label: str = "pipeline null"):
    """Histogram of null p̂ (p0 + lift) with the observed p̂ marked.

    Parameters
    ----------
    null_lifts : numpy.ndarray
        (n,) lifts (p̂ − p0) on bootstrapped paths; non-finite values are dropped.
    observed : float
        The observed p̂.
    p0 : float
        The no-magnet probability.
    synthetic : bool
        Mark the title SYNTHETIC.
    label : str
        Name of the null in the title.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import Label, Span
    from bokeh.plotting import figure

    v = p0 + np.asarray(null_lifts, float)
    v = v[np.isfinite(v)]
    p = figure(title=_title(f"{label}: p̂ on {len(v)} bootstrapped paths vs observed", synthetic), height=300,
               width=560, x_axis_label="p̂", y_axis_label="paths", tools="pan,box_zoom,reset,save")
    if len(v):
        lo = min(v.min(), observed if math.isfinite(observed) else v.min()) - 0.01
        hi = max(v.max(), observed if math.isfinite(observed) else v.max()) + 0.01
        counts, edges = np.histogram(v, bins=max(5, min(30, len(v) // 2)), range=(lo, hi))
        p.quad(left=edges[:-1], right=edges[1:], bottom=0, top=counts, fill_color=NEUTRAL, fill_alpha=0.5,
               line_color="white")
    if math.isfinite(observed):
        p.add_layout(Span(location=observed, dimension="height", line_color=CLUSTER, line_width=2))
        p.add_layout(Label(x=observed, y=0, text=f" observed {observed:.3f}", text_color=CLUSTER, text_font_size="9pt"))
    p.add_layout(Span(location=p0, dimension="height", line_dash="dashed", line_color=NEUTRAL))
    return p


def touch_figure(curves: Mapping[str, pd.DataFrame], *, horizon_hours: float, synthetic: bool = False):
    """Kaplan–Meier curves: share of events whose cluster (mirror) is not yet touched, vs hours.

    Parameters
    ----------
    curves : mapping of str to pandas.DataFrame
        ``cluster`` and ``mirror`` curves with columns ``time`` (hours after the decision) and ``survival``.
    horizon_hours : float
        End of the x axis (hours).
    synthetic : bool
        Mark the title SYNTHETIC.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.plotting import figure

    p = figure(title=_title("Time to touch: cluster vs mirror (Kaplan–Meier)", synthetic), height=300, width=560,
               x_axis_label="hours after decision", y_axis_label="not yet touched", y_range=(0, 1.02),
               x_range=(0, horizon_hours), tools="pan,box_zoom,reset,save")
    for name, colour in (("cluster", CLUSTER), ("mirror", MIRROR)):
        km = curves.get(name)
        if km is None or len(km) == 0:
            continue
        x = np.r_[km["time"].to_numpy(float), horizon_hours]
        y = np.r_[km["survival"].to_numpy(float), km["survival"].iloc[-1]]
        p.step(x, y, mode="after", color=colour, line_width=2, legend_label=name)
    p.legend.location = "bottom_left"
    return p


def grid_figure(table: pd.DataFrame, x: str, y: str, *, value: str = "lift", synthetic: bool = False,
                fixed: Mapping[str, Any] | None = None):
    """Lift over two grid dimensions.

    Other dimensions are fixed at ``fixed`` or averaged; cells where StepM finds the configuration superior
    are outlined; the text gives the value and the BY q-value.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per configuration: the grid dimensions, ``value``, ``q_value_by``, ``n_events``,
        ``stepm_superior``.
    x, y : str
        The two dimensions shown.
    value : str
        The column coloured (default ``lift``, p̂ − p0).
    synthetic : bool
        Mark the title SYNTHETIC.
    fixed : mapping, optional
        Values of the other dimensions to keep.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.palettes import RdBu11
    from bokeh.plotting import figure

    t = table.copy()
    for k, v in (fixed or {}).items():
        t = t[t[k] == v]
    g = t.groupby([x, y], sort=True).agg(value=(value, "mean"), q=("q_value_by", "min"), n=("n_events", "sum"),
                                         sig=("stepm_superior", "any")).reset_index()
    xs = [str(v) for v in sorted(t[x].unique(), key=_sort_key)]
    ys = [str(v) for v in sorted(t[y].unique(), key=_sort_key)]
    g["xs"], g["ys"] = g[x].astype(str), g[y].astype(str)
    g["label"] = [f"{v:+.3f}\nq={q:.2f}" if math.isfinite(v) and math.isfinite(q) else "n/a"
                  for v, q in zip(g["value"], g["q"])]
    g["line"] = np.where(g["sig"], 3, 0)
    src = ColumnDataSource({c: g[c].to_numpy() for c in ("xs", "ys", "value", "q", "n", "label", "line")})
    lim = float(np.nanmax(np.abs(g["value"]))) if g["value"].notna().any() else 0.1
    lim = lim if lim > 0 else 0.1
    cmap = LinearColorMapper(palette=list(RdBu11), low=-lim, high=lim, nan_color="#eeeeee")  # + red, − blue
    p = figure(title=_title(f"{value} by {x} × {y}; outlined = StepM", synthetic), x_range=xs, y_range=ys,
               height=300, width=560, x_axis_label=x, y_axis_label=y, tools="save")
    p.rect("xs", "ys", 0.95, 0.95, source=src, fill_color={"field": "value", "transform": cmap}, fill_alpha=0.6,
           line_color="black", line_width="line")
    p.text("xs", "ys", text="label", source=src, text_align="center", text_baseline="middle", text_font_size="8pt")
    p.add_tools(HoverTool(tooltips=[(x, "@xs"), (y, "@ys"), (value, "@value{+0.000}"), ("BY q", "@q{0.000}"),
                                    ("events", "@n")]))
    return p


def _sort_key(v):
    try:
        return (0, float(v), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(v))


def calibration_figure(report: Mapping[str, Any]):
    """Rejection rate per setting with Clopper–Pearson CIs, the α line and the [0.02, 0.08] null band.

    Parameters
    ----------
    report : mapping
        A calibration report: ``alpha``, ``runs_per_setting`` and ``settings`` (name → ``rejection_rate``,
        ``ci_low``, ``ci_high``, fractions). Always synthetic.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import BoxAnnotation, ColumnDataSource, Span, Whisker
    from bokeh.plotting import figure

    names = sorted(report["settings"], key=lambda n: (n != "null", n))  # null first (JSON keys come sorted)
    s = report["settings"]
    src = ColumnDataSource({"name": names, "rate": [s[n]["rejection_rate"] for n in names],
                            "lo": [s[n]["ci_low"] for n in names], "hi": [s[n]["ci_high"] for n in names]})
    p = figure(title=_title(f"Calibration: rejection rate at α={report['alpha']} ({report['runs_per_setting']} runs "
                            f"per setting)", True), x_range=names, y_range=(0, 1.02), height=300, width=560,
               y_axis_label="rejection rate (95% CI)", tools="save")
    p.add_layout(BoxAnnotation(bottom=0.02, top=0.08, fill_alpha=0.15, fill_color=NEUTRAL))
    p.add_layout(Span(location=report["alpha"], dimension="width", line_dash="dashed", line_color=NEUTRAL))
    p.add_layout(Span(location=0.8, dimension="width", line_dash="dotted", line_color=CLUSTER))
    p.add_layout(Whisker(source=src, base="name", lower="lo", upper="hi"))
    p.scatter("name", "rate", source=src, size=9, color=CLUSTER)
    return p


def report_layout(result, *, grid_axes: tuple[str, str] | None = None):
    """All report figures of a magnet-test result in one column (what the notebook and HTML show).

    Parameters
    ----------
    result : MagnetResult
        The magnet test's result (summary, dose, touch curves, optional null lifts and grid).
    grid_axes : tuple of str, optional
        The two grid dimensions shown; default the first two chosen ones.

    Returns
    -------
    bokeh.layouts.column
    """
    from bokeh.layouts import column

    s = result.summary
    syn = bool(s.get("synthetic"))
    placebo = None
    if "placebo" in s:
        placebo = (s["placebo"]["ci_low"], s["placebo"]["ci_high"])
    figs = [dose_figure(result.dose, p0=s["p0"], placebo=placebo, synthetic=syn),
            touch_figure(result.touch, horizon_hours=s["magnet_params"]["horizon_hours"], synthetic=syn)]
    if result.null_lifts is not None:
        figs.append(null_histogram(result.null_lifts, s["p_hat"], p0=s["p0"], synthetic=syn))
    if result.grid is not None:
        cols = [c for c in result.grid.table.columns if c in result.grid.summary["chosen"]]
        axes = grid_axes or (tuple(cols[:2]) if len(cols) >= 2 else None)
        if axes:
            figs.append(grid_figure(result.grid.table, *axes, synthetic=syn))
    return column(*figs)
