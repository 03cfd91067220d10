"""liqlab.engine.liqmap: the liquidation map of one snapshot (layers × weights, cumulative curves, bands)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from liqlab.engine.liqmap import BANDS_PCT, band_totals, liqmap_arrays, liquidation_map

finite = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(K=st.integers(1, 4), B=st.integers(1, 30), data=st.data())
def test_liqmap_arrays_sums_and_curves(K, B, data):
    long = data.draw(arrays(np.float64, (K, B), elements=finite))
    short = data.draw(arrays(np.float64, (K, B), elements=finite))
    w = data.draw(arrays(np.float64, (K,), elements=st.floats(0.01, 1.0)))
    w = w / w.sum()
    prices = np.cumsum(data.draw(arrays(np.float64, (B,), elements=st.floats(1.0, 50.0)))) + 1000.0
    ref = float(data.draw(st.floats(float(prices[0]) - 10, float(prices[-1]) + 10)))
    m = liqmap_arrays(long, short, w, prices, ref, np.arange(1, K + 1, dtype=np.float64))
    np.testing.assert_allclose(m.long.sum(axis=0), w @ long, rtol=1e-12, atol=1e-6)
    tl, ts = m.long.sum(axis=0), m.short.sum(axis=0)
    below_ref, above_ref = prices <= ref, prices >= ref
    assert np.isnan(m.cum_long[~below_ref]).all() and np.isnan(m.cum_short[~above_ref]).all()
    for b in np.flatnonzero(below_ref):          # from the price down to bin b
        np.testing.assert_allclose(m.cum_long[b], tl[(prices >= prices[b]) & below_ref].sum(), rtol=1e-9, atol=1e-6)
    for b in np.flatnonzero(above_ref):
        np.testing.assert_allclose(m.cum_short[b], ts[(prices <= prices[b]) & above_ref].sum(), rtol=1e-9, atol=1e-6)
    # bands grow with their width and never exceed the side's total
    assert (np.diff(m.below) >= -1e-6).all() and (np.diff(m.above) >= -1e-6).all()
    assert m.below[-1] <= (tl + ts)[prices < ref].sum() + 1e-6


def test_band_totals_edges():
    prices = np.array([90.5, 99.5, 100.0, 100.5, 109.5])
    below, above = band_totals(np.ones(5), prices, 100.0, (1.0, 10.0))
    assert below.tolist() == [1.0, 2.0]          # the bin at the price counts on neither side
    assert above.tolist() == [1.0, 2.0]


def test_liquidation_map_of_a_heatmap(small_sim):
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load

    hm = build_heatmap(load(small_sim), progress=False)
    m = liquidation_map(hm, 40)
    np.testing.assert_allclose(m.long.sum(axis=0), hm.long[40], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(m.short.sum(axis=0), hm.short[40], rtol=1e-5, atol=1e-3)
    assert m.ref_price == float(hm.close[40]) and m.bands_pct == BANDS_PCT
    assert (m.below > 0).any() and (m.above > 0).any()
