"""liqlab.viz.view: a heatmap fitted under the browser's cell cap (thinned without data, rebuilt coarser by the
engine with data)."""

from __future__ import annotations

import numpy as np
import pytest

from liqlab.errors import ParameterError
from liqlab.viz import plot
from liqlab.viz.view import fit_view


def test_cap_shows_every_nth_snapshot_without_data(small):
    hm, _ = small
    T, B = hm.long.shape
    view = fit_view(hm, None, max_cells=B * (T // 4))
    assert view.stride >= 4 and view.offset == (T - 1) % view.stride
    assert view.long.shape[1] * B <= B * (T // 4) + B
    np.testing.assert_array_equal(view.long[:, -1], hm.long[-1].astype(np.float32))   # the latest is kept
    assert f"one 1h snapshot in {view.stride}" in view.note
    lay = plot.explorer(hm, max_cells=B * (T // 4))
    assert "snapshot in" in lay.select_one({"name": "note"}).text
    assert lay.select_one({"name": "grid"}).data["stride"][0] == view.stride


def test_cap_rebuilds_coarser_with_data(small):
    hm, data = small
    T, B = hm.long.shape
    view = fit_view(hm, data, max_cells=B * (T // 3))
    assert view.stride == 1 and view.hm.params.step_hours >= 3 * hm.params.step_hours
    assert view.long.size <= B * (T // 3)
    assert "coarsened" in view.note
    with pytest.raises(ParameterError, match="max_cells"):
        fit_view(hm, data, max_cells=B - 1)
