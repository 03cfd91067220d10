"""liqlab.engine.memory and the heatmap's memory estimate: sizes parse, the estimate covers what a build holds."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from liqlab.engine import memory
from liqlab.errors import ParameterError


@pytest.mark.parametrize("text,want", [("4G", 4e9), ("512M", 512e6), ("1.5GiB", 1.5 * 2**30), ("2e9", 2e9),
                                       ("100 kb", 1e5), (3_000, 3_000)])
def test_parse_size(text, want):
    assert memory.parse_size(text) == int(want)


@pytest.mark.parametrize("text", ["lots", "-1G", "0", "4 parsecs", "nan", ""])
def test_parse_size_refuses_with_the_option_name(text):
    with pytest.raises(ParameterError, match="^--max-memory: "):
        memory.parse_size(text)


def test_default_budget_is_a_share_of_what_is_available():
    with mock.patch.object(memory, "available_bytes", return_value=10 * 2**30):
        assert memory.default_budget() == int(10 * 2**30 * memory.DEFAULT_SHARE)
        assert memory.resolve_budget(None) == memory.default_budget()
        assert memory.resolve_budget("1G") == 10**9
    with mock.patch.object(memory, "available_bytes", return_value=None):
        assert memory.default_budget() is None  # unknown: nothing is refused


def test_available_bytes_is_positive_here():
    assert memory.available_bytes() > 0


def test_check_fits_names_the_estimate_and_the_budget():
    memory.check_fits(10, 10, "x", "y")
    memory.check_fits(10**12, None, "x", "y")
    with pytest.raises(ParameterError, match=r"^the thing needs about 1\.5 GiB, over the memory budget of 1\.0 GiB "
                                             r"\(--max-memory; default 50% of the available memory\); do less$"):
        memory.check_fits(1.5 * 2**30, 2**30, "the thing", "do less")


def test_heatmap_estimate_covers_the_arrays_a_build_holds(small_sim):
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.engine.memory import heatmap_bytes

    hm = build_heatmap(small_sim, progress=False, time_step="15min")
    T, B = hm.long.shape
    K, V = len(hm.leverages), len(hm.venue_long)
    held = (hm.long.nbytes + hm.short.nbytes + hm.long_layers.nbytes + hm.short_layers.nbytes + hm.agreement.nbytes
            + sum(a.nbytes for a in hm.venue_long.values()) + sum(a.nbytes for a in hm.venue_short.values()))
    est = heatmap_bytes(T, B, K, V)
    # the estimate adds the transients of the assembly (one venue's layers and weighted maps) to what is held
    assert held < est < 2.5 * held
    with pytest.raises(ParameterError, match=r"time_step=15min x \d+ price bins of bin_width=10 bp x 8 leverage "
                                             r"layers x 3 venue\(s\)\) needs about"):
        build_heatmap(small_sim, progress=False, time_step="15min", max_memory=est - 1)
    assert np.isfinite(build_heatmap(small_sim, progress=False, time_step="15min", max_memory=est).long).all()
