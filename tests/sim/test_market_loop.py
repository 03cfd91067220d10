"""The simulated market's bar loop (liqlab.sim.market_loop): numba and plain Python give the same market."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest

from liqlab.sim import market_loop
from liqlab.sim.config import make_config
from liqlab.sim.market_loop import MarketState, market_kernel, run_market
from liqlab.sim.positions import draw_positions
from liqlab.sim.prices import latent_path, make_clock, venue_prices


def _pieces(**kw):
    c = make_config(days=0.25, warmup_days=0.25, **kw)
    clock = make_clock(c)
    lat = latent_path(c, clock.nb, clock.warm)
    vps = [venue_prices(c, v, lat) for v in c.venues]
    return c, clock, lat, vps, draw_positions(c, lat, vps)


@pytest.mark.parametrize("kw", [dict(seed=4), dict(seed=5, world="homogeneous"),
                                dict(seed=6, cascade_impact=2.0, hunt_intensity=0.5),
                                dict(seed=7, cascade_impact=2.0, hunt_intensity=0.5, margin_topup=0.5)])
def test_plain_python_loop_equals_the_numba_loop(kw):
    pytest.importorskip("numba")
    c, clock, lat, vps, pool = _pieces(**kw)
    fast = run_market(c, clock, lat, vps, pool, use_numba=True)
    slow = run_market(c, clock, lat, vps, pool, use_numba=False)
    assert (fast.status == 3).any() and (fast.status == 2).any() and (fast.status == 1).any()
    for f in dataclasses.fields(MarketState):
        np.testing.assert_array_equal(getattr(fast, f.name), getattr(slow, f.name), err_msg=f.name)
    if c.cascade_impact > 0:
        assert np.abs(fast.imp_end).max() > 0  # the feedback paths ran


def test_the_kernel_compiles_with_helpers_that_call_each_other_and_leaves_the_module_alone():
    pytest.importorskip("numba")
    loop = market_kernel(use_numba=True)
    assert loop is not market_loop._market_loop and hasattr(loop, "py_func")
    # _hpop calls _hsift: both run compiled, and the module's own functions stay plain Python
    for name in ("_hpush", "_hsift", "_hpop", "_hbin", "_market_loop"):
        assert isinstance(getattr(market_loop, name), types.FunctionType), name
    keys = np.zeros(8)
    ids = np.zeros(8, dtype=np.int64)
    size = 0
    for pid, key in enumerate([5.0, 1.0, 4.0, 2.0, 3.0]):
        size = market_loop._hpush(keys, ids, 0, size, key, pid)
    popped = []
    while size:
        popped.append(keys[0])
        size = market_loop._hpop(keys, ids, 0, size)
    assert popped == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_no_numba_environment_runs_the_plain_loop(monkeypatch):
    monkeypatch.setenv("LIQLAB_NO_NUMBA", "1")
    assert market_kernel() is market_loop._market_loop
    assert market_kernel(use_numba=False) is market_loop._market_loop
