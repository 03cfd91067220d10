"""Block bootstraps of liqlab.stats.resample."""

from __future__ import annotations

import numpy as np

from liqlab.stats import resample as R


def test_block_bootstrap_indices_are_contiguous_blocks():
    idx = R.block_bootstrap_indices(20, 50, block=4, seed=3)
    assert idx.shape == (50, 20)
    assert idx.min() >= 0 and idx.max() < 20
    # within each block of 4 the indices are consecutive
    blocks = idx.reshape(50, 5, 4)
    assert (np.diff(blocks, axis=2) == 1).all()
    assert R.default_block_length(1000) == 10
