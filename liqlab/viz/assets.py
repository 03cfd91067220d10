"""Several assets on one scale: each asset's liquidation profile relative to its market, and their largest clusters.

:func:`assets_figure` draws, per asset, the latest snapshot's profile with price as distance from the
reference close (%) and notional as a fraction of the market (basis points of trailing traded volume or
of open interest, :meth:`~liqlab.engine.heatmap.Heatmap.relative`), all panels on the same axes, so a
$20M cluster in ETH and one in BTC can be compared. :func:`assets_table` is the Bokeh table of
:func:`~liqlab.engine.levels.compare_assets` (USD and relative units). Functions return Bokeh models and
never call ``show()``; nothing here computes what the engine computes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from liqlab.viz.plot_data import LONG_COLOR, SHORT_COLOR

__all__ = ["assets_figure", "assets_table", "assets_view"]


def _basis_label(basis: str, window: str) -> str:
    """A short axis/column label of the relative basis ('OI', '7D volume')."""
    return "OI" if basis == "open_interest" else f"{window} volume"


def _profile(hm, rel) -> dict[str, np.ndarray]:
    """The latest snapshot of ``rel`` (relative map) against distance from ``hm``'s reference close (%)."""
    from liqlab.engine.levels import distance_pct

    j = hm.index_at(None)
    d = distance_pct(hm.prices, float(hm.close[j]))
    edges = distance_pct(hm.edges, float(hm.close[j]))
    with np.errstate(invalid="ignore"):
        long = np.nan_to_num(np.asarray(rel.long[j], dtype=np.float64)) * 1e4
        short = np.nan_to_num(np.asarray(rel.short[j], dtype=np.float64)) * 1e4
    return {"distance": d, "width": np.diff(edges) * 0.9, "long": long, "short": short,
            "long_usd": np.asarray(hm.long[j], dtype=np.float64), "short_usd": np.asarray(hm.short[j], dtype=np.float64)}


def assets_figure(maps: Mapping, *, basis: str = "volume", window: str = "7D", span_pct: float = 10.0,
                  width: int = 900, height: int = 220):
    """One panel per asset, shared axes: latest-snapshot liquidation levels relative to each asset's market.

    Parameters
    ----------
    maps : mapping of str to Heatmap
        Asset label → USD map (T × B).
    basis, window
        The relative scale (:meth:`~liqlab.engine.heatmap.Heatmap.relative`).
    span_pct : float
        Distance from price shown on each side (%).
    width, height : int
        Size of each panel (px).

    Returns
    -------
    bokeh.layouts.column
        The panels (x: distance from the reference close, %; y: basis points of the basis per price bin;
        longs blue below price, shorts red above); titles say SYNTHETIC when an asset's data is.
    """
    from bokeh.layouts import column
    from bokeh.models import ColumnDataSource, HoverTool, Range1d
    from bokeh.plotting import figure

    x_range = Range1d(-span_pct, span_pct)
    panels, y_max = [], 0.0
    for label, hm in maps.items():
        rel = hm.relative(window, basis=basis)
        data = _profile(hm, rel)
        near = np.abs(data["distance"]) <= span_pct
        y_max = max(y_max, float(np.max(np.r_[0.0, data["long"][near], data["short"][near]])))
        tag = "SYNTHETIC · " if hm.synthetic else ""
        when = str(np.datetime_as_string(hm.times[-1], unit="m"))
        p = figure(title=f"{tag}{label} ({hm.meta.get('symbol', '')}) at {when} UTC", width=width, height=height,
                   x_range=x_range, tools="xpan,xwheel_zoom,reset,save", x_axis_label="distance from price (%)",
                   y_axis_label=f"bp of {_basis_label(basis, window)} per bin")
        src = ColumnDataSource(data)
        p.vbar(x="distance", width="width", top="long", source=src, color=LONG_COLOR, legend_label="long levels")
        p.vbar(x="distance", width="width", top="short", source=src, color=SHORT_COLOR, legend_label="short levels")
        p.add_tools(HoverTool(tooltips=[("distance", "@distance{0.00} %"), ("long", "@long{0.000} bp (@long_usd{$0.0a})"),
                                        ("short", "@short{0.000} bp (@short_usd{$0.0a})")]))
        p.legend.location = "top_center"
        p.legend.orientation = "horizontal"
        p.legend.background_fill_alpha = 0.6
        panels.append(p)
    y_range = Range1d(0.0, y_max * 1.15 if y_max > 0 else 1.0)
    for p in panels:
        p.y_range = y_range
    return column(*panels)


def assets_table(table, *, basis: str = "volume", window: str = "7D", width: int = 900):
    """The largest clusters per asset as a Bokeh table (from :func:`~liqlab.engine.levels.compare_assets`).

    Parameters
    ----------
    table : pandas.DataFrame
        The rows of ``compare_assets``.
    basis, window
        The relative scale the rows were computed on (for the column title).
    width : int
        Width (px).

    Returns
    -------
    bokeh.models.DataTable
        Columns asset, side, price (USD), distance %, notional (USD) and relative (bp of the basis).
    """
    from bokeh.models import ColumnDataSource, DataTable, NumberFormatter, TableColumn

    src = ColumnDataSource({
        "asset": [("SYNTHETIC " if s else "") + a for a, s in zip(table["asset"], table["synthetic"])],
        "side": list(table["side"]), "price": table["price"].to_numpy(np.float64),
        "distance_pct": table["distance_pct"].to_numpy(np.float64),
        "notional_usd": table["notional_usd"].to_numpy(np.float64),
        "relative_bp": table["relative_bp"].to_numpy(np.float64)})
    cols = [TableColumn(field="asset", title="asset"), TableColumn(field="side", title="side"),
            TableColumn(field="price", title="price (USD)", formatter=NumberFormatter(format="0,0.00")),
            TableColumn(field="distance_pct", title="distance %", formatter=NumberFormatter(format="+0.00")),
            TableColumn(field="notional_usd", title="notional (USD)", formatter=NumberFormatter(format="$0,0")),
            TableColumn(field="relative_bp", title=f"bp of {_basis_label(basis, window)}", formatter=NumberFormatter(format="0.000"))]
    return DataTable(source=src, columns=cols, width=width, height=min(400, 30 + 26 * len(table)), index_position=None)


def assets_view(maps: Mapping, *, n: int = 5, basis: str = "volume", window: str = "7D", width: int = 900):
    """The cross-asset comparison of a report: :func:`assets_figure` above :func:`assets_table`.

    Parameters
    ----------
    maps : mapping of str to Heatmap
        Asset label → USD map.
    n : int
        Clusters per asset in the table.
    basis, window
        The relative scale.
    width : int
        Width (px).

    Returns
    -------
    bokeh.layouts.column
    """
    from bokeh.layouts import column

    from liqlab.engine.levels import compare_assets

    table = compare_assets(maps, n=n, basis=basis, window=window)
    return column(assets_figure(maps, basis=basis, window=window, width=width), assets_table(table, basis=basis, window=window, width=width))
