"""liqlab.engine.grid: price bins and position-size nodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.engine.grid import MAX_BINS, SIZE_NODES, bin_centres, make_grid, size_nodes
from liqlab.engine.params import HeatmapParams
from liqlab.errors import DataError, ParameterError


@settings(max_examples=60, deadline=None)
@given(st.floats(1e3, 1e8), st.floats(0.0, 3.0), st.floats(0.0, 2.0),
       st.lists(st.sampled_from([2.0, 5.0, 10.0, 20.0, 50.0, 125.0]), min_size=1, max_size=4, unique=True))
def test_size_nodes_are_lognormal_quantiles_with_the_leverage_median(median, sigma, beta, lev):
    p = HeatmapParams(leverages=tuple(lev), position_size_usd=median, position_size_sigma=sigma,
                      position_size_leverage_exponent=beta)
    n, w = size_nodes(p)
    Q = 1 if sigma == 0 else SIZE_NODES
    assert n.shape == (len(lev), Q) and w.shape == (Q,)
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    med = median * (np.asarray(lev) / 10.0) ** (-beta)
    np.testing.assert_allclose(n[:, Q // 2], med, rtol=1e-9)      # odd node count: the middle node is the median
    assert np.all(np.diff(n, axis=1) >= 0)
    if sigma > 0:  # symmetric in log space around the median
        np.testing.assert_allclose(np.log(n) + np.log(n[:, ::-1]), np.broadcast_to(2 * np.log(med)[:, None], n.shape), rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.floats(10.0, 1e5), st.floats(1.01, 3.0), st.floats(0.01, 0.5), st.floats(5.0, 100.0))
def test_bp_grid_covers_the_range_with_constant_ratio(low, span, price_range, bw):
    high = low * span
    p = HeatmapParams(bin_unit="bp", bin_width=bw, price_range=price_range)
    edges, width = make_grid(low, high, low, p)
    assert width == bw
    assert edges[0] == pytest.approx(low * (1 - price_range), rel=1e-12)
    assert edges[-1] >= high * (1 + price_range) * (1 - 1e-12) and len(edges) - 1 <= MAX_BINS
    np.testing.assert_allclose(edges[1:] / edges[:-1], 1 + bw * 1e-4, rtol=1e-9)
    c = bin_centres(edges, "bp")
    assert np.all((c > edges[:-1]) & (c < edges[1:]))
    np.testing.assert_allclose(c, np.sqrt(edges[:-1] * edges[1:]))


def test_usd_grid_default_width_is_a_round_number_and_edges_are_multiples():
    p = HeatmapParams(bin_unit="usd")
    edges, width = make_grid(58000.0, 61000.0, 60000.0, p)
    mantissa = width / 10 ** math.floor(math.log10(width))
    assert mantissa in (1.0, 2.0, 5.0)
    assert edges[0] == pytest.approx(round(edges[0] / width) * width)
    np.testing.assert_allclose(np.diff(edges), width)
    np.testing.assert_allclose(bin_centres(edges, "usd"), 0.5 * (edges[:-1] + edges[1:]))


def test_grid_refusals_name_the_parameter():
    with pytest.raises(ParameterError, match="bin_width"):
        make_grid(1.0, 1e6, 100.0, HeatmapParams(bin_unit="bp", bin_width=0.5))
    with pytest.raises(ParameterError, match="bin_width"):
        make_grid(50.0, 150.0, 100.0, HeatmapParams(bin_unit="usd", bin_width=60.0))
    with pytest.raises(DataError, match="price grid"):
        make_grid(float("nan"), 1.0, 1.0, HeatmapParams())
