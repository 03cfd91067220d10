"""Tests of liqlab.viz.magnet_plots: figures build from real result objects, carry labels, embed offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from liqlab.stats.magnet import Bars, MagnetParams, dose_response, find_events, touch_curves


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(0)
    n = 5 * 1440
    x = np.log(50_000) + np.cumsum(rng.normal(0, 5e-4, n))
    ts = np.datetime64("2024-01-01", "ns").astype(np.int64) + np.arange(n, dtype=np.int64) * 60_000_000_000
    c = np.exp(x)
    o = np.r_[c[0], c[:-1]]
    bars = Bars.from_arrays(ts, np.maximum(o, c) * 1.0003, np.minimum(o, c) * 0.9997, c, open=o)
    times = ts[0] + np.arange(1, 5 * 24 + 1, dtype=np.int64) * 3_600_000_000_000
    prices = np.exp(np.arange(np.log(c.min()) - 0.05, np.log(c.max()) + 0.05, 5e-4))
    long = rng.gamma(0.3, 1e5, (len(times), len(prices)))
    short = rng.gamma(0.3, 1e5, (len(times), len(prices)))
    return find_events(times, prices, long, short, bars, MagnetParams())


def test_figures_build_and_label_synthetic(events):
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from liqlab.viz import magnet_plots as mp

    figs = [
        mp.dose_figure(dose_response(events), placebo=(0.45, 0.55), synthetic=True),
        mp.touch_figure(touch_curves(events, 1.0), horizon_hours=1.0, synthetic=True),
        mp.null_histogram(np.random.default_rng(1).normal(0, 0.03, 30), 0.55, synthetic=True),
    ]
    table = pd.DataFrame({"half_life_hours": [24.0, 24.0, 168.0, 168.0], "k_atr": [1.0, 2.0, 1.0, 2.0],
                          "lift": [0.01, -0.02, 0.05, np.nan], "q_value_by": [0.9, 0.9, 0.04, np.nan],
                          "n_events": [100, 50, 90, 0], "stepm_superior": [False, False, True, False]})
    figs.append(mp.grid_figure(table, "half_life_hours", "k_atr", synthetic=True))
    report = {"alpha": 0.05, "runs_per_setting": 10, "settings": {
        "null": {"rejection_rate": 0.05, "ci_low": 0.01, "ci_high": 0.2},
        "hunt-0.2": {"rejection_rate": 0.9, "ci_low": 0.6, "ci_high": 0.99}}}
    figs.append(mp.calibration_figure(report))
    for f in figs:
        assert "SYNTHETIC" in f.title.text
        html = file_html(f, INLINE, "t")
        assert "cdn.bokeh.org" not in html
    assert not mp.null_histogram(np.array([]), float("nan")).renderers  # empty input: empty figure, no error
