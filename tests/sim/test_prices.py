"""The simulated market's exogenous paths (liqlab.sim.prices): clock, streams, latent index, venue prices."""

from __future__ import annotations

import numpy as np
import pandas as pd

from liqlab.sim.config import make_config
from liqlab.sim.prices import latent_path, make_clock, stream, venue_key, venue_prices
from liqlab.sim.simulation import SimulationConfig


def test_latent_returns_have_fat_tails_and_volatility_clustering():
    from liqlab.sim.prices import latent_path

    lat = latent_path(SimulationConfig(seed=5), 30 * 1440, 0)
    r = lat["ret"]
    z = (r - r.mean()) / r.std()
    assert (z**4).mean() > 6  # fat tails (normal: 3)
    a = np.abs(r) - np.abs(r).mean()
    assert (a[1:] * a[:-1]).mean() / a.var() > 0.05  # |r| autocorrelated: volatility clusters
    assert (lat["high"] >= np.maximum(lat["open"], lat["close"])).all()
    assert (lat["low"] <= np.minimum(lat["open"], lat["close"])).all()


def test_clock_has_warmup_then_output_bars_from_start():
    c = make_config(days=0.5, warmup_days=0.25, start="2025-03-01T12:00:00Z")
    k = make_clock(c)
    assert (k.warm, k.nb) == (360, 360 + 720)
    assert k.times[k.warm] == pd.Timestamp("2025-03-01T12:00:00Z") and str(k.times.tz) == "UTC"
    assert (np.diff(k.minute) == 1).all() and k.minute[k.warm] == k.start_min


def test_streams_are_independent_of_venue_order_and_reproducible():
    a = stream(7, 1, venue_key("okx")).standard_normal(5)
    assert np.array_equal(a, stream(7, 1, venue_key("okx")).standard_normal(5))
    assert not np.array_equal(a, stream(7, 1, venue_key("bybit")).standard_normal(5))
    c = make_config(days=0.1, warmup_days=0.0, seed=2)
    lat = latent_path(c, 144, 0)
    one = venue_prices(c, "okx", lat)
    alone = venue_prices(make_config(c, venues=("okx",)), "okx", lat)
    assert all(np.array_equal(one[k], alone[k]) for k in one)
    assert np.isclose(np.exp(lat["open"][0]), c.base_price)  # the index opens at base_price after the warm-up
