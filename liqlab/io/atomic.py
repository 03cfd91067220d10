"""Atomic file and directory writes: write to a temporary sibling, then ``os.replace``.

Existing data is never lost or half-written: a crash leaves either the old file or the new one.
A target of the wrong kind (a folder where a file goes, a file where a folder goes) or one that cannot
be written (read-only, disk full) raises :class:`~liqlab.errors.OutputError` naming the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from liqlab.errors import OutputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fail(target: Path, exc: OSError) -> OutputError:
    return OutputError(f"{target}: cannot write ({exc.strerror or exc})")


def _no_file_above(target: Path) -> None:
    """The nearest existing ancestor of ``target`` must be a folder (else OutputError)."""
    for p in target.parents:
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"{target}: {p} is a file, not a folder")
            return


def _parent_dir(target: Path) -> None:
    """Create ``target``'s parent folder; no permission raises OutputError."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(target, exc) from None


def check_file_target(target: str | os.PathLike, *, probe: bool = False) -> Path:
    """``target`` as a Path if a file can go there (not a folder, no file above it); else OutputError.

    Parameters
    ----------
    target : str or os.PathLike
        The file to be written.
    probe : bool
        Also create and remove a temporary file next to it when its folder exists, so a read-only output
        is refused before any work rather than after it.

    Returns
    -------
    Path
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give a file name")
    _no_file_above(target)
    if probe and target.parent.is_dir():
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        except OSError as exc:
            raise _fail(target, exc) from None
        os.close(fd)
        os.unlink(tmp)
    return target


def check_dir_target(target: str | os.PathLike) -> Path:
    """``target`` as a Path if a folder can go there (not an existing file, no file above it); else OutputError.

    Parameters
    ----------
    target : str or os.PathLike
        The folder to be written.

    Returns
    -------
    Path
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: is a file; give a folder")
    _no_file_above(target)
    return target


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target`` atomically.

    Parameters
    ----------
    target : str or os.PathLike
        The file to write.
    suffix : str
        Suffix of the temporary file (before ``.tmp``), for writers that look at it.

    Returns
    -------
    contextmanager
        Yields the temporary Path; on an error it is removed and ``target`` is untouched.
    """
    target = check_file_target(target)
    _parent_dir(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    except OSError as exc:
        raise _fail(target, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; written data gets the usual mode
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        raise _fail(target, exc) from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (all or nothing).

    Parameters
    ----------
    target : str or os.PathLike
    data : bytes

    Returns
    -------
    None
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically.

    Parameters
    ----------
    target : str or os.PathLike
    text : str

    Returns
    -------
    None
    """
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON with sorted keys to ``target`` atomically (other objects as their text).

    Parameters
    ----------
    target : str or os.PathLike
    obj : Any
        JSON-able values.

    Returns
    -------
    None
    """
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(target: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as parquet (pyarrow, zstd, no index) atomically; equal input gives equal bytes.

    Parameters
    ----------
    target : str or os.PathLike
    frame : pd.DataFrame

    Returns
    -------
    None
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)  # drop pandas metadata that embeds library versions
    with atomic_path(target, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh staging directory; on success it takes the place of ``target`` as a whole.

    The old directory is moved aside, the new one renamed in, then the old one deleted. If anything
    fails before the swap, ``target`` is untouched and the staging directory is removed.

    Parameters
    ----------
    target : str or os.PathLike
        The directory to (re)write.

    Returns
    -------
    contextmanager
        Yields the staging Path.
    """
    target = check_dir_target(target)
    _parent_dir(target)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    except OSError as exc:
        raise _fail(target, exc) from None
    try:
        os.chmod(stage, 0o777 & ~_umask())
        yield stage
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.{os.getpid()}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(stage, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise _fail(target, exc) from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
