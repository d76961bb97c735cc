"""Read raw rows from the hub, a ``save_to_disk`` folder, parquet shards, or parquet/jsonl files.

Rows come back as plain dicts with images left encoded (``{"bytes", "path"}``), never decoded by
``datasets``. Hub access goes through ``datasets.load_dataset``; everything else is read locally.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from perception_verl.errors import PerceptionVerlError
from perception_verl.jsonl import json_objects

logger = logging.getLogger(__name__)

_DISK_MARKERS = ("dataset_dict.json", "state.json")


class SourceError(PerceptionVerlError, ValueError):
    """A data source that cannot be read, or lacks a requested split; the message names it."""


def is_local(source: str) -> bool:
    """Whether ``source`` names an existing local file or folder (else it is a hub dataset id)."""
    return Path(source).exists()


def _dataset_rows(dataset: Any) -> list[dict[str, Any]]:
    """All rows of a ``datasets.Dataset`` as dicts, reading Arrow storage (images stay encoded)."""
    rows: list[dict[str, Any]] = []
    for table in dataset.with_format("arrow").iter(batch_size=512):
        rows.extend(table.to_pylist())
    return rows


def read_file_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of one ``.parquet``, ``.jsonl`` or ``.json`` (a list of objects) file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pylist()
        if suffix == ".jsonl":
            with path.open(encoding="utf-8") as handle:
                rows = json_objects(handle, source=str(path), required=(), error=SourceError)
                return [row for _, _, row in rows]
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, list):
                raise SourceError(f"{path}: expected a JSON list of objects")
            return [_require_dict(row, f"{path}: item {i}") for i, row in enumerate(data)]
    except (OSError, ValueError) as error:
        if isinstance(error, SourceError):
            raise
        raise SourceError(f"{path}: cannot be read ({error})") from None
    raise SourceError(f"{path}: unsupported file type (use .parquet, .jsonl or .json)")


def _require_dict(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise SourceError(f"{where} is not a JSON object")
    return row


def _load_from_disk(folder: Path) -> dict[str, Any]:
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        return dict(loaded)
    return {"": loaded}


def split_shards(folder: Path, split: str) -> list[Path]:
    """Parquet shards of ``split`` in ``folder`` or ``folder/data`` (not deeper), sorted.

    Names matched: ``<split>-*.parquet`` (the hub's ``train-00000-of-00001.parquet``),
    ``<split>.parquet``, and ``<split>/*.parquet``.
    """
    files: set[Path] = set()
    for base in (folder, folder / "data"):
        for pattern in (f"{split}-*.parquet", f"{split}.parquet", f"{split}/*.parquet"):
            files.update(path for path in base.glob(pattern) if path.is_file())
    return sorted(files)


def _refuse_outputs(files: Sequence[Path], exclude: Collection[Path]) -> None:
    outputs = {Path(path).expanduser().resolve() for path in exclude}
    for file in files:
        if file.resolve() in outputs:
            raise SourceError(
                f"{file} is both an input and an output of this build; write the outputs elsewhere"
            )


def load_split_rows(
    source: str, splits: Sequence[str], *, exclude: Collection[Path] = ()
) -> dict[str, list[dict[str, Any]]]:
    """Rows of each requested split of a dataset.

    ``source`` is a hub id, a ``save_to_disk`` folder, a folder of parquet shards named like the
    hub's (see :func:`split_shards`), or a single parquet/jsonl file (then exactly one split may be
    requested and it gets all rows). Files listed in ``exclude`` (the build's outputs) are refused.
    """
    path = Path(source)
    if path.is_file():
        if len(splits) != 1:
            raise SourceError(f"{source}: a single file holds one split, but {len(splits)} were requested")
        _refuse_outputs([path], exclude)
        return {splits[0]: read_file_rows(path)}
    if path.is_dir():
        if any((path / marker).exists() for marker in _DISK_MARKERS):
            return _pick(source, _load_from_disk(path), splits)
        found = {split: split_shards(path, split) for split in splits}
        _refuse_outputs([file for files in found.values() for file in files], exclude)
        missing = [split for split, files in found.items() if not files]
        if missing:
            raise SourceError(
                f"{source}: no parquet shards for split(s) {missing} (expected files named like "
                f"'<split>-00000-of-00001.parquet')"
            )
        return {
            split: [row for file in files for row in read_file_rows(file)] for split, files in found.items()
        }
    return _pick(source, _load_hub(source), splits)


def _load_hub(name: str) -> dict[str, Any]:
    import datasets

    logger.info("loading %s from the Hugging Face hub", name)
    try:
        loaded = datasets.load_dataset(name)
    except Exception as error:
        raise SourceError(
            f"{name!r} is neither a local path nor a loadable hub dataset ({type(error).__name__}: {error})"
        ) from None
    return dict(loaded)


def _pick(
    source: str, datasets_by_split: dict[str, Any], splits: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    available = sorted(datasets_by_split)
    missing = [split for split in splits if split not in datasets_by_split]
    if missing:
        raise SourceError(f"{source}: split(s) {missing} not found; available: {available}")
    return {split: _dataset_rows(datasets_by_split[split]) for split in splits}


def load_all_rows(source: str, *, exclude: Collection[Path] = ()) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every row of a source, grouped as ``(label, rows)`` with a label naming the file or split.

    For annotation sources: a hub id, a ``save_to_disk`` folder, a folder of parquet/jsonl files
    (searched recursively), or one file. Groups come in a fixed order (sorted file names, split
    names). Files listed in ``exclude`` (the build's outputs) are refused.
    """
    path = Path(source)
    if path.is_file():
        _refuse_outputs([path], exclude)
        return [(path.name, read_file_rows(path))]
    if path.is_dir():
        if any((path / marker).exists() for marker in _DISK_MARKERS):
            groups = _load_from_disk(path)
            return [
                (f"split {name!r}" if name else path.name, _dataset_rows(groups[name]))
                for name in sorted(groups)
            ]
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".jsonl")
        )
        if not files:
            raise SourceError(f"{source}: folder holds no .parquet or .jsonl files")
        _refuse_outputs(files, exclude)
        return [(str(file.relative_to(path)), read_file_rows(file)) for file in files]
    groups = _load_hub(source)
    return [(f"split {name!r}", _dataset_rows(groups[name])) for name in sorted(groups)]
