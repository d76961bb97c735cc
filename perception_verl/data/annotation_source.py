"""Turn rows of an annotation source into :class:`AnnotationRecord` objects.

Sources: the published annotated set (``tongxiao2002/Perception-R1-Dataset`` on the hub, whose
facts sit in a ``visual_key_info`` text column as ``<info1>..</info1>``), or the annotation
collector's jsonl/parquet output (an ``annotations`` list). The facts column is configurable;
by default the first of ``visual_key_info`` and ``annotations`` that a row has is used. Rows with a
``status`` other than ``"ok"`` (the collector's failed problems) and rows without facts are skipped
and counted.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from perception_verl.data.annotations import parse_annotations
from perception_verl.data.images import ImageDataError, decode_images
from perception_verl.data.loading import SourceError, load_all_rows
from perception_verl.data.matching import AnnotationRecord

PUBLISHED_ANNOTATIONS = "tongxiao2002/Perception-R1-Dataset"
DEFAULT_ANNOTATION_COLUMNS = ("visual_key_info", "annotations")
PROBLEM_COLUMNS = ("problem", "question")
ANSWER_COLUMNS = ("answer", "ground_truth")
IMAGE_COLUMNS = ("images", "image")


@dataclass
class AnnotationLoad:
    """Records read from a source, plus how many rows were skipped and why."""

    records: list[AnnotationRecord] = field(default_factory=list)
    rows_read: int = 0
    skipped_failed: int = 0
    skipped_empty: int = 0


def _first_present(row: dict[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        if name in row:
            return name
    return None


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def record_from_row(
    row: dict[str, Any], where: str, *, annotation_columns: Sequence[str], use_images: bool = True
) -> AnnotationRecord | None:
    """One row as a record; ``None`` when it is a failed collector row. Raises on bad values."""
    status = row.get("status")
    if status is not None and status != "ok":
        return None
    column = _first_present(row, annotation_columns)
    if column is None:
        raise SourceError(
            f"{where}: no annotation column (looked for {list(annotation_columns)}; row has {sorted(row)})"
        )
    facts = tuple(parse_annotations(row[column], row=where))
    image_hashes = None
    image_column = _first_present(row, IMAGE_COLUMNS) if use_images else None
    if image_column is not None and row[image_column] is not None:
        try:
            image_hashes = tuple(image.pixel_hash for image in decode_images(row[image_column])) or None
        except ImageDataError as error:
            raise SourceError(f"{where}: {error}") from None
    problem_column = _first_present(row, PROBLEM_COLUMNS)
    answer_column = _first_present(row, ANSWER_COLUMNS)
    return AnnotationRecord(
        where=where,
        annotations=facts,
        id=_text_or_none(row.get("id")),
        split=_text_or_none(row.get("split")),
        problem=_text_or_none(row[problem_column]) if problem_column else None,
        answer=_text_or_none(row[answer_column]) if answer_column else None,
        image_hashes=image_hashes,
    )


def load_annotation_records(
    source: str,
    *,
    annotation_column: str | None = None,
    use_images: bool = True,
    progress: bool = True,
    exclude: Collection[Path] = (),
) -> AnnotationLoad:
    """Read every row of ``source`` (hub id, folder or file) into annotation records."""
    columns = (annotation_column,) if annotation_column else DEFAULT_ANNOTATION_COLUMNS
    load = AnnotationLoad()
    groups = load_all_rows(source, exclude=exclude)
    total = sum(len(rows) for _, rows in groups)
    with tqdm(total=total, desc="annotations", unit="row", disable=not progress) as bar:
        for label, rows in groups:
            for number, row in enumerate(rows):
                load.rows_read += 1
                bar.update(1)
                record = record_from_row(
                    row, f"{source} {label} row {number}", annotation_columns=columns, use_images=use_images
                )
                if record is None:
                    load.skipped_failed += 1
                elif not record.annotations:
                    load.skipped_empty += 1
                else:
                    load.records.append(record)
    return load
