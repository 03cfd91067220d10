"""liqlab.engine.coarsen: a heatmap rebuilt at a coarser time step under a cell cap."""

from __future__ import annotations

import numpy as np
import pytest

from liqlab.engine.coarsen import coarsen, coarsening_factor, step_alias
from liqlab.engine.params import step_hours
from liqlab.errors import ParameterError


@pytest.fixture(scope="module")
def small(small_sim):
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load

    data = load(small_sim)
    return build_heatmap(data, progress=False), data


@pytest.mark.parametrize("hours,alias", [(1.0, "1h"), (4.0, "4h"), (24.0, "1d"), (72.0, "3d"), (36.0, "36h"),
                                         (0.25, "15min"), (1.5, "90min")])
def test_step_alias_is_a_pandas_offset_of_the_same_length(hours, alias):
    assert step_alias(hours) == alias
    assert step_hours(alias) == pytest.approx(hours)


def test_coarsening_factor():
    assert coarsening_factor(100, 10, 1000) == 1
    assert coarsening_factor(100, 10, 999) == 2
    assert coarsening_factor(100, 10, 334) == 3
    with pytest.raises(ParameterError, match="max_cells: must be >= 1"):
        coarsening_factor(1, 1, 0)
    with pytest.raises(ParameterError, match="below the 10 price bins"):
        coarsening_factor(100, 10, 9)


def test_a_map_that_fits_is_returned_as_is(small):
    hm, data = small
    T, B = hm.long.shape
    out, note = coarsen(hm, data, T * B)
    assert out is hm and note == ""


def test_coarsen_rebuilds_at_a_multiple_of_the_step(small):
    from liqlab.engine.heatmap import build_heatmap

    hm, data = small
    T, B = hm.long.shape
    out, note = coarsen(hm, data, B * (T // 3))
    factor = out.params.step_hours / hm.params.step_hours
    assert factor >= 3 and factor == round(factor)
    assert out.long.size <= B * (T // 3) and "coarsened" in note and "(rebuilt)" in note
    ref = build_heatmap(data, hm.params.replace(time_step=out.params.time_step))   # the engine's own numbers
    np.testing.assert_array_equal(out.long, ref.long)
    np.testing.assert_array_equal(out.short, ref.short)
    with pytest.raises(ParameterError, match="max_cells"):
        coarsen(hm, data, B - 1)
