"""Parse a problem's visual annotations from either published form.

Accepted inputs:
- a sequence of strings (``["JKLM is a parallelogram", "JK = 3f - 6"]``), including numpy arrays
  of strings as parquet round-trips produce them;
- the reference trainer's text form ``<info1>fact</info1><info2>fact</info2>``;
- ``None`` or an empty value, meaning "no annotations".
Each fact is stripped; empty facts are dropped. Anything else raises :class:`AnnotationError`
naming the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_INFO_TAG = re.compile(r"<info(\d+)>(.*?)</info\1>", re.DOTALL | re.IGNORECASE)


class AnnotationError(ValueError):
    """Annotations that are not text, raised with the offending row named."""


def _where(row: object | None) -> str:
    return f" in row {row!r}" if row is not None else ""


def parse_info_tags(text: str) -> list[str]:
    """Return the facts of ``<infoK>...</infoK>`` text in K order (plain text without tags: one fact)."""
    found = [(int(k), body) for k, body in _INFO_TAG.findall(text)]
    if not found:
        return [text]
    return [body for _, body in sorted(found, key=lambda pair: pair[0])]


def parse_annotations(value: Any, *, row: object | None = None) -> list[str]:
    """Normalise ``value`` into a list of non-empty, stripped annotation strings."""
    if value is None:
        return []
    if isinstance(value, bytes):
        raise AnnotationError(f"annotations must be text, got bytes{_where(row)}")
    if isinstance(value, str):
        items: Iterable[Any] = parse_info_tags(value) if value.strip() else []
    elif hasattr(value, "tolist") and not isinstance(value, dict):
        items = value.tolist()
        if not isinstance(items, list):
            items = [items]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise AnnotationError(
            f"annotations must be a list of strings or '<info1>...</info1>' text, "
            f"got {type(value).__name__}{_where(row)}"
        )
    facts: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise AnnotationError(
                f"annotation {index} is {type(item).__name__}, not text{_where(row)}"
            )
        fact = item.strip()
        if fact:
            facts.append(fact)
    return facts
