"""Scheduled papermill reports: refresh data, run notebooks, keep dated run folders and an index.

A run of report ``<name>`` goes to ``<reports_dir>/<name>/<UTC stamp>/`` (e.g. ``20261125T101530Z``,
``-2`` appended when the second is taken) and holds per notebook the executed ``.ipynb`` (partly
executed with the error when it failed), a self-contained ``.html`` (no CDN, Bokeh outputs as the
notebook produced them) and the results JSON the notebook wrote, plus ``run.json`` (status, data age,
timings). ``<name>/latest`` points to the newest run that produced reports (a symlink, or a one-line
pointer file where symlinks are impossible); ``<reports_dir>/index.html`` lists every run.

Times are UTC. Data age is hours between the run start and the last OHLCV bar of the dataset.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from liqlab.io import atomic
from liqlab.app.runner import _type_ok, export_html, notebook_parameters, papermill_execute
from liqlab.errors import DataError, LiqlabError, ParameterError, read_text

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
]

DEFAULT_RETENTION = 30  # runs kept per report (the one `latest` points to is always kept)
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
LATEST = "latest"
_STAMP_RE = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")


class ReportLocked(LiqlabError):
    """Another run of the same report holds its lock."""

    exit_code = 3


# ------------------------------------------------------------------------------------------ config


@dataclass(frozen=True)
class NotebookSpec:
    """One notebook of a report and the parameters given to it (checked against its parameters cell)."""

    path: Path
    parameters: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class ReportConfig:
    """A named set of notebooks run for one or more datasets.

    ``parameters`` apply to every notebook that declares them (a name no notebook declares is an
    error); ``dataset_parameter`` / ``results_parameter`` are filled in where a notebook declares them.
    ``refresh`` holds options for the incremental fetch (None = no refresh).
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


@dataclass(frozen=True)
class RunResult:
    """What one run did: its folder, status ('ok' | 'stale' | 'failed') and the run record."""

    name: str
    run_dir: Path
    status: str
    record: dict

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "failed" else 0


_CONFIG_KEYS = {
    "name", "notebooks", "datasets", "dataset", "parameters", "reports_dir", "retention", "refresh",
    "require_fresh", "dataset_parameter", "results_parameter", "kernel_name", "cell_timeout",
}


def _read_yaml(path: Path, what: str) -> Any:
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


def config_from_mapping(raw: Mapping, base: Path, where: str, defaults: Mapping | None = None) -> ReportConfig:
    """Build a ReportConfig from a mapping (paths relative to ``base``). Raises ParameterError."""
    merged = dict(defaults or {})
    merged.update(raw)
    unknown = set(merged) - _CONFIG_KEYS
    if unknown:
        raise ParameterError(f"{where}: unknown key(s) {sorted(unknown)}; allowed {sorted(_CONFIG_KEYS)}")
    name = merged.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ParameterError(f"{where}.name: a report needs a name of letters, digits, '-', '_' or '.', got {name!r}")
    nbs = merged.get("notebooks")
    if not isinstance(nbs, list) or not nbs:
        raise ParameterError(f"{where}.notebooks: a non-empty list of notebooks is required")
    notebooks = tuple(_notebook_spec(x, base, f"{where}.notebooks[{i}]") for i, x in enumerate(nbs))
    ds = merged.get("datasets", merged.get("dataset", []))
    if isinstance(ds, (str, os.PathLike)):
        ds = [ds]
    if not isinstance(ds, list):
        raise ParameterError(f"{where}.datasets: expected a list of dataset paths")
    datasets = tuple(_as_path(x, base, f"{where}.datasets[{i}]") for i, x in enumerate(ds))
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
    return ReportConfig(
        name=name,
        notebooks=notebooks,
        datasets=datasets,
        parameters=dict(params),
        reports_dir=_as_path(merged.get("reports_dir", "reports"), base, f"{where}.reports_dir"),
        retention=retention,
        refresh=dict(refresh) if refresh is not None else None,
        require_fresh=bool(merged.get("require_fresh", False)),
        dataset_parameter=str(merged.get("dataset_parameter", "dataset")),
        results_parameter=str(merged.get("results_parameter", "results_path")),
        kernel_name=str(merged.get("kernel_name", "python3")),
        cell_timeout=None if timeout is None else float(timeout),
    )


