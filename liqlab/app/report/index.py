"""``<reports_dir>/index.html``: every run of every report, newest first, as one static page.

No external resources; a table per report with each run's status, data age (hours between the run start
and the last OHLCV bar, UTC; synthetic data marked), links to the notebooks' HTML and results, their key
figures and the run's errors or stale-data banner.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from liqlab.app.report.folders import LATEST, iso, list_runs, now_utc, read_run, resolve_latest
from liqlab.io import atomic

__all__ = ["write_index"]

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:28px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.ok{color:#060;font-weight:bold}.stale{color:#a60;font-weight:bold}
.failed,.interrupted,.unknown{color:#b00;font-weight:bold}.running{color:#036;font-weight:bold}
.err{color:#b00;font-size:12px}.alert{color:#b00;font-weight:bold;font-size:12px}.small{font-size:12px;color:#555}
"""

_esc = html.escape


def _data_cells(rec: dict) -> list[str]:
    cells = []
    for d in rec.get("data", []) or []:
        if not isinstance(d, Mapping):
            continue
        age = d.get("age_hours")
        txt = f"{_esc(str(d.get('label', '')))}: " + (f"{age:.1f} h old" if isinstance(age, (int, float)) else "age unknown")
        if d.get("synthetic"):
            txt += " <b>(synthetic)</b>"
        if d.get("refreshed") is False:
            txt += " <span class='stale'>refresh failed</span>"
        if isinstance(d.get("alerts"), Mapping):
            from liqlab.app.report.alerts import alert_text

            cls = "alert" if d["alerts"].get("alerts") else "small"
            txt += f"<div class='{cls}'>{_esc(alert_text(d['alerts']))}</div>"
        cells.append(txt)
    return cells


def _notebook_cells(rec: dict, href: str) -> tuple[list[str], list[str]]:
    """(links with status per notebook, key figures as 'notebook: label = value')."""
    links, figs = [], []
    for nb in rec.get("notebooks", []) or []:
        if not isinstance(nb, Mapping):
            continue
        name = _esc(str(nb.get("name", "?")))
        nst = str(nb.get("status", "?"))
        target = nb.get("html") or nb.get("ipynb")
        link = f"<a href='{_esc(href)}/{_esc(str(target))}'>{name}</a>" if target else name
        extra = f" <a class='small' href='{_esc(href)}/{_esc(str(nb['results']))}'>json</a>" if nb.get("results") else ""
        links.append(f"{link} <span class='{_esc(nst)}'>{_esc(nst)}</span>{extra}")
        for row in nb.get("figures", []) or []:
            if isinstance(row, (list, tuple)) and len(row) == 2:
                figs.append(f"{name}: {_esc(str(row[0]))} = {_esc(str(row[1]))}")
    return links, figs


def _run_row(rdir: Path, run: Path) -> str:
    rec = read_run(run)
    st = str(rec.get("status", "unknown"))
    href = f"{rdir.name}/{run.name}"
    links, figs = _notebook_cells(rec, href)
    notes = [_esc(str(e)) for e in (rec.get("errors") or [])]
    if rec.get("banner"):
        notes.insert(0, _esc(str(rec["banner"])))
    return (
        f"<tr><td><a href='{_esc(href)}/'>{_esc(run.name)}</a>"
        f"<div class='small'>{_esc(str(rec.get('seconds', '')))} s</div></td>"
        f"<td class='{_esc(st)}'>{_esc(st)}</td><td>{'<br>'.join(_data_cells(rec))}</td>"
        f"<td>{'<br>'.join(links)}</td><td class='small'>{'<br>'.join(figs)}</td>"
        f"<td class='err'>{'<br>'.join(notes)}</td></tr>"
    )


def _report_section(rdir: Path) -> list[str]:
    """One report's heading, latest link and table of runs (newest first); empty without runs."""
    runs = list_runs(rdir)
    if not runs:
        return []
    latest = resolve_latest(rdir)
    parts = [f"<h2 id='{_esc(rdir.name)}'>{_esc(rdir.name)}</h2>"]
    if latest is not None:
        parts.append(f"<p><a href='{_esc(rdir.name)}/{LATEST}/'>latest</a> = {_esc(latest.name)}</p>")
    parts.append("<table><tr><th>run (UTC)</th><th>status</th><th>data</th><th>reports</th>"
                 "<th>key figures</th><th>notes</th></tr>")
    parts += [_run_row(rdir, run) for run in reversed(runs)]
    parts.append("</table>")
    return parts


def write_index(reports_dir: Path) -> Path:
    """Write ``<reports_dir>/index.html``: every run of every report, newest first.

    Serialised by a lock (``<reports_dir>/.index.lock``) so concurrent reports do not interleave; written
    atomically.

    Parameters
    ----------
    reports_dir : pathlib.Path
        The folder holding one folder per report (created if absent).

    Returns
    -------
    pathlib.Path
        The index file.
    """
    import fcntl

    reports_dir = atomic.check_dir_target(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    with open(reports_dir / ".index.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>liqlab reports</title>",
            f"<style>{_CSS}</style></head><body><h1>liqlab reports</h1>",
            f"<p class='small'>Updated {_esc(iso(now_utc()))}. Times are UTC; data age = hours between the run "
            "start and the last OHLCV bar.</p>",
        ]
        report_dirs = sorted(p for p in reports_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
        for rdir in report_dirs:
            parts += _report_section(rdir)
        parts.append("</body></html>\n")
        out = reports_dir / "index.html"
        atomic.write_text(out, "\n".join(parts))
    return out
