"""Margin math and the heatmap engine: from a dataset to liquidation levels, time × price.

Liquidation-price formulas (:mod:`~liqlab.engine.margin`), the engine's parameters
(:mod:`~liqlab.engine.params`), the price grid and fine pass that turn bars and open-interest changes into
deposits, the step recursion with its numba and numpy twins (:mod:`~liqlab.engine.kernel`,
:mod:`~liqlab.engine.fine_kernels`), the :class:`~liqlab.engine.heatmap.Heatmap` result and memory estimates
(:mod:`~liqlab.engine.memory`). It may import :mod:`liqlab.io`; never statistics, simulation or plotting.
"""
