"""liqlab.engine.agreement: the cross-venue agreement rule (counts per cell and the venues at a cell)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from liqlab.engine.agreement import agreeing_venues, agreement, cluster_cells


def test_agreement_flags_single_venue_clusters():
    T, B = 2, 40
    a = np.zeros((T, B), np.float32)
    b = np.zeros((T, B), np.float32)
    a[:, 10] = 100.0
    b[:, 11] = 80.0  # neighbouring bin: the same cluster within the window
    a[:, 30] = 90.0  # only venue a
    z = np.zeros((T, B), np.float32)
    ag = agreement({"a": a, "b": b}, {"a": z, "b": z}, 0.25, 1)
    assert ag[0, 10] == 2 and ag[0, 11] == 2 and ag[0, 30] == 1 and ag[0, 20] == 0
    ag0 = agreement({"a": a, "b": b}, {"a": z, "b": z}, 0.25, 0)
    assert ag0[0, 10] == 1 and ag0[0, 11] == 1
    assert agreeing_venues({"a": a, "b": b}, {"a": z, "b": z}, 0, [10, 30, 20], 0.25, 1) == [["a", "b"], ["a"], []]


def test_no_venue_gives_an_empty_count():
    assert agreement({}, {}, 0.25, 1).shape == (0, 0)


def test_cluster_cells_threshold_is_a_share_of_the_snapshot_maximum():
    m = np.array([[0.0, 10.0, 2.4, 2.5, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    c = cluster_cells(m, 0.25, 0)
    assert c.tolist() == [[False, True, False, True, False], [False] * 5]   # an empty snapshot has no cluster
    assert cluster_cells(m, 0.25, 1)[0].tolist() == [True, True, True, True, True]


maps = st.integers(min_value=0, max_value=2**32 - 1).map(np.random.default_rng)


@settings(max_examples=40, deadline=None)
@given(rng=maps, n_venues=st.integers(1, 4), T=st.integers(1, 9), B=st.integers(1, 17),
       threshold=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]), window=st.integers(0, 4),
       rows=st.one_of(st.none(), st.integers(1, 5)))
def test_counts_equal_the_named_venues_and_do_not_depend_on_blocking(rng, n_venues, T, B, threshold, window, rows):
    """agreement[j, b] is the number of venues agreeing_venues names at (j, b); a venue agrees when a cell
    within ±window bins is > 0 and >= threshold × its snapshot maximum; blocking changes nothing."""
    names = [f"v{i}" for i in range(n_venues)]
    vl = {v: (rng.random((T, B)) * (rng.random((T, B)) > 0.5)).astype(np.float32) for v in names}
    vs = {v: (rng.random((T, B)) * (rng.random((T, B)) > 0.7)).astype(np.float32) for v in names}
    ag = agreement(vl, vs, threshold, window, rows)
    assert ag.dtype == np.int8 and ag.shape == (T, B)
    np.testing.assert_array_equal(ag, agreement(vl, vs, threshold, window))
    for j in range(T):
        named = agreeing_venues(vl, vs, j, range(B), threshold, window)
        assert [len(x) for x in named] == ag[j].tolist()
        for b, who in enumerate(named):  # the rule written out for one cell
            ref = []
            for v in names:
                m = vl[v][j].astype(np.float64) + vs[v][j]
                seg = m[max(0, b - window): b + window + 1]
                if ((seg > 0) & (seg >= threshold * m.max())).any():
                    ref.append(v)
            assert who == ref