def load_config(path: str | os.PathLike, names: list[str] | None = None) -> list[ReportConfig]:
    """Read a reports YAML file: top-level defaults plus ``reports:`` (a list or name -> mapping).

    Relative paths are resolved against the config file's folder, so the file works from any cwd.
    """
    path = Path(path)
    raw = _read_yaml(path, "--config")
    if not isinstance(raw, Mapping) or "reports" not in raw:
        raise ParameterError(f"{path}: expected a mapping with a 'reports' key")
    base = path.resolve().parent
    defaults = {k: v for k, v in raw.items() if k != "reports"}
    reports = raw["reports"]
    if isinstance(reports, Mapping):
        items = [dict(v or {}, name=k) for k, v in reports.items()]
    elif isinstance(reports, list):
        items = list(reports)
    else:
        raise ParameterError(f"{path}: 'reports' must be a list or a mapping of name -> report")
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
    """A parameters file: ``name: value`` for every notebook declaring it, or ``<notebook stem>: {...}``."""
    path = Path(path)
    raw = _read_yaml(path, "--parameters")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ParameterError(f"{path}: expected a mapping of parameter name: value")
    return dict(raw)


# -------------------------------------------------------------------------------- parameter check


def _jsonable(value: Any) -> Any:
    """Plain JSON-able values (YAML dates become ISO strings, paths strings)."""
    import datetime as _dt

    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def check_parameters(config: ReportConfig, overrides: Mapping | None = None) -> dict[str, dict]:
    """Check every parameter against each notebook's ``parameters`` cell before anything runs.

    Returns notebook stem -> parameters (without the per-dataset/run values). An unknown name or a
    wrong type raises ParameterError naming the notebook and the parameter.
    """
    overrides = _jsonable(dict(overrides or {}))
    config = replace(config, parameters=_jsonable(config.parameters),
                     notebooks=tuple(replace(n, parameters=_jsonable(n.parameters)) for n in config.notebooks))
    declared = {spec.stem: notebook_parameters(spec.path) for spec in config.notebooks}
    stems = [spec.stem for spec in config.notebooks]
    if len(set(stems)) != len(stems):
        raise ParameterError(f"report {config.name}: two notebooks share the name {sorted({s for s in stems if stems.count(s) > 1})}")
    per_nb = {s: {} for s in stems}
    for key in list(overrides):
        k = key[:-6] if isinstance(key, str) and key.endswith(".ipynb") else key
        if k in per_nb and isinstance(overrides[key], Mapping):
            per_nb[k] = dict(overrides.pop(key))
    out: dict[str, dict] = {}
    global_params = {**config.parameters, **overrides}
    for name in global_params:
        if not any(name in d for d in declared.values()):
            raise ParameterError(
                f"report {config.name}: unknown parameter {name!r}: no notebook declares it "
                f"({', '.join(p.path.name for p in config.notebooks)})"
            )
    for spec in config.notebooks:
        params_decl = declared[spec.stem]
        params: dict[str, Any] = {k: v for k, v in global_params.items() if k in params_decl}
        strict = {**spec.parameters, **per_nb[spec.stem]}
        for name in strict:
            if name not in params_decl:
                known = ", ".join(sorted(params_decl)) or "none"
                raise ParameterError(f"{spec.path.name}: unknown parameter {name!r} (declared: {known})")
        params.update(strict)
        for name, value in params.items():
            p = params_decl[name]
            if not _type_ok(value, p):
                want = p.type_name + (" or None" if p.optional else "")
                raise ParameterError(
                    f"{spec.path.name}: parameter {name!r} must be {want}, got {type(value).__name__} {value!r}"
                )
        out[spec.stem] = _jsonable(params)
    return out


# ------------------------------------------------------------------------------ folders and lock


