"""liqlab.viz.colour: the fixed USD colour scale (levels, thresholds, palettes, images, ticks, labels)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.errors import ParameterError
from liqlab.viz import colour

finite_pos = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(vals=st.lists(st.one_of(st.just(0.0), finite_pos), min_size=1, max_size=60),
       vmax=finite_pos, mapping=st.sampled_from(["linear", "log", "percentile"]))
def test_colour_levels_monotone_fixed_scale(vals, vmax, mapping):
    v = np.asarray(vals, dtype=np.float32)
    qs = colour.quantile_thresholds(v, None) if mapping == "percentile" else None
    lev = colour.colour_levels(v, mapping, vmax, qs)
    assert lev.dtype == np.int16 and lev.shape == v.shape
    assert np.all((lev == -1) == (v <= 0))                    # transparent exactly where there is nothing
    assert lev.max() <= colour.N_COLOURS - 1
    pos = v > 0
    order = np.argsort(v[pos], kind="stable")
    assert np.all(np.diff(lev[pos][order]) >= 0)               # more notional never gets a lower colour
    # same notional, same colour wherever it sits (fixed scale, no per-column normalisation)
    shuffled = colour.colour_levels(v[::-1].copy(), mapping, vmax, qs)
    assert np.array_equal(shuffled[::-1], lev)


def test_colour_levels_values():
    v = np.array([0.0, 1.0, 499.0, 500.0, 1000.0, 5000.0], dtype=np.float32)
    lin = colour.colour_levels(v, "linear", 1000.0, n=4)
    assert lin.tolist() == [-1, 0, 1, 2, 3, 3]
    lg = colour.colour_levels(v, "log", 1000.0, n=3, log_range=1000.0)   # decades 1..10..100..1000
    assert lg.tolist() == [-1, 0, 2, 2, 2, 2]
    with pytest.raises(ParameterError, match="mapping"):
        colour.colour_levels(v, "sqrt", 1.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.just(0.0), finite_pos), min_size=0, max_size=200))
def test_quantile_thresholds_sorted_and_from_data(vals):
    v = np.asarray(vals, dtype=np.float32)
    q = colour.quantile_thresholds(v, None, n=16)
    assert q.shape == (15,)
    if (v > 0).any():
        assert np.all(np.diff(q) >= 0)
        assert set(q.astype(np.float32)) <= set(v[v > 0])
    else:
        assert np.all(np.isinf(q))


def test_rgba_image_sides_and_blend():
    long = np.array([[0, 10, 0], [0, 0, 100]], dtype=np.float32)
    short = np.array([[0, 0, 50], [0, 0, 100]], dtype=np.float32)
    pal = colour.palettes()
    img = colour.rgba_image(long, short, "linear", vmax=100.0)
    assert img.dtype == np.uint32 and img.shape == long.shape
    assert img[0, 0] == 0 and img[1, 1] == 0                       # transparent where empty
    assert img[0, 1] in set(pal["long_u32"].tolist())              # long only: blue palette
    assert img[0, 2] in set(pal["short_u32"].tolist())             # short only: red palette
    assert (img[1, 2] >> 24) == 255 and img[1, 2] not in set(pal["long_u32"].tolist())
    only_long = colour.rgba_image(long, short, "linear", vmax=100.0, layers="long")
    assert only_long[0, 2] == 0 and only_long[0, 1] == img[0, 1]
    blue = np.array([int(h[5:7], 16) - int(h[1:3], 16) for h in pal["long_hex"]])
    red = np.array([int(h[1:3], 16) - int(h[5:7], 16) for h in pal["short_hex"]])
    assert (blue >= 0).all() and (red >= 0).all()                   # long is blue, short is red


def test_ticks_are_positions_with_usd_values():
    pos, val = colour.colour_ticks("log", 1e8, None)
    assert pos[-1] == 1.0 and val[-1] == 1e8 and all(0 <= p <= 1 for p in pos)
    assert np.allclose(np.diff(np.log10(val[:-1])), 1.0)
    assert colour.usd(1.25e6) == "$1.2M" and colour.usd(35_000) == "$35k" and colour.usd(950) == "$950"
