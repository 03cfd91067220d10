"""The nulls of liqlab.stats.nulls: the one price-only placebo and the bootstrapped-path pipeline null."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from liqlab.errors import DataError, ParameterError
from liqlab.stats.nulls import OI_PROXY_NOTE, placebo_data, volume_oi_proxy


def test_placebo_data_keeps_prices_and_grows_open_interest_steadily(small_sim):
    from liqlab.io.dataset import load_collection

    coll = load_collection(small_sim)
    pl = placebo_data(coll)
    for d, q in zip(coll, pl):
        assert q.ohlcv is d.ohlcv and (q.open_interest["ts"] == d.open_interest["ts"]).all()
        steps = np.diff(q.open_interest["open_interest"].to_numpy())
        assert (steps > 0).all() and np.allclose(steps, steps[0])  # constant increments, never a decrease
        assert "placebo" in q.meta["notes"]


def test_one_placebo_for_magnet_validate_score_and_calibrate():
    from liqlab.stats import magnet, validate

    assert magnet.placebo_data is placebo_data and validate.placebo_data is placebo_data
    assert not hasattr(magnet, "placebo_dataset")  # the second, different placebo is gone


def test_placebo_starts_at_the_first_oi_and_steps_by_the_mean_absolute_change(small_sim):
    from liqlab.io.dataset import load_collection

    d = load_collection(small_sim)["binanceusdm"]
    oi = d.open_interest["open_interest"].to_numpy(float)
    q = placebo_data(d).open_interest
    new = q["open_interest"].to_numpy(float)
    assert new[0] == oi[0]
    np.testing.assert_allclose(np.diff(new), np.mean(np.abs(np.diff(oi))), rtol=1e-9)
    # USD value at the last close at or before each observation (no look-ahead)
    close = pd.merge_asof(q[["ts"]], d.ohlcv[["ts", "close"]], on="ts")["close"].bfill().to_numpy(float)
    np.testing.assert_allclose(q["open_interest_value"].to_numpy(float), new * close, rtol=1e-12)
    assert placebo_data(d, per_observation_base=2.5).open_interest["open_interest"].diff().iloc[1:].eq(2.5).all()


def test_placebo_notes_are_a_dict_and_keep_older_notes(small_sim):
    import dataclasses

    from liqlab.io.dataset import load_collection

    d = load_collection(small_sim)["okx"]
    old = dataclasses.replace(d, meta={**d.meta, "notes": "an older string note"})
    notes = placebo_data(old).meta["notes"]
    assert isinstance(notes, dict) and notes["note"] == "an older string note" and "placebo" in notes["placebo"]


# ------------------------------------------------------------------ the open-interest proxy from traded volume


def _bars(small_sim, volume):
    """The first len(volume) bars of a simulated venue with the given volume (base units)."""
    import dataclasses

    from liqlab.io.dataset import load_collection

    d = load_collection(small_sim)["binanceusdm"]
    o = d.ohlcv.iloc[: len(volume)].copy()
    o["volume"] = np.asarray(volume, float)
    return dataclasses.replace(d, ohlcv=o.reset_index(drop=True))


@settings(max_examples=40, deadline=None)
@given(volume=hnp.arrays(np.float64, st.integers(2, 60), elements=st.floats(0, 1e6, allow_subnormal=False)).filter(lambda v: (v > 0).any()),
       fraction=st.floats(1e-4, 1.0))
def test_volume_proxy_increments_are_the_bars_volume_times_the_fraction(small_sim, volume, fraction):
    from liqlab.io.schema import OPEN_INTEREST_NOTE

    d = _bars(small_sim, volume)
    q = volume_oi_proxy(d, fraction=fraction)
    oi = q.open_interest["open_interest"].to_numpy(float)
    ts = q.open_interest["ts"]
    np.testing.assert_allclose(np.diff(oi), fraction * volume, rtol=1e-9, atol=1e-9 * oi[-1])  # ∝ each bar's volume
    assert oi[0] > 0 and (np.diff(oi) >= 0).all()                                               # never a decrease
    assert len(ts) == len(volume) + 1 and ts.is_monotonic_increasing and ts.is_unique
    assert ts.iloc[0] == d.ohlcv["ts"].iloc[0] and (ts.iloc[1:].to_numpy() > d.ohlcv["ts"].to_numpy()).all()
    assert q.ohlcv is d.ohlcv and q.meta["notes"][OPEN_INTEREST_NOTE] == OI_PROXY_NOTE
    assert OPEN_INTEREST_NOTE not in d.meta["notes"]                                            # input untouched


@pytest.mark.parametrize("volume", [[0.0, 0.0, 0.0], [np.nan, np.nan, np.nan], [-1.0, 0.0, np.nan]])
def test_volume_proxy_refuses_data_without_positive_volume(small_sim, volume):
    with pytest.raises(DataError, match=r"binanceusdm.*volume: missing or non-positive in every bar"):
        volume_oi_proxy(_bars(small_sim, volume))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_volume_proxy_refuses_a_fraction_outside_0_1(small_sim, fraction):
    with pytest.raises(ParameterError, match="fraction"):
        volume_oi_proxy(_bars(small_sim, [1.0, 2.0]), fraction=fraction)


def test_volume_proxy_map_is_labelled_and_only_when_asked(small_sim):
    """Every venue's map notes say the open interest is a proxy; a map of the same data without it does not."""
    from liqlab.engine.heatmap import build_heatmap
    from liqlab.io.dataset import load_collection

    coll = load_collection(small_sim)
    kw = dict(time_step="1h", progress=False)
    hm = build_heatmap(volume_oi_proxy(coll), **kw)
    assert {k: v for k, v in hm.meta["notes"].items() if v == OI_PROXY_NOTE} == {
        f"{v}/open_interest": OI_PROXY_NOTE for v in coll.venues}
    assert hm.long.sum() > 0 and hm.summary()["notes"] == hm.meta["notes"]
    assert OI_PROXY_NOTE not in build_heatmap(coll, **kw).meta["notes"].values()
    r = hm.relative("1D", basis="volume")
    assert OI_PROXY_NOTE in r.meta["notes"].values()
    with pytest.raises(ParameterError, match="proxy"):   # no observed open interest to divide by
        hm.relative(basis="open_interest")

