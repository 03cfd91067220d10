"""liqlab.engine.deposits: LP coefficients, spreading deposits over bins, the step CSR."""

from __future__ import annotations

import numpy as np

from liqlab.engine.deposits import deposit_function, deposits_numpy, lp_coefficients
from liqlab.engine.params import HeatmapParams
from test_heatmap import flat_dataset


def test_deposits_out_of_step_order_use_the_numpy_path():
    assert deposit_function(None, np.array([0, 2, 1])) is deposits_numpy
    assert deposit_function(False, np.array([0, 1, 2])) is deposits_numpy


def test_deposits_conserve_usd_between_grid_clearing_and_off_grid():
    """Each deposit's USD ends in the CSR (summed per step, layer and bin), off the grid, or in bins its
    step's later bars clear."""
    edges = np.linspace(90.0, 110.0, 21)                  # 20 bins of 1 USD
    a = np.array([[1.0], [1.0]])
    b = np.array([[-5.0], [30.0]])                        # LP = entry − 5; layer 1 lands above the grid
    j = np.array([0, 0, 2])
    amount = np.array([100.0, 50.0, 10.0])
    e_lo, e_hi = np.array([100.0, 100.5, 101.0]), np.array([102.0, 100.5, 101.0])  # a range and two points
    no_clear = np.array([20, 20, 20])                     # long: bins >= 20 cleared, i.e. none
    (ptr, k, bb, v), dropped = deposits_numpy(j, amount, e_lo, e_hi, no_clear, True, a, b, np.ones(1), edges, 3)
    assert ptr.tolist() == [0, 2, 2, 3] and k.tolist() == [0, 0, 0] and bb.tolist() == [5, 6, 6]
    np.testing.assert_allclose(v, [50.0 + 50.0, 50.0, 10.0])     # range 95..97 half per bin, point 95.5, point 96
    assert dropped.tolist() == [0.0, 160.0]
    (ptr2, _, bb2, v2), _ = deposits_numpy(j, amount, e_lo, e_hi, np.array([6, 6, 6]), True, a, b, np.ones(1), edges, 3)
    assert ptr2.tolist() == [0, 1, 1, 1] and bb2.tolist() == [5] and v2.tolist() == [100.0]


def test_lp_coefficients_flat_model():
    ds = flat_dataset([60000.0] * 3, [100, 110, 120])
    lp = lp_coefficients(ds, HeatmapParams(margin_model="flat", leverages=(10.0, 50.0)), 60000.0)
    np.testing.assert_allclose(lp.a_long[:, 0], [0.9, 0.98])
    np.testing.assert_allclose(lp.a_short[:, 0], [1.1, 1.02])
    assert np.all(lp.b_long == 0) and np.all(lp.b_short == 0) and lp.size_weights.tolist() == [1.0]
    assert lp.info["model"] == "flat" and "unsupported_leverages" not in lp.info
