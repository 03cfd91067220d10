"""Margin math and the heatmap engine: from a dataset to liquidation levels, time × price.

Liquidation-price formulas (:mod:`~liqlab.engine.margin`), the engine's parameters
(:mod:`~liqlab.engine.params`), the price grid (:mod:`~liqlab.engine.grid`), the fine pass that turns bars and
open-interest changes into deposits (:mod:`~liqlab.engine.fine`, :mod:`~liqlab.engine.deposits`) held as step
inputs (:mod:`~liqlab.engine.inputs`), the step recursion with its numba and numpy twins
(:mod:`~liqlab.engine.kernel`, :mod:`~liqlab.engine.fine_kernels`), the :class:`~liqlab.engine.heatmap.Heatmap`
result, the liquidation map of a snapshot (:mod:`~liqlab.engine.liqmap`), its files (:mod:`~liqlab.engine.store`) and memory estimates (:mod:`~liqlab.engine.memory`).
It may import :mod:`liqlab.io`; never statistics, simulation or plotting.
"""
