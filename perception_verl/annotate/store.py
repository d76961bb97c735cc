"""Append-only JSONL result store that survives ``kill -9`` and can be resumed.

Every finished problem is one JSON line, written and flushed as soon as it is known, so a killed
run loses only the problems still in flight. On open, a torn last line (a write cut short by a
kill: no trailing newline) is cut off the file; any other unreadable line is an error naming its
line number. When an id appears more than once (a failed row retried later), the last row wins.
:meth:`ResultStore.finalize` rewrites the file atomically in a caller-given id order with one row
per id, so an interrupted-and-resumed run and an uninterrupted run end with identical bytes.
A lock file next to the output keeps two runs from writing the same store.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from perception_verl.atomic import fsync_dir
from perception_verl.errors import PerceptionVerlError
from perception_verl.jsonl import json_objects

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_FAILED = "failed"


class StoreError(PerceptionVerlError, RuntimeError):
    """The output file cannot be used as a result store (unreadable row, held lock)."""


def row_key(row_id: Any) -> str:
    """The key ids are compared by: ``7`` in the input and ``"7"`` in a store are the same problem."""
    return str(row_id)


def encode_row(row: Mapping[str, Any]) -> str:
    """One JSONL line (key order as given, UTF-8 text, trailing newline)."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def read_rows(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Read a store's rows; a torn last line is dropped (and cut off the file when ``repair``)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        logger.warning("%s: ignoring a torn last line (%d bytes, no newline)", path, len(data) - complete)
        if repair:
            os.truncate(path, complete)
    try:
        text = data[:complete].decode("utf-8")
    except UnicodeDecodeError as error:
        number = data[: error.start].count(b"\n") + 1
        raise StoreError(f"{path}:{number}: not valid UTF-8 ({error.reason})") from None
    rows: list[dict[str, Any]] = []
    for _, where, row in json_objects(text.splitlines(), source=str(path), required=(), error=StoreError):
        if "id" not in row or row.get("status") not in (STATUS_OK, STATUS_FAILED):
            raise StoreError(f"{where}: not a result row (needs 'id' and status ok/failed)")
        rows.append(row)
    return rows


def latest_by_id(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map each id key to its last row, in order of each id's first appearance."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row_key(row["id"])] = dict(row)
    return latest


def canonical_order(rows: Mapping[str, Mapping[str, Any]], order: Iterable[Any]) -> list[Mapping[str, Any]]:
    """Rows in ``order`` (input ids), then rows for ids not in ``order`` in their stored order."""
    ordered_keys = [row_key(row_id) for row_id in order]
    wanted = set(ordered_keys)
    result = [rows[key] for key in ordered_keys if key in rows]
    result.extend(row for key, row in rows.items() if key not in wanted)
    return result


class ResultStore:
    """The output JSONL of one run: resume state, appends, and the final canonical rewrite."""

    def __init__(self, path: str | os.PathLike[str], *, fsync_every: int = 16) -> None:
        self.path = Path(path)
        self.fsync_every = max(1, fsync_every)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._tmp_path = self.path.with_name(self.path.name + ".sorting")
        self._lock: IO[bytes] | None = None
        self._file: IO[str] | None = None
        self._unsynced = 0
        self.rows: dict[str, dict[str, Any]] = {}

    def open(self) -> ResultStore:
        """Take the lock, repair a torn tail, load existing rows and open the file for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self._lock_path, "wb")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise StoreError(
                f"{self.path} is in use by another run (lock {self._lock_path} is held)"
            ) from None
        self._tmp_path.unlink(missing_ok=True)
        self.rows = latest_by_id(read_rows(self.path, repair=True))
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (held until close)
        return self

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def done_keys(self, *, retry_failed: bool = False) -> set[str]:
        """Ids a run should skip: finished rows, and failed ones unless they are to be retried."""
        return {
            key for key, row in self.rows.items() if not (retry_failed and row["status"] == STATUS_FAILED)
        }

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row and flush it to the OS; fsync every ``fsync_every`` rows."""
        if self._file is None:
            raise StoreError(f"{self.path} is not open")
        self._file.write(encode_row(row))
        self._file.flush()
        self.rows[row_key(row["id"])] = dict(row)
        self._unsynced += 1
        if self._unsynced >= self.fsync_every:
            self._sync()

    def _sync(self) -> None:
        if self._file is not None and self._unsynced:
            os.fsync(self._file.fileno())
            self._unsynced = 0

    def finalize(self, order: Iterable[Any]) -> None:
        """Atomically rewrite the file: one row per id, in ``order`` first (see :func:`canonical_order`)."""
        if self._file is None:
            raise StoreError(f"{self.path} is not open")
        self._file.flush()
        self._sync()
        rows = canonical_order(self.rows, order)
        with open(self._tmp_path, "w", encoding="utf-8") as tmp:
            tmp.writelines(encode_row(row) for row in rows)
            tmp.flush()
            os.fsync(tmp.fileno())
        self._file.close()
        os.replace(self._tmp_path, self.path)
        fsync_dir(self.path.parent)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (held until close)

    def close(self) -> None:
        """Flush, fsync and close the file; release the lock."""
        if self._file is not None:
            self._file.flush()
            self._sync()
            self._file.close()
            self._file = None
        if self._lock is not None:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
