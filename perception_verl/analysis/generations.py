"""Saved generations to label: read them from jsonl, and turn judge verdicts into a label.

Each line is a JSON object with an id, the model's response and the problem's annotations (a list
of strings or ``<info1>...</info1>`` text; missing, null or empty means "none"). Key names are
configurable. Bad rows and duplicate ids raise :class:`GenerationFileError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from perception_verl.analysis.labels import LabelId, check_id
from perception_verl.data.annotations import AnnotationError, parse_annotations
from perception_verl.errors import PerceptionVerlError
from perception_verl.jsonl import json_objects


class GenerationFileError(PerceptionVerlError, ValueError):
    """A generations file that cannot be read unambiguously; the message names the file and line."""


@dataclass(frozen=True)
class GenerationKeys:
    """Names of the id, response and annotations keys in a generations file."""

    id: str = "id"
    response: str = "response"
    annotations: str = "annotations"


@dataclass(frozen=True)
class Generation:
    """One saved response with its problem's annotations (empty tuple: none)."""

    id: LabelId
    response: str
    annotations: tuple[str, ...]
    line: int


def parse_generation_lines(
    lines: Iterable[str], *, source: str, keys: GenerationKeys = GenerationKeys()
) -> list[Generation]:
    """Parse jsonl generation lines; ``source`` names the input in errors."""
    rows: list[Generation] = []
    first_line: dict[LabelId, int] = {}
    required = (keys.id, keys.response)
    error = GenerationFileError
    for number, where, row in json_objects(lines, source=source, required=required, error=error):
        row_id = check_id(row[keys.id], where=where, key=keys.id, error=GenerationFileError)
        response = row[keys.response]
        if not isinstance(response, str):
            raise GenerationFileError(
                f"{where}: {keys.response!r} must be text, got {type(response).__name__}"
            )
        try:
            annotations = parse_annotations(row.get(keys.annotations), row=row_id)
        except AnnotationError as exc:
            raise GenerationFileError(f"{where}: {exc}") from exc
        if row_id in first_line:
            raise GenerationFileError(
                f"{where}: duplicate id {row_id!r} (first seen on line {first_line[row_id]})"
            )
        first_line[row_id] = number
        rows.append(Generation(id=row_id, response=response, annotations=tuple(annotations), line=number))
    return rows


def read_generations(path: str | Path, keys: GenerationKeys = GenerationKeys()) -> list[Generation]:
    """Read a generations jsonl file; raises :class:`GenerationFileError` on bad input."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            return parse_generation_lines(handle, source=str(path), keys=keys)
    except OSError as exc:
        raise GenerationFileError(f"{path}: cannot read generations ({exc.strerror or exc})") from exc


def perception_label(verdicts: Sequence[int], threshold: float = 1.0) -> tuple[float, bool]:
    """Return ``(mean verdict, correct)``: correct when the mean reaches ``threshold``.

    The comparison is made on counts (``sum >= threshold * n``, with a tolerance for float
    thresholds such as 0.7 * 10), so the default 1.0 means every annotation is reflected.
    """
    if not verdicts:
        raise ValueError("perception_label needs at least one verdict")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    hits = sum(verdicts)
    return hits / len(verdicts), hits >= threshold * len(verdicts) - 1e-9
