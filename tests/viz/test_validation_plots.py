"""Tests of liqlab.viz.validation_plots: Bokeh models, synthetic labels, inline resources."""

from __future__ import annotations

import pytest
from test_validate import _constructed_market

from liqlab.stats import validate as V
from liqlab.viz import validation_plots as VP
from liqlab.errors import ParameterError


@pytest.fixture(scope="module")
def validation():
    ds, hm = _constructed_market()
    return V.validate(ds, heatmap=hm, side_splits=None, naive=False, n_boot=20)


def test_layout_is_a_bokeh_model_marked_synthetic(validation):
    from bokeh.embed import file_html
    from bokeh.model import Model
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    lay = VP.validation_layout(validation.series, validation.report)
    assert isinstance(lay, Model)
    titles = [f.title.text for f in lay.select({"type": figure})]
    assert titles and all("[synthetic data]" in t for t in titles)
    html = file_html(lay, INLINE, "validation")
    assert "cdn.bokeh.org" not in html


def test_tables_hold_every_predictor_and_param(validation):
    t = VP.metric_datatable(validation.report)
    assert t.source.data["predictor"][0] == "heatmap"
    assert len(t.source.data["predictor"]) == 1 + len(validation.report["baselines"])
    p = VP.params_table({"half_life_hours": 72.0, "leverages": [5, 10]})
    assert p.source.data["value"] == ["72.000", "5.000, 10.000"]


def test_bad_side_raises(validation):
    with pytest.raises(ParameterError):
        VP.sweeps_figure(validation.series, "up")
