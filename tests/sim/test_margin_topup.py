"""The margin top-up knob (``SimulationConfig.margin_topup``): off by default and then byte-identical to the
simulator before the knob existed; on, positions add margin instead of their first liquidation."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from liqlab.errors import ParameterError
from liqlab.sim.config import make_config
from liqlab.sim.market_loop import topup_flags
from liqlab.sim.simulation import simulate_market

# Fingerprints of the simulator's tables and of the config hash, taken at the commit before the knob was
# added (b42ca3a) with exactly these configurations: the knob at its default must not change a byte.
BEFORE_KNOB = [
    (dict(days=1, seed=5, venues=("binanceusdm", "okx"), warmup_days=2, cascade_impact=0.5, hunt_intensity=0.2),
     "52eec71b8fd5d447", "aecd902807a2ca8c"),
    (dict(days=1, seed=6, venues=("bybit",), warmup_days=2, world="homogeneous"), "a45ca31456545d68",
     "40b465d22ce42034"),
]
DEFAULT_CONFIG_HASH_BEFORE_KNOB = "5a74aa97ea2da3c1"


def _digest(m) -> str:
    h = hashlib.sha256()
    for d in m.collection.datasets:
        for t in (d.ohlcv, d.open_interest, d.funding, d.liquidations):
            h.update(pd.util.hash_pandas_object(t, index=False).values.tobytes())
    for t in (m.truth.ledger, m.truth.events):
        h.update(pd.util.hash_pandas_object(t, index=False).values.tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("kw,digest,chash", BEFORE_KNOB)
def test_default_is_byte_identical_to_before_the_knob(kw, digest, chash):
    m = simulate_market(**kw)
    assert m.config.margin_topup == 0.0
    assert m.config.config_hash() == chash
    assert "margin_topup" not in m.config.to_dict()
    assert _digest(m) == digest


def test_default_config_hash_unchanged():
    assert make_config().config_hash() == DEFAULT_CONFIG_HASH_BEFORE_KNOB


def test_topup_removes_liquidations_and_is_recorded():
    base = dict(days=2, seed=1, venues=("binanceusdm",), warmup_days=3)
    off = simulate_market(**base).collection.datasets[0].liquidations
    half = simulate_market(**base, margin_topup=0.5)
    on = half.collection.datasets[0].liquidations
    assert half.config.to_dict()["margin_topup"] == 0.5
    assert half.config.config_hash() != simulate_market(**base).config.config_hash()
    # every position tops up at most once, so liquidations fall but do not vanish
    assert 0 < len(on) < len(off)
    assert on["value"].sum() < off["value"].sum()


def test_topped_up_level_moves_away_by_its_margin_distance():
    from liqlab.sim.market_loop import _topup

    def one(side, ep, lp):
        hkey, hid = np.zeros((2, 4)), np.zeros((2, 4), dtype=np.int64)
        hsize = np.zeros((2, 1), dtype=np.int64)
        lp0, lpc = np.array([lp]), np.array([lp])
        _topup(0, side, 0, 0, hkey, hid, hsize, np.array([ep]), lp0, lpc, False, np.zeros((2, 1)),
               np.zeros(1, dtype=np.int64), np.ones(1), 0.0, 1)
        return lpc[0], lp0[0], hsize[side, 0], hkey[side, 0]

    assert one(0, 100.0, 90.0) == pytest.approx((80.0, 80.0, 1, -80.0))  # long: heap keyed by −LP
    assert one(1, 100.0, 110.0) == pytest.approx((120.0, 120.0, 1, 120.0))


def test_flags_follow_the_probability():
    c = make_config(margin_topup=0.3)
    f = topup_flags(c, 20_000)
    assert f.dtype == np.int8 and abs(f.mean() - 0.3) < 0.02
    assert not topup_flags(make_config(), 50).any()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_bad_values_are_refused(bad):
    with pytest.raises(ParameterError, match="margin_topup"):
        make_config(margin_topup=bad)
