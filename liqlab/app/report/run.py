"""One run of a report: check, lock, refresh, execute every (dataset, notebook), then latest/index/retention.

The run record (``run.json``) is written when the run starts ('running'), after every notebook, and at
the end: 'ok', 'stale' (a refresh failed; the notebooks ran on cached data under a banner) or
'failed' (a notebook failed, or a failed refresh was refused by ``require_fresh``). Times are UTC.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from liqlab._util import progress as progress_bar
from liqlab.app.messages import exception_summary
from liqlab.app.report.config import NotebookSpec, ReportConfig
from liqlab.app.report.alerts import dataset_alerts
from liqlab.app.report.data import RefreshFn, data_status, refresh_all
from liqlab.app.report.execute import execute
from liqlab.app.report.folders import (RUN_FILE, apply_retention, close_interrupted, iso, new_run_dir, now_utc,
                                       report_lock, set_latest)
from liqlab.app.report.index import write_index
from liqlab.app.report.parameters import check_parameters
from liqlab.app.runner import notebook_parameters
from liqlab.errors import DataError
from liqlab.io import atomic

__all__ = ["RunResult", "run_report"]


@dataclass(frozen=True)
class RunResult:
    """What one run did: its folder, status ('ok' | 'stale' | 'failed') and the run record."""

    name: str
    run_dir: Path
    status: str
    record: dict

    @property
    def exit_code(self) -> int:
        """1 for a failed run, else 0 (the ``liqlab report`` exit status)."""
        return 1 if self.status == "failed" else 0


def run_report(
    config: ReportConfig,
    *,
    overrides: Mapping | None = None,
    refresh_fn: RefreshFn | None = None,
    require_fresh: bool | None = None,
    progress: bool | None = None,
    now: datetime | None = None,
) -> RunResult:
    """Run one report: check parameters, take the lock, refresh, execute, update latest/index/retention.

    Parameters
    ----------
    config : ReportConfig
        The report.
    overrides : mapping, optional
        Parameter overrides (see :func:`~liqlab.app.report.parameters.check_parameters`).
    refresh_fn : RefreshFn, optional
        The refresh (default: the incremental fetch), used when ``config.refresh`` is set.
    require_fresh : bool, optional
        A failed refresh fails the run (default ``config.require_fresh``).
    progress : bool, optional
        Progress bar over the notebooks (None: only on a terminal).
    now : datetime.datetime, optional
        The run's start (aware; default now, UTC): names the run folder and dates the data age.

    Returns
    -------
    RunResult
        Status 'failed' (exit code 1) when a notebook failed or a stale refresh was refused.

    Raises
    ------
    ParameterError
        Bad parameters, before anything runs.
    DataError
        A dataset folder is missing.
    ReportLocked
        Another run of the report holds its lock.
    """
    checked = check_parameters(config, overrides)
    for ds in config.datasets:
        if not ds.exists():
            raise DataError(f"{ds}: dataset not found (report {config.name})")
    require_fresh = config.require_fresh if require_fresh is None else require_fresh
    report_dir = atomic.check_dir_target(config.reports_dir / config.name)
    with report_lock(report_dir):
        start = now or now_utc()
        run_dir = new_run_dir(report_dir, start)
        record: dict[str, Any] = {
            "name": config.name,
            "run": run_dir.name,
            "started": iso(start),
            "status": "running",
            "pid": os.getpid(),
            "notebooks": [],
            "data": [],
            "parameters": checked,
        }
        atomic.write_json(run_dir / RUN_FILE, record)
        close_interrupted(report_dir, run_dir)
        try:
            status = _run_in(config, run_dir, record, checked, refresh_fn, require_fresh, progress, now)
        except BaseException as exc:  # unexpected: the run is marked failed, then the error goes on
            record.update(status="failed", finished=iso(now_utc()), errors=[exception_summary(exc)])
            record.pop("pid", None)
            atomic.write_json(run_dir / RUN_FILE, record)
            write_index(config.reports_dir)
            raise
        if status != "failed":
            set_latest(report_dir, run_dir)
        record["removed"] = apply_retention(report_dir, config.retention)
        write_index(config.reports_dir)
    return RunResult(config.name, run_dir, status, record)


def _add_data_status(config: ReportConfig, refreshed: dict[str, dict], data_now: datetime, out: list[dict]) -> None:
    """Append each dataset's status (:func:`data_status`) with the outcome of its refresh to ``out``."""
    for ds in config.datasets:
        info = data_status(ds, data_now)
        r = refreshed.get(str(ds))
        if r is not None:
            info["refreshed"] = r["ok"]
            if not r["ok"]:
                info["refresh_error"] = r["error"]
        out.append(info)


