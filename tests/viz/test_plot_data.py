"""Data-overview figures: Bokeh models, SYNTHETIC in titles, no time-zone warnings from Bokeh."""

from __future__ import annotations

import dataclasses
import warnings

import pandas as pd

from liqlab.viz import plot_data
from liqlab.io.coverage import coverage
from test_dataset import make_dataset


def _titles(model) -> list[str]:
    from bokeh.models import Plot

    return [p.title.text for p in model.select({"type": Plot})]


def test_titles_say_synthetic_only_when_synthetic():
    ds = make_dataset(30)
    assert any(t.startswith("SYNTHETIC") for t in _titles(plot_data.market_figure(ds)))
    real = dataclasses.replace(ds, meta={**ds.meta, "synthetic": False})
    assert not any("SYNTHETIC" in t for t in _titles(plot_data.market_figure(real)))


def test_figures_build_and_serialise_without_warnings():
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    ts = pd.date_range("2025-01-01", periods=4, freq="7min", tz="UTC")
    liq = pd.DataFrame({"ts": ts, "side": ["long", "short", "long", "short"], "price": 100.0, "amount": 1.0,
                        "value": [10.0, 20.0, 30.0, 40.0]})
    ds = dataclasses.replace(make_dataset(30), liquidations=liq)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fig in (plot_data.market_figure(ds), plot_data.liquidations_figure(ds, rule="15min"),
                    plot_data.coverage_figure(coverage(ds))):
            html = file_html(fig, INLINE, "t")
            assert "cdn.bokeh.org" not in html


def test_liquidations_figure_says_none_when_there_are_none():
    p = plot_data.liquidations_figure(make_dataset(5))
    assert "none in this dataset" in p.title.text
