"""Fixtures of the viz tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def small(small_sim):
    """(the default heatmap of the small simulation, its data)."""
    from liqlab.io.dataset import load
    from liqlab.engine.heatmap import build_heatmap

    data = load(small_sim)
    return build_heatmap(data, progress=False), data