def _add_alerts(config: ReportConfig, checked: dict, data: list[dict]) -> None:
    """Each dataset's alerts (:func:`~liqlab.app.report.alerts.dataset_alerts`) into its data status."""
    if config.alerts is None:
        return
    merged: dict = {}
    for params in checked.values():
        merged.update(params)
    for ds, info in zip(config.datasets, data):
        info["alerts"] = dataset_alerts(ds, config.alerts, merged)


def _notebook_params(config: ReportConfig, spec: NotebookSpec, ds: Path | None, run_dir: Path, prefix: str,
                     checked: dict) -> dict:
    """The checked parameters plus the dataset and results paths, where the notebook declares them."""
    params = dict(checked[spec.stem])
    decl = notebook_parameters(spec.path)
    if ds is not None and config.dataset_parameter in decl:
        params[config.dataset_parameter] = str(ds.resolve())
    if config.results_parameter in decl:
        params[config.results_parameter] = str((run_dir / f"{prefix}{spec.stem}.json").resolve())
    return params


def _jobs(config: ReportConfig) -> list[tuple[Path | None, NotebookSpec, bool]]:
    """(dataset, notebook, all datasets at once): per dataset, except notebooks declaring ``datasets``
    (they compare the report's datasets and run once with all of them)."""
    datasets: list[Path | None] = list(config.datasets) or [None]
    jobs = []
    for spec in config.notebooks:
        if config.datasets and "datasets" in notebook_parameters(spec.path):
            jobs.append((None, spec, True))
        else:
            jobs += [(ds, spec, False) for ds in datasets]
    return sorted(jobs, key=lambda x: datasets.index(x[0]) if x[0] in datasets and not x[2] else len(datasets))


def _run_notebooks(config: ReportConfig, run_dir: Path, record: dict, checked: dict,
                   progress: bool | None) -> None:
    """Execute every (dataset, notebook) in turn, appending to and saving ``record`` after each."""
    from liqlab.app.runner import asset_parameters

    jobs = _jobs(config)
    bar = progress_bar(total=len(jobs), desc=f"report {config.name}", unit="nb",
                       enabled=progress if jobs else False, leave=True)
    with bar:
        for ds, spec, every in jobs:
            prefix = f"{ds.name}-" if ds is not None and len(config.datasets) > 1 else ""
            params = _notebook_params(config, spec, ds, run_dir, prefix, checked)
            if every:
                decl = notebook_parameters(spec.path)
                params.update({k: v for k, v in asset_parameters(config.datasets).items() if k in decl})
            info = next((d for d in record["data"] if ds is not None and d["path"] == str(ds)), None)
            banner = info if info is not None and info.get("refreshed") is False else None
            shown = record["data"] if every else [info] if info is not None else []
            alerts = [(d["label"], d["alerts"]) for d in shown if d.get("alerts")]
            item = execute(spec, params, run_dir, prefix, config, banner, alerts=alerts)
            if ds is not None:
                item["dataset"] = ds.name
            record["notebooks"].append(item)
            atomic.write_json(run_dir / RUN_FILE, record)
            bar.update(1)


def _run_in(config: ReportConfig, run_dir: Path, record: dict, checked: dict, refresh_fn: RefreshFn | None,
            require_fresh: bool, progress: bool | None, now: datetime | None) -> str:
    """Refresh, execute every (dataset, notebook), fill ``record``; returns the run status."""
    t0 = time.monotonic()
    refreshed = refresh_all(config, refresh_fn)
    _add_data_status(config, refreshed, now_utc() if now is None else now, record["data"])
    _add_alerts(config, checked, record["data"])
    stale = [d for d in record["data"] if d.get("refreshed") is False]
    problems: list[str] = []
    if stale and require_fresh:
        problems.append("refresh failed and --require-fresh is set: " + "; ".join(
            f"{d['label']}: {d['refresh_error']}" for d in stale))
    else:
        _run_notebooks(config, run_dir, record, checked, progress)
        problems += [f"{n['name']}: {n.get('error', 'failed')}" for n in record["notebooks"] if n["status"] != "ok"]
    status = "failed" if problems else ("stale" if stale else "ok")
    record.update(status=status, finished=iso(now_utc()), seconds=round(time.monotonic() - t0, 2))
    if problems:
        record["errors"] = problems
    if stale:
        record["banner"] = "stale data: " + "; ".join(f"{d['label']} {d.get('age_hours')} h old" for d in stale)
    record.pop("pid", None)
    atomic.write_json(run_dir / RUN_FILE, record)
    return status
