"""liqlab.engine.inputs: the step inputs (VenueSteps, StepInputs) the recursion re-runs."""

from __future__ import annotations

import numpy as np
import pytest

from liqlab.engine.heatmap import build_heatmap
from liqlab.engine.inputs import StepInputs, VenueSteps, empty_csr
from liqlab.engine.kernel import run_steps
from liqlab.errors import ParameterError
from test_heatmap import random_dataset


@pytest.fixture(scope="module")
def hm():
    return build_heatmap(random_dataset("bybit", days=1, seed=11), progress=False)


def test_heatmap_holds_step_inputs(hm):
    assert isinstance(hm.replay, StepInputs) and all(isinstance(v, VenueSteps) for v in hm.replay.venues)
    assert hm.replay.venue_names == ("bybit",) and hm.replay.venue("bybit").n_steps == len(hm.times)
    with pytest.raises(ParameterError, match="venues"):
        hm.replay.venue("okx")


def test_truncated_steps_give_the_first_snapshots(hm):
    """Running the recursion on the first n steps gives the first n snapshots of the full run."""
    rv = hm.replay.venue("bybit")
    n = len(hm.times) // 2
    full = run_steps(rv, hm.weights, 24.0, 0, "proportional", use_numba=False)
    part = run_steps(rv.truncated(n), hm.weights, 24.0, 0, "proportional", use_numba=False)
    np.testing.assert_array_equal(part[0], full[0][:, :n])
    np.testing.assert_array_equal(part[1], full[1][:, :n])
    doubled = rv.truncated(n, value_scale=np.full(n, 2.0))
    np.testing.assert_array_equal(doubled.fresh_long[3], 2.0 * rv.truncated(n).fresh_long[3])


def test_empty_csr():
    ptr, k, b, v = empty_csr(4)
    assert ptr.tolist() == [0] * 5 and ptr.dtype == np.int64
    assert (k.dtype, b.dtype, v.dtype) == (np.int32, np.int32, np.float64) and len(k) == len(b) == len(v) == 0
