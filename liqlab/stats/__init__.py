"""Statistics: every claim about the maps, tested against nulls with calibrated errors.

Scores against simulated truth (:mod:`~liqlab.stats.score`), stylized facts of open interest
(:mod:`~liqlab.stats.facts`), validation against realized liquidations (:mod:`~liqlab.stats.validate`),
parameter fitting (:mod:`~liqlab.stats.fit`), the magnet test (:mod:`~liqlab.stats.magnet`) and its
calibration on the simulator (:mod:`~liqlab.stats.calibrate`). Functions return numbers and frames, never
figures. It may import :mod:`liqlab.io`, :mod:`liqlab.engine` and :mod:`liqlab.sim`; never plotting.
"""
