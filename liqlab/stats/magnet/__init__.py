"""The magnet test: do liquidation clusters attract price? (design and calibration: docs/MAGNET.md)

Primary statistic, the mirror-level first-passage test. At non-overlapping decision times t (spaced
by the horizon H), using only information up to t: take the dominant cluster (largest smoothed USD
mass; short-liquidation map above price, long map below) within log-distance [d_min, k·ATR/P] of the
price P, keep it if its dominance D = mass / (largest mass on the other side) >= r, put a mirror
level at the same log-distance on the other side, and record which level bar highs/lows touch first
in (t, t+H]. Y = 1 if the cluster wins. Under a driftless (log-)martingale P(Y=1) = 1/2 whatever the
selection rule, so no volatility model is needed. Same-bar double touches are dropped and counted;
events with neither level touched are reported as the untouched share.

Inference: p̂, lift = p̂ − p0, stationary-bootstrap (Politis–Romano, Politis–White block length) 95%
CI and two-sided p-value; Newey–West (HAC) z-test as a cross-check; logit with momentum/funding
controls (HAC); dose-response by dominance; Benjamini–Yekutieli q-values; Hansen SPA and Romano–Wolf
StepM over a parameter grid; Kaplan–Meier time-to-touch; post-touch acceleration; volatility-matched
random levels. Contrasts: placebo heatmap (:func:`liqlab.stats.nulls.placebo_data`: constant deposits; the primary
OI-vs-placebo contrast is a side race where the OI-specific excess map and the placebo map disagree)
and pipeline null (:func:`liqlab.stats.nulls.bootstrap_path_dataset`: bootstrapped paths).

Units: prices in quote currency (USD), masses in USD notional, distances as log-price differences
(reported in bp where named ``*_bp``), times UTC (datetime64[ns]), durations in hours.
Maps are (T, B) = time × price bins. Computation only: plotting lives in ``liqlab.viz.magnet_plots``.

Modules: ``params`` (MagnetParams, Bars), ``events`` (find_events), ``inference`` (the tests),
``contrasts`` (OI vs placebo), ``grid`` (run_grid), ``run`` (magnet_test, pipeline_null, MagnetResult),
``report`` (result_table, conclusion). Every public name is importable from ``liqlab.stats.magnet``.
"""

from __future__ import annotations

from liqlab.stats.magnet.contrasts import (discordant_contrast, excess_contrast, excess_maps, paired_placebo,
                                           placebo_contrasts)
from liqlab.stats.magnet.events import EVENT_COLUMNS, decided, events_for, find_events
from liqlab.stats.magnet.grid import HEATMAP_GRID_KEYS, GridResult, parse_grid, run_grid
from liqlab.stats.magnet.inference import (acceleration, by_qvalues, dose_response, hac_mean_test, kaplan_meier,
                                           lift_test, logit_test, random_level_hits, spa_grid, summarize,
                                           touch_curves)
from liqlab.stats.magnet.params import HOUR_NS, Bars, MagnetParams
from liqlab.stats.magnet.report import conclusion, result_table
from liqlab.stats.magnet.run import MagnetResult, magnet_test, pipeline_null
from liqlab.stats.nulls import bootstrap_path_dataset, placebo_data

__all__ = [
    "MagnetParams",
    "Bars",
    "find_events",
    "lift_test",
    "hac_mean_test",
    "logit_test",
    "dose_response",
    "by_qvalues",
    "kaplan_meier",
    "acceleration",
    "random_level_hits",
    "spa_grid",
    "placebo_data",
    "paired_placebo",
    "discordant_contrast",
    "excess_maps",
    "excess_contrast",
    "placebo_contrasts",
    "bootstrap_path_dataset",
    "events_for",
    "magnet_test",
    "pipeline_null",
    "run_grid",
    "MagnetResult",
    "GridResult",
    "parse_grid",
    "result_table",
    "conclusion",
    "summarize",
    "touch_curves",
    "decided",
    "EVENT_COLUMNS",
    "HEATMAP_GRID_KEYS",
    "HOUR_NS",
]
