"""What a report is: its notebooks, datasets, parameters and options, read from YAML or flags.

A reports YAML holds top-level defaults plus ``reports:`` (a list, or name -> mapping). Relative paths
are resolved against the file's folder, so the file works from any working directory. Every problem
raises :class:`~liqlab.errors.ParameterError` naming the file, the report and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from liqlab.app.report.alerts import DEFAULT_ALERTS, alert_settings
from liqlab.errors import ParameterError, read_text

__all__ = ["DEFAULT_RETENTION", "NotebookSpec", "ReportConfig", "config_from_mapping", "load_config",
           "load_overrides", "flags_config", "with_options"]

DEFAULT_RETENTION = 30  # runs kept per report (the one `latest` points to is always kept)


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook of a report and the parameters given to it (checked against its parameters cell)."""

    path: Path
    parameters: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        """The notebook's file name without ``.ipynb`` (names its outputs in a run folder)."""
        return self.path.stem


@dataclass(frozen=True)
class ReportConfig:
    """A named set of notebooks run for one or more datasets.

    ``parameters`` apply to every notebook that declares them (a name no notebook declares is an
    error); ``dataset_parameter`` / ``results_parameter`` are filled in where a notebook declares them.
    ``refresh`` holds options for the incremental fetch (None = no refresh). ``alerts`` holds the alert
    banner's settings (``within_pct`` %, ``min_usd`` USD; None = no banner; see
    :mod:`liqlab.app.report.alerts`).
    """

    name: str
    notebooks: tuple[NotebookSpec, ...]
    datasets: tuple[Path, ...] = ()
    parameters: dict = field(default_factory=dict)
    reports_dir: Path = Path("reports")
    retention: int = DEFAULT_RETENTION
    refresh: dict | None = None
    require_fresh: bool = False
    dataset_parameter: str = "dataset"
    results_parameter: str = "results_path"
    kernel_name: str = "python3"
    cell_timeout: float | None = 900.0  # seconds per cell; None = no limit
    alerts: dict | None = field(default_factory=lambda: dict(DEFAULT_ALERTS))  # None = no alert banner


_CONFIG_KEYS = {
    "name", "notebooks", "datasets", "dataset", "parameters", "reports_dir", "retention", "refresh",
    "require_fresh", "dataset_parameter", "results_parameter", "kernel_name", "cell_timeout", "alerts",
}



