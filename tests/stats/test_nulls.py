"""The nulls of liqlab.stats.nulls: the one price-only placebo and the bootstrapped-path pipeline null."""

from __future__ import annotations

import numpy as np
import pandas as pd

from liqlab.stats.nulls import placebo_data


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