@contextlib.contextmanager
def report_lock(report_dir: Path) -> Iterator[Path]:
    """Hold ``<report_dir>/.lock`` (fcntl.flock, non-blocking); raise ReportLocked if another run holds it."""
    import fcntl

    report_dir.mkdir(parents=True, exist_ok=True)
    lock_path = report_dir / LOCK_FILE
    fh = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            raise ReportLocked(
                f"{lock_path}: report {report_dir.name!r} is already running"
                + (f" ({holder})" if holder else "")
                + "; not starting a second run"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {_iso(_now())}\n")
        fh.flush()
        yield lock_path
    finally:
        fh.close()  # releases the lock


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stamp_key(name: str) -> tuple[str, int]:
    m = _STAMP_RE.match(name)
    return (m.group(1), int(m.group(2) or 1)) if m else (name, 0)


def list_runs(report_dir: Path) -> list[Path]:
    """Run folders of one report, oldest first."""
    if not report_dir.is_dir():
        return []
    runs = [p for p in report_dir.iterdir() if p.is_dir() and not p.is_symlink() and _STAMP_RE.match(p.name)]
    return sorted(runs, key=lambda p: _stamp_key(p.name))


def new_run_dir(report_dir: Path, now: datetime) -> Path:
    """Create ``<report_dir>/<UTC stamp>[-n]`` atomically (mkdir claims it even against other processes)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    base = now.astimezone(timezone.utc).strftime(STAMP_FORMAT)
    n = 1
    while True:
        cand = report_dir / (base if n == 1 else f"{base}-{n}")
        try:
            cand.mkdir()
            return cand
        except FileExistsError:
            n += 1


def resolve_latest(report_dir: Path) -> Path | None:
    """The run folder ``latest`` points to (symlink or pointer file), or None."""
    p = report_dir / LATEST
    if p.is_symlink():
        target = report_dir / os.readlink(p)
        return target if target.is_dir() else None
    if p.is_file():
        target = report_dir / p.read_text().strip()
        return target if target.is_dir() and _STAMP_RE.match(target.name) else None
    return None


def _set_latest(report_dir: Path, run_dir: Path) -> None:
    """Point ``latest`` at ``run_dir`` atomically: a relative symlink renamed over the old one; a pointer
    file (the folder name) where the file system refuses symlinks."""
    link = report_dir / LATEST
    tmp = report_dir / f".{LATEST}.{os.getpid()}.tmp"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(run_dir.name, tmp)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
    except OSError:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        if link.is_symlink():
            link.unlink()
        atomic.write_text(link, run_dir.name + "\n")


def _apply_retention(report_dir: Path, keep: int) -> list[str]:
    """Delete the oldest runs beyond ``keep`` (never the one ``latest`` points to). Returns removed names."""
    runs = list_runs(report_dir)
    latest = resolve_latest(report_dir)
    removed = []
    excess = len(runs) - keep
    for run in runs:
        if excess <= 0:
            break
        if latest is not None and run.resolve() == latest.resolve():
            continue
        trash = report_dir / f".deleting-{run.name}"
        os.replace(run, trash)  # one rename: the run vanishes whole, then the files go
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(run.name)
        excess -= 1
    return removed


# ------------------------------------------------------------------------------------- data age


def _dataset_dirs(path: Path) -> list[Path]:
    if (path / "meta.json").exists():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_dir() and (p / "meta.json").exists())
    return []


def data_status(path: Path, now: datetime) -> dict:
    """Last OHLCV bar (UTC), age in hours at ``now``, synthetic flag and venues of a dataset or collection."""
    import pyarrow.parquet as pq

    dirs = _dataset_dirs(path)
    if not dirs:
        raise DataError(f"{path}: not a dataset or collection directory (no meta.json)")
    last = None
    synthetic = False
    venues = []
    for d in dirs:
        try:
            meta = json.loads((d / "meta.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(f"{d / 'meta.json'}: unreadable ({exc})") from None
        synthetic = synthetic or bool(meta.get("synthetic", False))
        venues.append(str(meta.get("exchange", d.name)))
        f = d / "ohlcv.parquet"
        if f.exists():
            try:
                col = pq.read_table(f, columns=["ts"]).column("ts")
            except Exception as exc:  # noqa: BLE001
                raise DataError(f"{f}: cannot read parquet ({str(exc).splitlines()[0]})") from None
            if len(col):
                import pyarrow.compute as pc

                t = pc.max(col).as_py()
                if t is not None:
                    t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
                    last = t if last is None or t > last else last
    age = None if last is None else round((now - last).total_seconds() / 3600.0, 2)
    return {
        "path": str(path),
        "label": path.name,
        "venues": venues,
        "synthetic": synthetic,
        "data_end": None if last is None else _iso(last),
        "age_hours": age,
    }


# ------------------------------------------------------------------------------------- refresh


RefreshFn = Callable[[Path, dict], Any]


def default_refresh(path: Path, options: dict) -> Any:
    """Incremental fetch (``liqlab.io.fetch.fetch``, network) of a collection written by ``liqlab fetch``
    (``<path>/<venue>/``) or of one venue folder in it. Exchanges, symbol and start default to what the
    data already holds; ``options`` may set them (exchanges, symbol, since) or pass other fetch options."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liqlab.io import fetch

    path = Path(path)
    dirs = _dataset_dirs(path)
    if not dirs:
        raise DataError(f"{path}: nothing to refresh (no dataset directories)")
    metas = [json.loads((d / "meta.json").read_text()) for d in dirs]
    opts = dict(options)
    exchanges = opts.pop("exchanges", None) or [str(m.get("exchange")) for m in metas]
    symbol = opts.pop("symbol", None) or str(metas[0].get("symbol"))
    since = opts.pop("since", None)
    if since is None:
        starts = []
        for d in dirs:
            f = d / "ohlcv.parquet"
            if f.exists():
                t = pc.min(pq.read_table(f, columns=["ts"]).column("ts")).as_py()
                if t is not None:
                    starts.append(t)
        if not starts:
            raise ParameterError(f"{path}: refresh needs 'since' (the dataset holds no bars yet)")
        since = min(starts)
    out = path.parent if (path / "meta.json").exists() else path
    opts.setdefault("progress", False)
    return fetch.fetch(exchanges, symbol, since=since, out=out, **opts)


def _banner_cell(info: dict):
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


# ---------------------------------------------------------------------------------------- execute


def _first_line(exc: BaseException) -> str:
    s = str(exc).strip()
    return f"{type(exc).__name__}: {s.splitlines()[0] if s else ''}".rstrip(": ")


def _execute(spec: NotebookSpec, params: dict, out_dir: Path, prefix: str, config: ReportConfig,
             banner: dict | None) -> dict:
    """Run one notebook with papermill into ``out_dir``; export HTML; read its results JSON."""
    import nbformat

    stem = prefix + spec.stem
    out_nb = out_dir / f"{stem}.ipynb"
    partial = out_dir / f".{stem}.partial.ipynb"
    results = out_dir / f"{stem}.json"
    item: dict[str, Any] = {"notebook": str(spec.path), "name": stem, "ipynb": out_nb.name, "status": "running"}
    nb = nbformat.read(str(spec.path), as_version=4)
    if banner is not None:
        nb.cells.insert(0, _banner_cell(banner))
    t0 = time.monotonic()
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
        item["error"] = f"{ename}: {evalue}" if ename else _first_line(exc)
    item["seconds"] = round(time.monotonic() - t0, 2)
    if partial.exists():
        os.replace(partial, out_nb)
        try:
            item["html"] = export_html(out_nb).name
        except Exception as exc:  # noqa: BLE001 - the notebook is kept even if HTML fails
            item["html_error"] = _first_line(exc)
    else:
        item.pop("ipynb")
    if results.exists():
        item["results"] = results.name
        try:
            item["figures"] = key_figures(json.loads(results.read_text()))
        except (OSError, ValueError) as exc:
            item["results_error"] = _first_line(exc)
    return item


# ----------------------------------------------------------------------------------- key figures


def _walk(obj: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _walk(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj


def _fmt_num(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    ax = abs(x)
    if ax >= 1e9:
        return f"{x / 1e9:.2f}B"
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 1 or ax == 0:
        return f"{x:.3g}" if not float(x).is_integer() else f"{int(x)}"
    return f"{x:.3g}"


_FIGURE_PATTERNS = (
    ("lift", re.compile(r"(^|[._])(magnet_)?lift$", re.I)),
    ("p", re.compile(r"(^|[._])(p_?value|pvalue|p)$", re.I)),
    ("spearman", re.compile(r"spearman", re.I)),
)


def key_figures(results: Any, limit: int = 12) -> list[list[str]]:
    """Label/value pairs for the index from a notebook's results JSON, tolerant of missing keys:
    ``key_figures`` (if the notebook provides them), top clusters, magnet lift and p-values,
    Spearman correlations (validation and baselines)."""
    out: list[list[str]] = []
    if not isinstance(results, Mapping):
        return out
    kf = results.get("key_figures")
    if isinstance(kf, Mapping):
        out += [[str(k), _fmt_num(v)] for k, v in kf.items() if not isinstance(v, (Mapping, list))]
    clusters = None
    for k, v in _walk(results):
        if k.split(".")[-1] in ("top_clusters", "clusters") and isinstance(v, list):
            clusters = v
            break
    if clusters:
        parts = []
        for c in clusters[:3]:
            if isinstance(c, Mapping):
                side = c.get("side", "")
                price = c.get("price")
                notional = c.get("notional", c.get("value", c.get("usd")))
                parts.append(f"{side} {_fmt_num(price)}" + (f" (${_fmt_num(notional)})" if notional is not None else ""))
        if parts:
            out.append(["top clusters", "; ".join(parts)])
    seen = {row[0] for row in out}
    for k, v in _walk(results):
        if k.startswith("key_figures") or isinstance(v, (list, str)) or v is None:
            continue
        if any(p.search(k.split(".")[-1]) or (label == "spearman" and p.search(k)) for label, p in _FIGURE_PATTERNS):
            if k not in seen:
                out.append([k, _fmt_num(v)])
                seen.add(k)
    return out[:limit]


# ------------------------------------------------------------------------------------------ run


def _refresh_all(config: ReportConfig, refresh_fn: RefreshFn | None) -> dict[str, dict]:
    """Refresh each dataset; returns path -> {'ok': bool, 'error': str} (empty when refresh is off)."""
    if config.refresh is None:
        return {}
    fn = refresh_fn or default_refresh
    out = {}
    for ds in config.datasets:
        try:
            fn(ds, dict(config.refresh))
            out[str(ds)] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - any refresh failure: run on cached data, say so
            out[str(ds)] = {"ok": False, "error": " ".join(str(exc).split()) or type(exc).__name__}
    return out


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

    Raises ParameterError (bad parameters, before anything runs) or ReportLocked. A failing notebook
    or a refused stale refresh gives a RunResult with status 'failed' (exit code 1).
    """
    checked = check_parameters(config, overrides)
    for ds in config.datasets:
        if not ds.exists():
            raise DataError(f"{ds}: dataset not found (report {config.name})")
    require_fresh = config.require_fresh if require_fresh is None else require_fresh
    report_dir = atomic.check_dir_target(config.reports_dir / config.name)
    with report_lock(report_dir):
        start = now or _now()
        run_dir = new_run_dir(report_dir, start)
        record: dict[str, Any] = {
            "name": config.name,
            "run": run_dir.name,
            "started": _iso(start),
            "status": "running",
            "pid": os.getpid(),
            "notebooks": [],
            "data": [],
            "parameters": checked,
        }
        atomic.write_json(run_dir / RUN_FILE, record)
        _close_interrupted(report_dir, run_dir)
        try:
            status = _run_in(config, run_dir, record, checked, refresh_fn, require_fresh, progress, now)
        except BaseException as exc:  # unexpected: the run is marked failed, then the error goes on
            record.update(status="failed", finished=_iso(_now()), errors=[_first_line(exc)])
            record.pop("pid", None)
            atomic.write_json(run_dir / RUN_FILE, record)
            write_index(config.reports_dir)
            raise
        if status != "failed":
            _set_latest(report_dir, run_dir)
        record["removed"] = _apply_retention(report_dir, config.retention)
        write_index(config.reports_dir)
    return RunResult(config.name, run_dir, status, record)


def _run_in(config: ReportConfig, run_dir: Path, record: dict, checked: dict, refresh_fn: RefreshFn | None,
            require_fresh: bool, progress: bool | None, now: datetime | None) -> str:
    """Refresh, execute every (dataset, notebook), fill ``record``; returns the run status."""
    t0 = time.monotonic()
    refreshed = _refresh_all(config, refresh_fn)
    data_now = _now() if now is None else now
    datasets: list[Path | None] = list(config.datasets) or [None]
    for ds in config.datasets:
        info = data_status(ds, data_now)
        r = refreshed.get(str(ds))
        if r is not None:
            info["refreshed"] = r["ok"]
            if not r["ok"]:
                info["refresh_error"] = r["error"]
        record["data"].append(info)
    stale = [d for d in record["data"] if d.get("refreshed") is False]
    problems: list[str] = []
    if stale and require_fresh:
        problems.append("refresh failed and --require-fresh is set: " + "; ".join(
            f"{d['label']}: {d['refresh_error']}" for d in stale))
    else:
        jobs = [(ds, spec) for ds in datasets for spec in config.notebooks]
        bar = _progress(len(jobs), config.name, progress)
        try:
            for ds, spec in jobs:
                prefix = f"{ds.name}-" if ds is not None and len(config.datasets) > 1 else ""
                params = dict(checked[spec.stem])
                decl = notebook_parameters(spec.path)
                if ds is not None and config.dataset_parameter in decl:
                    params[config.dataset_parameter] = str(ds.resolve())
                if config.results_parameter in decl:
                    params[config.results_parameter] = str((run_dir / f"{prefix}{spec.stem}.json").resolve())
                info = next((d for d in record["data"] if ds is not None and d["path"] == str(ds)), None)
                banner = info if info is not None and info.get("refreshed") is False else None
                item = _execute(spec, params, run_dir, prefix, config, banner)
                if ds is not None:
                    item["dataset"] = ds.name
                record["notebooks"].append(item)
                atomic.write_json(run_dir / RUN_FILE, record)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        problems += [f"{n['name']}: {n.get('error', 'failed')}" for n in record["notebooks"] if n["status"] != "ok"]
    status = "failed" if problems else ("stale" if stale else "ok")
    record.update(status=status, finished=_iso(_now()), seconds=round(time.monotonic() - t0, 2))
    if problems:
        record["errors"] = problems
    if stale:
        record["banner"] = "stale data: " + "; ".join(f"{d['label']} {d.get('age_hours')} h old" for d in stale)
    record.pop("pid", None)
    atomic.write_json(run_dir / RUN_FILE, record)
    return status


def _progress(total: int, name: str, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total < 1:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"report {name}", unit="nb", file=sys.stderr)


# ---------------------------------------------------------------------------------------- index


def _read_run(run_dir: Path) -> dict:
    f = run_dir / RUN_FILE
    try:
        rec = json.loads(f.read_text())
        if not isinstance(rec, dict):
            raise ValueError("not an object")
    except (OSError, ValueError):
        rec = {"status": "unknown", "notebooks": [], "data": [], "errors": [f"{f.name} missing or unreadable"]}
    rec.setdefault("run", run_dir.name)
    if rec.get("status") == "running":
        holder = _lock_holder(run_dir.parent)
        if holder is None or (rec.get("pid") is not None and holder != rec.get("pid")):
            rec["status"] = "interrupted"  # its process is gone: nobody, or another run, holds the lock
    return rec


def _lock_holder(report_dir: Path) -> int | None:
    """None when nobody holds the report's lock; else the holder's pid (0 if the lock file names none)."""
    import fcntl

    lock = report_dir / LOCK_FILE
    if not lock.exists():
        return None
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            m = re.match(r"pid (\d+)", fh.read())
            return int(m.group(1)) if m else 0
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None


def _close_interrupted(report_dir: Path, current: Path) -> list[str]:
    """Mark earlier runs still recorded as 'running' as 'interrupted' (their process was killed: this
    process now holds the report's lock). Returns their names."""
    closed = []
    for run in list_runs(report_dir):
        if run == current:
            continue
        f = run / RUN_FILE
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("status") == "running":
            rec.update(status="interrupted", errors=list(rec.get("errors") or []) + [
                f"the run stopped without finishing (process {rec.get('pid', '?')} ended; killed?)"])
            rec.pop("pid", None)
            atomic.write_json(f, rec)
            closed.append(run.name)
    return closed


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:28px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.ok{color:#060;font-weight:bold}.stale{color:#a60;font-weight:bold}
.failed,.interrupted,.unknown{color:#b00;font-weight:bold}.running{color:#036;font-weight:bold}
.err{color:#b00;font-size:12px}.small{font-size:12px;color:#555}
"""


def write_index(reports_dir: Path) -> Path:
    """Write ``<reports_dir>/index.html``: every run of every report, newest first (static, no
    external resources). Serialised by a lock so concurrent reports do not interleave."""
    import fcntl

    reports_dir = atomic.check_dir_target(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    with open(reports_dir / ".index.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        esc = html.escape
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>liqlab reports</title>",
            f"<style>{_CSS}</style></head><body><h1>liqlab reports</h1>",
            f"<p class='small'>Updated {esc(_iso(_now()))}. Times are UTC; data age = hours between the run "
            "start and the last OHLCV bar.</p>",
        ]
        report_dirs = sorted(p for p in reports_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for rdir in report_dirs:
            runs = list_runs(rdir)
            if not runs:
                continue
            latest = resolve_latest(rdir)
            parts.append(f"<h2 id='{esc(rdir.name)}'>{esc(rdir.name)}</h2>")
            if latest is not None:
                parts.append(f"<p><a href='{esc(rdir.name)}/{LATEST}/'>latest</a> = {esc(latest.name)}</p>")
            parts.append("<table><tr><th>run (UTC)</th><th>status</th><th>data</th><th>reports</th>"
                         "<th>key figures</th><th>notes</th></tr>")
            for run in reversed(runs):
                rec = _read_run(run)
                st = str(rec.get("status", "unknown"))
                href = f"{rdir.name}/{run.name}"
                data_cells = []
                for d in rec.get("data", []) or []:
                    if not isinstance(d, Mapping):
                        continue
                    age = d.get("age_hours")
                    txt = f"{esc(str(d.get('label', '')))}: " + (f"{age:.1f} h old" if isinstance(age, (int, float)) else "age unknown")
                    if d.get("synthetic"):
                        txt += " <b>(synthetic)</b>"
                    if d.get("refreshed") is False:
                        txt += " <span class='stale'>refresh failed</span>"
                    data_cells.append(txt)
                links, figs = [], []
                for nb in rec.get("notebooks", []) or []:
                    if not isinstance(nb, Mapping):
                        continue
                    name = esc(str(nb.get("name", "?")))
                    nst = str(nb.get("status", "?"))
                    target = nb.get("html") or nb.get("ipynb")
                    link = f"<a href='{esc(href)}/{esc(str(target))}'>{name}</a>" if target else name
                    extra = f" <a class='small' href='{esc(href)}/{esc(str(nb['results']))}'>json</a>" if nb.get("results") else ""
                    links.append(f"{link} <span class='{esc(nst)}'>{esc(nst)}</span>{extra}")
                    for row in nb.get("figures", []) or []:
                        if isinstance(row, (list, tuple)) and len(row) == 2:
                            figs.append(f"{name}: {esc(str(row[0]))} = {esc(str(row[1]))}")
                notes = [esc(str(e)) for e in (rec.get("errors") or [])]
                if rec.get("banner"):
                    notes.insert(0, esc(str(rec["banner"])))
                parts.append(
                    f"<tr><td><a href='{esc(href)}/'>{esc(run.name)}</a>"
                    f"<div class='small'>{esc(str(rec.get('seconds', '')))} s</div></td>"
                    f"<td class='{esc(st)}'>{esc(st)}</td><td>{'<br>'.join(data_cells)}</td>"
                    f"<td>{'<br>'.join(links)}</td><td class='small'>{'<br>'.join(figs)}</td>"
                    f"<td class='err'>{'<br>'.join(notes)}</td></tr>"
                )
            parts.append("</table>")
        parts.append("</body></html>\n")
        out = reports_dir / "index.html"
        atomic.write_text(out, "\n".join(parts))
    return out


def flags_config(
    name: str,
    notebooks: list[str],
    datasets: list[str],
    parameters: dict | None = None,
    reports_dir: str = "reports",
    retention: int = DEFAULT_RETENTION,
    refresh: dict | None = None,
) -> ReportConfig:
    """A ReportConfig from command-line flags (paths relative to the current directory)."""
    raw = {"name": name, "notebooks": list(notebooks), "datasets": list(datasets),
           "parameters": dict(parameters or {}), "reports_dir": reports_dir, "retention": retention,
           "refresh": refresh}
    return config_from_mapping(raw, Path.cwd(), "flags")


def with_options(config: ReportConfig, **changes: Any) -> ReportConfig:
    """A copy of ``config`` with some fields replaced (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
