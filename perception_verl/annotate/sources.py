"""Turn input records (parquet, JSONL, a hub dataset) into validated problems to annotate.

Each record needs an id, a question, a ground-truth answer and one or more images; the column
names are configurable (the defaults match Geometry3K: ``id``, ``problem``, ``answer``,
``images``). An image cell may hold encoded bytes, a ``{"bytes": ..., "path": ...}`` dict (as
``datasets`` writes them; ``path`` is read when ``bytes`` is empty), or a list of those. In JSONL
files an image is a file path, a base64 string or data URL, or ``{"bytes": "<base64>"}``;
relative paths are taken from the input file's directory. Images are decoded (so a broken one
is caught at load time) and sent as PNG.
Errors name the file, the row and the column.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perception_verl.annotate.store import row_key
from perception_verl.data.images import ImageDataError, decode_images
from perception_verl.data.loading import SourceError, load_all_rows, load_split_rows


@dataclass(frozen=True)
class Columns:
    """Names of the input columns the pipeline reads."""

    id: str = "id"
    question: str = "problem"
    answer: str = "answer"
    image: str = "images"


@dataclass(frozen=True)
class Problem:
    """One problem to annotate: its id as given in the input, text, ground truth and encoded images.

    ``split`` names the dataset split it came from when one was chosen (it helps the dataset
    builder match annotations to problems whose ids repeat across splits).
    """

    id: Any
    question: str
    answer: str
    images: tuple[bytes, ...]
    split: str | None = None


def _decode_base64(text: str, where: str) -> bytes:
    body = text.split(",", 1)[-1] if text.startswith("data:") else text
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise SourceError(f"{where}: image string is neither an existing file nor base64") from None


def _resolve_image(value: Any, where: str, base_dir: Path) -> Any:
    """Turn JSON-friendly image forms (base64 text, relative paths) into what decode_images reads."""
    if isinstance(value, str):
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if not value.startswith("data:") and len(value) < 4096 and path.is_file():
            return str(path)
        return _decode_base64(value, where)
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if isinstance(data, str):
            return {"bytes": _decode_base64(data, where)}
        if not data and path and not Path(path).is_absolute():
            return {"bytes": None, "path": str(base_dir / path)}
    return value


def _images(value: Any, where: str, base_dir: Path) -> tuple[bytes, ...]:
    if hasattr(value, "tolist") and not isinstance(value, (bytes, Mapping)):
        value = value.tolist()
    items = value if isinstance(value, (list, tuple)) else [value]
    resolved = [
        _resolve_image(item, f"{where}[{i}]", base_dir) for i, item in enumerate(items) if item is not None
    ]
    try:
        images = tuple(image.png for image in decode_images(resolved))
    except ImageDataError as error:
        raise SourceError(f"{where}: {error}") from None
    if not images:
        raise SourceError(f"{where}: no image")
    return images


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool) or value is None:
        raise SourceError(f"{where}: missing or not text ({value!r})")
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise SourceError(f"{where}: missing or not text ({type(value).__name__})")
    return value


def record_to_problem(
    record: Mapping[str, Any], columns: Columns, where: str, base_dir: Path, split: str | None = None
) -> Problem:
    """Validate one input record and turn it into a :class:`Problem`."""
    for name in (columns.id, columns.question, columns.answer, columns.image):
        if name not in record:
            raise SourceError(f"{where}: no column {name!r} (columns: {sorted(record)})")
    problem_id = record[columns.id]
    if problem_id is None or isinstance(problem_id, (bool, float, Mapping, list)):
        raise SourceError(f"{where}: id column {columns.id!r} holds {problem_id!r}; use int or str ids")
    return Problem(
        id=problem_id,
        question=_text(record[columns.question], f"{where} column {columns.question!r}"),
        answer=_text(record[columns.answer], f"{where} column {columns.answer!r}"),
        images=_images(record[columns.image], f"{where} column {columns.image!r}", base_dir),
        split=split,
    )


def problems_from_records(
    records: Iterable[tuple[str, Mapping[str, Any], Path]], columns: Columns, split: str | None = None
) -> list[Problem]:
    """Problems from ``(where, record, base_dir)`` triples; ids must be unique.

    ``base_dir`` resolves relative image paths (the directory of the record's file).
    """
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for where, record, base_dir in records:
        problem = record_to_problem(record, columns, where, base_dir, split)
        key = row_key(problem.id)
        if key in seen:
            raise SourceError(f"{where}: id {problem.id!r} already used at {seen[key]}")
        seen[key] = where
        problems.append(problem)
    return problems


def _base_dir(source: str) -> Path:
    path = Path(source)
    return path.parent if path.is_file() else path


def load_problems(
    sources: Sequence[str], columns: Columns = Columns(), split: str | None = None
) -> list[Problem]:
    """Load and validate every problem of ``sources``, in source then row order.

    Each source is what :mod:`perception_verl.data.loading` reads: a parquet/jsonl file, a folder
    of them (or of hub-style shards), a ``save_to_disk`` folder, or a hub dataset id. With ``split``
    only that split is read (hub ids and shard folders); without it, every file or split is.
    """
    triples: list[tuple[str, Mapping[str, Any], Path]] = []
    for source in sources:
        if split is not None:
            groups = [(f"{source} split {split!r}", load_split_rows(source, [split])[split])]
        else:
            groups = [(f"{source} {label}", rows) for label, rows in load_all_rows(source)]
        base_dir = _base_dir(source)
        for label, rows in groups:
            triples.extend((f"{label} row {index}", record, base_dir) for index, record in enumerate(rows))
    return problems_from_records(triples, columns, split)
