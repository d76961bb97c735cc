"""Deterministic, atomic parquet writes.

Each output is written to a hidden temporary file in its destination folder, flushed and fsynced,
and only then renamed over the destination (``os.replace``), so a reader or an interrupted run
never sees a half-written parquet. Several outputs are staged first and renamed together at the
end, so a failure while writing any of them leaves every previous output untouched. The bytes
depend only on the rows: fixed schema, row order, row-group size and writer options, and no
timestamps in the file metadata.

A build's splits (train and test) go through :func:`write_split_set` instead: they form one set,
committed by a single rename, so a kill never leaves a new train beside an old test.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from perception_verl.atomic import FILE_MODE, fsync_dir, stage_file

logger = logging.getLogger(__name__)

ROW_GROUP_SIZE = 64
_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
}


def _write_row_group(writer: pq.ParquetWriter, table: pa.Table) -> None:
    writer.write_table(table, row_group_size=ROW_GROUP_SIZE)


def write_parquet(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, handle: Any) -> None:
    """Write ``rows`` (in order) to an open binary file handle, one row group per chunk."""
    with pq.ParquetWriter(handle, schema, **_WRITER_OPTIONS) as writer:
        if not rows:
            writer.write_table(schema.empty_table())
        for start in range(0, len(rows), ROW_GROUP_SIZE):
            chunk = pa.Table.from_pylist(list(rows[start : start + ROW_GROUP_SIZE]), schema=schema)
            _write_row_group(writer, chunk)


def _warn_leftovers(destination: Path) -> None:
    leftovers = sorted(destination.parent.glob(f".{destination.name}.*.tmp"))
    if leftovers:
        logger.warning(
            "leftover temporary file(s) from an interrupted write, safe to delete once no build runs: %s",
            ", ".join(str(path) for path in leftovers),
        )


def _stage(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, destination: Path) -> Path:
    _warn_leftovers(destination)
    return stage_file(destination, lambda handle: write_parquet(rows, schema, handle), binary=True)


@contextlib.contextmanager
def _staged(
    outputs: Mapping[Path, Sequence[Mapping[str, Any]]], schema: pa.Schema
) -> Iterator[dict[Path, Path]]:
    temps: dict[Path, Path] = {}
    try:
        for destination, rows in outputs.items():
            temps[destination] = _stage(rows, schema, destination)
        yield temps
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)


def write_outputs_atomically(outputs: Mapping[Path, Sequence[Mapping[str, Any]]], schema: pa.Schema) -> None:
    """Write each ``{destination: rows}`` as parquet; destinations change only once all are written."""
    paths = [Path(p) for p in outputs]
    if len(set(paths)) != len(paths):
        raise ValueError(f"two outputs share one destination: {[str(p) for p in paths]}")
    with _staged({Path(k): v for k, v in outputs.items()}, schema) as temps:
        for destination, temp in temps.items():
            os.replace(temp, destination)
            logger.info("wrote %s", destination)
        for directory in {destination.parent for destination in temps}:
            fsync_dir(directory)


SET_POINTER = ".pv-splits"
"""Name of the symlink, in an output folder, to the folder holding the current set of splits."""


def write_split_set(outputs: Mapping[Path, Sequence[Mapping[str, Any]]], schema: pa.Schema) -> None:
    """Write each ``{destination: rows}`` as parquet so that a kill leaves the old set or the new one.

    Layout, per output folder: each destination (``train.parquet``) is a relative symlink to
    ``.pv-splits/<name>``, and ``.pv-splits`` is a symlink to a fresh hidden folder
    ``.pv-splits.<random>`` holding that build's files. A build (1) writes and fsyncs the whole new set
    into a fresh folder, invisible to readers; (2) turns destinations that are still plain files (an
    older build, a hand copy) into symlinks to a hard-linked copy of the same bytes, so readers see no
    change; (3) swaps ``.pv-splits`` in one ``os.replace``: that rename is the commit. A kill before it
    leaves every old file, after it every new one. Outputs in different folders are committed folder by
    folder (logged). Each folder is locked (``flock``) while it is written, and a build first removes
    the stale temporaries of interrupted builds there (unreferenced ``.pv-splits.*`` folders, hidden
    ``.<name>.*.tmp`` files of the older per-file writer), naming each in the log.
    """
    paths = [Path(p) for p in outputs]
    if len(set(paths)) != len(paths):
        raise ValueError(f"two outputs share one destination: {[str(p) for p in paths]}")
    folders: dict[Path, dict[str, Sequence[Mapping[str, Any]]]] = {}
    for destination, rows in outputs.items():
        path = Path(destination)
        folders.setdefault(path.parent, {})[path.name] = rows
    if len(folders) > 1:
        logger.warning(
            "outputs in %d folders: each folder's files change together, the folders one after the other",
            len(folders),
        )
    with contextlib.ExitStack() as stack:
        staged: dict[Path, Path] = {}
        for folder, files in folders.items():
            folder.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_locked(folder))
            _clean_stale(folder, list(files))
            staged[folder] = stack.enter_context(_staged_set(folder, files, schema))
        for folder, files in folders.items():
            _adopt(folder, list(files))
            previous = _current_set(folder)
            _point(folder, SET_POINTER, staged[folder].name)
            fsync_dir(folder)
            for name in files:
                logger.info("wrote %s", folder / name)
            if previous is not None and previous != staged[folder]:
                shutil.rmtree(previous, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _current_set(folder: Path) -> Path | None:
    pointer = folder / SET_POINTER
    if not pointer.is_symlink():
        return None
    return folder / os.readlink(pointer)


def _clean_stale(folder: Path, names: Sequence[str]) -> None:
    """Remove what interrupted builds left in ``folder`` (called with the folder locked)."""
    current = _current_set(folder)
    stale = [p for p in folder.glob(f"{SET_POINTER}.*") if p != current and not p.is_symlink() and p.is_dir()]
    stale += [p for p in folder.glob(f"{SET_POINTER}.*.link") if p.is_symlink()]
    stale += [p for name in names for p in folder.glob(f".{name}.*.tmp")]
    for path in sorted(stale):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        logger.warning("removed a stale temporary of an interrupted build: %s", path)


@contextlib.contextmanager
def _staged_set(
    folder: Path, files: Mapping[str, Sequence[Mapping[str, Any]]], schema: pa.Schema
) -> Iterator[Path]:
    """A fresh hidden folder holding every file written and fsynced; removed unless committed."""
    staging = Path(tempfile.mkdtemp(prefix=f"{SET_POINTER}.", dir=folder))
    try:
        os.chmod(staging, 0o755)
        for name, rows in files.items():
            with open(staging / name, "wb") as handle:
                write_parquet(rows, schema, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(staging / name, FILE_MODE)
        fsync_dir(staging)
        yield staging
    finally:
        if _current_set(folder) != staging:
            shutil.rmtree(staging, ignore_errors=True)


def _adopt(folder: Path, names: Sequence[str]) -> None:
    """Make each destination a symlink into the current set, without changing what readers see."""
    current = _current_set(folder)
    for name in names:
        path = folder / name
        target = f"{SET_POINTER}/{name}"
        if path.is_symlink() and os.readlink(path) == target:
            continue
        if path.exists():
            if current is None:
                current = Path(tempfile.mkdtemp(prefix=f"{SET_POINTER}.", dir=folder))
                os.chmod(current, 0o755)
                _point(folder, SET_POINTER, current.name)
            (current / name).unlink(missing_ok=True)
            try:
                os.link(path, current / name)
            except OSError:
                shutil.copy2(path, current / name)
            fsync_dir(current)
        _point(folder, name, target)
    fsync_dir(folder)


def _point(folder: Path, name: str, target: str) -> None:
    """Make ``folder/name`` a symlink to ``target`` in one ``os.replace`` (readers see old or new)."""
    link = folder / f"{SET_POINTER}.{secrets.token_hex(6)}.link"
    os.symlink(target, link)
    try:
        os.replace(link, folder / name)
    except BaseException:
        link.unlink(missing_ok=True)
        raise
