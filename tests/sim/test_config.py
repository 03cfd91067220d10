"""The simulated market's knobs (liqlab.sim.config): checks, worlds, the population's leverage mix."""

from __future__ import annotations

import pytest

from liqlab._util import VENUES
from liqlab.errors import ParameterError
from liqlab.sim import simulation
from liqlab.sim.config import (POPULATION_LEVERAGE_WEIGHTS, POPULATION_LEVERAGES, WORLDS, SimulationConfig,
                               make_config)

BEHAVIOUR = ("herding_branching", "sentiment_sd", "breakout_intensity", "fade_intensity", "whale_share",
             "whale_event_share", "leverage_vol_elasticity")


def test_config_rejects_bad_values():
    with pytest.raises(ParameterError, match="days"):
        make_config(days=0)
    with pytest.raises(ParameterError, match="unknown venue"):
        make_config(venues="binanceusdm,kraken")
    with pytest.raises(ParameterError, match="unknown simulation parameter"):
        make_config(dayz=3)
    with pytest.raises(ParameterError, match="garch"):
        make_config(garch_alpha=0.5, garch_beta=0.6)
    assert make_config(venues="okx, bybit").venues == ("okx", "bybit")


def test_worlds_presets_and_config_semantics():
    d = make_config()
    assert d.world == "default" and all(getattr(d, k) > 0 for k in BEHAVIOUR)
    h = make_config(world="homogeneous")
    assert h.world == "homogeneous" and all(getattr(h, k) == 0 for k in BEHAVIOUR)
    assert h.arrivals_per_min == 20.0 and h.size_max_usd == 1.5e7
    # the caller's own values win over the preset
    assert make_config(world="homogeneous", herding_branching=0.3).herding_branching == 0.3
    # a world named in the overrides of a config replaces its behaviour fields
    assert make_config(SimulationConfig(), world="homogeneous").herding_branching == 0.0
    with pytest.raises(ParameterError, match="world"):
        make_config(world="mars")
    with pytest.raises(ParameterError, match="herding_branching"):
        make_config(herding_branching=1.0)
    assert set(WORLDS) >= {"default", "homogeneous"}


def test_defaults_are_the_shared_venues_and_the_population_mix():
    c = SimulationConfig()
    assert c.venues == VENUES and set(c.venue_share) == set(VENUES)
    assert c.leverages == POPULATION_LEVERAGES and c.leverage_weights == POPULATION_LEVERAGE_WEIGHTS
    assert abs(sum(POPULATION_LEVERAGE_WEIGHTS) - 1.0) < 1e-12
    # the public path liqlab.sim.simulation keeps naming the same objects
    assert simulation.SimulationConfig is SimulationConfig and simulation.make_config is make_config
    assert simulation.WORLDS is WORLDS


def test_checks_name_the_first_bad_field_in_order():
    with pytest.raises(ParameterError, match=r"^start: must be a whole minute"):
        make_config(start="2025-01-01T00:00:30Z")
    with pytest.raises(ParameterError, match=r"^hunt_range: must be > 0"):
        make_config(hunt_range=0.0, warmup_days=-1.0)  # the positive fields are checked before the others
    with pytest.raises(ParameterError, match=r"^oi_minutes: must be an integer dividing 1440"):
        make_config(oi_minutes=7)


def test_symbol_presets_btc_is_the_default_and_eth_is_scaled():
    from liqlab.sim.config import SYMBOL_PRESETS, SYMBOL_SEED_OFFSETS, make_config, symbol_names

    base = make_config(days=2)
    btc = make_config(days=2, asset="btc")
    assert btc == base and btc.config_hash() == base.config_hash()   # the BTC sample is unchanged
    eth = make_config(days=2, seed=5, asset="ETH")
    assert eth.symbol == "ETH/USDT:USDT" and eth.seed == 5 + SYMBOL_SEED_OFFSETS["ETH"]
    for k, v in SYMBOL_PRESETS["ETH"].items():
        assert getattr(eth, k) == v
    assert make_config(asset="ETH", base_price=2000.0).base_price == 2000.0   # the caller's value wins
    # on a SimulationConfig the preset replaces its asset fields
    assert make_config(base, asset="ETH").symbol == "ETH/USDT:USDT"
    assert symbol_names("btc, ETH") == ("BTC", "ETH")
    for bad, pattern in (("", "at least one"), ("BTC,DOGE", "DOGE"), ("ETH,eth", "duplicates")):
        with pytest.raises(ParameterError, match=pattern):
            symbol_names(bad)
