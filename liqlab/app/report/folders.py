"""A report's folders: dated run folders, the ``latest`` pointer, retention, the lock, run records.

A run of report ``<name>`` goes to ``<reports_dir>/<name>/<UTC stamp>/`` (e.g. ``20261125T101530Z``,
``-2`` appended when the second is taken) and keeps its record in ``run.json``. ``<name>/latest`` points
to the newest run that produced reports (a relative symlink, or a one-line pointer file where symlinks
are impossible). ``<name>/.lock`` (``fcntl.flock``) keeps two runs of one report apart; a run whose
process died is recognised (its record says 'running' but nobody, or another process, holds the lock)
and shown as 'interrupted'.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from liqlab.errors import LiqlabError
from liqlab.io import atomic

__all__ = ["ReportLocked", "report_lock", "list_runs", "new_run_dir", "resolve_latest", "read_run",
           "STAMP_FORMAT", "RUN_FILE", "LOCK_FILE", "LATEST"]

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
RUN_FILE = "run.json"
LOCK_FILE = ".lock"
LATEST = "latest"
_STAMP_RE = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")


class ReportLocked(LiqlabError):
    """Another run of the same report holds its lock."""

    exit_code = 3


def now_utc() -> datetime:
    """The current time.

    Returns
    -------
    datetime.datetime
        Timezone-aware, UTC.
    """
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    """``t`` as ISO 8601 UTC text to the second with a ``Z`` suffix.

    Parameters
    ----------
    t : datetime.datetime
        An aware time, in any zone (converted to UTC, microseconds dropped).

    Returns
    -------
    str
        E.g. ``2026-11-25T10:15:30Z``.
    """
    return t.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextlib.contextmanager
def report_lock(report_dir: Path) -> Iterator[Path]:
    """Hold ``<report_dir>/.lock`` for the block (``fcntl.flock``, non-blocking).

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder (created if absent).

    Yields
    ------
    pathlib.Path
        The lock file, which names the holder (``pid N since TIME``).

    Raises
    ------
    ReportLocked
        Another process holds the lock (exit code 3).
    """
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
        fh.write(f"pid {os.getpid()} since {iso(now_utc())}\n")
        fh.flush()
        yield lock_path
    finally:
        fh.close()  # releases the lock


def _stamp_key(name: str) -> tuple[str, int]:
    m = _STAMP_RE.match(name)
    return (m.group(1), int(m.group(2) or 1)) if m else (name, 0)


def list_runs(report_dir: Path) -> list[Path]:
    """Run folders of one report, oldest first.

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder.

    Returns
    -------
    list of pathlib.Path
        Folders named by a UTC stamp (``latest`` and other entries left out); empty if the folder is absent.
    """
    if not report_dir.is_dir():
        return []
    runs = [p for p in report_dir.iterdir() if p.is_dir() and not p.is_symlink() and _STAMP_RE.match(p.name)]
    return sorted(runs, key=lambda p: _stamp_key(p.name))


def new_run_dir(report_dir: Path, now: datetime) -> Path:
    """Create ``<report_dir>/<UTC stamp>[-n]`` atomically (mkdir claims it even against other processes).

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder (created if absent).
    now : datetime.datetime
        The run's start (aware); its UTC second names the folder.

    Returns
    -------
    pathlib.Path
        The new, empty folder.
    """
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
    """The run folder ``latest`` points to (symlink or pointer file).

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder, holding ``latest`` beside the run folders.

    Returns
    -------
    pathlib.Path or None
        The run folder, or None when there is no pointer or it points nowhere.
    """
    p = report_dir / LATEST
    if p.is_symlink():
        target = report_dir / os.readlink(p)
        return target if target.is_dir() else None
    if p.is_file():
        target = report_dir / p.read_text().strip()
        return target if target.is_dir() and _STAMP_RE.match(target.name) else None
    return None


def set_latest(report_dir: Path, run_dir: Path) -> None:
    """Point ``latest`` at ``run_dir`` atomically: a relative symlink renamed over the old one; a
    pointer file (the folder name) where the file system refuses symlinks.

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder.
    run_dir : pathlib.Path
        A run folder inside it.

    Returns
    -------
    None
    """
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


def apply_retention(report_dir: Path, keep: int) -> list[str]:
    """Delete the oldest runs beyond ``keep`` (never the one ``latest`` points to).

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder.
    keep : int
        Runs to keep (>= 1).

    Returns
    -------
    list of str
        Names of the removed run folders, oldest first.
    """
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


def read_run(run_dir: Path) -> dict:
    """The record (``run.json``) of one run, tolerant of damage.

    Parameters
    ----------
    run_dir : pathlib.Path
        A run folder.

    Returns
    -------
    dict
        The record; status 'unknown' with an error when the file is missing or unreadable, and
        'interrupted' when it says 'running' but its process no longer holds the report's lock.
    """
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


def close_interrupted(report_dir: Path, current: Path) -> list[str]:
    """Mark earlier runs still recorded as 'running' as 'interrupted' (their process was killed: this
    process now holds the report's lock).

    Parameters
    ----------
    report_dir : pathlib.Path
        The report's folder.
    current : pathlib.Path
        The run folder of this process (left alone).

    Returns
    -------
    list of str
        Names of the runs closed.
    """
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
