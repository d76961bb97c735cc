"""Deterministic, atomic parquet writes.

Each output is written to a hidden temporary file in its destination folder, flushed and fsynced,
and only then renamed over the destination (``os.replace``), so a reader or an interrupted run
never sees a half-written parquet. Several outputs are staged first and renamed together at the
end, so a failure while writing any of them leaves every previous output untouched. The bytes
depend only on the rows: fixed schema, row order, row-group size and writer options, and no
timestamps in the file metadata.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from perception_verl.atomic import fsync_dir, stage_file

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
