"""liqlab.viz.assets: several assets on one relative scale (figure panels and the clusters table)."""

from __future__ import annotations

import numpy as np
import pytest

from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.levels import compare_assets, distance_pct
from liqlab.io.dataset import load_collection
from liqlab.viz.assets import assets_figure, assets_table, assets_view


@pytest.fixture(scope="module")
def maps(two_assets):
    return {a: build_heatmap(load_collection(two_assets / a), progress=False) for a in ("BTC", "ETH")}


@pytest.mark.parametrize("basis", ["volume", "open_interest"])
def test_panels_share_one_scale_and_show_the_relative_profile(maps, basis):
    from bokeh.models import VBar

    fig = assets_figure(maps, basis=basis, window="1D", span_pct=8.0)
    panels = fig.children
    assert len(panels) == 2 and panels[0].y_range is panels[1].y_range and panels[0].x_range is panels[1].x_range
    for p, (label, hm) in zip(panels, maps.items()):
        assert p.title.text.startswith(f"SYNTHETIC · {label}")
        rel = hm.relative("1D", basis=basis)
        bars = [r for r in p.renderers if isinstance(r.glyph, VBar)]
        src = bars[0].data_source.data
        np.testing.assert_allclose(src["long"], np.nan_to_num(rel.long[-1]) * 1e4, rtol=1e-12)
        np.testing.assert_allclose(src["short"], np.nan_to_num(rel.short[-1]) * 1e4, rtol=1e-12)
        np.testing.assert_allclose(src["distance"], distance_pct(hm.prices, hm.close[-1]))
        assert "OI" in p.yaxis.axis_label if basis == "open_interest" else "1D volume" in p.yaxis.axis_label
    top = max(float(np.max(p.renderers[0].data_source.data["long"])) for p in panels)
    assert panels[0].y_range.end > 0 and np.isfinite(top)


def test_table_rows_are_compare_assets(maps):
    table = compare_assets(maps, n=3, basis="open_interest")
    dt = assets_table(table, basis="open_interest")
    d = dt.source.data
    assert list(d["asset"]) == ["SYNTHETIC BTC"] * 3 + ["SYNTHETIC ETH"] * 3
    np.testing.assert_array_equal(d["notional_usd"], table["notional_usd"].to_numpy())
    np.testing.assert_array_equal(d["relative_bp"], table["relative_bp"].to_numpy())
    assert dt.columns[-1].title == "bp of OI"
    view = assets_view(maps, n=2)
    assert len(view.children) == 2 and len(view.children[1].source.data["asset"]) == 4
