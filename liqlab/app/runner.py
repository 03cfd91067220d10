"""Execute notebooks with papermill and export them to self-contained HTML (Bokeh resources inline)."""

from __future__ import annotations

import ast
import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liqlab.io import atomic
from liqlab.errors import ParameterError

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


@dataclass(frozen=True)
class NotebookRun:
    """Outcome of one notebook execution."""

    notebook: str
    ipynb: Path
    html: Path | None
    ok: bool
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class _Param:
    name: str
    type_name: str | None  # 'int', 'float', 'str', 'bool', 'list', 'dict', 'tuple', or None = any
    optional: bool          # None accepted


_SIMPLE_TYPES = {"int", "float", "str", "bool", "list", "dict", "tuple"}


def _parse_annotation(text: str | None) -> tuple[str | None, bool]:
    """('int', optional) from 'int', 'Optional[int]', 'int | None', 'list[str]'; (None, True) if unknown."""
    if not text or text == "None":
        return None, True
    t = text.replace(" ", "")
    optional = False
    m = re.fullmatch(r"(?:typing\.)?Optional\[(.+)\]", t)
    if m:
        t, optional = m.group(1), True
    parts = [p for p in t.split("|")]
    if "None" in parts:
        optional = True
        parts = [p for p in parts if p != "None"]
    if len(parts) != 1:
        return None, True
    base = parts[0].split("[")[0].lower().replace("typing.", "")
    return (base if base in _SIMPLE_TYPES else None), (optional or base not in _SIMPLE_TYPES)


@contextlib.contextmanager
def _papermill_quiet() -> Iterator[None]:
    """Papermill's parameter parser warns ("Unable to parse line ...") on declarations it skips, e.g. a
    comment with quotes; :func:`notebook_parameters` reads those lines itself, so the warnings are noise."""
    pm_log = logging.getLogger("papermill")
    level = pm_log.level
    pm_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pm_log.setLevel(level)


#: The kernel's own log at ERROR: it warns on every start that it runs over TCP without encryption
#: (a local kernel on the loopback interface), which is noise in cron logs.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)


def papermill_execute(nb: Any, out: str | os.PathLike, **kwargs: Any) -> Any:
    """``papermill.execute_notebook(nb, out, **kwargs)`` without papermill's parser warnings and the
    kernel's start-up warning on stderr (errors still show).

    Parameters
    ----------
    nb : str or notebook node
        The notebook (path or nbformat node).
    out : str or os.PathLike
        Where the executed notebook is written.
    **kwargs
        Further ``papermill.execute_notebook`` arguments (parameters, cwd, kernel_name, ...).

    Returns
    -------
    Any
        The executed notebook node (papermill's return value).
    """
    import papermill

    with _papermill_quiet():
        return papermill.execute_notebook(nb, str(out), extra_arguments=list(KERNEL_ARGUMENTS), **kwargs)