def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in ``path``.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    what : str
        How the file was given (``--config``, ``--parameters``), for messages.

    Returns
    -------
    Any
        The parsed document (None for an empty file).

    Raises
    ------
    ParameterError
        The file is missing or is not valid YAML (line and problem named).
    """
    import yaml

    if not path.is_file():
        raise ParameterError(f"{what} {path}: file not found")
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParameterError(f"{what} {path}: invalid YAML{where}: {problem}") from None


def _as_path(value: Any, base: Path, where: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ParameterError(f"{where}: expected a path, got {value!r}")
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else Path(os.path.normpath(base / p))


def _notebook_spec(item: Any, base: Path, where: str) -> NotebookSpec:
    if isinstance(item, (str, os.PathLike)):
        return NotebookSpec(_as_path(item, base, where))
    if isinstance(item, Mapping):
        unknown = set(item) - {"path", "parameters"}
        if unknown:
            raise ParameterError(f"{where}: unknown key(s) {sorted(unknown)}; allowed ['parameters', 'path']")
        params = item.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise ParameterError(f"{where}.parameters: must be a mapping of name: value")
        return NotebookSpec(_as_path(item.get("path"), base, f"{where}.path"), dict(params))
    raise ParameterError(f"{where}: expected a notebook path or {{path, parameters}}, got {item!r}")


def _name(merged: Mapping, where: str) -> str:
    name = merged.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ParameterError(f"{where}.name: a report needs a name of letters, digits, '-', '_' or '.', got {name!r}")
    return name


def _notebooks(merged: Mapping, base: Path, where: str) -> tuple[NotebookSpec, ...]:
    nbs = merged.get("notebooks")
    if not isinstance(nbs, list) or not nbs:
        raise ParameterError(f"{where}.notebooks: a non-empty list of notebooks is required")
    return tuple(_notebook_spec(x, base, f"{where}.notebooks[{i}]") for i, x in enumerate(nbs))


def _datasets(merged: Mapping, base: Path, where: str) -> tuple[Path, ...]:
    ds = merged.get("datasets", merged.get("dataset", []))
    if isinstance(ds, (str, os.PathLike)):
        ds = [ds]
    if not isinstance(ds, list):
        raise ParameterError(f"{where}.datasets: expected a list of dataset paths")
    return tuple(_as_path(x, base, f"{where}.datasets[{i}]") for i, x in enumerate(ds))


def _options(merged: Mapping, where: str) -> dict[str, Any]:
    """The checked scalar options: parameters, retention, refresh, cell_timeout."""
    params = merged.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise ParameterError(f"{where}.parameters: must be a mapping of name: value")
    retention = merged.get("retention", DEFAULT_RETENTION)
    if isinstance(retention, bool) or not isinstance(retention, int) or retention < 1:
        raise ParameterError(f"{where}.retention: must be an integer >= 1, got {retention!r}")
    refresh = merged.get("refresh")
    if refresh is True:
        refresh = {}
    if refresh is False:
        refresh = None
    if refresh is not None and not isinstance(refresh, Mapping):
        raise ParameterError(f"{where}.refresh: expected true/false or a mapping of fetch options")
    timeout = merged.get("cell_timeout", 900.0)
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ParameterError(f"{where}.cell_timeout: must be a number of seconds > 0 or null, got {timeout!r}")
    return {"parameters": dict(params), "retention": retention,
            "refresh": dict(refresh) if refresh is not None else None,
            "cell_timeout": None if timeout is None else float(timeout)}


def config_from_mapping(raw: Mapping, base: Path, where: str, defaults: Mapping | None = None) -> ReportConfig:
    """A :class:`ReportConfig` from a mapping (one entry of a reports YAML, or the flags).

    Parameters
    ----------
    raw : mapping
        The report's keys (``name``, ``notebooks``, ``datasets``, ``parameters``, ...).
    base : pathlib.Path
        Folder that relative paths are resolved against.
    where : str
        Where the mapping came from, for messages (``file: reports[name]``).
    defaults : mapping, optional
        Top-level defaults that ``raw`` overrides.

    Returns
    -------
    ReportConfig

    Raises
    ------
    ParameterError
        An unknown key or a bad value, named with ``where``.
    """
    merged = dict(defaults or {})
    merged.update(raw)
    unknown = set(merged) - _CONFIG_KEYS
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(_CONFIG_KEYS)}")
    name = _name(merged, where)  # checked in this order: the first problem is the one reported
    notebooks = _notebooks(merged, base, where)
    datasets = _datasets(merged, base, where)
    options = _options(merged, where)
    options["alerts"] = alert_settings(merged.get("alerts"), f"{where}.alerts")
    return ReportConfig(
        name=name,
        notebooks=notebooks,
        datasets=datasets,
        reports_dir=_as_path(merged.get("reports_dir", "reports"), base, f"{where}.reports_dir"),
        require_fresh=bool(merged.get("require_fresh", False)),
        dataset_parameter=str(merged.get("dataset_parameter", "dataset")),
        results_parameter=str(merged.get("results_parameter", "results_path")),
        kernel_name=str(merged.get("kernel_name", "python3")),
        **options,
    )


def _report_items(raw: Any, path: Path) -> list:
    if not isinstance(raw, Mapping) or "reports" not in raw:
        raise ParameterError(f"{path}: expected a mapping with a 'reports' key")
    reports = raw["reports"]
    if isinstance(reports, Mapping):
        return [dict(v or {}, name=k) for k, v in reports.items()]
    if isinstance(reports, list):
        return list(reports)
    raise ParameterError(f"{path}: 'reports' must be a list or a mapping of name -> report")


def load_config(path: str | os.PathLike, names: list[str] | None = None) -> list[ReportConfig]:
    """Read a reports YAML file: top-level defaults plus ``reports:`` (a list or name -> mapping).

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file; relative paths in it are resolved against its folder.
    names : list of str, optional
        Keep only these reports (each must exist); default all.

    Returns
    -------
    list of ReportConfig
        In file order.

    Raises
    ------
    ParameterError
        Unreadable file, a bad report, a name used twice or a requested name missing.
    """
    path = Path(path)
    raw = read_yaml(path, "--config")
    items = _report_items(raw, path)
    base = path.resolve().parent
    defaults = {k: v for k, v in raw.items() if k != "reports"}
    configs = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ParameterError(f"{path}: reports[{i}] must be a mapping")
        configs.append(config_from_mapping(item, base, f"{path}: reports[{item.get('name', i)}]", defaults))
    seen = [c.name for c in configs]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise ParameterError(f"{path}: report name(s) {dup} used twice")
    if names:
        missing = [n for n in names if n not in seen]
        if missing:
            raise ParameterError(f"{path}: no report named {missing}; have {seen}")
        configs = [c for c in configs if c.name in names]
    return configs


def load_overrides(path: str | os.PathLike) -> dict:
    """A parameters file: ``name: value`` for every notebook declaring it, or ``<notebook stem>: {...}``.

    Parameters
    ----------
    path : str or os.PathLike
        The YAML file.

    Returns
    -------
    dict
        The overrides (empty for an empty file).

    Raises
    ------
    ParameterError
        Unreadable file, or not a mapping.
    """
    path = Path(path)
    raw = read_yaml(path, "--parameters")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ParameterError(f"{path}: expected a mapping of parameter name: value")
    return dict(raw)


def flags_config(
    name: str,
    notebooks: list[str],
    datasets: list[str],
    parameters: dict | None = None,
    reports_dir: str = "reports",
    retention: int = DEFAULT_RETENTION,
    refresh: dict | None = None,
) -> ReportConfig:
    """A ReportConfig from command-line flags (paths relative to the current directory).

    Parameters
    ----------
    name : str
        Report name.
    notebooks, datasets : list of str
        Notebook paths and dataset/collection folders.
    parameters : dict, optional
        Parameters for every notebook declaring them.
    reports_dir : str
        Where report folders go.
    retention : int
        Runs kept.
    refresh : dict, optional
        Fetch options for a refresh before the run (None = no refresh).

    Returns
    -------
    ReportConfig
    """
    raw = {"name": name, "notebooks": list(notebooks), "datasets": list(datasets),
           "parameters": dict(parameters or {}), "reports_dir": reports_dir, "retention": retention,
           "refresh": refresh}
    return config_from_mapping(raw, Path.cwd(), "flags")


def with_options(config: ReportConfig, **changes: Any) -> ReportConfig:
    """A copy of ``config`` with some fields replaced.

    Parameters
    ----------
    config : ReportConfig
        The report.
    **changes
        Field values; None values are ignored.

    Returns
    -------
    ReportConfig
    """
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
