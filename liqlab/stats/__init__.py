"""Statistics: every claim about the maps, tested against nulls with calibrated errors.

Scores against simulated truth (:mod:`~liqlab.stats.score`), stylized facts of open interest
(:mod:`~liqlab.stats.facts`), validation against realized liquidations (:mod:`~liqlab.stats.validate`, built
on the per-step series of :mod:`~liqlab.stats.steps` and the rank metrics of :mod:`~liqlab.stats.metrics`),
parameter fitting (:mod:`~liqlab.stats.fit` with the leverage-mix regression of :mod:`~liqlab.stats.mix`),
the magnet test (the :mod:`~liqlab.stats.magnet` package) and its calibration on the simulator
(:mod:`~liqlab.stats.calibrate`). Every test is measured against the nulls of :mod:`~liqlab.stats.nulls`
(the one price-only placebo, the bootstrapped-path pipeline null) with the block bootstraps of
:mod:`~liqlab.stats.resample`. Functions return numbers and frames, never figures. It may import
:mod:`liqlab.io`, :mod:`liqlab.engine` and :mod:`liqlab.sim` (plus ``liqlab.errors``, ``liqlab._util``,
``liqlab._jit``); never plotting.
"""
