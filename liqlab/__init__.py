"""liqlab: a research toolkit for crypto liquidation heatmaps.

Nothing happens at import: the public API below is resolved lazily on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (None: the name is a submodule, e.g. liqlab.plot, liqlab.magnet).
# Command modules whose main function has the module's name (fetch, score, validate, fit, calibrate, record)
# are exposed as modules: liqlab.fetch.fetch(...), so the attribute never changes meaning after an import.
_API: dict[str, str | None] = {
    "DataError": "errors",
    "ParameterError": "errors",
    "FetchError": "errors",
    "LiqlabError": "errors",
    "Dataset": "dataset",
    "Collection": "dataset",
    "load": "dataset",
    "load_dataset": "dataset",
    "load_collection": "dataset",
    "write_dataset": "dataset",
    "simulate": "simulation",
    "simulate_market": "simulation",
    "SimulationConfig": "simulation",
    "load_truth": "truth",
    "true_heatmap": "truth",
    "liquidation_price": "margin",
    "TierTable": "margin",
    "default_tiers": "margin",
    "HeatmapParams": "params",
    "build_heatmap": "heatmap",
    "Heatmap": "heatmap",
    "import_files": "importers",
    "magnet_test": "magnet",
    "MagnetParams": "magnet",
    "explore": "widgets",
    "run_report": "report",
    "stylized_facts": "facts",
    "facts_side_by_side": "facts",
    "plot": None,
    "magnet": None,
    "fetch": None,
    "score": None,
    "validate": None,
    "fit": None,
    "calibrate": None,
    "record": None,
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'liqlab' has no attribute {name!r}")
    modname = _API[name]
    if modname is None:
        return importlib.import_module(f"liqlab.{name}")
    mod = importlib.import_module(f"liqlab.{modname}")
    return getattr(mod, name)


def __dir__() -> list[str]:
    return __all__
