"""liqlab.engine.extend: appending to a map equals a full rebuild on the union of the data, array for array."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from liqlab.errors import ParameterError
from liqlab.engine.heatmap import build_heatmap
from liqlab.io.dataset import Collection

from tests.engine.test_heatmap import random_dataset

START = pd.Timestamp("2025-01-01", tz="UTC")

PARAM_SETS = [
    {},
    {"side_split": "taker", "funding_drift": True, "max_age_hours": 6, "oi_decrease": "highest_leverage"},
    {"bin_unit": "usd", "funding_drift": True, "half_life_exponent": 1.0, "max_age_hours": 3, "oi_decrease": "ignore"},
    {"side_split": "candle", "entry_price": "close", "max_age_hours": 2, "half_life_hours": 5.0, "time_step": "30min"},
    {"side_split": "fixed", "position_size_sigma": 0.5, "funding_drift": True, "clearing": "none"},
]


@pytest.fixture(scope="module")
def coll():
    """Two days × 3 venues of 1m bars (SYNTHETIC), OI every 5 minutes, funding every 8 hours."""
    from liqlab._util import VENUES

    return Collection(datasets=tuple(random_dataset(v, days=2, seed=i) for i, v in enumerate(VENUES)))


def differences(h, r) -> list:
    """Names of the arrays (and meta keys) where two maps differ; empty when identical."""
    bad = [n for n in ("times", "prices", "edges", "long", "short", "long_layers", "short_layers", "agreement",
                       "close", "weights") if not np.array_equal(getattr(h, n), getattr(r, n), equal_nan=True)]
    bad += [f"venue {v}" for v in r.venue_long if not (np.array_equal(h.venue_long[v], r.venue_long[v])
                                                        and np.array_equal(h.venue_short[v], r.venue_short[v]))]
    for x, y in zip(h.replay.venues, r.replay.venues, strict=True):
        for n in ("lo", "hi", "g", "rm_long", "rm_short", "shift", "volume_usd", "close", "dropped_long", "dropped_short", "oi_usd"):
            if not np.array_equal(getattr(x, n), getattr(y, n), equal_nan=True):
                bad.append(f"{x.venue}.{n}")
        for s in ("fresh_long", "fresh_short"):
            if not all(np.array_equal(a, b) for a, b in zip(getattr(x, s), getattr(y, s), strict=True)):
                bad.append(f"{x.venue}.{s}")
        if x.info != y.info:
            bad.append(f"{x.venue}.info")
    bad += [f"meta.{k}" for k in r.meta if h.meta.get(k) != r.meta[k]]
    return bad


def chained(coll, cuts, use_numba=None, **kw):
    """Build on the data before cuts[0], then extend chunk by chunk; (map, how many appends rebuilt)."""
    h = build_heatmap(coll.between(None, cuts[0]), progress=False, extendable=True, use_numba=use_numba, **kw)
    rebuilt = 0
    for a, b in zip(cuts, list(cuts[1:]) + [None]):
        h = h.extend(coll.between(a, b))
        rebuilt += h.live.info["rebuilt"]
    return h, rebuilt


@pytest.mark.parametrize("kw", PARAM_SETS)
def test_appending_in_chunks_equals_one_chunk_equals_rebuild(coll, kw):
    cuts = list(pd.date_range(START + pd.Timedelta("40h"), periods=5, freq="97min"))
    full = build_heatmap(coll, progress=False, **kw)
    many, rebuilt = chained(coll, cuts, **kw)
    assert differences(many, full) == []
    assert rebuilt < len(cuts)                     # the incremental path ran (the grid held)
    one, _ = chained(coll, cuts[:1], **kw)
    assert differences(one, full) == []


def test_numpy_and_numba_paths_append_the_same(coll):
    cuts = list(pd.date_range(START + pd.Timedelta("44h"), periods=3, freq="61min"))
    kw = PARAM_SETS[1]
    full = build_heatmap(coll, progress=False, use_numba=False, **kw)
    assert differences(chained(coll, cuts, use_numba=False, **kw)[0], full) == []
    assert differences(chained(coll, cuts, use_numba=True, **kw)[0], full) == []


def test_one_minute_appends_recompute_only_the_open_step(coll):
    end = START + pd.Timedelta("46h")
    h = build_heatmap(coll.between(None, end), progress=False, extendable=True)
    for i in range(3):
        t = end + pd.Timedelta(minutes=i)
        h = h.extend(coll.between(t, t + pd.Timedelta(minutes=1)))
        assert h.live.info["steps_recomputed"] <= 2 and not h.live.info["rebuilt"]
    assert differences(h, build_heatmap(coll.between(None, end + pd.Timedelta(minutes=3)), progress=False)) == []


def test_a_price_beyond_the_grid_rebuilds_and_still_equals(coll):
    ds = coll.datasets[0]
    cut = START + pd.Timedelta("47h")
    late = ds.between(cut, None)
    o = late.ohlcv.copy()
    o.loc[o.index[5], "high"] = float(o["high"].max()) * 1.6        # far above anything stored
    spiked = Collection(datasets=(dataclasses.replace(late, ohlcv=o),))
    union = Collection(datasets=(dataclasses.replace(ds, ohlcv=pd.concat([ds.between(None, cut).ohlcv, o],
                                                                          ignore_index=True)),))
    h = build_heatmap(Collection(datasets=(ds.between(None, cut),)), progress=False, extendable=True).extend(spiked)
    assert h.live.info["rebuilt"]
    assert differences(h, build_heatmap(union, progress=False)) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut_min=st.integers(60, 2700), chunk_min=st.integers(1, 300), max_age=st.sampled_from([None, 1.0, 7.0]),
       oi_rule=st.sampled_from(["proportional", "highest_leverage", "ignore"]), drift=st.booleans(),
       gamma=st.sampled_from([0.0, 0.7]))
def test_property_extend_equals_rebuild(coll, cut_min, chunk_min, max_age, oi_rule, drift, gamma):
    kw = dict(max_age_hours=max_age, oi_decrease=oi_rule, funding_drift=drift, half_life_exponent=gamma)
    c = coll.select(["binanceusdm", "okx"])
    cut = START + pd.Timedelta(minutes=cut_min)
    cuts = [cut, cut + pd.Timedelta(minutes=chunk_min)]
    assert differences(chained(c, cuts, **kw)[0], build_heatmap(c, progress=False, **kw)) == []


def test_extend_refuses_maps_without_state_old_maps_and_unknown_venues(coll):
    cut = START + pd.Timedelta("47h")
    plain = build_heatmap(coll.between(None, cut), progress=False)
    with pytest.raises(ParameterError, match="extendable=True"):
        plain.extend(coll.between(cut, None))
    h = build_heatmap(coll.select(["okx"]).between(None, cut), progress=False, extendable=True)
    with pytest.raises(ParameterError, match="not in this map"):
        h.extend(coll.select(["bybit"]).between(cut, None))
    with pytest.raises(ParameterError, match="relative"):
        h.relative("1D").extend(coll.select(["okx"]).between(cut, None))
    h.extend(coll.select(["okx"]).between(cut, None))
    with pytest.raises(ParameterError, match="extended already"):
        h.extend(coll.select(["okx"]).between(cut, None))


def test_a_venue_without_valid_oi_intervals_is_appended_too(coll):
    """OI rows further apart than oi_max_gap_hours: no valid interval, no deposit; still appends exactly."""
    ds = coll.datasets[1]
    oi = ds.open_interest.iloc[::90].reset_index(drop=True)          # every 7.5 h
    flat = Collection(datasets=(dataclasses.replace(ds, open_interest=oi),))
    cuts = list(pd.date_range(START + pd.Timedelta("45h"), periods=3, freq="53min"))
    assert differences(chained(flat, cuts)[0], build_heatmap(flat, progress=False)) == []
