"""Simulation: a synthetic market with known liquidation levels, for scoring and calibrating the instruments.

The market simulator (:mod:`~liqlab.sim.simulation`: ``simulate``, ``simulate_market``) runs its steps
from one module each: the knobs and worlds (:mod:`~liqlab.sim.config`), the exogenous price paths
(:mod:`~liqlab.sim.prices`), the traders' positions (:mod:`~liqlab.sim.positions`, behaviours in
:mod:`~liqlab.sim.traders`), the numba bar loop (:mod:`~liqlab.sim.market_loop`) and the tables
(:mod:`~liqlab.sim.tables`); the ground truth it writes is read by :mod:`~liqlab.sim.truth`. Every
dataset it writes is labelled synthetic. It may import :mod:`liqlab.io` and :mod:`liqlab.engine`; never
statistics or plotting.
"""
