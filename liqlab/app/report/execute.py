"""One notebook of a run: papermill execution, the stale-data banner, HTML export, its results JSON.

Per notebook a run folder holds the executed ``.ipynb`` (partly executed with the error when it
failed), a self-contained ``.html`` (no CDN; Bokeh outputs as the notebook produced them) and the
results JSON the notebook wrote. A failure is contained: it is recorded, and the run goes on.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

from liqlab.app.messages import exception_summary
from liqlab.app.report.config import NotebookSpec, ReportConfig
from liqlab.app.report.figures import key_figures
from liqlab.app.runner import export_html, papermill_execute

__all__ = ["execute"]


def _banner_cell(info: dict):
    """A markdown cell warning that the refresh failed and the report ran on cached data of some age."""
    import nbformat

    age = info.get("age_hours")
    age_txt = f"{age:.1f} hours old (last bar {info.get('data_end')})" if age is not None else "of unknown age"
    msg = html.escape(str(info.get("refresh_error", "refresh failed")))
    text = (
        '<div class="liqlab-stale" style="border:2px solid #b00;background:#fee;color:#600;padding:8px 12px;'
        'font-weight:bold">'
        f"&#9888; STALE DATA: the refresh of {html.escape(info.get('label', ''))} failed ({msg}). "
        f"This report ran on cached data that is {age_txt}.</div>"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["liqlab-stale-banner"]
    return cell


def _run_papermill(nb: Any, partial: Path, spec: NotebookSpec, params: dict, config: ReportConfig,
                   item: dict) -> None:
    """Execute ``nb`` into ``partial``; set ``item['status']`` (and ``item['error']`` on failure)."""
    try:
        papermill_execute(
            nb,
            partial,
            parameters=params,
            kernel_name=config.kernel_name,
            progress_bar=False,
            cwd=str(spec.path.parent),
            execution_timeout=config.cell_timeout,
        )
        item["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any notebook failure is contained to this run
        item["status"] = "failed"
        ename = getattr(exc, "ename", None)
        evalue = getattr(exc, "evalue", None)
        item["error"] = f"{ename}: {evalue}" if ename else exception_summary(exc)


def _keep_outputs(item: dict, partial: Path, out_nb: Path, results: Path) -> None:
    """Move the executed notebook into place, export its HTML, read its results' key figures."""
    if partial.exists():
        os.replace(partial, out_nb)
        try:
            item["html"] = export_html(out_nb).name
        except Exception as exc:  # noqa: BLE001 - the notebook is kept even if HTML fails
            item["html_error"] = exception_summary(exc)
    else:
        item.pop("ipynb")
    if results.exists():
        item["results"] = results.name
        try:
            item["figures"] = key_figures(json.loads(results.read_text()))
        except (OSError, ValueError) as exc:
            item["results_error"] = exception_summary(exc)


def execute(spec: NotebookSpec, params: dict, out_dir: Path, prefix: str, config: ReportConfig,
            banner: dict | None, *, alerts: list | None = None) -> dict:
    """Run one notebook with papermill into ``out_dir``; export HTML; read its results JSON.

    Parameters
    ----------
    spec : NotebookSpec
        The notebook.
    params : dict
        Its checked parameters, with the dataset and results paths filled in.
    out_dir : pathlib.Path
        The run folder.
    prefix : str
        Prepended to the output names (``<dataset>-`` when a report has several datasets).
    config : ReportConfig
        The report (kernel name, cell timeout in seconds).
    banner : dict, optional
        The dataset's status when its refresh failed: a stale-data banner is inserted as the first cell.
    alerts : list of (str, dict), optional
        Per dataset shown, its name and its alerts (:func:`~liqlab.app.report.alerts.dataset_alerts`):
        an alert banner each, inserted on top (under the stale-data banner).

    Returns
    -------
    dict
        The notebook's entry in the run record: ``notebook``, ``name``, ``status`` ('ok' | 'failed'),
        ``seconds`` and, where produced, ``ipynb``, ``html``, ``results``, ``figures``, ``error``,
        ``html_error``, ``results_error``.
    """
    import nbformat

    stem = prefix + spec.stem
    out_nb = out_dir / f"{stem}.ipynb"
    partial = out_dir / f".{stem}.partial.ipynb"
    results = out_dir / f"{stem}.json"
    item: dict[str, Any] = {"notebook": str(spec.path), "name": stem, "ipynb": out_nb.name, "status": "running"}
    nb = nbformat.read(str(spec.path), as_version=4)
    if alerts:
        from liqlab.app.report.alerts import alert_cell

        nb.cells[0:0] = [alert_cell(label, info) for label, info in alerts]
    if banner is not None:
        nb.cells.insert(0, _banner_cell(banner))
    t0 = time.monotonic()
    _run_papermill(nb, partial, spec, params, config, item)
    item["seconds"] = round(time.monotonic() - t0, 2)
    _keep_outputs(item, partial, out_nb, results)
    return item
