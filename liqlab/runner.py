"""Execute notebooks with papermill and export them to self-contained HTML (Bokeh resources inline)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import atomic
from .errors import ParameterError

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@dataclass(frozen=True)
class NotebookRun:
    """Outcome of one notebook execution."""

    notebook: str
    ipynb: Path
    html: Path | None
    ok: bool
    error: str | None = None
    seconds: float = 0.0


def notebook_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Parameters declared in the notebook's `parameters` cell: name -> {inferred_type_name, default}."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(path)))


def check_parameters(path: str | os.PathLike, parameters: dict[str, Any]) -> None:
    """Raise ParameterError if a parameter is not declared in the notebook's `parameters` cell."""
    declared = notebook_parameters(path)
    for name in parameters:
        if name not in declared:
            raise ParameterError(
                f"{Path(path).name}: unknown parameter {name!r} (declared: {', '.join(sorted(declared)) or 'none'})"
            )


def export_html(ipynb: str | os.PathLike, html: str | os.PathLike) -> Path:
    """Export an executed notebook to one HTML file (code shown, outputs with inline BokehJS)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    atomic.write_text(html, body)
    return Path(html)


def execute_notebook(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: dict[str, Any] | None = None,
    *,
    html: bool = True,
    progress: bool = False,
    timeout: int = 600,
) -> NotebookRun:
    """Run ``src`` with papermill into ``out_dir/<name>.ipynb`` (+ ``.html``); cwd is the notebook's folder.

    A failing notebook still leaves its partly executed copy (with the error) in ``out_dir``.
    """
    import time

    import papermill as pm

    src = Path(src).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = dict(parameters or {})
    check_parameters(src, parameters)
    out = out_dir / src.name
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            str(src),
            str(out),
            parameters=parameters,
            cwd=str(src.parent),
            progress_bar=progress,
            kernel_name="python3",
            execution_timeout=timeout,
            log_output=False,
        )
    except pm.PapermillExecutionError as exc:
        error = f"{src.name}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}".splitlines()[0]
    html_path = None
    if html and out.exists():
        html_path = export_html(out, out.with_suffix(".html"))
    return NotebookRun(src.name, out, html_path, error is None, error, time.perf_counter() - t0)


def run_demo(dataset: str | os.PathLike, reports: str | os.PathLike = "reports", notebooks: str | os.PathLike | None = None,
             progress: bool = True) -> list[NotebookRun]:
    """The main offline job: every notebook in ``notebooks/`` executed on ``dataset`` into ``reports/``."""
    nb_dir = Path(notebooks) if notebooks else NOTEBOOK_DIR
    reports = Path(reports).resolve()
    dataset = Path(dataset).resolve()
    runs = []
    paths = sorted(nb_dir.glob("[0-9]*.ipynb"))
    for path in paths:
        declared = notebook_parameters(path)
        params: dict[str, Any] = {}
        if "dataset" in declared:
            params["dataset"] = str(dataset)
        if "results_path" in declared:
            params["results_path"] = str(reports / f"{path.stem}.json")
        run = execute_notebook(path, reports, params, progress=progress)
        runs.append(run)
    return runs
