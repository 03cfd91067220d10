"""Scheduled papermill reports: refresh data, run notebooks, keep dated run folders and an index.

A run of report ``<name>`` goes to ``<reports_dir>/<name>/<UTC stamp>/`` (e.g. ``20261125T101530Z``,
``-2`` appended when the second is taken) and holds per notebook the executed ``.ipynb`` (partly
executed with the error when it failed), a self-contained ``.html`` (no CDN, Bokeh outputs as the
notebook produced them) and the results JSON the notebook wrote, plus ``run.json`` (status, data age,
timings). ``<name>/latest`` points to the newest run that produced reports (a symlink, or a one-line
pointer file where symlinks are impossible); ``<reports_dir>/index.html`` lists every run.

Times are UTC. Data age is hours between the run start and the last OHLCV bar of the dataset.

One module per step: :mod:`~liqlab.app.report.config` (what a report is, from YAML or flags),
:mod:`~liqlab.app.report.parameters` (the check against each notebook's parameters cell),
:mod:`~liqlab.app.report.folders` (run folders, ``latest``, retention, the lock),
:mod:`~liqlab.app.report.data` (data age and refresh), :mod:`~liqlab.app.report.execute` (one notebook,
the stale-data banner), :mod:`~liqlab.app.report.figures` (key figures from results JSON),
:mod:`~liqlab.app.report.run` (one run) and :mod:`~liqlab.app.report.index` (``index.html``). The names
below are importable from here.
"""

from __future__ import annotations

from liqlab.app.report.config import (DEFAULT_RETENTION, NotebookSpec, ReportConfig, config_from_mapping,
                                      flags_config, load_config, load_overrides, with_options)
from liqlab.app.report.data import RefreshFn, data_status, default_refresh
from liqlab.app.report.figures import key_figures
from liqlab.app.report.folders import ReportLocked, list_runs, new_run_dir, report_lock, resolve_latest
from liqlab.app.report.index import write_index
from liqlab.app.report.parameters import check_parameters
from liqlab.app.report.run import RunResult, run_report

__all__ = [
    "NotebookSpec",
    "ReportConfig",
    "RunResult",
    "ReportLocked",
    "load_config",
    "load_overrides",
    "check_parameters",
    "run_report",
    "write_index",
    "resolve_latest",
    "report_lock",
    "DEFAULT_RETENTION",
    "config_from_mapping",
    "flags_config",
    "with_options",
    "list_runs",
    "new_run_dir",
    "data_status",
    "default_refresh",
    "key_figures",
    "RefreshFn",
]
