"""The recorder's writer: events flushed as atomic parts, folded into ``liquidations.parquet`` by :func:`compact`.

``<venue>/liquidations/part-<seq>.parquet`` holds events flushed every few seconds (each part written
atomically); :func:`compact` folds them into ``<venue>/liquidations.parquet``, whose schema metadata names
the last part it holds, so a crash between the rename and the deletes never double counts. One recorder
writes into a folder at a time (:func:`out_lock`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from liqlab.errors import DataError
from liqlab.io import atomic
from liqlab.io.record.config import LOCK_FILE, PARTS_DIR, PARTS_KEY, RecorderLocked
from liqlab.io.record.events import liq_frame
from liqlab.io.schema import empty_table, validate_table


def part_names(vdir: Path) -> list[Path]:
    """The uncompacted parts of a venue folder, oldest first.

    Parameters
    ----------
    vdir : Path
        A recorded venue's dataset directory.

    Returns
    -------
    list of Path
        ``vdir/liquidations/part-*.parquet`` sorted by sequence number.
    """
    d = vdir / PARTS_DIR
    return sorted(d.glob("part-*.parquet")) if d.is_dir() else []


def next_seq(vdir: Path) -> int:
    """The sequence number of the next part: after every part on disk and the last one compacted.

    Parameters
    ----------
    vdir : Path
        The venue folder (its parts and its compacted file are read).

    Returns
    -------
    int
        1 in a fresh folder.
    """
    seqs = [0]
    for p in part_names(vdir):
        try:
            seqs.append(int(p.stem.split("-")[1]))
        except (IndexError, ValueError):
            continue
    main = vdir / "liquidations.parquet"
    through = _parts_through(main)
    if through:
        with contextlib.suppress(IndexError, ValueError):
            seqs.append(int(Path(through).stem.split("-")[1]))
    return max(seqs) + 1


def _parts_through(main: Path) -> str:
    if not main.exists():
        return ""
    import pyarrow.parquet as pq

    try:
        md = pq.read_schema(main).metadata or {}
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader
        return ""
    return md.get(PARTS_KEY, b"").decode()


def write_part(vdir: Path, seq: int, rows: list[dict]) -> Path:
    """Write events as part ``seq`` (validated, atomic).

    Parameters
    ----------
    vdir : Path
        A recorded venue's dataset directory.
    seq : int
        Part sequence number (:func:`next_seq`).
    rows : list of dict
        Events as :func:`~liqlab.io.record.events.liquidation_rows` gives them (ts ms, side, price USD,
        amount base, value USD).

    Returns
    -------
    Path
        The part written.
    """
    path = vdir / PARTS_DIR / f"part-{seq:010d}.parquet"
    df = validate_table("liquidations", liq_frame(rows), path)
    atomic.write_parquet(path, df)
    return path


def compact(vdir: str | os.PathLike) -> int:
    """Fold ``liquidations/part-*.parquet`` into ``liquidations.parquet`` (atomic), then delete the parts.

    The compacted file records the last part it holds, so a crash between the rename and the deletes
    never double counts.

    Parameters
    ----------
    vdir : str or os.PathLike
        A recorded venue's dataset directory.

    Returns
    -------
    int
        The number of events in the compacted file.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from liqlab.io.dataset import load_dataset

    vdir = Path(vdir)
    parts = part_names(vdir)
    main = vdir / "liquidations.parquet"
    through = _parts_through(main)
    if not parts:
        return 0 if not main.exists() else pq.read_metadata(main).num_rows
    ds = load_dataset(vdir) if (vdir / "meta.json").exists() else None
    if ds is not None and ds.liquidations is not None:
        df = ds.liquidations
    else:
        frames = [pq.read_table(p).to_pandas() for p in parts if p.name > through]
        df = pd.concat(frames, ignore_index=True) if frames else empty_table("liquidations")
    df = validate_table("liquidations", df.sort_values("ts", kind="stable").reset_index(drop=True), main)
    last = parts[-1].name
    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata({PARTS_KEY: last.encode()})
    with atomic.atomic_path(main, ".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    for p in parts:
        if p.name <= last:
            p.unlink(missing_ok=True)
    return len(df)


def compact_all(out: str | os.PathLike) -> dict[str, int]:
    """Compact every recorded venue folder under ``out`` (or ``out`` itself if it is one), under the lock.

    Parameters
    ----------
    out : str or os.PathLike
        The recorder's output folder (or one venue folder).

    Returns
    -------
    dict[str, int]
        Events in each compacted file, by folder name (the venue).
    """
    out = Path(out)
    dirs = [out] if (out / "meta.json").exists() else sorted(p for p in out.iterdir() if (p / "meta.json").exists()) if out.is_dir() else []
    if not dirs:
        raise DataError(f"{out}: no recorded dataset (meta.json) found")
    with out_lock(out):
        return {d.name: compact(d) for d in dirs}


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold the output folder's lock file for the block; :class:`RecorderLocked` if another recorder has it.

    Parameters
    ----------
    out : Path
        The recorder's output folder (created if absent).

    Returns
    -------
    contextmanager
        Yields None while the lock is held.
    """
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecorderLocked(f"{out / LOCK_FILE}: another recorder is writing into {out}") from None
        yield
    finally:
        fh.close()
