"""Reading JSON-lines input: one object per non-blank line, errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def json_object(text: str, *, where: str, required: Sequence[str], error: type[Exception]) -> dict[str, Any]:
    """Parse one line into a JSON object holding every ``required`` key; else raise ``error`` at ``where``."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise error(f"{where}: expected a JSON object, got {type(row).__name__}")
    for key in required:
        if key not in row:
            raise error(f"{where}: missing key {key!r}")
    return row


def json_objects(
    lines: Iterable[str], *, source: str, required: Sequence[str], error: type[Exception]
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Yield ``(line number, "source:line", object)`` for each non-blank line (see :func:`json_object`)."""
    for number, line in enumerate(lines, start=1):
        if line.strip():
            where = f"{source}:{number}"
            yield number, where, json_object(line, where=where, required=required, error=error)
