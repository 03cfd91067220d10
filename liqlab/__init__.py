"""liqlab: a research toolkit for crypto liquidation heatmaps.

Nothing happens at import: the public API below is resolved lazily on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module (below liqlab) that defines it. A name equal to its module's last part is the module
# itself (liqlab.plot is liqlab.viz.plot): command modules whose main function has the module's name (fetch,
# score, validate, fit, calibrate, record) are exposed as modules, liqlab.fetch.fetch(...), so the attribute
# never changes meaning after an import.
_API: dict[str, str] = {
    "DataError": "errors",
    "ParameterError": "errors",
    "FetchError": "errors",
    "LiqlabError": "errors",
    "Dataset": "io.dataset",
    "Collection": "io.dataset",
    "load": "io.dataset",
    "load_dataset": "io.dataset",
    "load_collection": "io.dataset",
    "write_dataset": "io.dataset",
    "simulate": "sim.simulation",
    "simulate_market": "sim.simulation",
    "SimulationConfig": "sim.simulation",
    "load_truth": "sim.truth",
    "true_heatmap": "sim.truth",
    "liquidation_price": "engine.margin",
    "TierTable": "io.tiers",
    "default_tiers": "io.tiers",
    "HeatmapParams": "engine.params",
    "build_heatmap": "engine.heatmap",
    "Heatmap": "engine.heatmap",
    "import_files": "io.importers",
    "magnet_test": "stats.magnet",
    "MagnetParams": "stats.magnet",
    "explore": "viz.widgets",
    "run_report": "app.report",
    "stylized_facts": "stats.facts",
    "facts_side_by_side": "stats.facts",
    "plot": "viz.plot",
    "magnet": "stats.magnet",
    "fetch": "io.fetch",
    "score": "stats.score",
    "validate": "stats.validate",
    "fit": "stats.fit",
    "calibrate": "stats.calibrate",
    "record": "io.record",
}

__all__ = sorted(_API)

# the layer subpackages, bottom to top (docs/DESIGN.md); reachable as attributes too
_LAYERS = ("io", "engine", "sim", "stats", "viz", "app")


def __getattr__(name: str) -> Any:
    if name in _LAYERS:
        return importlib.import_module(f"liqlab.{name}")
    if name not in _API:
        raise AttributeError(f"module 'liqlab' has no attribute {name!r}")
    modname = _API[name]
    mod = importlib.import_module(f"liqlab.{modname}")
    if modname.rsplit(".", 1)[-1] == name:
        return mod
    return getattr(mod, name)


def __dir__() -> list[str]:
    return __all__