def notebook_parameters(path: Path) -> dict[str, _Param]:
    """Parameters declared by a notebook's ``parameters`` cell: papermill's inspection, completed by an
    AST read of the same cell (papermill skips e.g. ``x: str | None = None``). Types come from the
    annotation, else from the literal default (None default = any type).

    Parameters
    ----------
    path : pathlib.Path
        The notebook.

    Returns
    -------
    dict
        Parameter name -> its declaration (type name or None = any, whether None is accepted).

    Raises
    ------
    ParameterError
        The notebook is missing or unreadable.
    """
    import nbformat
    import papermill

    if not path.is_file():
        raise ParameterError(f"{path}: notebook not found")
    try:
        with _papermill_quiet():  # the AST pass below reads the lines papermill skips
            declared = papermill.inspect_notebook(str(path))
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - unreadable notebook is bad input
        raise ParameterError(f"{path}: cannot read notebook ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    out: dict[str, _Param] = {}
    for name, info in declared.items():
        tname, optional = _parse_annotation(info.get("inferred_type_name"))
        if tname is None and info.get("inferred_type_name") in (None, "None"):
            tname, optional = _type_of_default(info.get("default"))
        out[name] = _Param(name, tname, optional)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    for cell in cells[:1]:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id not in out:
                tname, optional = _parse_annotation(ast.unparse(node.annotation))
                if tname is None and node.value is not None:
                    tname, optional = _type_of_default(ast.unparse(node.value))
                out[node.target.id] = _Param(node.target.id, tname, optional)
            elif isinstance(node, ast.Assign):
                for tgt in node.targets:
                    if isinstance(tgt, ast.Name) and tgt.id not in out:
                        tname, optional = _type_of_default(ast.unparse(node.value))
                        out[tgt.id] = _Param(tgt.id, tname, optional)
    return out


def _type_of_default(text: str | None) -> tuple[str | None, bool]:
    if text is None:
        return None, True
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None, True
    if value is None:
        return None, True
    t = type(value).__name__
    return (t if t in _SIMPLE_TYPES else None), t not in _SIMPLE_TYPES


def _type_ok(value: Any, p: _Param) -> bool:
    if value is None:
        return p.optional or p.type_name is None
    t = p.type_name
    if t is None:
        return True
    if t == "bool":
        return isinstance(value, bool)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t in ("list", "tuple"):
        return isinstance(value, (list, tuple))
    if t == "dict":
        return isinstance(value, Mapping)
    return True


def check_parameters(path: str | os.PathLike, parameters: dict[str, Any]) -> None:
    """Raise ParameterError naming notebook and parameter for an undeclared name or a wrong type.

    papermill itself would inject an unknown parameter silently; this runs before any execution.

    Parameters
    ----------
    path : str or os.PathLike
        The notebook.
    parameters : dict
        Name -> value to inject.

    Returns
    -------
    None

    Raises
    ------
    ParameterError
        An undeclared name or a value of the wrong type.
    """
    declared = notebook_parameters(Path(path))
    for name, value in parameters.items():
        if name not in declared:
            raise ParameterError(
                f"{Path(path).name}: unknown parameter {name!r} (declared: {', '.join(sorted(declared)) or 'none'})"
            )
        if not _type_ok(value, declared[name]):
            raise ParameterError(
                f"{Path(path).name}: parameter {name!r} expects {declared[name].type_name}, got {type(value).__name__} {value!r}"
            )


_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def export_html(nb_path: str | os.PathLike, html: str | os.PathLike | None = None) -> Path:
    """Self-contained HTML of an executed notebook (lab template without require.js/MathJax/mermaid/
    widget CDN scripts; Bokeh outputs carry their own inline resources). Written atomically.

    Parameters
    ----------
    nb_path : str or os.PathLike
        The executed notebook.
    html : str or os.PathLike, optional
        Output file (default: the notebook's path with ``.html``).

    Returns
    -------
    pathlib.Path
        The HTML file.
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    nb_path = Path(nb_path)
    nb = nbformat.read(str(nb_path), as_version=4)
    exporter = HTMLExporter(extra_loaders=[jinja2.DictLoader({"liqlab_report.j2": _TEMPLATE})],
                            template_file="liqlab_report.j2")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": nb_path.stem}})
    out = Path(html) if html else nb_path.with_suffix(".html")
    atomic.write_text(out, body)
    return out



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

    Parameters
    ----------
    src : str or os.PathLike
        The notebook.
    out_dir : str or os.PathLike
        Output folder (created).
    parameters : dict, optional
        Checked against the notebook's parameters cell first (:func:`check_parameters`).
    html : bool
        Also export self-contained HTML.
    progress : bool
        papermill's progress bar.
    timeout : int
        Seconds per cell.

    Returns
    -------
    NotebookRun
        Paths, success, the failing cell's error on one line, and the seconds taken.
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
        papermill_execute(str(src), out, parameters=parameters, cwd=str(src.parent), progress_bar=progress,
                          kernel_name="python3", execution_timeout=timeout, log_output=False)
    except pm.PapermillExecutionError as exc:
        error = f"{src.name}: cell {exc.exec_count}: {exc.ename}: {exc.evalue}".splitlines()[0]
    html_path = None
    if html and out.exists():
        html_path = export_html(out, out.with_suffix(".html"))
    return NotebookRun(src.name, out, html_path, error is None, error, time.perf_counter() - t0)


def asset_parameters(paths) -> dict[str, list[str]]:
    """What a notebook comparing assets gets: ``datasets`` (absolute paths) and ``assets`` (labels).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        One dataset or collection per asset.

    Returns
    -------
    dict
        ``{'datasets': [...], 'assets': [...]}``; a label is the base currency of the data's symbol
        ('BTC' for 'BTC/USDT:USDT'), the folder name when two datasets share it or the symbol is unknown.
    """
    from liqlab.io.dataset import read_json

    paths = [Path(p).resolve() for p in paths]
    bases = []
    for p in paths:
        files = [p / "meta.json"] + sorted(p.glob("*/meta.json"))
        meta = next((read_json(f) for f in files if f.is_file()), {})   # bad JSON: one line naming the file
        meta = meta if isinstance(meta, dict) else {}
        bases.append(str(meta.get("symbol", "")).split("/")[0] or p.name)
    labels = [b if bases.count(b) == 1 else p.name for b, p in zip(bases, paths)]
    return {"datasets": [str(p) for p in paths], "assets": labels}


def run_demo(dataset: str | os.PathLike | list, reports: str | os.PathLike = "reports",
             notebooks: str | os.PathLike | None = None, progress: bool = True) -> list[NotebookRun]:
    """The main offline job: every notebook in ``notebooks/`` executed on ``dataset`` into ``reports/``.

    Parameters
    ----------
    dataset : str, os.PathLike or list of them
        Dataset or collection given to notebooks that declare ``dataset`` (with a list: the first); the
        whole list goes to notebooks that declare ``datasets`` (with ``assets`` labels,
        :func:`asset_parameters`).
    reports : str or os.PathLike
        Output folder; notebooks declaring ``results_path`` write ``<stem>.json`` there.
    notebooks : str or os.PathLike, optional
        Notebook folder (default the project's ``notebooks/``); its ``[0-9]*.ipynb`` run in name order.
    progress : bool
        papermill's progress bars.

    Returns
    -------
    list of NotebookRun
        One per notebook, in order.
    """
    nb_dir = Path(notebooks) if notebooks else NOTEBOOK_DIR
    reports = Path(reports).resolve()
    listed = list(dataset) if isinstance(dataset, (list, tuple)) else [dataset]
    several = asset_parameters(listed)
    runs = []
    paths = sorted(nb_dir.glob("[0-9]*.ipynb"))
    for path in paths:
        declared = notebook_parameters(path)
        params: dict[str, Any] = {}
        if "dataset" in declared:
            params["dataset"] = several["datasets"][0]
        if "datasets" in declared:
            params.update({k: v for k, v in several.items() if k in declared})
        if "results_path" in declared:
            params["results_path"] = str(reports / f"{path.stem}.json")
        run = execute_notebook(path, reports, params, progress=progress)
        runs.append(run)
    return runs
