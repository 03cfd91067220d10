"""Simulation: a synthetic market with known liquidation levels, for scoring and calibrating the instruments.

The market simulator (:mod:`~liqlab.sim.simulation`), its trader behaviours (:mod:`~liqlab.sim.traders`)
and the ground-truth maps it writes (:mod:`~liqlab.sim.truth`). Every dataset it writes is labelled
synthetic. It may import :mod:`liqlab.io` and :mod:`liqlab.engine`; never statistics or plotting.
"""
